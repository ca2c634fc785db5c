import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SessionAppender } from '../../src/appender/session-appender.js';
import type { InitSegment, MediaFragment } from '../../src/container/index.js';
import type { SessionSpool } from '../../src/spool/session-spool.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { OssTransportError } from '../../src/store/oss/oss-errors.js';
import type { AppendableStore } from '../../src/store/types.js';
import { createLogger } from '../../src/util/logger.js';
import { waitFor } from '../helpers/wait.js';
import { expectWholeIndex, isIndexKey, readObject } from '../helpers/objects.js';
import { appenderFor, fixture, spoolOptions, startSpool } from '../helpers/appender-fixture.js';

const log = createLogger('silent');

/**
 * The real fs store; its first index append commits, then its answer is lost: the request hangs
 * until `loseAnswer` is resolved, then fails as a headers timeout does (outcome unknown).
 */
function losingFirstIndexAnswer(fs: FsStore): { store: AppendableStore; hanging: () => boolean; loseAnswer: () => void } {
  let hanging = false;
  let used = false;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => { release = r; });
  const store: AppendableStore = {
    kind: fs.kind,
    async append(key, position, chunks, opts) {
      const r = await fs.append(key, position, chunks, opts);
      if (isIndexKey(key) && !used) {
        used = true;
        hanging = true;
        await gate;
        hanging = false;
        throw new OssTransportError('POST', key, 'headers', true, new Error('headers timeout'));
      }
      return r;
    },
    head: (k) => fs.head(k), read: (k, r) => fs.read(k, r), put: (k, d, o) => fs.put(k, d, o),
    delete: (k) => fs.delete(k), list: (p) => fs.list(p), close: () => fs.close(),
  };
  return { store, hanging: () => hanging, loseAnswer: release };
}

/** Feeds the publish one entry per media append (each waits for the previous acknowledgement). */
async function publish(session: SessionSpool, a: SessionAppender, init: InitSegment, fragments: MediaFragment[]): Promise<void> {
  let appended = 0;
  a.on('appended', (x) => { appended += x.entries; });
  session.append({ kind: 'init', receivedAt: 1 }, init.bytes);
  for (const [i, f] of fragments.entries()) {
    session.append({ kind: 'fragment', receivedAt: 2 + i, mediaTime: f.startTime, duration: f.duration, keyframe: f.keyframe }, f.bytes);
    await waitFor(`media append of fragment ${i}`, () => appended >= i + 2, 10_000, 2);
  }
}

async function indexLines(dir: string, key: string): Promise<Array<{ offset: number; length: number; seq?: number }>> {
  return (await readFile(join(dir, 'objects', `${key}.index.jsonl`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { offset: number; length: number; seq?: number });
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('the index trails the media', () => {
  it('an index append whose answer is lost does not hold up a single media append', async () => {
    const { bytes, init, fragments } = await fixture();
    const dir = await mkdtemp(join(tmpdir(), 'apc-index-trail-'));
    dirs.push(dir);
    const fs = new FsStore({ root: join(dir, 'objects'), fsync: 'never' });
    const faulty = losingFirstIndexAnswer(fs);
    const { spool } = await startSpool(spoolOptions(dir), { logger: log });
    const session = await spool.openSession('cam1', 'trail');
    const a = appenderFor(session, faulty.store);
    const reconciled: string[] = [];
    a.on('reconciled', (o) => reconciled.push(o));
    a.start();

    // Every media append completes while the very first index append is still waiting for its answer.
    await publish(session, a, init, fragments);
    expect(faulty.hanging()).toBe(true);
    expect((await readObject(fs, 'cam1/object.mp4')).equals(bytes)).toBe(true);

    // The answer is lost (a timeout): the index settles it by HEAD (it had landed) and catches up.
    faulty.loseAnswer();
    await session.seal();
    expect(await a.whenDone()).toBe('finished');
    expect(reconciled).toEqual([]); // the media never had to reconcile anything
    expectWholeIndex(await indexLines(dir, 'cam1/object.mp4'), 1 + fragments.length, bytes.length);
    await spool.close();
    await fs.close();
  }, 40_000);

  it('after a crash, the index lines still pending are written once, after what had landed', async () => {
    const { bytes, init, fragments } = await fixture();
    const dir = await mkdtemp(join(tmpdir(), 'apc-index-crash-'));
    dirs.push(dir);
    const fs = new FsStore({ root: join(dir, 'objects'), fsync: 'never' });
    {
      // First life: the first index append lands but its answer never comes; the media goes on
      // to the end; then the gateway stops (as a crash would) with the index lines pending.
      const faulty = losingFirstIndexAnswer(fs);
      const { spool } = await startSpool(spoolOptions(dir), { logger: log });
      const session = await spool.openSession('cam1', 'crash');
      const a = appenderFor(session, faulty.store);
      a.start();
      await publish(session, a, init, fragments);
      await session.seal();
      expect(faulty.hanging()).toBe(true);
      const stopped = a.close();
      faulty.loseAnswer();
      await stopped;
      expect(await a.whenDone()).toBe('closed');
      await spool.close();
      const partial = await indexLines(dir, 'cam1/object.mp4');
      expect(partial.length).toBeGreaterThan(0);
      expect(partial.length).toBeLessThan(1 + fragments.length);
    }
    // Second life: the recovered session has nothing left for the media; its index finishes.
    const { spool, sessions } = await startSpool(spoolOptions(dir), { logger: log });
    expect(sessions.map((s) => s.bytes)).toEqual([0]);
    const a = appenderFor(sessions[0]!, fs);
    a.start();
    expect(await a.whenDone()).toBe('finished');
    expect((await readObject(fs, 'cam1/object.mp4')).equals(bytes)).toBe(true);
    expectWholeIndex(await indexLines(dir, 'cam1/object.mp4'), 1 + fragments.length, bytes.length);
    await spool.close();
    await fs.close();
  }, 40_000);
});
