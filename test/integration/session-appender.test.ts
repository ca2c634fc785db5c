import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SessionAppender, type MediaFence, type PersistedAppenderState } from '../../src/appender/session-appender.js';
import type { FlushPolicy, RolloverPolicy } from '../../src/config/index.js';
import { Fmp4Splitter, type InitSegment, type MediaFragment } from '../../src/container/index.js';
import type { SessionSpool } from '../../src/spool/session-spool.js';
import { Spool } from '../../src/spool/spool.js';
import { crc64Of } from '../../src/store/crc64.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import type { AppendableStore } from '../../src/store/types.js';
import { createLogger } from '../../src/util/logger.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { appenderFor, feed, FIXTURE, fixture, spoolOptions, startSpool } from '../helpers/appender-fixture.js';
import { expectWholeIndex, isIndexKey, listStreamObjects, readObject, stitch } from '../helpers/objects.js';
import { OssServiceError, OssTransportError } from '../../src/store/oss/oss-errors.js';
import { waitFor } from '../helpers/wait.js';

const ossBody = (code: string) => ({ code, message: code, requestId: undefined, ec: undefined, hostId: undefined, recommendDoc: undefined, serverTime: undefined });

const log = createLogger('silent');


interface Harness {
  dir: string;
  store: FsStore;
  spool: Spool;
  session: SessionSpool;
  appender: SessionAppender;
  events: { rollovers: string[]; reconciled: string[]; errors: string[]; halted: boolean[] };
}

/** The real store with its append replaced (a fault injector wrapping the real thing). */
function withAppend(fs: FsStore, append: AppendableStore['append']): AppendableStore {
  return {
    kind: fs.kind, append,
    head: (k) => fs.head(k), read: (k, r) => fs.read(k, r), put: (k, d, o) => fs.put(k, d, o),
    delete: (k) => fs.delete(k), list: (p) => fs.list(p), close: () => fs.close(),
  };
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const FLUSH0: FlushPolicy = { maxBytes: 4 << 20, maxDelayMs: 0 };
const NO_ROLLOVER: RolloverPolicy = { maxBytes: 4 * 1024 ** 3, maxDurationSeconds: null, alignToClock: false };
/** A 1 MiB memory window (the fixture's default is 64 MiB). */
const SPOOL_MEMORY = { memoryBytesPerStream: 1 << 20 };

/** An appender (dated keys) whose events are recorded. */
function makeAppender(session: SessionSpool, store: AppendableStore, over: { flush?: FlushPolicy; rollover?: RolloverPolicy; now?: () => number; indexBatchMs?: number } = {}) {
  const appender = appenderFor(session, store, {
    keyTemplate: '{stream}/{yyyy}{MM}{dd}-{HH}{mm}{ss}.mp4', flush: over.flush ?? FLUSH0, rollover: over.rollover ?? NO_ROLLOVER,
    ...(over.now ? { now: over.now } : {}), ...(over.indexBatchMs !== undefined ? { indexBatchMs: over.indexBatchMs } : {}),
  });
  const events = { rollovers: [] as string[], reconciled: [] as string[], errors: [] as string[], halted: [] as boolean[] };
  appender.on('rollover', (r) => events.rollovers.push(r));
  appender.on('reconciled', (o) => events.reconciled.push(o));
  appender.on('appendError', (e) => events.errors.push(e.code));
  appender.on('halted', (h) => events.halted.push(h));
  return { appender, events };
}

async function harness(store?: (fs: FsStore) => AppendableStore, over: Parameters<typeof makeAppender>[2] = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'apc-appender-'));
  dirs.push(dir);
  const fs = new FsStore({ root: join(dir, 'objects'), fsync: 'never' });
  const { spool } = await startSpool(spoolOptions(dir, SPOOL_MEMORY), { logger: log });
  const session = await spool.openSession('cam1', 'sess-1');
  const { appender, events } = makeAppender(session, store ? store(fs) : fs, over);
  return { dir, store: fs, spool, session, appender, events };
}

/** The init, then the fragments 200 ms apart (live), from `t0`. */
const feedLive = (session: SessionSpool, init: InitSegment, fragments: readonly MediaFragment[], t0 = 1_000_000): void => feed(session, init, fragments, t0, 200);

/** Media objects of the session in order (by the object-seq metadata), with their bytes. */
async function objects(store: FsStore): Promise<Array<{ key: string; bytes: Buffer; seq: number }>> {
  return Promise.all((await listStreamObjects(store, 'cam1')).map(async (o) => ({ key: o.key, bytes: await readObject(store, o.key), seq: o.seq })));
}

