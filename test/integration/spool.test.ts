import { readCursorFiles } from '../../src/spool/cursor-log.js';
import { spawn } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { SpoolError } from '../../src/spool/errors.js';
import { encodeFrame } from '../../src/spool/frame.js';
import type { SessionSpool, SpoolDroppedRange } from '../../src/spool/session-spool.js';
import { Spool, type SpoolHooks } from '../../src/spool/spool.js';
import type { AppenderState, SpoolEntry, SpoolEntryMeta, SpoolOptions } from '../../src/spool/types.js';
import { CRASH_SPOOL_OPTIONS, crashEntry } from '../helpers/spool-crash-child.js';
import { prng } from '../../src/util/prng.js';
import { waitFor } from '../helpers/wait.js';

const TSX = import.meta.resolve('tsx');
const CHILD = new URL('../helpers/spool-crash-child.ts', import.meta.url).pathname;

let dir: string;
const spools: Spool[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'appendcast-spool-'));
});
afterEach(async () => {
  for (const s of spools.splice(0)) await s.close().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

function options(over: Partial<SpoolOptions> = {}): SpoolOptions {
  return {
    dir: join(dir, 'spool'), fsync: 'always', fsyncIntervalMs: 50, quotaBytesPerStream: 1 << 30, quotaBytesTotal: 1 << 30,
    memoryBytesPerStream: 1 << 20, segmentBytes: 64 * 1024, ...over,
  };
}

function track<T extends Spool>(s: T): T {
  spools.push(s);
  return s;
}

/** A started spool (tracked for cleanup) and the sessions it recovered. */
async function startSpool(opts: SpoolOptions, hooks: SpoolHooks = {}): Promise<{ spool: Spool; sessions: SessionSpool[] }> {
  const spool = track(new Spool(opts, hooks));
  const sessions = await spool.start();
  return { spool, sessions };
}

async function startedSpool(opts: SpoolOptions, hooks: SpoolHooks = {}): Promise<Spool> {
  return (await startSpool(opts, hooks)).spool;
}

/** The store acknowledged everything below `upto` (a batch that landed, as an appender commits it). */
function ack(s: SessionSpool, upto: number, state: AppenderState): Promise<void> {
  return s.commit({ fromSeq: s.cursor.nextSeq, uptoSeq: upto, fence: {} }, { landed: true, state });
}

async function read(s: SessionSpool, from: number, maxBytes: number): Promise<SpoolEntry[]> {
  return (await s.read(from, maxBytes)).entries;
}

function randomBytes(rnd: () => number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (rnd() * 256) | 0;
  return b;
}

async function waitReadable(s: SessionSpool, upto: number, ms = 10_000): Promise<void> {
  await waitFor(`readableSeq ≥ ${upto}`, () => s.readableSeq >= upto, ms, 2);
}

async function readAll(s: SessionSpool, from: number, maxBytes = 1 << 20): Promise<SpoolEntry[]> {
  const out: SpoolEntry[] = [];
  for (let next = from, guard = 0; guard < 100_000; guard++) {
    const got = await read(s, next, maxBytes);
    if (got.length === 0) break;
    out.push(...got);
    next = got.at(-1)!.seq + 1;
  }
  return out;
}

async function segFiles(d: string): Promise<string[]> {
  return (await readdir(d)).filter((n) => n.endsWith('.seg')).sort();
}

const frag = (keyframe: boolean, receivedAt = 1): SpoolEntryMeta => ({ kind: 'fragment', receivedAt, keyframe, mediaTime: receivedAt, duration: 1 });
const INIT: SpoolEntryMeta = { kind: 'init', receivedAt: 1 };

describe('spool: journal, read, ack', () => {
  it('reads back byte-exact in chunks, acks in steps, counts bytes, deletes acked segments', async () => {
    const spool = await startedSpool(options({ memoryBytesPerStream: 40_000, segmentBytes: 32 * 1024 }));
    const s = await spool.openSession('cam1', 'sess-a');
    const rnd = prng(42);
    const N = 300;
    const sent: Buffer[] = [];
    s.append(INIT, (sent[0] = randomBytes(rnd, 300)));
    for (let i = 1; i < N; i++) {
      const b = randomBytes(rnd, 1 + Math.floor(rnd() * 9000));
      sent.push(b);
      expect(s.append(frag(i % 5 === 1, i), b)).toBe(i);
      // Ingest arrives over many ticks; a burst beyond the memory budget would be dropped ('write-backlog').
      if (i % 4 === 0) await waitReadable(s, i + 1);
    }
    const total = sent.reduce((n, b) => n + b.length, 0);
    expect(s.bytes).toBe(total);
    expect(spool.bytes).toBe(total);
    expect(spool.streamBytes('cam1')).toBe(total);
    await waitReadable(s, N);
    // Memory budget respected: most entries come back from disk.
    expect(spool.memoryBytes('cam1')).toBeLessThanOrEqual(40_000);

    // At least one entry even when it is bigger than maxBytes.
    const one = await read(s, 5, 1);
    expect(one.map((e) => e.seq)).toEqual([5]);

    const segsBefore = (await segFiles(s.dir)).length;
    expect(segsBefore).toBeGreaterThan(20);

    let acked = 0;
    let next = 0;
    let remaining = total;
    while (acked < N) {
      const got = await read(s, next, 30_000);
      expect(got.length).toBeGreaterThan(0);
      expect(got.reduce((n, e) => n + e.bytes.length, 0) <= 30_000 || got.length === 1).toBe(true);
      for (const e of got) {
        expect(e.seq).toBe(next);
        expect(e.bytes.equals(sent[e.seq]!)).toBe(true);
        expect(e.kind).toBe(e.seq === 0 ? 'init' : 'fragment');
        if (e.seq > 0) expect(e.receivedAt).toBe(e.seq);
        next++;
      }
      const upto = Math.min(N, acked + 37);
      for (let i = acked; i < upto; i++) remaining -= sent[i]!.length;
      await ack(s, upto, { objectKey: 'k', position: upto });
      acked = upto;
      expect(s.bytes).toBe(remaining);
      expect(spool.bytes).toBe(remaining);
      expect(s.cursor).toEqual({ nextSeq: upto, state: { objectKey: 'k', position: upto }, inflight: null });
      const onDisk = (await readCursorFiles(s.dir)).value;
      expect(onDisk).toEqual(s.cursor);
      if (next < acked) next = acked;
    }
    expect(next).toBe(N);
    expect(s.bytes).toBe(0);
    // Only the segment still being written survives full acknowledgement (once the settled cursor
    // is on disk: a settlement is synced by the next in-flight record, or within 5 s).
    await waitFor('acknowledged segments deleted', async () => (await segFiles(s.dir)).length <= 1, 10_000, 50);
    await expect(s.read(3, 100)).rejects.toMatchObject({ code: ErrorCode.SpoolRange });
    await expect(ack(s, N + 1, {})).rejects.toBeInstanceOf(SpoolError);
  });

  it('keeps memory bounded while 200 MiB pile up unacknowledged, and reads old entries back from disk', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const MEM = 16 << 20;
    const spool = await startedSpool(options({ fsync: 'never', memoryBytesPerStream: MEM, segmentBytes: 32 << 20 }));
    const s = await spool.openSession('big', 'one');
    const ENTRY = 256 * 1024;
    const COUNT = 800; // 200 MiB
    const mk = (seq: number): Buffer => {
      const b = Buffer.allocUnsafe(ENTRY).fill(seq & 0xff);
      b.writeUInt32BE(seq, 0);
      return b;
    };
    gc();
    const m0 = process.memoryUsage();
    const base = m0.arrayBuffers + m0.heapUsed;
    let peak = 0;
    for (let seq = 0; seq < COUNT; seq++) {
      s.append(frag(true, seq), mk(seq));
      if (seq % 16 === 15) {
        await waitReadable(s, seq + 1);
        expect(spool.memoryBytes('big')).toBeLessThanOrEqual(MEM);
        if (seq % 80 === 79) {
          gc();
          const m = process.memoryUsage();
          peak = Math.max(peak, m.arrayBuffers + m.heapUsed - base);
        }
      }
    }
    await waitReadable(s, COUNT);
    expect(s.bytes).toBe(COUNT * ENTRY);
    expect(peak).toBeLessThan(MEM + (32 << 20));
    // Oldest entries: from disk, only what was asked for.
    const old = await read(s, 0, 3 * ENTRY);
    expect(old.map((e) => e.seq)).toEqual([0, 1, 2]);
    for (const e of old) expect(e.bytes.equals(mk(e.seq))).toBe(true);
    const mid = await read(s, 400, 1);
    expect(mid.length).toBe(1);
    expect(mid[0]!.bytes.equals(mk(400))).toBe(true);
    const newest = await read(s, COUNT - 1, ENTRY);
    expect(newest[0]!.bytes.equals(mk(COUNT - 1))).toBe(true);
  });
});

describe('spool: crash recovery', () => {
  it('after SIGKILL gives back exactly the durable, unacknowledged entries and the last ack state', async () => {
    const spoolDir = join(dir, 'spool');
    await mkdir(spoolDir, { recursive: true });
    const child = spawn(process.execPath, ['--import', TSX, CHILD, spoolDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let durable = 0;
    let lastAck = 0;
    let acks = 0;
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('close', (code, sig) => resolve(sig ?? code)));
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`child made no progress: durable=${durable} acks=${acks} ${err}`)), 30_000);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const [k, v] = buf.slice(0, nl).split(' ');
          buf = buf.slice(nl + 1);
          if (k === 'D') durable = Number(v);
          if (k === 'A') {
            lastAck = Number(v);
            acks++;
          }
        }
        if (durable >= 400 && acks >= 3) {
          clearTimeout(timer);
          child.kill('SIGKILL'); // mid-stream: it is still appending
          resolve();
        }
      });
      child.once('error', reject);
      void exited.then((c) => reject(new Error(`child exited early (${String(c)}): ${err}`)));
    });
    expect(await exited).toBe('SIGKILL');

    const { spool, sessions } = await startSpool({ dir: spoolDir, ...CRASH_SPOOL_OPTIONS });
    expect(sessions.length).toBe(1);
    const s = sessions[0]!;
    expect([s.stream, s.sessionId, s.sealed]).toEqual(['cam', 's1', false]);
    // The cursor is the last ack the child saw resolve, or one that persisted just after it.
    expect(s.cursor.nextSeq).toBeGreaterThanOrEqual(lastAck);
    expect(s.cursor.state).toEqual({ acked: s.cursor.nextSeq });
    expect(s.readableSeq).toBeGreaterThanOrEqual(durable);
    await expect(s.read(s.cursor.nextSeq - 1, 1)).rejects.toMatchObject({ code: ErrorCode.SpoolRange });
    const back = await readAll(s, s.cursor.nextSeq);
    expect(back.length).toBe(s.readableSeq - s.cursor.nextSeq);
    back.forEach((e, i) => {
      expect(e.seq).toBe(s.cursor.nextSeq + i);
      const want = crashEntry(e.seq);
      expect(e.bytes.equals(want.bytes)).toBe(true);
      expect({ ...e, bytes: undefined, seq: undefined }).toEqual({ ...want.meta, bytes: undefined, seq: undefined });
    });
    expect(back.at(-1)!.seq + 1).toBeGreaterThanOrEqual(durable);
    expect(s.bytes).toBe(back.reduce((n, e) => n + e.bytes.length, 0));
    // The init (seq 0) survives though its segment was deleted by acks.
    expect((await readdir(s.dir)).includes('000000000000.seg')).toBe(false);
    const init = s.initFor(s.cursor.nextSeq);
    expect(init?.seq).toBe(0);
    expect(init!.bytes.equals(crashEntry(0).bytes)).toBe(true);
    const endSeq = s.endSeq;
    await spool.close();

    // Torn tails: garbage, then half a frame, appended to the last segment, are cut off on recovery.
    const last = join(s.dir, (await segFiles(s.dir)).at(-1)!);
    const goodSize = (await stat(last)).size;
    await appendFile(last, Buffer.from('garbage after a crash mid-write'));
    const again = await startSpool({ dir: spoolDir, ...CRASH_SPOOL_OPTIONS });
    expect((await stat(last)).size).toBe(goodSize);
    expect(again.sessions[0]!.endSeq).toBe(endSeq);
    await again.spool.close();

    const f = encodeFrame(endSeq, { kind: 'fragment', receivedAt: 1 }, Buffer.alloc(5000, 7));
    const whole = Buffer.concat([f.head, f.payload, f.tail]);
    await appendFile(last, whole.subarray(0, 2600));
    const third = await startSpool({ dir: spoolDir, ...CRASH_SPOOL_OPTIONS });
    expect((await stat(last)).size).toBe(goodSize);
    const s3 = third.sessions[0]!;
    expect(s3.endSeq).toBe(endSeq);
    const back3 = await readAll(s3, s3.cursor.nextSeq);
    expect(back3.map((e) => e.seq)).toEqual(back.map((e) => e.seq));
    await third.spool.close();
  });
});

