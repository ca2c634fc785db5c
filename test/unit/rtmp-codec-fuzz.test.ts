/**
 * Bounded fuzzing of the RTMP codecs: random bytes, and mutations of valid chunk streams and AMF
 * payloads (real ffmpeg ones among them). Asserted: nothing but AmfError / RtmpProtocolError is
 * ever thrown, the chunk reader never holds more than its limit, and the whole file stays well
 * under 30 s on two cores. Every case is seeded: a failure prints its seed and case number.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ChunkReader } from '../../src/ingest/rtmp/chunk-reader.js';
import { ChunkWriter, type OutMessage } from '../../src/ingest/rtmp/chunk-writer.js';
import { RtmpProtocolError } from '../../src/ingest/rtmp/errors.js';
import { ServerHandshake } from '../../src/ingest/rtmp/handshake.js';
import { splitAggregate } from '../../src/ingest/rtmp/aggregate.js';
import { parseControl } from '../../src/ingest/rtmp/control.js';
import { DEFAULT_AMF_LIMITS, type ChunkLimits } from '../../src/ingest/rtmp/limits.js';
import { AmfEcmaArray, decodeAmf0, encodeAmf0 } from '../../src/media/amf/amf0.js';
import { AmfError } from '../../src/media/amf/errors.js';
import type { AmfValue } from '../../src/media/types.js';
import { prng } from '../../src/util/prng.js';
import { FFMPEG_ON_METADATA, FFMPEG_PLAY_CONNECT, FFMPEG_PUBLISH_CONNECT } from '../helpers/ffmpeg-amf-captures.js';

const SEED = 0xf022;
const fileStart = performance.now();
const report: string[] = [];

afterAll(() => {
  console.log(`[rtmp-codec-fuzz] seed ${SEED}\n  ${report.join('\n  ')}\n  total ${(performance.now() - fileStart).toFixed(0)} ms`);
});

type ErrorClass = abstract new (...args: never[]) => Error;

/** Runs fn; an error of another class fails the test with the case that produced it. */
function only<T>(allowed: ErrorClass, fn: () => T, where: () => string): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof allowed)) {
      throw new Error(`${where()}: threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, { cause: err });
    }
    return undefined;
  }
}

function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** Log-uniform in 1..max. */
const logSize = (rand: () => number, max: number): number => Math.max(1, Math.floor(Math.exp(rand() * Math.log(max))));

function segments(data: Buffer, rand: () => number, max = 64 * 1024): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; ) {
    const n = logSize(rand, max);
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** Feeds segments to a fresh reader; asserts the error class and the held-bytes bound after every push. */
function feedReader(data: Buffer, rand: () => number, limits: Partial<ChunkLimits> & { maxHeldBytes: number }, where: () => string): number {
  const r = new ChunkReader(limits);
  let messages = 0;
  for (const seg of segments(data, rand)) {
    const out = only(RtmpProtocolError, () => r.push(seg), where);
    if (r.heldBytes > limits.maxHeldBytes) throw new Error(`${where()}: heldBytes ${r.heldBytes} > ${limits.maxHeldBytes}`);
    if (out === undefined) break;
    messages += out.length;
    // What a server does next with each message must be just as safe.
    for (const m of out) {
      if (m.type === 22) only(RtmpProtocolError, () => splitAggregate(m), where);
      else if (m.type <= 6) only(RtmpProtocolError, () => parseControl(m), where);
      else if (m.type === 18 || m.type === 20) only(AmfError, () => decodeAmf0(m.payload), where);
    }
  }
  return messages;
}

function depthOf(v: AmfValue): number {
  if (v === null || typeof v !== 'object' || v instanceof Date) return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  let d = 0;
  for (const c of children) d = Math.max(d, depthOf(c));
  return 1 + d;
}

function checkDecoded(values: AmfValue[], where: () => string): void {
  for (const v of values) {
    if (depthOf(v) > DEFAULT_AMF_LIMITS.maxDepth) throw new Error(`${where()}: decoded depth ${depthOf(v)}`);
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date) && Object.getPrototypeOf(v) !== null) {
      throw new Error(`${where()}: an object with a prototype`);
    }
  }
}

/**
 * One fuzz block, bounded by its case count (the body's loops); its time is reported, not asserted:
 * the machine is shared, and speed belongs in benchmarks. `typicalMs` documents what it takes here.
 */
function block(name: string, typicalMs: number, body: () => number): void {
  it(`${name} (typically under ${typicalMs} ms)`, () => {
    const t0 = performance.now();
    const cases = body();
    const ms = performance.now() - t0;
    report.push(`${name}: ${cases} cases, ${ms.toFixed(0)} ms`);
    expect(cases).toBeGreaterThan(0);
  });
}

// ---------- valid inputs to mutate ----------

/** A valid chunk stream: commands, metadata, audio, video, control; extended timestamps; Set Chunk Size. */
function validStream(rand: () => number): { data: Buffer; starts: number[] } {
  const w = new ChunkWriter();
  const parts: Buffer[] = [];
  const starts: number[] = [];
  let at = 0;
  const add = (m: OutMessage, newSize?: number) => {
    for (const c of w.encodeChunks(m)) {
      starts.push(at);
      parts.push(c);
      at += c.length;
    }
    if (newSize !== undefined) w.setChunkSize(newSize);
  };
  add({ csid: 3, type: 20, streamId: 0, timestamp: 0, payload: FFMPEG_PUBLISH_CONNECT });
  let ts = rand() < 0.3 ? 0xfffff0 : 0;
  const n = 3 + Math.floor(rand() * 12);
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (r < 0.1) {
      const size = [1, 16, 128, 4096, 65536][Math.floor(rand() * 5)] as number;
      const p = Buffer.alloc(4);
      p.writeUInt32BE(size);
      add({ csid: 2, type: 1, streamId: 0, timestamp: 0, payload: p }, size);
    } else if (r < 0.2) {
      add({ csid: 4, type: 18, streamId: 1, timestamp: ts, payload: Buffer.concat([encodeAmf0(['@setDataFrame']), FFMPEG_ON_METADATA]) });
    } else if (r < 0.3) {
      // An aggregate of two audio tags.
      const tag = (t: number) => Buffer.concat([Buffer.from([8, 0, 0, 2, 0, 0, t, 0, 0, 0, 0, 0xaf, 0x01]), Buffer.from([0, 0, 0, 13])]);
      add({ csid: 5, type: 22, streamId: 1, timestamp: ts, payload: Buffer.concat([tag(0), tag(20)]) });
    } else {
      const video = rand() < 0.5;
      const size = video ? logSize(rand, 20_000) : 100 + Math.floor(rand() * 300);
      add({ csid: video ? 6 : 4, type: video ? 9 : 8, streamId: 1, timestamp: ts % 2 ** 32, payload: randomBytes(rand, size) });
    }
    ts += rand() < 0.1 ? 0x1000000 : Math.floor(rand() * 40);
  }
  return { data: Buffer.concat(parts), starts };
}

function mutate(src: Buffer, rand: () => number, headerStarts: readonly number[] = []): Buffer {
  const b = Buffer.from(src);
  const int = (n: number) => Math.floor(rand() * n);
  switch (int(7)) {
    case 0: {
      // Bit flips.
      const flips = 1 + int(8);
      for (let i = 0; i < flips && b.length > 0; i++) {
        const at = int(b.length);
        b[at] = (b[at] as number) ^ (1 << int(8));
      }
      return b;
    }
    case 1:
      return b.subarray(0, int(b.length)); // truncation
    case 2: {
      const at = int(b.length + 1);
      return Buffer.concat([b.subarray(0, at), randomBytes(rand, 1 + int(32)), b.subarray(at)]); // insertion
    }
    case 3: {
      const at = int(b.length);
      return Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(64)))]); // deletion
    }
    case 4: {
      // Length-field corruption: at a chunk header (the 3 bytes after a fmt 0/1 timestamp), or anywhere.
      const start = headerStarts.length > 0 ? (headerStarts[int(headerStarts.length)] as number) : int(b.length);
      const at = Math.min(b.length - 1, start + 4);
      const values = [0xff, 0x00, 0x7f, 0x80, int(256)];
      for (let i = 0; i < 3 && at + i < b.length; i++) b[at + i] = values[int(values.length)] as number;
      return b;
    }
    case 5: {
      // A chunk header byte rewritten (fmt and csid forms).
      const at = headerStarts.length > 0 ? (headerStarts[int(headerStarts.length)] as number) : int(b.length);
      if (at < b.length) b[at] = [0x00, 0x01, 0x02, 0x3f, 0x40, 0x80, 0xc0, 0xc1, int(256)][int(9)] as number;
      return b;
    }
    default: {
      // A slice duplicated (replayed chunks).
      const at = int(b.length);
      const len = 1 + int(Math.min(512, b.length - at));
      return Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
    }
  }
}

// ---------- the fuzz blocks ----------

describe('fuzz: ChunkReader', () => {
  const small = { maxMessageBytes: 32 * 1024, maxChunkStreams: 8, maxChunkSize: 64 * 1024, maxHeldBytes: 48 * 1024 };
  const defaults = { maxHeldBytes: 16 * 1024 * 1024 };

  block('random bytes of many sizes into ChunkReader', 4000, () => {
    const rand = prng(SEED + 1);
    let cases = 0;
    for (; cases < 6000; cases++) {
      const data = randomBytes(rand, logSize(rand, 64 * 1024));
      // Half start with a valid fmt-0 header so the fuzz gets past the first byte.
      if (cases % 2 === 0 && data.length > 12) data[0] = 0x03 | (rand() < 0.5 ? 0 : 0x40 * Math.floor(rand() * 4));
      const c = cases;
      feedReader(data, rand, cases % 3 === 0 ? small : defaults, () => `random bytes case ${c}`);
    }
    return cases;
  });

  block('mutated valid chunk streams (bit flips, truncations, insertions, deletions, length fields, headers, replays)', 6000, () => {
    const rand = prng(SEED + 2);
    let cases = 0;
    let parsedMessages = 0;
    for (let s = 0; s < 150; s++) {
      const { data, starts } = validStream(rand);
      // The unmutated stream must parse in full (else the mutations start from garbage).
      const whole = new ChunkReader(defaults).push(data);
      expect(whole.length).toBeGreaterThan(0);
      for (let k = 0; k < 40; k++, cases++) {
        let m = data;
        const rounds = 1 + Math.floor(rand() * 3);
        for (let i = 0; i < rounds; i++) m = mutate(m, rand, starts);
        const c = cases;
        parsedMessages += feedReader(m, rand, k % 2 === 0 ? defaults : small, () => `stream ${s} mutation ${c}`);
      }
    }
    expect(parsedMessages).toBeGreaterThan(cases); // mutations leave plenty to parse
    return cases;
  });

  block('thousands of chunk stream ids, in all three basic header forms', 4000, () => {
    let cases = 0;
    const header = (csid: number, len: number): Buffer => {
      const basic = csid < 64 ? [csid] : csid < 320 ? [0, csid - 64] : [1, (csid - 64) & 0xff, (csid - 64) >> 8];
      return Buffer.from([...basic, 0, 0, 0, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff, 9, 1, 0, 0, 0, 0xaa]);
    };
    // Chunk size 1: one payload byte completes a first chunk, so the next bytes are a header again.
    const chunkSizeOne = Buffer.from([0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    // Default limits: 8 MiB declared on every csid, one byte each: refused at the 65th csid, ~4 KiB held per csid.
    {
      const r = new ChunkReader();
      r.push(chunkSizeOne);
      let err: unknown;
      for (let csid = 2; csid <= 65599 && err === undefined; csid++, cases++) {
        try {
          r.push(header(csid, 8 * 1024 * 1024));
        } catch (e) {
          err = e;
        }
        expect(r.heldBytes).toBeLessThanOrEqual(64 * 4096);
      }
      expect(err).toBeInstanceOf(RtmpProtocolError);
      expect((err as RtmpProtocolError).reason).toBe('too-many-chunk-streams');
      expect(r.heldBytes).toBe(0); // released on the error
    }
    // With the csid cap lifted, every csid 2..65599 in one push: complete 1-byte messages all parse.
    {
      const all: Buffer[] = [];
      for (let csid = 2; csid <= 65599; csid++) all.push(header(csid, 1));
      const r = new ChunkReader({ maxChunkStreams: 65600 });
      const msgs = r.push(Buffer.concat(all));
      cases += msgs.length;
      expect(msgs).toHaveLength(65598);
      expect(msgs.at(-1)?.csid).toBe(65599);
      expect(r.heldBytes).toBe(0);
    }
    // …and partial messages on all of them run into maxHeldBytes, never past it: exactly 4096 partial
    // messages of 4 KiB fit in 16 MiB, the 4097th does not.
    {
      const limits = { maxChunkStreams: 65600, maxHeldBytes: 16 * 1024 * 1024 };
      const r = new ChunkReader(limits);
      r.push(chunkSizeOne);
      let err: unknown;
      let opened = 0;
      for (let csid = 3; csid <= 65599; csid++) {
        cases++;
        try {
          r.push(header(csid, 100_000));
          opened = r.chunkStreamCount;
        } catch (e) {
          err = e;
          break;
        }
        expect(r.heldBytes).toBeLessThanOrEqual(limits.maxHeldBytes);
      }
      expect((err as RtmpProtocolError).reason).toBe('buffer-limit');
      expect(opened).toBe(1 + 4096);
    }
    return cases;
  });
});

describe('fuzz: ServerHandshake', () => {
  block('random bytes (random and valid C0) into ServerHandshake', 3000, () => {
    const rand = prng(SEED + 4);
    let cases = 0;
    for (; cases < 3000; cases++) {
      const data = randomBytes(rand, logSize(rand, 8 * 1024));
      if (cases % 4 !== 0) data[0] = 3;
      if (cases % 8 === 1 && data.length > 12) data.writeUInt32BE(0x09007c02, 5); // a "digest" version
      const hs = new ServerHandshake();
      let sent = 0;
      let done = false;
      let rest = 0;
      const c = cases;
      for (const seg of segments(data, rand, 4096)) {
        const r = only(RtmpProtocolError, () => hs.push(seg), () => `handshake case ${c}`);
        if (r === undefined) break;
        if (r.send) sent += r.send.length;
        done = r.done;
        rest += r.rest.length;
      }
      if (data[0] === 3) {
        // Valid C0: never an error; S0S1S2 once C1 is in; done after C2; the remainder handed back.
        expect(sent).toBe(data.length >= 1537 ? 3073 : 0);
        expect(done).toBe(data.length >= 3073);
        expect(rest).toBe(Math.max(0, data.length - 3073));
      }
    }
    return cases;
  });
});

describe('fuzz: AMF0', () => {
  const bases: Array<[string, Buffer]> = [
    ['ffmpeg publish connect', FFMPEG_PUBLISH_CONNECT],
    ['ffmpeg play connect', FFMPEG_PLAY_CONNECT],
    ['ffmpeg onMetaData ECMA array', FFMPEG_ON_METADATA],
    [
      'nested command',
      encodeAmf0([
        'onStatus',
        0,
        null,
        { level: 'status', code: 'NetStream.Publish.Start', list: [1, 'two', new Date(0), [null, undefined]], meta: new AmfEcmaArray({ a: { b: { c: 'deep' } } }) },
        'x'.repeat(70_000),
      ]),
    ],
    // An AVM+ switch to an AMF3 array holding a string, a reference and an anonymous object.
    ['AMF3 switch', Buffer.from('02000474657374 11 09 07 01 06 07 616263 06 00 0a 0b 01 03 6b 04 05 01', 'hex'.replace(/ /g, '') as 'hex')],
  ];

  block('random bytes of many sizes into decodeAmf0 (with and without AMF3)', 3000, () => {
    const rand = prng(SEED + 5);
    let cases = 0;
    for (; cases < 20_000; cases++) {
      const data = randomBytes(rand, logSize(rand, 2048));
      // Bias the first byte towards real markers so decoding goes deeper than one byte.
      if (cases % 2 === 0) data[0] = Math.floor(rand() * 0x12);
      const c = cases;
      const v = only(AmfError, () => decodeAmf0(data, { allowAmf3: c % 3 === 0 }), () => `random AMF case ${c}`);
      if (v !== undefined) checkDecoded(v, () => `random AMF case ${c}`);
    }
    return cases;
  });

  block('mutated real AMF payloads (ffmpeg connect, onMetaData, nested, AMF3)', 5000, () => {
    const rand = prng(SEED + 6);
    let cases = 0;
    let decoded = 0;
    for (const [name, base] of bases) {
      expect(only(AmfError, () => decodeAmf0(Buffer.from(base.toString('hex').replace(/ /g, ''), 'hex'), { allowAmf3: true, maxStringBytes: 100_000 }), () => name)).toBeDefined();
      for (let k = 0; k < 4000; k++, cases++) {
        let m = base;
        const rounds = 1 + Math.floor(rand() * 3);
        for (let i = 0; i < rounds; i++) {
          m = mutate(m, rand);
          // Also: a marker byte swapped for another marker, a length field maxed out.
          if (rand() < 0.3 && m.length > 0) m[Math.floor(rand() * m.length)] = Math.floor(rand() * 0x13);
          if (rand() < 0.2 && m.length > 4) m.writeUInt16BE(0xffff, Math.floor(rand() * (m.length - 1)));
        }
        const c = cases;
        const v = only(AmfError, () => decodeAmf0(m, { allowAmf3: c % 2 === 0 }), () => `${name} mutation ${c}`);
        if (v !== undefined) {
          decoded++;
          checkDecoded(v, () => `${name} mutation ${c}`);
        }
      }
    }
    expect(decoded).toBeGreaterThan(0);
    return cases;
  });

  block('every AMF0 marker, malformed: cut at every length, followed by garbage', 3000, () => {
    const rand = prng(SEED + 7);
    let cases = 0;
    // A valid body for each marker (0x11 with an AMF3 integer), to truncate at every byte.
    const valid: Buffer[] = Array.from({ length: 256 }, (_, m) => {
      switch (m) {
        case 0x00: return Buffer.from('003ff0000000000000', 'hex');
        case 0x01: return Buffer.from('0101', 'hex');
        case 0x02: return Buffer.from('020003616263', 'hex');
        case 0x03: return Buffer.from('0300016102000162000009', 'hex');
        case 0x07: return Buffer.from('0300000907 0000'.replace(/ /g, ''), 'hex');
        case 0x08: return Buffer.from('0800000001000161 0101 000009'.replace(/ /g, ''), 'hex');
        case 0x0a: return Buffer.from('0a00000002 0500 0101'.replace(/ /g, ''), 'hex');
        case 0x0b: return Buffer.from('0b3ff00000000000000000', 'hex');
        case 0x0c: return Buffer.from('0c00000003616263', 'hex');
        case 0x0f: return Buffer.from('0f000000033c612f', 'hex');
        case 0x10: return Buffer.from('100001 43 0001 61 05 000009'.replace(/ /g, ''), 'hex');
        case 0x11: return Buffer.from('11 04 81 00'.replace(/ /g, ''), 'hex');
        default: return Buffer.from([m]);
      }
    });
    for (let m = 0; m < 256; m++) {
      const body = valid[m] as Buffer;
      for (let cut = 0; cut <= body.length; cut++) {
        for (const tail of [Buffer.alloc(0), randomBytes(rand, 1 + Math.floor(rand() * 16)), Buffer.alloc(8, 0xff)]) {
          for (const allowAmf3 of [false, true]) {
            cases++;
            const data = Buffer.concat([body.subarray(0, cut), tail]);
            const v = only(AmfError, () => decodeAmf0(data, { allowAmf3 }), () => `marker 0x${m.toString(16)} cut ${cut}`);
            if (v !== undefined) checkDecoded(v, () => `marker 0x${m.toString(16)} cut ${cut}`);
          }
        }
      }
    }
    return cases;
  });
});