/** Objects in order, the repeated init dropped from all but the first, must equal the remuxer's bytes. */
const stitched = (objs: Array<{ bytes: Buffer }>, init: Buffer): Buffer => stitch(objs.map((o) => o.bytes), init);

async function checkPlayable(dir: string, objs: Array<{ key: string; bytes: Buffer }>): Promise<number> {
  let total = 0;
  for (const [i, o] of objs.entries()) {
    const f = join(dir, `check-${i}.mp4`);
    await writeFile(f, o.bytes);
    expect(await decodeErrors(f)).toBe('');
    const p = await probe(f);
    total += p.duration - p.startTime; // a rolled-over object starts at its first fragment's media time
  }
  return total;
}

describe('SessionAppender', () => {
  it('drains a session into one object, byte-exact, with its sidecar index, then removes the spool', async () => {
    const { bytes, init, fragments } = await fixture();
    const h = await harness();
    const appended: number[] = [];
    h.appender.on('appended', (a) => appended.push(a.entries));
    h.appender.start();
    feedLive(h.session, init, fragments);
    await h.session.seal();
    expect(await h.appender.whenDone()).toBe('finished');
    const objs = await objects(h.store);
    expect(objs).toHaveLength(1);
    expect(objs[0]!.bytes.equals(bytes)).toBe(true);
    expect((await h.store.head(objs[0]!.key))!.crc64).toBe(crc64Of([bytes]));
    // The sidecar index lists every entry at its byte offset.
    const idx = (await readFile(join(h.dir, 'objects', objs[0]!.key + '.index.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { offset: number; length: number; type: string; k?: boolean; t?: number });
    expect(idx).toHaveLength(1 + fragments.length);
    for (const line of idx) expect(line.offset + line.length).toBeLessThanOrEqual(bytes.length);
    expect(idx.reduce((n, l) => n + l.length, 0)).toBe(bytes.length);
    expect(idx[1]).toMatchObject({ type: 'fragment', offset: init.bytes.length, k: true });
    expect(appended.reduce((a, b) => a + b, 0)).toBe(1 + fragments.length);
    await h.spool.close();
  });

  it('rolls over by size: several objects, each starting with the init segment and playable alone', async () => {
    const { bytes, init, fragments } = await fixture();
    const maxBytes = Math.floor(bytes.length / 3);
    const h = await harness(undefined, { rollover: { ...NO_ROLLOVER, maxBytes } });
    h.appender.start();
    feedLive(h.session, init, fragments);
    await h.session.seal();
    expect(await h.appender.whenDone()).toBe('finished');
    const objs = await objects(h.store);
    expect(objs.length).toBeGreaterThanOrEqual(3);
    for (const o of objs) expect(o.bytes.length).toBeLessThanOrEqual(maxBytes);
    expect(stitched(objs, init.bytes).equals(bytes)).toBe(true);
    expect(h.events.rollovers.every((r) => r === 'size')).toBe(true);
    const total = await checkPlayable(h.dir, objs);
    expect(Math.abs(total - (await probe(FIXTURE)).duration)).toBeLessThan(0.5);
    await h.spool.close();
  });

  it('rolls over by duration at keyframe fragments', async () => {
    const { bytes, init, fragments } = await fixture();
    let now = 1_000_000;
    const h = await harness(undefined, { rollover: { ...NO_ROLLOVER, maxDurationSeconds: 1 }, now: () => now });
    h.appender.start();
    h.session.append({ kind: 'init', receivedAt: now }, init.bytes);
    for (const f of fragments) {
      now += 200; // fragments arrive in real time, 200 ms apart
      h.session.append({ kind: 'fragment', receivedAt: now, mediaTime: f.startTime, duration: f.duration, keyframe: f.keyframe }, f.bytes);
    }
    await h.session.seal();
    expect(await h.appender.whenDone()).toBe('finished');
    const objs = await objects(h.store);
    expect(objs.length).toBeGreaterThanOrEqual(3);
    expect(h.events.rollovers.every((r) => r === 'duration')).toBe(true);
    // Each object after the first starts with the init segment then a keyframe fragment.
    for (const o of objs.slice(1)) {
      const s = new Fmp4Splitter();
      const frags = [...s.push(o.bytes), ...s.flush()].filter((x): x is MediaFragment => x.type === 'fragment');
      expect(frags[0]!.keyframe).toBe(true);
    }
    expect(stitched(objs, init.bytes).equals(bytes)).toBe(true);
    await checkPlayable(h.dir, objs);
    await h.spool.close();
  });

  it('an init segment change mid-session opens a new object', async () => {
    const { bytes, init, fragments } = await fixture();
    const h = await harness();
    h.appender.start();
    feedLive(h.session, init, fragments.slice(0, 5));
    feedLive(h.session, init, fragments.slice(5), 2_000_000); // the remuxer sent its init again
    await h.session.seal();
    expect(await h.appender.whenDone()).toBe('finished');
    const objs = await objects(h.store);
    expect(objs).toHaveLength(2);
    expect(h.events.rollovers).toEqual(['init-change']);
    expect(stitched(objs, init.bytes).equals(bytes)).toBe(true);
    await h.spool.close();
  });

  it('ambiguous failures are reconciled by HEAD, never resent blindly: no byte twice, none lost', async () => {
    const { bytes, init, fragments } = await fixture();
    // A fault injector around the real store: every 3rd append commits and then "times out";
    // every 4th fails without committing (a 503). Media and index appends are counted apart (the
    // index trails the media in its own loop), so each sees the same sequence of faults.
    const calls = { media: 0, index: 0 };
    const h = await harness((fs) => withAppend(fs, async (key, position, chunks, opts) => {
      const n = ++calls[isIndexKey(key) ? 'index' : 'media'];
      if (n % 4 === 0) throw new OssServiceError('POST', 'k', 503, ossBody('ServiceUnavailable'));
      const r = await fs.append(key, position, chunks, opts);
      if (n % 3 === 0) throw new OssTransportError('POST', 'k', 'headers', true, new Error('headers timeout'));
      return r;
    }), { flush: { maxBytes: 20_000, maxDelayMs: 0 }, indexBatchMs: 0 }); // an index append per media append, to meet the faults
    h.appender.start();
    feedLive(h.session, init, fragments);
    await h.session.seal();
    expect(await h.appender.whenDone()).toBe('finished');
    const objs = await objects(h.store);
    expect(objs).toHaveLength(1);
    expect(objs[0]!.bytes.equals(bytes)).toBe(true);
    expect(h.events.reconciled).toContain('landed');
    expect(h.events.reconciled).toContain('absent');
    expect(h.events.reconciled).not.toContain('foreign');
    // The index went through the same faults and is whole: one line per entry, each once, in order.
    expect(calls.index).toBeGreaterThanOrEqual(4);
    const idx = (await readFile(join(h.dir, 'objects', objs[0]!.key + '.index.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { offset: number; length: number });
    expectWholeIndex(idx, 1 + fragments.length, bytes.length);
    await h.spool.close();
  });

  it('someone else\'s bytes in the object: never overwritten, the rest goes to a new object', async () => {
    const { bytes, init, fragments } = await fixture();
    const h = await harness();
    let intrusion: Promise<unknown> | undefined;
    h.appender.on('appended', (a) => {
      // A foreign writer appends right after our first append.
      intrusion ??= h.store.append(a.key, a.nextPosition, [Buffer.from('FOREIGN BYTES')]);
    });
    h.appender.start();
    h.session.append({ kind: 'init', receivedAt: 1 }, init.bytes);
    // The init alone is appended, then the foreign bytes land after it (waitFor settles with the intrusion).
    await waitFor('our first append and the foreign one after it', () => intrusion);
    fragments.forEach((f, i) => h.session.append({ kind: 'fragment', receivedAt: 2 + i, mediaTime: f.startTime, duration: f.duration, keyframe: f.keyframe }, f.bytes));
    await h.session.seal();
    expect(await h.appender.whenDone()).toBe('finished');
    const objs = await objects(h.store);
    expect(objs).toHaveLength(2);
    expect(objs[0]!.bytes.equals(Buffer.concat([init.bytes, Buffer.from('FOREIGN BYTES')]))).toBe(true); // untouched
    expect(h.events.reconciled).toContain('foreign');
    expect(h.events.rollovers).toContain('foreign-writer');
    expect(stitched([{ bytes: objs[0]!.bytes.subarray(0, init.bytes.length) }, objs[1]!], init.bytes).equals(bytes)).toBe(true);
    await h.spool.close();
  });

  it('a non-retryable error halts appends, the spool keeps everything, and appends resume once it heals', async () => {
    const { bytes, init, fragments } = await fixture();
    let denied = true;
    const h = await harness((fs) => withAppend(fs, async (...a) => {
      if (denied) throw new OssServiceError('POST', 'k', 403, ossBody('AccessDenied'));
      return fs.append(...a);
    }));
    h.appender.start();
    feedLive(h.session, init, fragments);
    await h.session.seal();
    await waitFor('appends halted', () => h.appender.halted, 5000, 5);
    expect(h.appender.halted).toBe(true);
    expect(h.session.bytes).toBe(bytes.length);
    denied = false;
    expect(await h.appender.whenDone()).toBe('finished');
    expect(h.events.halted).toEqual([true, false]);
    expect((await objects(h.store))[0]!.bytes.equals(bytes)).toBe(true);
    await h.spool.close();
  });

  it('close() while a batch is being planned sends nothing new', async () => {
    const { init, fragments } = await fixture();
    let appends = 0;
    let heads = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => { release = r; });
    // The HEAD that checks the new object's key is held until close() has been called.
    const h = await harness((fs) => ({
      ...withAppend(fs, async (...a) => {
        appends++;
        return fs.append(...a);
      }),
      head: async (k) => {
        heads++;
        await gate;
        return fs.head(k);
      },
    }));
    h.appender.start();
    feedLive(h.session, init, fragments);
    await h.session.seal();
    await vi.waitFor(() => expect(heads).toBe(1), { timeout: 5_000, interval: 5 });
    const closed = h.appender.close();
    release();
    await closed;
    expect(await h.appender.whenDone()).toBe('closed');
    expect(appends).toBe(0);
    expect(h.session.cursor.inflight).toBeNull();
    expect(h.session.bytes).toBeGreaterThan(0); // all of it still in the spool, for the next start
    await h.spool.close();
  });

  for (const landed of [true, false]) {
    it(`crash recovery: the append in flight at the crash ${landed ? 'had landed' : 'had not landed'}; it is appended exactly once`, async () => {
      const { bytes, init, fragments } = await fixture();
      const dir = await mkdtemp(join(tmpdir(), 'apc-appender-crash-'));
      dirs.push(dir);
      const fs = new FsStore({ root: join(dir, 'objects'), fsync: 'never' });
      // First life: the appender appends the init and the first fragments, then "crashes" while the
      // next append is in flight (we play its part: save the in-flight state, maybe append, stop).
      {
        const { spool } = await startSpool(spoolOptions(dir, SPOOL_MEMORY), { logger: log });
        const session = await spool.openSession('cam1', 'sess-crash');
        const { appender } = makeAppender(session, fs);
        const first = new Promise<void>((r) => appender.once('appended', () => r()));
        appender.start();
        feed(session, init, fragments.slice(0, 1));
        await first;
        await appender.close();
        expect(await appender.whenDone()).toBe('closed');
        // Two more fragments reach the spool: they are the append in flight at the crash.
        fragments.slice(1, 3).forEach((f, i) => session.append({ kind: 'fragment', receivedAt: 5 + i, mediaTime: f.startTime, duration: f.duration, keyframe: f.keyframe }, f.bytes));
        await waitFor('the two fragments spooled', () => session.readableSeq >= 4, 5000, 5);
        // Whatever the first life managed, take its cursor and simulate one more append in flight.
        const state = session.cursor.state as PersistedAppenderState;
        const obj = state.object!;
        expect(session.cursor.nextSeq).toBe(2);
        const next = (await session.read(session.cursor.nextSeq, Number.MAX_SAFE_INTEGER)).entries;
        expect(next.map((e) => e.seq)).toEqual([2, 3]);
        const chunks = next.map((e) => e.bytes);
        const crcAfter = crc64Of(chunks, BigInt(obj.crc));
        const size = chunks.reduce((n, c) => n + c.length, 0);
        // The spool records the batch in flight, with the fence that settles it.
        const fence: MediaFence = { key: obj.key, position: obj.position, crcBefore: obj.crc, bytes: size, crcAfter: crcAfter.toString(), withInit: false };
        await session.begin({ fromSeq: next[0]!.seq, uptoSeq: next.at(-1)!.seq + 1, fence }, state);
        if (landed) await fs.append(obj.key, obj.position, chunks);
        // more fragments arrived and were spooled before the crash
        fragments.slice(3).forEach((f, i) => session.append({ kind: 'fragment', receivedAt: 10 + i, mediaTime: f.startTime, duration: f.duration, keyframe: f.keyframe }, f.bytes));
        await spool.close();
      }
      // Second life: recover the spool and drain.
      const { spool, sessions } = await startSpool(spoolOptions(dir, SPOOL_MEMORY), { logger: log });
      expect(sessions.map((s) => s.sessionId)).toEqual(['sess-crash']);
      const session = sessions[0]!;
      expect(session.cursor.inflight).toMatchObject({ fromSeq: 2, uptoSeq: 4 });
      await session.seal();
      const { appender, events } = makeAppender(session, fs);
      appender.start();
      expect(await appender.whenDone()).toBe('finished');
      expect(events.reconciled).toEqual([landed ? 'landed' : 'absent']);
      const objs = await objects(fs);
      expect(objs).toHaveLength(1);
      expect(objs[0]!.bytes.equals(bytes)).toBe(true);
      await spool.close();
    });
  }
});