describe('spool: quotas and the drop policy', () => {
  it('drops the oldest non-in-flight fragments at keyframe boundaries, never init, and counts every byte', async () => {
    const drops: SpoolDroppedRange[] = [];
    const QUOTA = 10_000;
    const spool = await startedSpool(options({ fsync: 'never', quotaBytesPerStream: QUOTA }), { onDrop: (d) => drops.push(d) });
    const s = await spool.openSession('cam', 'q1');
    const events: Array<{ r: SpoolDroppedRange; end: number }> = [];
    s.on('dropped', (r) => events.push({ r, end: s.endSeq }));
    const sent = new Map<number, { meta: SpoolEntryMeta; bytes: Buffer }>();
    let appended = 0;
    const add = (meta: SpoolEntryMeta, size: number): number => {
      const bytes = randomBytes(prng(size * 7 + sent.size), size);
      const seq = s.append(meta, bytes);
      sent.set(seq, { meta, bytes });
      appended += size;
      expect(spool.streamBytes('cam')).toBeLessThanOrEqual(QUOTA);
      return seq;
    };
    // Keyframe every 4th fragment (seq % 4 === 1); init at 0 and a new init at 21.
    const isKey = (seq: number): boolean => seq % 4 === 1;
    add(INIT, 150);
    for (let seq = 1; seq <= 3; seq++) add(frag(isKey(seq), seq), 1000);
    await waitReadable(s, 4);
    expect((await read(s, 0, 10)).map((e) => e.seq)).toEqual([0]); // read() pins what it hands out
    const inflight = { fromSeq: 0, uptoSeq: 3, fence: {} };
    await s.begin(inflight, { pos: 0 }); // the appender took [0, 3) into an append
    expect(s.cursor.inflight).toEqual(inflight);
    for (let seq = 4; seq <= 60; seq++) {
      if (seq === 21) add(INIT, 120);
      else add(frag(isKey(seq), seq), 1000 + (seq % 3) * 10);
    }
    expect(drops.length).toBeGreaterThan(0);
    expect(events.map((e) => e.r)).toEqual(drops);
    const dropped = new Set<number>();
    for (const { r, end } of events) {
      expect(r).toMatchObject({ stream: 'cam', sessionId: 'q1', reason: 'quota-stream' });
      expect(r.fromSeq).toBeGreaterThanOrEqual(3); // never in flight
      let bytes = 0;
      for (let q = r.fromSeq; q < r.toSeq; q++) {
        expect(sent.get(q)!.meta.kind).not.toBe('init');
        expect(dropped.has(q)).toBe(false);
        dropped.add(q);
        bytes += sent.get(q)!.bytes.length;
      }
      expect(r.bytes).toBe(bytes);
      // Stops right before a keyframe fragment or an init (or at the newest entry then).
      if (r.toSeq < end) {
        const nextMeta = sent.get(r.toSeq)!.meta;
        expect(nextMeta.kind === 'init' || nextMeta.keyframe === true).toBe(true);
      }
    }
    const droppedBytes = drops.reduce((n, d) => n + d.bytes, 0);
    expect(droppedBytes).toBe(appended - spool.streamBytes('cam'));

    // Reads skip the dropped ranges; together they account for every seq.
    await waitReadable(s, s.endSeq);
    const got = await readAll(s, 0);
    const seqs = got.map((e) => e.seq);
    for (const q of seqs) expect(dropped.has(q)).toBe(false);
    expect(seqs.length + dropped.size).toBe(s.endSeq);
    expect(seqs).toContain(21);
    expect(seqs.slice(0, 3)).toEqual([0, 1, 2]);
    for (const e of got) expect(e.bytes.equals(sent.get(e.seq)!.bytes)).toBe(true);
    // What remains after the in-flight range starts at a keyframe.
    expect(isKey(seqs[3]!) || seqs[3] === 21).toBe(true);
    expect(got.reduce((n, e) => n + e.bytes.length, 0)).toBe(spool.streamBytes('cam'));

    // The drop record is persisted, so a recovery would skip them too. It is written after the drops
    // are announced (before any segment holding them may go), so it may land a moment later.
    const persisted = await waitFor('the drop record written', () =>
      readFile(join(s.dir, 'drops.json'), 'utf8').then((text) => JSON.parse(text) as SpoolDroppedRange[], () => undefined), 5000, 10);
    expect(persisted.length).toBeGreaterThan(0);

    // Acks free space: appending continues with nothing more dropped.
    await s.commit(inflight, { landed: true, state: { pos: 1 } });
    expect(s.cursor).toEqual({ nextSeq: 3, state: { pos: 1 }, inflight: null });
    await ack(s, s.endSeq, { pos: 2 });
    expect(spool.streamBytes('cam')).toBe(0);
    const before = drops.length;
    for (let i = 0; i < 8; i++) add(frag(true, 100 + i), 1000);
    expect(drops.length).toBe(before);
    expect(spool.streamBytes('cam')).toBe(8000);
  });

  it('persists drops: recovery neither resurrects dropped entries nor reports them again', async () => {
    const drops: SpoolDroppedRange[] = [];
    const opts = options({ fsync: 'interval', quotaBytesPerStream: 5000, segmentBytes: 2048 });
    const spool = await startedSpool(opts, { onDrop: (d) => drops.push(d) });
    const s = await spool.openSession('cam', 'persist');
    s.append(INIT, Buffer.alloc(100, 9));
    for (let i = 1; i <= 30; i++) {
      s.append(frag(i % 2 === 1, i), Buffer.alloc(900, i));
      await waitReadable(s, i + 1);
    }
    expect(drops.length).toBeGreaterThan(0);
    const before = (await readAll(s, 0)).map((e) => [e.seq, e.bytes.toString('hex')]);
    const bytes = s.bytes;
    await spool.close();

    const again: SpoolDroppedRange[] = [];
    const r = await startSpool(opts, { onDrop: (d) => again.push(d) });
    const rs = r.sessions[0]!;
    expect(again).toEqual([]);
    expect(rs.bytes).toBe(bytes);
    expect(r.spool.streamBytes('cam')).toBe(bytes);
    expect((await readAll(rs, 0)).map((e) => [e.seq, e.bytes.toString('hex')])).toEqual(before);
    expect(rs.endSeq).toBe(31);
  });

  it('total quota across two streams drops from the stream holding the most', async () => {
    const drops: SpoolDroppedRange[] = [];
    const TOTAL = 20_000;
    const spool = await startedSpool(options({ fsync: 'never', quotaBytesTotal: TOTAL }), { onDrop: (d) => drops.push(d) });
    const a = await spool.openSession('a', 'sa');
    const b = await spool.openSession('b', 'sb');
    let appended = 0;
    const put = (s: SessionSpool, i: number): void => {
      s.append(frag(true, i), Buffer.alloc(1000, i));
      appended += 1000;
      expect(spool.bytes).toBeLessThanOrEqual(TOTAL);
    };
    for (let i = 0; i < 18; i++) put(a, i);
    for (let i = 0; i < 4; i++) put(b, i); // b appends, a (the biggest) pays
    expect(drops.length).toBe(2);
    for (const d of drops) expect(d).toMatchObject({ stream: 'a', reason: 'quota-total', bytes: 1000 });
    expect(spool.streamBytes('b')).toBe(4000);
    expect(spool.streamBytes('a')).toBe(16_000);
    for (let i = 4; i < 12; i++) put(b, i); // now b grows past a: both pay, the bigger first
    expect(drops.some((d) => d.stream === 'b')).toBe(true);
    expect(drops.reduce((n, d) => n + d.bytes, 0)).toBe(appended - spool.bytes);
    expect(spool.bytes).toBe(spool.streamBytes('a') + spool.streamBytes('b'));
  });

  it('a failing journal write drops that batch (counted), reports the error and carries on', async () => {
    const drops: SpoolDroppedRange[] = [];
    const spool = await startedSpool(options(), { onDrop: (d) => drops.push(d) });
    const s = await spool.openSession('cam', 'werr');
    // A directory where the first segment file should go: opening it fails (EISDIR).
    await mkdir(join(s.dir, '000000000000.seg'));
    const errors: Error[] = [];
    s.on('error', (e) => errors.push(e));
    s.on('error', (e) => expect(e).toMatchObject({ code: ErrorCode.SpoolWrite, cause: { code: 'EISDIR' } }));
    s.append(frag(true, 0), Buffer.alloc(100, 1));
    s.append(frag(false, 1), Buffer.alloc(200, 2));
    await waitReadable(s, 2);
    expect(errors.length).toBe(1);
    // Both appends went out as one batch (group commit), so both are lost, and counted.
    expect(drops).toEqual([{ stream: 'cam', sessionId: 'werr', fromSeq: 0, toSeq: 2, bytes: 300, reason: 'write-error' }]);
    expect(s.bytes).toBe(0);
    s.append(frag(true, 2), Buffer.alloc(300, 3));
    await waitReadable(s, 3);
    const got = await read(s, 0, 1 << 20);
    expect(got.map((e) => e.seq)).toEqual([2]);
    expect(got[0]!.bytes.equals(Buffer.alloc(300, 3))).toBe(true);
    expect(s.bytes).toBe(300);
  });
});

