import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { ChunkReader, type RtmpMessage } from '../../src/ingest/rtmp/chunk-reader.js';
import { ChunkWriter, type OutMessage } from '../../src/ingest/rtmp/chunk-writer.js';
import { RtmpProtocolError, RTMP_ERROR_REASONS, type RtmpErrorReason } from '../../src/ingest/rtmp/errors.js';
import { DEFAULT_CHUNK_LIMITS } from '../../src/ingest/rtmp/limits.js';
import { splitAggregate } from '../../src/ingest/rtmp/aggregate.js';
import {
  abort,
  acknowledgement,
  parseControl,
  parseUserControl,
  pingRequest,
  pingResponse,
  setBufferLength,
  setChunkSize,
  setPeerBandwidth,
  streamBegin,
  streamDry,
  streamEof,
  streamIsRecorded,
  windowAckSize,
} from '../../src/ingest/rtmp/control.js';
import { prng } from '../../src/util/prng.js';
import { randomChunks } from '../helpers/bytes.js';
import { thrownAs } from '../helpers/expect-error.js';

// ---------- hand-made chunk bytes ----------

function basic(fmt: number, csid: number): number[] {
  if (csid < 64) return [(fmt << 6) | csid];
  if (csid < 320) return [fmt << 6, csid - 64];
  return [(fmt << 6) | 1, (csid - 64) & 0xff, (csid - 64) >> 8];
}
const u24 = (n: number): number[] => [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const u32be = (n: number): number[] => [(n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const u32le = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
/** A timestamp field, extended when ≥ 0xFFFFFF: [field bytes, extended bytes]. */
const tsField = (v: number): [number[], number[]] => (v >= 0xffffff ? [u24(0xffffff), u32be(v)] : [u24(v), []]);

function fmt0(csid: number, ts: number, len: number, type: number, sid: number, payload: Buffer | number[] = []): Buffer {
  const [f, e] = tsField(ts);
  return Buffer.from([...basic(0, csid), ...f, ...u24(len), type, ...u32le(sid), ...e, ...payload]);
}
function fmt1(csid: number, delta: number, len: number, type: number, payload: Buffer | number[] = []): Buffer {
  const [f, e] = tsField(delta);
  return Buffer.from([...basic(1, csid), ...f, ...u24(len), type, ...e, ...payload]);
}
function fmt2(csid: number, delta: number, payload: Buffer | number[] = []): Buffer {
  const [f, e] = tsField(delta);
  return Buffer.from([...basic(2, csid), ...f, ...e, ...payload]);
}
function fmt3(csid: number, payload: Buffer | number[] = [], ext?: number): Buffer {
  return Buffer.from([...basic(3, csid), ...(ext === undefined ? [] : u32be(ext)), ...payload]);
}
const bytes = (n: number, fill = 0xab): number[] => new Array<number>(n).fill(fill);
const cat = (...b: Buffer[]): Buffer => Buffer.concat(b);

const protocolError = (fn: () => unknown): RtmpProtocolError => thrownAs(fn, RtmpProtocolError);
function expectReason(fn: () => unknown, reason: RtmpErrorReason): RtmpProtocolError {
  const err = protocolError(fn);
  expect(err.reason).toBe(reason);
  expect(err.code).toBe(ErrorCode.RtmpProtocol);
  return err;
}

const summary = (msgs: RtmpMessage[]) => msgs.map((m) => ({ csid: m.csid, type: m.type, streamId: m.streamId, timestamp: m.timestamp, len: m.payload.length }));

/** Pushes `data` one byte at a time (the harshest segmentation), collecting messages. */
function pushBytewise(reader: ChunkReader, data: Buffer): RtmpMessage[] {
  const out: RtmpMessage[] = [];
  for (let i = 0; i < data.length; i++) out.push(...reader.push(data.subarray(i, i + 1)));
  return out;
}

// ---------- reader: headers ----------

describe('ChunkReader: basic headers', () => {
  it.each([2, 3, 63, 64, 319, 320, 577, 65599])('csid %i in its 1/2/3-byte form', (csid) => {
    const data = fmt0(csid, 5, 3, 9, 1, [1, 2, 3]);
    expect(data.length).toBe(basic(0, csid).length + 11 + 3);
    const [m] = new ChunkReader().push(data);
    expect(m).toMatchObject({ csid, type: 9, streamId: 1, timestamp: 5 });
    expect(pushBytewise(new ChunkReader(), data)[0]?.csid).toBe(csid);
  });

  it('the 3-byte form is 64 + b1 + 256 * b2 (b2 the high byte)', () => {
    const data = Buffer.from([0x01, 0x05, 0x02, ...u24(0), ...u24(0), 20, ...u32le(0)]);
    expect(new ChunkReader().push(data)[0]?.csid).toBe(64 + 5 + 256 * 2);
    // The same csid in the 2-byte form where it fits: 64 + 200.
    const two = Buffer.from([0x00, 200, ...u24(0), ...u24(0), 20, ...u32le(0)]);
    const three = Buffer.from([0x01, 200, 0, ...u24(0), ...u24(0), 20, ...u32le(0)]);
    expect(new ChunkReader().push(cat(two, three))[1]?.csid).toBe(264);
  });
});

describe('ChunkReader: message headers fmt 0–3', () => {
  it('fmt 0: absolute timestamp, length, type, little-endian stream id', () => {
    const [m] = new ChunkReader().push(fmt0(4, 0x123456, 2, 8, 0x01020304, [7, 8]));
    expect(m).toMatchObject({ csid: 4, type: 8, streamId: 0x01020304, timestamp: 0x123456 });
    expect([...(m as RtmpMessage).payload]).toEqual([7, 8]);
  });

  it('fmt 1: a delta with a new length and type; stream id inherited', () => {
    const msgs = new ChunkReader().push(cat(fmt0(4, 1000, 1, 8, 7, [1]), fmt1(4, 23, 2, 9, [2, 3])));
    expect(summary(msgs)).toEqual([
      { csid: 4, type: 8, streamId: 7, timestamp: 1000, len: 1 },
      { csid: 4, type: 9, streamId: 7, timestamp: 1023, len: 2 },
    ]);
  });

  it('fmt 2: a delta; length, type and stream id inherited', () => {
    const msgs = new ChunkReader().push(cat(fmt0(4, 1000, 1, 8, 7, [1]), fmt2(4, 40, [2]), fmt2(4, 0, [3])));
    expect(msgs.map((m) => [m.timestamp, m.type, m.streamId, m.payload[0]])).toEqual([
      [1000, 8, 7, 1],
      [1040, 8, 7, 2],
      [1040, 8, 7, 3],
    ]);
  });

  it('fmt 3 starting a new message reuses the delta; after fmt 0 the delta is its absolute timestamp', () => {
    const msgs = new ChunkReader().push(cat(fmt0(4, 40, 1, 8, 1, [1]), fmt3(4, [2]), fmt3(4, [3]), fmt2(4, 5, [4]), fmt3(4, [5])));
    expect(msgs.map((m) => m.timestamp)).toEqual([40, 80, 120, 125, 130]);
  });

  it('fmt 3 continues a message across chunks of the current chunk size', () => {
    const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    const data = cat(fmt0(3, 0, 300, 20, 0, payload.subarray(0, 128)), fmt3(3, payload.subarray(128, 256)), fmt3(3, payload.subarray(256)));
    const [m] = new ChunkReader().push(data);
    expect(m?.payload.equals(payload)).toBe(true);
    expect(pushBytewise(new ChunkReader(), data)[0]?.payload.equals(payload)).toBe(true);
  });

  it('interleaved chunks of different csids assemble independently', () => {
    const a = Buffer.alloc(200, 0xaa);
    const v = Buffer.alloc(200, 0xbb);
    const data = cat(fmt0(4, 0, 200, 8, 1, a.subarray(0, 128)), fmt0(6, 0, 200, 9, 1, v.subarray(0, 128)), fmt3(4, a.subarray(128)), fmt3(6, v.subarray(128)));
    const msgs = new ChunkReader().push(data);
    expect(msgs.map((m) => [m.csid, m.payload.equals(m.csid === 4 ? a : v)])).toEqual([
      [4, true],
      [6, true],
    ]);
  });

  it('zero-length messages are emitted with an empty payload', () => {
    const msgs = new ChunkReader().push(cat(fmt0(5, 1, 0, 9, 1), fmt3(5), fmt1(5, 2, 1, 9, [1])));
    expect(msgs.map((m) => [m.timestamp, m.payload.length])).toEqual([
      [1, 0],
      [2, 0],
      [4, 1],
    ]);
  });

  it('timestamps wrap mod 2^32', () => {
    const msgs = new ChunkReader().push(cat(fmt0(4, 0xfffffff0, 1, 8, 1, [1]), fmt2(4, 0x20, [2])));
    expect(msgs.map((m) => m.timestamp)).toEqual([0xfffffff0, 0x10]);
  });

  it('a first chunk on a fresh csid: fmt 0 opens it, fmt 1 is tolerated (base 0, stream 0), fmt 2 and 3 are refused', () => {
    // fmt 1 tolerated: librtmp sends early pings on a fresh csid that way (SRS accepts it with a warning).
    const [m] = new ChunkReader().push(fmt1(2, 77, 6, 4, [0, 7, 0, 0, 0, 1]));
    expect(m).toMatchObject({ csid: 2, type: 4, streamId: 0, timestamp: 77 });
    expectReason(() => new ChunkReader().push(fmt2(4, 1, [1])), 'bad-chunk-header');
    expectReason(() => new ChunkReader().push(fmt3(4, [1])), 'bad-chunk-header');
  });
});

describe('ChunkReader: extended timestamps', () => {
  it('fmt 0 with 0xFFFFFF reads the 4-byte absolute timestamp, and every type-3 continuation repeats it', () => {
    const p = Buffer.alloc(300, 1);
    const ts = 0x12345678;
    const data = cat(fmt0(4, ts, 300, 9, 1, p.subarray(0, 128)), fmt3(4, p.subarray(128, 256), ts), fmt3(4, p.subarray(256), ts));
    const [m] = new ChunkReader().push(data);
    expect(m?.timestamp).toBe(ts);
    expect(m?.payload.equals(p)).toBe(true);
    expect(pushBytewise(new ChunkReader(), data)[0]?.payload.equals(p)).toBe(true);
  });

  it('exactly 0xFFFFFF is extended; 0xFFFFFE is not', () => {
    const msgs = new ChunkReader().push(cat(fmt0(4, 0xfffffe, 1, 8, 1, [1]), fmt0(6, 0xffffff, 1, 8, 1, [2])));
    expect(msgs.map((m) => m.timestamp)).toEqual([0xfffffe, 0xffffff]);
  });

  it('fmt 1/2 extended values are deltas', () => {
    const msgs = new ChunkReader().push(cat(fmt0(4, 10, 1, 8, 1, [1]), fmt1(4, 0x1000000, 1, 8, [2]), fmt2(4, 0x2000000, [3])));
    expect(msgs.map((m) => m.timestamp)).toEqual([10, 10 + 0x1000000, 10 + 0x3000000]);
  });

  it('a type-3 new message after an extended header reads its own extended delta (ffmpeg writes fmt 3 when the field 0xFFFFFF repeats)', () => {
    const msgs = new ChunkReader().push(cat(fmt0(4, 0, 1, 8, 1, [1]), fmt2(4, 0x1000000, [2]), fmt3(4, [3], 0x1000000), fmt3(4, [4], 0x2000000)));
    expect(msgs.map((m) => m.timestamp)).toEqual([0, 0x1000000, 0x2000000, 0x4000000]);
  });

  it('a continuation whose extended timestamp is missing or different is refused, not misread as payload', () => {
    const p = Buffer.alloc(200, 1);
    const head = fmt0(4, 0x1000000, 200, 9, 1, p.subarray(0, 128));
    // librtmp (2012) omits it on continuations: the reader would take payload for it; it disconnects instead.
    expectReason(() => new ChunkReader().push(cat(head, fmt3(4, p.subarray(128)))), 'bad-chunk-header');
    expectReason(() => new ChunkReader().push(cat(head, fmt3(4, p.subarray(128), 0x1000001))), 'bad-chunk-header');
  });

  it('once a fmt 0/1/2 header is not extended, type-3 chunks carry no extended bytes again', () => {
    const msgs = new ChunkReader().push(cat(fmt0(4, 0x1000000, 1, 8, 1, [1]), fmt2(4, 5, [2]), fmt3(4, [3])));
    expect(msgs.map((m) => m.timestamp)).toEqual([0x1000000, 0x1000005, 0x100000a]);
  });
});

// ---------- reader: control messages applied in-line ----------

describe('ChunkReader: Set Chunk Size and Abort', () => {
  const scs = (n: number): Buffer => fmt0(2, 0, 4, 1, 0, u32be(n));

  it('Set Chunk Size applies to the very next chunk, in the same push, and is returned too', () => {
    const big = Buffer.alloc(4000, 3);
    const r = new ChunkReader();
    const msgs = r.push(cat(scs(4096), fmt0(6, 0, 4000, 9, 1, big)));
    expect(msgs.map((m) => m.type)).toEqual([1, 9]);
    expect(r.chunkSize).toBe(4096);
    expect(msgs[1]?.payload.equals(big)).toBe(true);
  });

  it('accepts 1 (the minimum) and exactly maxChunkSize; refuses 0, the MSB set, and maxChunkSize + 1', () => {
    const r = new ChunkReader();
    r.push(scs(1));
    expect(r.chunkSize).toBe(1);
    // With chunk size 1, a 3-byte message takes 3 chunks.
    expect(r.push(cat(fmt0(4, 0, 3, 8, 1, [1]), fmt3(4, [2]), fmt3(4, [3])))[0]?.payload).toEqual(Buffer.from([1, 2, 3]));
    const max = DEFAULT_CHUNK_LIMITS.maxChunkSize;
    expect(max).toBe(16 * 1024 * 1024);
    const r2 = new ChunkReader();
    r2.push(scs(max));
    expect(r2.chunkSize).toBe(max);
    expectReason(() => new ChunkReader().push(scs(max + 1)), 'chunk-size');
    expectReason(() => new ChunkReader().push(scs(0)), 'chunk-size');
    expectReason(() => new ChunkReader({ maxChunkSize: 0x7fffffff }).push(scs(0x80000000)), 'chunk-size');
    const r3 = new ChunkReader({ maxChunkSize: 0x7fffffff });
    r3.push(scs(0x7fffffff));
    expect(r3.chunkSize).toBe(0x7fffffff);
  });

  it('a Set Chunk Size or Abort shorter than 4 bytes is control-malformed', () => {
    expectReason(() => new ChunkReader().push(fmt0(2, 0, 3, 1, 0, [0, 0, 1])), 'control-malformed');
    expectReason(() => new ChunkReader().push(fmt0(2, 0, 2, 2, 0, [0, 4])), 'control-malformed');
  });

  it('Abort discards that csid’s partial message and its memory; the csid then starts afresh', () => {
    const r = new ChunkReader();
    expect(r.push(fmt0(6, 0, 1000, 9, 1, bytes(128)))).toEqual([]);
    expect(r.heldBytes).toBeGreaterThanOrEqual(128);
    const msgs = r.push(fmt0(2, 0, 4, 2, 0, u32be(6)));
    expect(msgs.map((m) => m.type)).toEqual([2]);
    expect(r.heldBytes).toBe(0);
    // A new message on csid 6; without the abort this fmt 0 would be refused mid-message.
    expect(r.push(fmt0(6, 5, 2, 9, 1, [1, 2]))[0]).toMatchObject({ csid: 6, timestamp: 5 });
    // Abort of an idle or unknown csid is harmless.
    expect(r.push(fmt0(2, 0, 4, 2, 0, u32be(40)))).toHaveLength(1);
  });
});

// ---------- reader: protocol errors and limits ----------

describe('ChunkReader: refusals', () => {
  it('a fmt 0/1 length change mid-message is length-mismatch (CVE-2016-10191 class)', () => {
    const head = fmt0(4, 0, 300, 9, 1, bytes(128));
    expectReason(() => new ChunkReader().push(cat(head, fmt1(4, 0, 301, 9, bytes(128)))), 'length-mismatch');
    expectReason(() => new ChunkReader().push(cat(head, fmt0(4, 0, 200, 9, 1, bytes(128)))), 'length-mismatch');
  });

  it('any other new header mid-message (same length, or fmt 2) is bad-chunk-header', () => {
    const head = fmt0(4, 0, 300, 9, 1, bytes(128));
    expectReason(() => new ChunkReader().push(cat(head, fmt1(4, 0, 300, 9, bytes(128)))), 'bad-chunk-header');
    expectReason(() => new ChunkReader().push(cat(head, fmt0(4, 0, 300, 9, 1, bytes(128)))), 'bad-chunk-header');
    expectReason(() => new ChunkReader().push(cat(head, fmt2(4, 0, bytes(128)))), 'bad-chunk-header');
  });

  it('maxMessageBytes (default 8 MiB): exactly the limit is accepted, one more is refused at the header, before buffering', () => {
    const max = DEFAULT_CHUNK_LIMITS.maxMessageBytes;
    expect(max).toBe(8 * 1024 * 1024);
    const ok = new ChunkReader();
    expect(ok.push(fmt0(4, 0, max, 9, 1))).toEqual([]);
    const r = new ChunkReader();
    expectReason(() => r.push(fmt0(4, 0, max + 1, 9, 1)), 'message-too-large');
    expect(r.heldBytes).toBe(0);
    const small = new ChunkReader({ maxMessageBytes: 100 });
    expect(small.push(fmt0(4, 0, 100, 9, 1, bytes(100)))[0]?.payload.length).toBe(100);
    expectReason(() => small.push(fmt1(4, 0, 101, 9)), 'message-too-large');
  });

  it('maxChunkStreams (default 64): exactly 64 distinct csids, the 65th is refused; reuse does not count', () => {
    expect(DEFAULT_CHUNK_LIMITS.maxChunkStreams).toBe(64);
    const r = new ChunkReader();
    const ids = Array.from({ length: 64 }, (_, i) => 2 + i * 1000);
    for (const id of ids) r.push(fmt0(id, 0, 1, 8, 1, [1]));
    for (const id of ids) r.push(fmt0(id, 0, 1, 8, 1, [1]));
    expect(r.chunkStreamCount).toBe(64);
    expectReason(() => r.push(fmt0(3, 0, 1, 8, 1, [1])), 'too-many-chunk-streams');
  });

  it('maxHeldBytes: a partial message of exactly the limit is held; one byte more is buffer-limit', () => {
    const limits = { maxHeldBytes: 10_000, maxMessageBytes: 20_000, maxChunkSize: 65536 };
    const setSize = fmt0(2, 0, 4, 1, 0, u32be(65536));
    const at = new ChunkReader(limits);
    at.push(setSize);
    expect(at.push(fmt0(4, 0, 10_000, 9, 1, bytes(9_999)))).toEqual([]);
    expect(at.heldBytes).toBe(10_000);
    expect(at.push(Buffer.from([1]))[0]?.payload.length).toBe(10_000);
    expect(at.heldBytes).toBe(0);

    const over = new ChunkReader(limits);
    over.push(setSize);
    over.push(fmt0(4, 0, 10_001, 9, 1, bytes(9_000)));
    expect(over.heldBytes).toBeLessThanOrEqual(10_000);
    over.push(Buffer.from(bytes(1_000))); // 10,000 bytes held: still fine
    expect(over.heldBytes).toBe(10_000);
    expectReason(() => over.push(Buffer.from([1])), 'buffer-limit');
    // Across csids as well.
    const two = new ChunkReader(limits);
    two.push(setSize);
    two.push(fmt0(4, 0, 20_000, 9, 1, bytes(6_000)));
    expectReason(() => two.push(fmt0(6, 0, 20_000, 9, 1, bytes(6_000))), 'buffer-limit');
  });

  it('the NMS attack: 8 MiB declared on every csid holds ~4 KiB each, not 8 MiB', () => {
    const r = new ChunkReader();
    // Chunk size 1, so one payload byte completes each first chunk and the next header is a header.
    r.push(fmt0(2, 0, 4, 1, 0, u32be(1)));
    for (let i = 1; i < 64; i++) r.push(fmt0(2 + i, 0, 8 * 1024 * 1024, 9, 1, [1]));
    expect(r.chunkStreamCount).toBe(64);
    expect(r.heldBytes).toBe(63 * 4096);
  });

  it('a partial message holds at most max(4 KiB, 2 × what was received)', () => {
    const r = new ChunkReader({ maxChunkSize: 8 * 1024 * 1024 });
    r.push(fmt0(2, 0, 4, 1, 0, u32be(8 * 1024 * 1024)));
    r.push(fmt0(6, 0, 8 * 1024 * 1024, 9, 1));
    const rand = prng(7);
    let received = 0;
    while (received < 8 * 1024 * 1024 - 70_000) {
      const n = 1 + Math.floor(rand() * 65536);
      r.push(Buffer.alloc(n));
      received += n;
      expect(r.heldBytes).toBeLessThanOrEqual(Math.max(4096, 2 * received));
    }
  });

  it('after an error the reader is dead: it holds nothing and rethrows the same error', () => {
    const r = new ChunkReader();
    r.push(fmt0(6, 0, 1000, 9, 1, bytes(128)));
    const err = expectReason(() => r.push(fmt2(6, 0)), 'bad-chunk-header');
    expect(r.heldBytes).toBe(0);
    expect(protocolError(() => r.push(fmt0(4, 0, 1, 8, 1, [1])))).toBe(err);
  });

  it('unparsed input is only a split header: never more than 18 bytes', () => {
    const r = new ChunkReader();
    const header = fmt0(65599, 0xffffff + 1, 10, 9, 1); // 3 + 11 + 4 = 18 bytes
    expect(header.length).toBe(18);
    for (let i = 0; i < 17; i++) {
      expect(r.push(header.subarray(i, i + 1))).toEqual([]);
      expect(r.heldBytes).toBe(i + 1);
    }
    r.push(header.subarray(17));
    expect(r.heldBytes).toBeLessThanOrEqual(4096);
  });

  it('limits are validated: a bad limit is a RangeError, not a protocol error', () => {
    expect(() => new ChunkReader({ maxChunkStreams: 0 })).toThrow(RangeError);
    expect(() => new ChunkReader({ maxMessageBytes: 0x1000000 })).toThrow(RangeError);
    expect(() => new ChunkReader({ maxChunkSize: 2 ** 31 })).toThrow(RangeError);
  });

  it('reasons are short kebab-case labels', () => {
    for (const r of RTMP_ERROR_REASONS) expect(r).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
    expect(new Set(RTMP_ERROR_REASONS).size).toBe(RTMP_ERROR_REASONS.length);
  });
});

describe('ChunkReader: payload ownership', () => {
  it('a small payload in a large input is copied (never pins the input), a dominant one is a view', () => {
    const input = Buffer.concat([fmt0(4, 0, 10, 8, 1, bytes(10, 1)), Buffer.alloc(0)]);
    const big = Buffer.alloc(64 * 1024);
    input.copy(big);
    const r = new ChunkReader();
    const [small] = r.push(big.subarray(0, input.length));
    expect(small?.payload.buffer).not.toBe(big.buffer);
    big.fill(0);
    expect(small?.payload).toEqual(Buffer.alloc(10, 1));

    const r2 = new ChunkReader();
    r2.push(fmt0(2, 0, 4, 1, 0, u32be(65536)));
    const whole = fmt0(6, 0, 60_000, 9, 1, bytes(60_000, 2));
    const [large] = r2.push(whole);
    expect(large?.payload.buffer).toBe(whole.buffer);
  });
});

// ---------- writer ----------

describe('ChunkWriter: header compression like ffmpeg', () => {
  const fmtOf = (b: Buffer): number => (b[0] as number) >> 6;

  it('fmt 0 first, fmt 1 on a type/length change, fmt 2 on a new delta, fmt 3 on the same delta', () => {
    const w = new ChunkWriter();
    const m = (ts: number, len: number, type = 9, streamId = 1): OutMessage => ({ csid: 6, type, streamId, timestamp: ts, payload: Buffer.alloc(len) });
    expect(fmtOf(w.encode(m(100, 10)))).toBe(0);
    expect(fmtOf(w.encode(m(150, 10)))).toBe(2); // delta 50, not the 100 a type-3 header would add
    expect(fmtOf(w.encode(m(200, 10)))).toBe(3); // delta 50 again
    expect(fmtOf(w.encode(m(340, 10)))).toBe(2);
    expect(fmtOf(w.encode(m(380, 11)))).toBe(1);
    expect(fmtOf(w.encode(m(420, 11, 8)))).toBe(1);
    expect(fmtOf(w.encode(m(400, 11, 8)))).toBe(0); // backwards
    expect(fmtOf(w.encode(m(440, 11, 8, 2)))).toBe(0); // another stream id
    const r = new ChunkReader();
    const w2 = new ChunkWriter();
    const list = [m(100, 10), m(150, 10), m(200, 10), m(340, 10), m(380, 11), m(420, 11, 8), m(400, 11, 8), m(440, 11, 8, 2)];
    const got = r.push(Buffer.concat(list.map((x) => w2.encode(x))));
    expect(got.map((x) => [x.timestamp, x.type, x.streamId, x.payload.length])).toEqual(list.map((x) => [x.timestamp, x.type, x.streamId, x.payload.length]));
  });

  it('a type-3 new message right after fmt 0 uses the fmt-0 timestamp as delta', () => {
    const w = new ChunkWriter();
    w.encode({ csid: 4, type: 8, streamId: 1, timestamp: 40, payload: Buffer.alloc(1) });
    expect(fmtOf(w.encode({ csid: 4, type: 8, streamId: 1, timestamp: 80, payload: Buffer.alloc(1) }))).toBe(3);
  });

  it('writes extended timestamps on the header and on every type-3 continuation', () => {
    const w = new ChunkWriter(128);
    const b = w.encode({ csid: 6, type: 9, streamId: 1, timestamp: 0x1234567, payload: Buffer.alloc(300, 0xcd) });
    // 1 + 11 + 4 + 128, then (1 + 4 + 128), then (1 + 4 + 44).
    expect(b.length).toBe(144 + 133 + 49);
    expect(b.subarray(1, 4)).toEqual(Buffer.from([0xff, 0xff, 0xff]));
    expect(b.readUInt32BE(12)).toBe(0x1234567);
    expect(b[144]).toBe(0xc6);
    expect(b.readUInt32BE(145)).toBe(0x1234567);
    expect(b[277]).toBe(0xc6);
    expect(b.readUInt32BE(278)).toBe(0x1234567);
  });

  it('encodes 2- and 3-byte basic headers and the little-endian stream id', () => {
    const w = new ChunkWriter();
    expect([...w.encode({ csid: 300, type: 20, streamId: 0x01020304, timestamp: 1, payload: Buffer.alloc(0) })]).toEqual([0x00, 236, 0, 0, 1, 0, 0, 0, 20, 4, 3, 2, 1]);
    expect([...w.encode({ csid: 577, type: 20, streamId: 0, timestamp: 1, payload: Buffer.alloc(0) }).subarray(0, 3)]).toEqual([0x01, 1, 2]);
  });

  it('encodeChunks cuts the same bytes at chunk boundaries', () => {
    const msg: OutMessage = { csid: 4, type: 8, streamId: 1, timestamp: 0x2000000, payload: Buffer.alloc(1000, 1) };
    const chunks = new ChunkWriter(300).encodeChunks(msg);
    expect(chunks).toHaveLength(4);
    expect(Buffer.concat(chunks)).toEqual(new ChunkWriter(300).encode(msg));
    expect(chunks.slice(1).every((c) => c[0] === 0xc4)).toBe(true);
  });

  it('refuses what cannot be encoded', () => {
    const w = new ChunkWriter();
    const ok: OutMessage = { csid: 3, type: 20, streamId: 0, timestamp: 0, payload: Buffer.alloc(0) };
    expect(() => w.encode({ ...ok, csid: 1 })).toThrow(RangeError);
    expect(() => w.encode({ ...ok, csid: 65600 })).toThrow(RangeError);
    expect(() => w.encode({ ...ok, timestamp: 2 ** 32 })).toThrow(RangeError);
    expect(() => w.encode({ ...ok, payload: Buffer.alloc(0x1000000) })).toThrow(RangeError);
    expect(() => w.setChunkSize(0)).toThrow(RangeError);
  });
});

// ---------- the property test ----------

interface Step {
  msg: OutMessage;
  /** A Set Chunk Size message: the writer switches to this size right after it. */
  newSize?: number;
}

/**
 * Random messages: sizes 0..300 KB (log-uniform), csids in all three header forms, odd timestamps,
 * Set Chunk Size now and then. Sizes are capped at 2000 chunks so that chunk sizes 1 and 7 stay quick.
 */
function randomSteps(rand: () => number, count: number): Step[] {
  const csids = [2, 3, 4, 6, 8, 63, 64, 200, 319, 320, 4000, 65599];
  const clock = new Map<number, number>();
  const steps: Step[] = [];
  const int = (n: number) => Math.floor(rand() * n);
  const shapes = new Map<number, { type: number; size: number }>();
  const streams = new Map<number, number>();
  let chunkSize = 128;
  for (let i = 0; i < count; i++) {
    if (rand() < 0.06) {
      chunkSize = [1, 7, 128, 1000, 4096, 60000, 65536, 1 << 20][int(8)] as number;
      steps.push({ msg: { csid: 2, type: 1, streamId: 0, timestamp: 0, payload: Buffer.from(u32be(chunkSize)) }, newSize: chunkSize });
      continue;
    }
    const csid = csids[int(csids.length)] as number;
    const prev = clock.get(csid) ?? int(3) * 0xfffff0;
    const r = rand();
    // Mostly small forward steps; also equal deltas (fmt 3), a delta equal to the previous absolute
    // timestamp (fmt 3 right after fmt 0), huge jumps (extended), going backwards, anything.
    const ts =
      r < 0.45 ? prev + int(50)
      : r < 0.6 ? prev
      : r < 0.67 ? 2 * prev
      : r < 0.8 ? prev + 0xffffff + int(0x1000000)
      : r < 0.9 ? Math.max(0, prev - int(100_000))
      : int(2 ** 32);
    const timestamp = ts % 2 ** 32;
    clock.set(csid, timestamp);
    // Often the same type and size as the csid's previous message, as audio is: fmt 2 and 3 headers.
    const last = shapes.get(csid);
    const types = [8, 9, 18, 20, 4, 22];
    const shape =
      last !== undefined && rand() < 0.4 && last.size <= 2000 * chunkSize
        ? last
        : {
            type: types[int(types.length)] as number,
            size: rand() < 0.1 ? 0 : Math.min(300_000, 2000 * chunkSize, Math.floor(Math.exp(rand() * Math.log(300_000)))),
          };
    shapes.set(csid, shape);
    const payload = Buffer.allocUnsafe(shape.size);
    for (let j = 0; j < shape.size; j += 97) payload[j] = int(256);
    // Stream ids change rarely (each change is a fmt 0).
    const streamId = rand() < 0.9 ? (streams.get(csid) ?? 1) : int(4);
    streams.set(csid, streamId);
    steps.push({ msg: { csid, type: shape.type, streamId, timestamp, payload } });
  }
  return steps;
}

function encodeSteps(steps: readonly Step[]): Buffer {
  const w = new ChunkWriter();
  const parts: Buffer[] = [];
  for (const s of steps) {
    parts.push(w.encode(s.msg));
    if (s.newSize !== undefined) w.setChunkSize(s.newSize);
  }
  return Buffer.concat(parts);
}

/** TCP-like segments of 1 B … 64 KiB, log-uniform, so both tiny and large reads are common. */
const segments = (data: Buffer, rand: () => number): Buffer[] => randomChunks(data, rand);

const same = (got: readonly RtmpMessage[], want: readonly OutMessage[]): boolean =>
  got.length === want.length &&
  got.every((g, i) => {
    const w = want[i] as OutMessage;
    return g.csid === w.csid && g.type === w.type && g.streamId === w.streamId && g.timestamp === w.timestamp && g.payload.equals(w.payload);
  });

describe('property: ChunkWriter output, cut anywhere, parses back to the input', () => {
  const seeds = Array.from({ length: 12 }, (_, i) => 0x5eed0000 + i);

  it.each(seeds)('seed %i: random segmentation == one push == the messages written', (seed) => {
    const rand = prng(seed);
    const steps = randomSteps(rand, 150);
    const data = encodeSteps(steps);
    const want = steps.map((s) => s.msg);
    const limits = { maxMessageBytes: 0xffffff, maxHeldBytes: 64 * 1024 * 1024 };

    // The generator must exercise every header type, or the property says little.
    const fmts = new Set<number>();
    const w = new ChunkWriter();
    for (const st of steps) {
      const b = w.encode(st.msg);
      fmts.add((b[0] as number) >> 6);
      if (st.newSize !== undefined) w.setChunkSize(st.newSize);
    }
    expect([...fmts].sort()).toEqual([0, 1, 2, 3]);

    const whole = new ChunkReader(limits).push(data);
    const r = new ChunkReader(limits);
    const pieces: RtmpMessage[] = [];
    for (const seg of segments(data, rand)) {
      pieces.push(...r.push(seg));
      expect(r.heldBytes).toBeLessThanOrEqual(limits.maxHeldBytes);
    }
    if (!same(whole, want) || !same(pieces, want)) console.log(`property test failed for seed ${seed}`);
    expect(same(whole, want)).toBe(true);
    expect(same(pieces, want)).toBe(true);
    expect(r.heldBytes).toBe(0);
  });

  it.each(seeds.slice(0, 6))('seed %i: chunks of different csids interleaved, per-csid order preserved', (seed) => {
    const rand = prng(seed ^ 0xabcdef);
    const steps = randomSteps(rand, 120);
    // Interleave chunk by chunk between Set Chunk Size points; one message per csid at a time.
    const w = new ChunkWriter();
    const out: Buffer[] = [];
    // Per csid: its messages' chunk lists, and a cursor into them.
    let queues = new Map<number, { chunks: Buffer[]; at: number }>();
    const drain = () => {
      const live = [...queues.values()];
      while (live.length > 0) {
        const i = Math.floor(rand() * live.length);
        const q = live[i] as { chunks: Buffer[]; at: number };
        out.push(q.chunks[q.at++] as Buffer);
        if (q.at === q.chunks.length) live.splice(i, 1);
      }
      queues = new Map();
    };
    for (const s of steps) {
      if (s.newSize !== undefined) {
        drain();
        out.push(w.encode(s.msg));
        w.setChunkSize(s.newSize);
        continue;
      }
      // A csid's messages stay in order, chunk after chunk: only different csids interleave.
      const q = queues.get(s.msg.csid) ?? { chunks: [], at: 0 };
      q.chunks.push(...w.encodeChunks(s.msg));
      queues.set(s.msg.csid, q);
    }
    drain();
    const data = Buffer.concat(out);
    const r = new ChunkReader({ maxMessageBytes: 0xffffff, maxHeldBytes: 64 * 1024 * 1024 });
    const got: RtmpMessage[] = [];
    for (const seg of segments(data, rand)) got.push(...r.push(seg));
    const byCsid = (list: readonly { csid: number }[], csid: number) => list.filter((m) => m.csid === csid);
    for (const csid of new Set(steps.map((s) => s.msg.csid))) {
      const ok = same(byCsid(got, csid) as RtmpMessage[], byCsid(steps.map((s) => s.msg), csid) as OutMessage[]);
      if (!ok) console.log(`interleaving property failed for seed ${seed}, csid ${csid}`);
      expect(ok).toBe(true);
    }
    expect(got).toHaveLength(steps.length);
  });
});

// ---------- control messages ----------

describe('control messages', () => {
  it('builders put protocol control on csid 2, stream 0, and round-trip through parseControl', () => {
    const cases: Array<[ReturnType<typeof setChunkSize>, unknown]> = [
      [setChunkSize(65536), { kind: 'set-chunk-size', chunkSize: 65536 }],
      [abort(6), { kind: 'abort', csid: 6 }],
      [acknowledgement(2 ** 32 + 5), { kind: 'acknowledgement', sequence: 5 }],
      [windowAckSize(2_500_000), { kind: 'window-ack-size', windowSize: 2_500_000 }],
      [setPeerBandwidth(2_500_000, 2), { kind: 'set-peer-bandwidth', windowSize: 2_500_000, limitType: 2 }],
      [streamBegin(1), { kind: 'user-control', control: { event: 'stream-begin', eventType: 0, streamId: 1, value: 1 } }],
      [streamEof(1), { kind: 'user-control', control: { event: 'stream-eof', eventType: 1, streamId: 1, value: 1 } }],
      [streamDry(1), { kind: 'user-control', control: { event: 'stream-dry', eventType: 2, streamId: 1, value: 1 } }],
      [setBufferLength(1, 3000), { kind: 'user-control', control: { event: 'set-buffer-length', eventType: 3, streamId: 1, bufferMs: 3000, value: 1 } }],
      [streamIsRecorded(1), { kind: 'user-control', control: { event: 'stream-is-recorded', eventType: 4, streamId: 1, value: 1 } }],
      [pingRequest(123), { kind: 'user-control', control: { event: 'ping-request', eventType: 6, timestamp: 123, value: 123 } }],
      [pingResponse(123), { kind: 'user-control', control: { event: 'ping-response', eventType: 7, timestamp: 123, value: 123 } }],
    ];
    for (const [msg, parsed] of cases) {
      expect(msg).toMatchObject({ csid: 2, streamId: 0, timestamp: 0 });
      expect(parseControl(msg)).toEqual(parsed);
    }
    expect(parseControl({ type: 9, payload: Buffer.alloc(0) })).toBeNull();
    // Through the chunk layer too.
    const w = new ChunkWriter();
    const msgs = new ChunkReader().push(Buffer.concat(cases.map(([m]) => w.encode(m))));
    expect(msgs.map((m) => parseControl(m))).toEqual(cases.map(([, p]) => p));
  });

  it('short or invalid control payloads are control-malformed; unknown user control events pass through', () => {
    expectReason(() => parseControl({ type: 3, payload: Buffer.alloc(3) }), 'control-malformed');
    expectReason(() => parseControl({ type: 5, payload: Buffer.alloc(3) }), 'control-malformed');
    expectReason(() => parseControl({ type: 6, payload: Buffer.alloc(4) }), 'control-malformed');
    expectReason(() => parseControl({ type: 6, payload: Buffer.from([0, 0, 0, 1, 3]) }), 'control-malformed');
    expectReason(() => parseUserControl(Buffer.alloc(1)), 'control-malformed');
    expectReason(() => parseUserControl(Buffer.from([0, 6, 0, 0, 0])), 'control-malformed');
    expectReason(() => parseUserControl(Buffer.from([0, 3, 0, 0, 0, 1, 0, 0, 0])), 'control-malformed');
    expect(parseUserControl(Buffer.from([0, 26, 9]))).toEqual({ event: 'unknown', eventType: 26, data: Buffer.from([9]), value: 0 });
  });
});

// ---------- aggregate ----------

function sub(type: number, ts: number, data: Buffer, backPointer: number | null = data.length + 11): Buffer {
  const h = Buffer.from([type, ...u24(data.length), ...u24(ts & 0xffffff), (ts >>> 24) & 0xff, 0, 0, 0]);
  return Buffer.concat([h, data, backPointer === null ? Buffer.alloc(0) : Buffer.from(u32be(backPointer))]);
}
const agg = (ts: number, body: Buffer, streamId = 1): RtmpMessage => ({ csid: 6, type: 22, streamId, timestamp: ts, payload: body });

describe('splitAggregate', () => {
  it('renormalises sub timestamps to the aggregate’s (with the high byte, mod 2^32); the aggregate’s stream id wins', () => {
    const body = cat(sub(9, 0x01000010, Buffer.from('a')), sub(8, 0x01000030, Buffer.from('bb')), sub(9, 0x01000050, Buffer.alloc(0)));
    const parts = splitAggregate(agg(1000, body, 5));
    expect(parts.map((p) => [p.type, p.timestamp, p.streamId, p.csid, p.payload.toString()])).toEqual([
      [9, 1000, 5, 6, 'a'],
      [8, 1032, 5, 6, 'bb'],
      [9, 1064, 5, 6, ''],
    ]);
    const wrapped = splitAggregate(agg(0xfffffff0, cat(sub(9, 5, Buffer.from('x')), sub(9, 0x25, Buffer.from('y')))));
    expect(wrapped.map((p) => p.timestamp)).toEqual([0xfffffff0, 0x10]);
  });

  it('checks the back-pointer leniently: wrong or missing after the last part is accepted', () => {
    expect(splitAggregate(agg(0, cat(sub(9, 0, Buffer.from('a'), 999), sub(9, 1, Buffer.from('b'), null)))).map((p) => p.payload.toString())).toEqual(['a', 'b']);
    expect(splitAggregate(agg(0, Buffer.alloc(0)))).toEqual([]);
  });

  it('refuses a sub-size beyond the remaining bytes, a truncated sub-header, nesting and control inside', () => {
    const s = sub(9, 0, Buffer.from('abcd'));
    expectReason(() => splitAggregate(agg(0, s.subarray(0, 14))), 'aggregate-malformed');
    expectReason(() => splitAggregate(agg(0, cat(s, Buffer.alloc(5)))), 'aggregate-malformed');
    expectReason(() => splitAggregate(agg(0, sub(22, 0, Buffer.alloc(0)))), 'aggregate-malformed');
    expectReason(() => splitAggregate(agg(0, sub(1, 0, Buffer.from(u32be(1))))), 'aggregate-malformed');
  });

  it('maxParts: exactly maxParts parts split, one more is refused', () => {
    const body = Buffer.concat(Array.from({ length: 10 }, (_, i) => sub(8, i, Buffer.from([i]))));
    expect(splitAggregate(agg(0, body), 10)).toHaveLength(10);
    expectReason(() => splitAggregate(agg(0, body), 9), 'aggregate-malformed');
  });
});
