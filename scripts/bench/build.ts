/** The gateway as the benchmarks run it: a checkout's src/ compiled once into a cache outside the repository. */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rm, stat, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** This repository (its typescript compiles every checkout, the baseline's too). */
const ROOT = new URL('../..', import.meta.url).pathname;

/** Every regular file under `dir`, sorted; none when it does not exist. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return out;
  }
  for (const e of entries) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out.sort();
}

/**
 * The checkout's src/ compiled by its own tsconfig.build.json into a cache outside the repository
 * (os.tmpdir()/appendcast-bench/build-<hash of src and configs>/dist, with a link to the checkout's
 * node_modules and a copy of its package.json), so the gateway runs as `node dist/cli.js` — no
 * tsx loader thread or esbuild child in the figures — without touching the checkout's own dist/.
 * Returns the path of cli.js.
 */
export async function buildCheckout(checkout: string, notes: string[]): Promise<string> {
  const h = createHash('sha256');
  for (const f of ['package.json', 'tsconfig.json', 'tsconfig.build.json']) h.update(f).update(await readFile(join(checkout, f)));
  for (const f of (await filesUnder(join(checkout, 'src'))).filter((x) => x.endsWith('.ts'))) h.update(f.slice(checkout.length)).update(await readFile(f));
  const dir = join(tmpdir(), 'appendcast-bench', `build-${h.digest('hex').slice(0, 16)}`);
  const cli = join(dir, 'dist', 'cli.js');
  const built = await stat(cli).then(() => true, () => false);
  if (!built) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const tsc = createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
    try {
      await run(process.execPath, [tsc, '-p', join(checkout, 'tsconfig.build.json'), '--outDir', join(dir, 'dist'), '--declaration', 'false', '--sourceMap', 'false'], { maxBuffer: 16 << 20 });
    } catch (err) {
      // tsc emits despite type errors (someone may be mid-edit in the tree); say so.
      const out = String((err as { stdout?: string }).stdout ?? err).split('\n').slice(0, 5).join(' | ');
      notes.push(`tsc reported errors building ${checkout}: ${out}`);
    }
    await copyFile(join(checkout, 'package.json'), join(dir, 'package.json'));
    await symlink(join(checkout, 'node_modules'), join(dir, 'node_modules'));
    await stat(cli);
  }
  return cli;
}