describe('spool: init entries, seal, destroy', () => {
  it('initFor follows a mid-session init change and survives deletion of its segments', async () => {
    const spool = await startedSpool(options({ fsync: 'interval', segmentBytes: 1024, memoryBytesPerStream: 1 }));
    const s = await spool.openSession('cam', 'inits');
    const initA = Buffer.alloc(300, 0xa);
    const initB = Buffer.alloc(310, 0xb);
    const drops: SpoolDroppedRange[] = [];
    s.on('dropped', (r) => drops.push(r));
    // One entry per tick, as ingest delivers them (memory budget 1 byte: nothing may queue up).
    const put = async (meta: SpoolEntryMeta, b: Buffer): Promise<number> => {
      const seq = s.append(meta, b);
      await waitReadable(s, seq + 1);
      return seq;
    };
    await put(INIT, initA);
    for (let i = 1; i <= 10; i++) await put(frag(true, i), Buffer.alloc(500, i));
    expect(await put(INIT, initB)).toBe(11);
    for (let i = 12; i <= 20; i++) await put(frag(true, i), Buffer.alloc(500, i));
    expect(drops).toEqual([]);
    expect(s.bytes).toBe(300 + 310 + 19 * 500);
    expect(s.initFor(5)!.bytes.equals(initA)).toBe(true);
    expect(s.initFor(10)!.seq).toBe(0);
    expect(s.initFor(11)!.bytes.equals(initB)).toBe(true);
    expect(s.initFor(15)!.seq).toBe(11);
    // read() hands the init current at its first entry along.
    expect((await s.read(12, 1)).init?.seq).toBe(11);

    await ack(s, 15, {});
    // Collected once the settled cursor is on disk (synced within 5 s without a next batch).
    // Segments are unlinked one by one and the superseded init beside them: wait for both.
    const firstSeg = async (): Promise<number> =>
      Math.min(...(await readdir(s.dir)).filter((n) => n.endsWith('.seg')).map((n) => Number.parseInt(n, 10)));
    await waitFor(
      'the segments and the init before the cursor collected',
      async () => !(await readdir(s.dir)).includes('000000000000.init') && (await firstSeg()) > 11,
      10_000,
      50,
    );
    const names = await readdir(s.dir);
    expect(await firstSeg()).toBeGreaterThan(11); // segments with both inits are gone
    expect(await firstSeg()).toBeLessThanOrEqual(15); // the unacknowledged ones stay
    expect(names).toContain('000000000011.init');
    expect(names).not.toContain('000000000000.init'); // superseded once B is current at the cursor
    const b = s.initFor(15);
    expect(b).toMatchObject({ seq: 11, kind: 'init' });
    expect(b!.bytes.equals(initB)).toBe(true);
    expect(s.initFor(5)).toBeUndefined();
    await spool.close();

    const { sessions } = await startSpool(options({ fsync: 'interval', segmentBytes: 1024 }));
    const r = sessions[0]!;
    expect(r.cursor).toEqual({ nextSeq: 15, state: {}, inflight: null });
    const rb = r.initFor(16);
    expect(rb?.seq).toBe(11);
    expect(rb!.bytes.equals(initB)).toBe(true);
    expect((await readAll(r, 15)).map((e) => e.seq)).toEqual([15, 16, 17, 18, 19, 20]);
  });

  it('seal persists, recovery reports it and keeps the files, finish removes the session', async () => {
    const spool = await startedSpool(options());
    const s = await spool.openSession('cam', 'done');
    s.append(INIT, Buffer.alloc(100, 1));
    s.append(frag(true, 1), Buffer.alloc(1000, 2));
    await expect(s.finish()).rejects.toMatchObject({ code: ErrorCode.SpoolBusy }); // not sealed
    await s.seal();
    expect(s.sealed).toBe(true);
    expect(s.ended).toBe(true);
    expect(() => s.append(frag(true, 2), Buffer.alloc(1))).toThrow(SpoolError);
    expect(() => s.append(frag(true, 2), Buffer.alloc(1))).toThrow(expect.objectContaining({ code: ErrorCode.SpoolSealed }));
    await expect(s.finish()).rejects.toMatchObject({ code: ErrorCode.SpoolBusy }); // not acknowledged
    await waitReadable(s, 2);
    await ack(s, 2, { final: true });
    await spool.close();

    const { spool: again, sessions } = await startSpool(options());
    expect(sessions.length).toBe(1);
    const r = sessions[0]!;
    expect(r.sealed).toBe(true);
    expect(r.cursor).toEqual({ nextSeq: 2, state: { final: true }, inflight: null });
    expect(r.bytes).toBe(0);
    const files = await readdir(r.dir);
    for (const f of ['session.json', 'cursor.log', 'sealed.json', '000000000000.init']) expect(files).toContain(f);
    expect(r.initFor(2)!.bytes.equals(Buffer.alloc(100, 1))).toBe(true);
    await r.finish();
    await expect(stat(r.dir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(again.sessions()).toEqual([]);
    await expect(r.read(2, 1)).rejects.toMatchObject({ code: ErrorCode.SpoolClosed });
  });
});

describe('spool: session lifecycle', () => {
  it('takes appends before its directory exists (queued within the memory budget, the rest dropped and counted), writes them once started', async () => {
    const drops: SpoolDroppedRange[] = [];
    const spool = await startedSpool(options({ memoryBytesPerStream: 10_000 }), { onDrop: (d) => drops.push(d) });
    const s = spool.createSession('cam', 'early');
    await expect(stat(s.dir)).rejects.toMatchObject({ code: 'ENOENT' }); // nothing on disk yet
    s.append(INIT, Buffer.alloc(300, 1));
    for (let i = 1; i <= 4; i++) s.append(frag(i === 1, i), Buffer.alloc(4000, i));
    // The budget holds two fragments; the third is dropped, and so is the fourth (not a keyframe).
    expect(drops).toEqual([3, 4].map((seq) => ({ stream: 'cam', sessionId: 'early', fromSeq: seq, toSeq: seq + 1, bytes: 4000, reason: 'write-backlog' })));
    expect(spool.memoryBytes('cam')).toBeLessThanOrEqual(10_000);
    await s.start();
    await waitReadable(s, 5);
    expect((await readAll(s, 0)).map((e) => [e.seq, e.bytes.length])).toEqual([[0, 300], [1, 4000], [2, 4000]]);
    expect(s.bytes).toBe(8300);
  });

  it('a session whose directory exists already fails to start; its entries are dropped and counted, the directory is left alone', async () => {
    const drops: SpoolDroppedRange[] = [];
    const spool = await startedSpool(options(), { onDrop: (d) => drops.push(d) });
    const first = await spool.openSession('cam', 'same-id');
    first.append(INIT, Buffer.alloc(100, 1));
    await waitReadable(first, 1);
    const before = (await readdir(first.dir)).sort();
    const dup = spool.createSession('cam', 'same-id');
    dup.append(INIT, Buffer.alloc(50, 2));
    dup.append(frag(true, 1), Buffer.alloc(500, 3));
    await expect(dup.start()).rejects.toMatchObject({ code: ErrorCode.SpoolSessionExists });
    await dup.seal();
    expect(dup.ended).toBe(true);
    expect(drops).toEqual([{ stream: 'cam', sessionId: 'same-id', fromSeq: 1, toSeq: 2, bytes: 500, reason: 'write-error' }]);
    expect((await readdir(first.dir)).sort()).toEqual(before); // no cursor, drops or sealed marker of the other
    expect(spool.sessions('cam')).toEqual([first]);
  });

  it('a session closed before it was started does not hang: what it queued is dropped and counted', async () => {
    const drops: SpoolDroppedRange[] = [];
    const spool = await startedSpool(options(), { onDrop: (d) => drops.push(d) });
    const s = spool.createSession('cam', 'never');
    s.append(INIT, Buffer.alloc(10, 1));
    s.append(frag(true, 1), Buffer.alloc(700, 1));
    await spool.close();
    expect(drops).toEqual([{ stream: 'cam', sessionId: 'never', fromSeq: 1, toSeq: 2, bytes: 700, reason: 'write-error' }]);
    await expect(stat(s.dir)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(s.start()).rejects.toMatchObject({ code: ErrorCode.SpoolClosed });
  });
});
