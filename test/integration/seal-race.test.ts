import { mkdtemp, open, rm, stat, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { SpoolDroppedRange } from '../../src/spool/session-spool.js';
import type { FsyncPolicy, JournalIo } from '../../src/spool/types.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { createLogger } from '../../src/util/logger.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { readObject } from '../helpers/objects.js';
import { appenderFor, fixture, spoolOptions, startSpool } from '../helpers/appender-fixture.js';

const log = createLogger('silent');

/**
 * The real journal files, with a disk that can be made slow on demand: `stallNextWrite(ms)` makes
 * the next journal write take that long (as an overloaded disk does), everything else is the real
 * FileHandle.
 */
function slowDisk(): JournalIo & { stallNextWrite(ms: number): void; stalled: number } {
  let stallMs = 0;
  const disk = {
    stalled: 0,
    stallNextWrite(ms: number): void {
      stallMs = ms;
    },
    async open(path: string, flags: 'w'): Promise<FileHandle> {
      const fh = await open(path, flags);
      const writev = fh.writev.bind(fh);
      return new Proxy(fh, {
        get(target, prop, receiver) {
          if (prop === 'writev') {
            return async (...args: Parameters<FileHandle['writev']>) => {
              if (stallMs > 0) {
                const ms = stallMs;
                stallMs = 0;
                disk.stalled++;
                await delay(ms); // the slow disk: this write takes `ms`
              }
              return writev(...args);
            };
          }
          const v = Reflect.get(target, prop, receiver) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    },
  };
  return disk;
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/**
 * Issue 8, item 0: the remuxer ends (seal) while the last journal writes are still on their way to
 * a slow disk. The appender must neither take "sealed" for "drained" nor give up: it drains every
 * byte, then removes the session, in this run (no restart), and nothing is counted as dropped.
 */
describe('seal while journal writes are in flight, on a slow disk', () => {
  for (const fsync of ['always', 'never'] as FsyncPolicy[]) {
    it(`the session drains completely and finishes (fsync ${fsync})`, async () => {
      const { bytes, init, fragments } = await fixture();
      const dir = await mkdtemp(join(tmpdir(), 'apc-seal-race-'));
      dirs.push(dir);
      const store = new FsStore({ root: join(dir, 'objects'), fsync: 'never' });
      const disk = slowDisk();
      const drops: SpoolDroppedRange[] = [];
      const { spool } = await startSpool(spoolOptions(dir, { fsync }), { logger: log, io: disk, onDrop: (d) => drops.push(d) });
      const session = await spool.openSession('cam1', 'race');
      const appender = appenderFor(session, store);
      let finished = false;
      appender.on('finished', () => { finished = true; });
      let appends = 0;
      appender.on('appended', () => { appends++; });
      appender.start();

      // The start of the publish reaches the store.
      session.append({ kind: 'init', receivedAt: 1 }, init.bytes);
      session.append({ kind: 'fragment', receivedAt: 2, mediaTime: fragments[0]!.startTime, duration: fragments[0]!.duration, keyframe: fragments[0]!.keyframe }, fragments[0]!.bytes);
      await waitFor('the first append', () => appends > 0, 10_000, 5);

      // The disk turns slow: the rest of the publish is queued for a write that takes 1.5 s,
      // longer than the appender's idle poll, and the remuxer ends meanwhile.
      disk.stallNextWrite(1500);
      fragments.slice(1).forEach((f, i) => session.append({ kind: 'fragment', receivedAt: 3 + i, mediaTime: f.startTime, duration: f.duration, keyframe: f.keyframe }, f.bytes));
      const sealed = session.seal();
      await waitFor('the write to stall', () => disk.stalled === 1, 5_000, 5);

      const end = await withTimeout(appender.whenDone(), 20_000, 'the appender to finish');
      await sealed;
      expect(end).toBe('finished');
      expect(finished).toBe(true);
      expect(drops).toEqual([]);
      expect(session.bytes).toBe(0);
      // Every byte the remuxer wrote is in the object, once.
      const object = await readObject(store, 'cam1/object.mp4');
      expect(object.length).toBe(bytes.length);
      expect(object.equals(bytes)).toBe(true);
      // The finished session left nothing in the spool.
      await expect(stat(session.dir)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(spool.sessions()).toEqual([]);
      await spool.close();
      await store.close();
    }, 40_000);
  }
});
