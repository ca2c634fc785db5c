import { mkdir, rename, rmdir } from 'node:fs/promises';
import { dirname, relative, sep } from 'node:path';
import { errnoCode, fsyncDir, writeAllAt } from '../../util/fs-durable.js';

export { errnoCode, fsyncDir, writeAllAt };

/**
 * `mkdir -p dir`; with `durable`, every directory it created is fsynced into its parent, so a new
 * object's path survives power loss. Throws ENOTDIR/EEXIST when a component is a file.
 */
export async function mkdirp(dir: string, durable: boolean): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (!durable || first === undefined) return;
  // fsync the parent of the first created directory, then each created directory down to `dir`.
  const created: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    created.push(d);
    if (d === first || dirname(d) === d) break;
  }
  await fsyncDir(dirname(first));
  for (const d of created.reverse()) {
    if (d !== dir) await fsyncDir(d);
  }
}

/**
 * rename(src, dest), re-creating dest's directory if a concurrent prune removed it (bounded), then
 * fsyncing dest's directory when `durable`.
 */
export async function renameInto(src: string, dest: string, durable: boolean): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await rename(src, dest);
      break;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' || attempt >= 3) throw err;
      await mkdirp(dirname(dest), durable);
    }
  }
  if (durable) await fsyncDir(dirname(dest));
}

/** Removes now-empty directories from dirname(path) up to, not including, `stopAt`. Best effort. */
export async function pruneEmptyDirs(path: string, stopAt: string): Promise<void> {
  for (let d = dirname(path); ; d = dirname(d)) {
    const rel = relative(stopAt, d);
    if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) return;
    try {
      await rmdir(d);
    } catch {
      return; // not empty (or already gone): stop climbing
    }
  }
}
