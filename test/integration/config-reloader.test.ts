import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig, resolvePaths, type Config } from '../../src/config/index.js';
import { planReload, type ReloadPlan } from '../../src/config/reload-plan.js';
import { ConfigReloader, type ReloadResult } from '../../src/config/reloader.js';
import { waitFor } from '../helpers/wait.js';

const yaml = (streams: string, port = 0) => `server: { rtmp: { port: ${port} }, http: { port: 0 } }\nstreams:\n${streams}`;
const ONE = '  - { id: a, key: ka }\n';
const TWO = ONE + '  - { id: b, key: kb }\n';

/**
 * The reloader on a real file in a temp directory, with the real fs.watch and SIGHUP listener; its
 * target applies plans the way the gateway decides them (planReload), recording what it was given.
 */
describe('ConfigReloader', () => {
  let dir: string;
  let file: string;
  let reloader: ConfigReloader;
  let lines: Array<Record<string, unknown> & { msg: string }>;
  let applied: Config[];
  let counts: Record<ReloadResult, number>;
  let running: Config | undefined;

  const start = async (text: string, debounceMs = 100) => {
    await writeFile(file, text);
    await start0(debounceMs);
  };
  /** Starts the reloader on the file as it is. */
  const start0 = async (debounceMs = 100) => {
    const sink = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown> & { msg: string }); cb(); } });
    reloader = new ConfigReloader({
      file, logger: pino({ level: 'info' }, sink), debounceMs,
      results: { inc: ({ result }, value = 1) => { counts[result] += value; } },
      apply: (next): ReloadPlan => {
        const plan = running ? planReload(running, next) : planReload(next, next);
        if (plan.needsRestart.length === 0) {
          running = next;
          applied.push(next);
        }
        return plan;
      },
    });
    reloader.start();
  };
  const saveAtomically = async (text: string) => {
    await writeFile(`${file}.tmp`, text);
    await rename(`${file}.tmp`, file);
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-reloader-'));
    file = join(dir, 'appendcast.yaml');
    lines = [];
    applied = [];
    counts = { applied: 0, refused: 0, invalid: 0 };
    running = undefined;
  });
  afterEach(async () => {
    reloader?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('counts every result from 0; follows the file across atomic renames (a new inode each time)', async () => {
    await start(yaml(ONE));
    expect(counts).toEqual({ applied: 0, refused: 0, invalid: 0 });
    running = resolvePaths(parseConfig(yaml(ONE), file, {}));
    for (let i = 1; i <= 3; i++) {
      await saveAtomically(yaml(i % 2 === 1 ? TWO : ONE));
      await waitFor(`reload ${i}`, () => applied.length === i, 5000);
    }
    expect(applied.map((c) => c.streams.length)).toEqual([2, 1, 2]);
    expect(counts.applied).toBe(3);
  });

  it('follows a symlinked file whose target is swapped (as a Kubernetes ConfigMap is updated)', async () => {
    // dir/appendcast.yaml -> ..data/appendcast.yaml, ..data -> v1; an update writes v2 and renames a new ..data link over the old.
    for (const [v, text] of [['v1', yaml(ONE)], ['v2', yaml(TWO)]] as const) {
      await mkdir(join(dir, v));
      await writeFile(join(dir, v, 'appendcast.yaml'), text);
    }
    await symlink('v1', join(dir, '..data'));
    await symlink(join('..data', 'appendcast.yaml'), file);
    await start0();
    running = resolvePaths(parseConfig(yaml(ONE), file, {}));
    await symlink('v2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await waitFor('reload', () => applied.length === 1, 5000);
    expect(applied[0]!.streams.map((s) => s.id)).toEqual(['a', 'b']);
  });

  it('several quick writes make one reload; an unchanged save makes none', async () => {
    await start(yaml(ONE), 1000); // long: the three writes below land well within it, even on a busy machine
    running = resolvePaths(parseConfig(yaml(ONE), file, {}));
    // Half-written states on the way must not be read: the debounce waits for the writes to settle.
    await writeFile(file, 'server: {');
    await writeFile(file, yaml(ONE).slice(0, 20));
    await writeFile(file, yaml(TWO));
    await waitFor('one reload', () => counts.applied === 1, 5000);
    await writeFile(file, yaml(TWO)); // same text again
    reloader.reload('file-change').catch(() => undefined);
    await reloader.reload('file-change');
    expect(counts).toEqual({ applied: 1, refused: 0, invalid: 0 });
  });

  it('SIGHUP reloads; refused and invalid files keep the running config and say why', async () => {
    await start(yaml(ONE));
    running = resolvePaths(parseConfig(yaml(ONE), file, {}));
    reloader.close(); // only the signal from here on: no file events
    reloader = new ConfigReloader({
      file, logger: pino({ level: 'info' }, new Writable({ write(c: Buffer, _e, cb) { lines.push(JSON.parse(c.toString()) as Record<string, unknown> & { msg: string }); cb(); } })),
      results: { inc: ({ result }, value = 1) => { counts[result] += value; } },
      apply: (next) => {
        const plan = planReload(running!, next);
        if (plan.needsRestart.length === 0) running = next;
        return plan;
      },
    });
    process.on('SIGHUP', () => undefined); // were the reloader's listener missing, a real SIGHUP would end the test worker
    reloader.start();
    await writeFile(file, yaml(TWO, 1936));
    process.kill(process.pid, 'SIGHUP');
    await waitFor('refused', () => counts.refused === 1, 5000);
    expect(lines.find((l) => l.msg.startsWith('config reload refused'))).toMatchObject({ trigger: 'SIGHUP', needsRestart: ['server.rtmp.port'] });
    expect(running!.streams).toHaveLength(1);

    await writeFile(file, yaml(TWO).replace('key: kb', 'key: kb, kye: x'));
    process.kill(process.pid, 'SIGHUP');
    await waitFor('invalid', () => counts.invalid === 1, 5000);
    expect(lines.find((l) => l.msg.startsWith('config reload: invalid config'))?.problems).toEqual([
      `${file}:4:23: streams[1].kye: unknown key "kye" (did you mean "key"?)`,
    ]);

    process.kill(process.pid, 'SIGHUP'); // unchanged since: said, not counted
    await waitFor('unchanged', () => lines.some((l) => l.msg.startsWith('config reload: the file is unchanged')), 5000);
    await writeFile(file, yaml(TWO));
    process.kill(process.pid, 'SIGHUP');
    await waitFor('applied', () => counts.applied === 1, 5000);
    expect(running!.streams.map((s) => s.id)).toEqual(['a', 'b']);
    expect(counts).toEqual({ applied: 1, refused: 1, invalid: 1 });
    reloader.close();
    expect(process.listeners('SIGHUP')).toHaveLength(1); // close() let go of the signal
    process.removeAllListeners('SIGHUP');
  });
});
