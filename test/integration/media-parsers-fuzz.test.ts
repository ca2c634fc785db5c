/**
 * Bounded, seeded fuzzing of everything that reads camera-controlled bytes on the native path: the
 * FLV tag parser, the avcC/hvcC/SPS/ASC parsers, the FLV file reader and the remuxer fed mutated
 * packet streams. Inputs: random bytes, and mutations (bit flips, byte stomps, truncation, splices,
 * duplications) of real tags and records from the remux corpus. Invariants: only MediaError (or
 * AmfError, for script data) is ever thrown; the reader and the remuxer hold no more than their
 * limits; whatever the remuxer emits is fMP4 the product's own splitter accepts, with decode times
 * that never go back within an object and MediaFragment values equal to the splitter's. Each part
 * runs to a case count or a time budget, and prints what it tried.
 */
import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { Fmp4Splitter } from '../../src/container/fmp4/splitter.js';
import { parseMoof } from '../../src/container/fmp4/moof.js';
import { parseMoov } from '../../src/container/fmp4/moov.js';
import { childBoxes } from '../../src/container/fmp4/box-reader.js';
import type { ContainerOutput, MediaFragment } from '../../src/container/types.js';
import { AmfError } from '../../src/media/amf/errors.js';
import { parseAacConfig } from '../../src/media/codec/aac-config.js';
import { parseAvcConfig, parseAvcSps } from '../../src/media/codec/avc-config.js';
import { parseHevcConfig, parseHevcSps } from '../../src/media/codec/hevc-config.js';
import { MediaError } from '../../src/media/errors.js';
import { FlvFileReader, readFlv } from '../../src/media/flv/flv-file.js';
import { parseFlvTag } from '../../src/media/flv/flv-tag.js';
import type { FlvTag, FlvTagType, MediaPacket } from '../../src/media/types.js';
import { FlvToFmp4, type FlvToFmp4Options } from '../../src/remux/native/flv-to-fmp4.js';
import { prng } from '../../src/util/prng.js';
import { remuxCorpus } from '../helpers/remux-corpus.js';

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)] as T;

function randomBytes(r: Rand, max: number): Buffer {
  const b = Buffer.alloc(int(r, max + 1));
  for (let i = 0; i < b.length; i++) b[i] = int(r, 256);
  return b;
}

/** 1–4 mutations of a copy: bit flip, byte stomp (random/0/FF), truncation, splice out, duplicate, insert. */
function mutate(r: Rand, src: Buffer): Buffer {
  let b = Buffer.from(src);
  for (let k = 1 + int(r, 4); k > 0; k--) {
    const at = b.length === 0 ? 0 : int(r, b.length);
    switch (int(r, 7)) {
      case 0:
        if (b.length > 0) b[at] = (b[at] as number) ^ (1 << int(r, 8));
        break;
      case 1:
        if (b.length > 0) b[at] = pick(r, [0, 0xff, int(r, 256), 1, 0x80]);
        break;
      case 2:
        b = b.subarray(0, at);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(r, 16)))]);
        break;
      case 4:
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + int(r, 16)), b.subarray(at)]);
        break;
      case 5:
        b = Buffer.concat([b.subarray(0, at), randomBytes(r, 8), b.subarray(at)]);
        break;
      default:
        // Stomp a 16/32-bit field with a large value (lengths and counts).
        if (b.length >= at + 2) b.writeUInt16BE(pick(r, [0xffff, 0x8000, 0, 1, int(r, 65536)]), at);
        break;
    }
  }
  return b;
}

/** Runs `fn`; anything thrown must be one of the allowed typed errors. Returns whether it threw. */
function expectOnlyTyped(fn: () => unknown, allowAmf = false): boolean {
  try {
    fn();
    return false;
  } catch (err) {
    const ok = err instanceof MediaError || (allowAmf && err instanceof AmfError);
    if (!ok) throw new Error(`unexpected ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`, { cause: err });
    return true;
  }
}

/** Loops until `cases` are done or `budgetMs` is spent; returns [cases, errors, ms]. */
function budget(cases: number, budgetMs: number, body: (i: number) => boolean): [number, number, number] {
  const t0 = performance.now();
  let i = 0;
  let errors = 0;
  for (; i < cases && performance.now() - t0 < budgetMs; i++) if (body(i)) errors++;
  return [i, errors, Math.round(performance.now() - t0)];
}

const report: string[] = [];
let tags: FlvTag[] = [];
let streams: MediaPacket[][] = [];
const records = { avc: [] as Buffer[], hevc: [] as Buffer[], aac: [] as Buffer[] };
let flvFiles: Buffer[] = [];

beforeAll(async () => {
  for (const c of await remuxCorpus()) {
    const bytes = await readFile(c.flv);
    flvFiles.push(bytes);
    const packets: MediaPacket[] = [];
    for (const t of readFlv(bytes).tags) {
      tags.push(t);
      const p = parseFlvTag(t);
      if (p.kind === 'video' || p.kind === 'audio' || p.kind === 'metadata') packets.push(p);
      if (p.kind === 'video' && p.packetType === 'config') records[p.codec].push(Buffer.from(p.data));
      if (p.kind === 'audio' && p.packetType === 'config') records.aac.push(Buffer.from(p.data));
    }
    streams.push(packets);
  }
  // Keep frame tags short: the parsers only read headers; long payloads only cost time.
  tags = tags.map((t) => ({ ...t, body: t.body.subarray(0, 96) }));
  flvFiles = flvFiles.filter((f) => f.length > 0);
  streams = streams.filter((s) => s.length > 0);
});

describe('fuzz (seeded, bounded)', () => {
  it('parseFlvTag: random bodies and mutated real tags of each type', () => {
    const r = prng(0xf1f1);
    const [n, errs, ms] = budget(40_000, 4000, (i) => {
      const t: FlvTag = i % 3 === 0
        ? { type: pick(r, [8, 9, 18] as FlvTagType[]), timestamp: int(r, 2 ** 32), body: randomBytes(r, 48) }
        : (() => {
          const src = pick(r, tags);
          return { ...src, body: mutate(r, src.body) };
        })();
      return expectOnlyTyped(() => parseFlvTag(t), true);
    });
    report.push(`parseFlvTag            ${n} cases, ${errs} typed errors, ${ms} ms`);
    expect(n).toBeGreaterThan(1000);
  });

  it('avcC / hvcC / SPS / ASC parsers: random and mutated real records', () => {
    const r = prng(0xc0de);
    const parsers: Array<[string, (b: Buffer) => unknown, () => Buffer]> = [
      ['avcC', parseAvcConfig, () => pick(r, records.avc)],
      ['hvcC', parseHevcConfig, () => pick(r, records.hevc)],
      ['ASC', parseAacConfig, () => pick(r, records.aac)],
      ['H.264 SPS', parseAvcSps, () => parseAvcConfig(pick(r, records.avc)).sps[0] as Buffer],
      ['H.265 SPS', parseHevcSps, () => parseHevcConfig(pick(r, records.hevc)).arrays.find((a) => a.nalType === 33)?.units[0] as Buffer],
    ];
    const [n, errs, ms] = budget(40_000, 4000, (i) => {
      const [, parse, real] = parsers[i % parsers.length] as (typeof parsers)[number];
      const input = int(r, 4) === 0 ? randomBytes(r, 64) : mutate(r, real());
      return expectOnlyTyped(() => parse(input));
    });
    report.push(`config/SPS parsers     ${n} cases, ${errs} typed errors, ${ms} ms`);
    expect(n).toBeGreaterThan(1000);
  });

  it('FlvFileReader: mutated FLV files in random chunks; bounded; only MediaError', () => {
    const r = prng(0xf17e);
    const maxTagBytes = 256 * 1024;
    const [n, errs, ms] = budget(1500, 3000, () => {
      const file = int(r, 5) === 0 ? randomBytes(r, 2000) : mutate(r, mutate(r, pick(r, flvFiles)));
      const reader = new FlvFileReader({ maxTagBytes });
      return expectOnlyTyped(() => {
        for (let at = 0; at < file.length; ) {
          const len = 1 + int(r, 4096);
          reader.push(file.subarray(at, at + len));
          expect(reader.bufferedBytes).toBeLessThanOrEqual(11 + maxTagBytes + 4 + 4096);
          at += len;
        }
        reader.flush();
      });
    });
    report.push(`FlvFileReader          ${n} cases, ${errs} typed errors, ${ms} ms`);
    expect(n).toBeGreaterThan(100);
  });

  it('FlvToFmp4: mutated packet streams; only MediaError; bounded; output is valid fMP4', () => {
    const r = prng(0x5eed);
    let outputsChecked = 0;
    const seen = { discontinuities: 0, initChanges: 0, forcedCuts: 0, droppedBeforeKeyframe: 0, clamped: 0, ctsOutOfRange: 0 };
    const [n, errs, ms] = budget(2000, 9000, () => {
      const ps = mutateStream(r, pick(r, streams));
      const opts: FlvToFmp4Options = {
        fragmentDurationMs: pick(r, [null, null, 100, 500, 2000]),
        maxPendingBytes: pick(r, [32 * 1024 * 1024, 200_000, 60_000]),
        audioWaitMs: pick(r, [0, 500, 2000]),
        videoWaitMs: pick(r, [0, 1000, 5000]),
        maxForwardJumpMs: pick(r, [10_000, 1000]),
      };
      const remuxer = new FlvToFmp4(opts);
      const perPush: Array<{ at: number; outputs: ContainerOutput[] }> = [];
      const threw = expectOnlyTyped(() => {
        ps.forEach((p, i) => {
          perPush.push({ at: i, outputs: remuxer.push(p, i) });
          expect(remuxer.pendingBytes).toBeLessThanOrEqual(opts.maxPendingBytes as number);
        });
        perPush.push({ at: ps.length - 1, outputs: remuxer.flush() });
      });
      const st = remuxer.stats;
      seen.discontinuities += st.discontinuities;
      seen.initChanges += Math.max(0, st.initSegments - 1);
      seen.forcedCuts += st.forcedCuts;
      seen.droppedBeforeKeyframe += st.droppedBeforeKeyframe;
      seen.clamped += st.clampedTimestamps;
      seen.ctsOutOfRange += st.ctsOutOfRange;
      if (perPush.some((x) => x.outputs.length > 0)) {
        checkOutput(perPush);
        outputsChecked++;
      }
      return threw;
    });
    report.push(`FlvToFmp4              ${n} streams, ${errs} typed errors, ${outputsChecked} outputs verified, ${ms} ms`);
    report.push(`  (states reached: ${Object.entries(seen).map(([k, v]) => `${k} ${v}`).join(', ')})`);
    expect(outputsChecked).toBeGreaterThan(n / 4);
  }, 30_000);

  it('prints what was tried', () => {
    console.log(['media parsers fuzz (seeded):', ...report.map((l) => `  ${l}`)].join('\n'));
    expect(report).toHaveLength(5);
  });
});

/** Packet-level and byte-level mutations of a real stream (timestamps, CTS, flags, order, payloads). */
function mutateStream(r: Rand, src: readonly MediaPacket[]): MediaPacket[] {
  let ps = src.slice();
  for (let k = 1 + int(r, 8); k > 0; k--) {
    const i = int(r, ps.length);
    const p = ps[i];
    if (p === undefined) break;
    const retimed = (ts: number): MediaPacket => ({ ...p, tag: { ...p.tag, timestamp: ((Math.round(ts) % 2 ** 32) + 2 ** 32) % 2 ** 32 } });
    switch (int(r, 12)) {
      case 0:
        ps[i] = retimed(int(r, 2 ** 32));
        break;
      case 1: {
        // Shift everything from here: a jump back or forward, possibly across the wrap.
        const d = pick(r, [-(2 ** 31), -100_000, -3000, -120, 50, 5000, 70_000, 2 ** 31 - 1, 2 ** 32 - 500]);
        ps = ps.map((q, j) => (j >= i ? { ...q, tag: { ...q.tag, timestamp: (((q.tag.timestamp + d) % 2 ** 32) + 2 ** 32) % 2 ** 32 } } : q));
        break;
      }
      case 2:
        if (p.kind === 'video') ps[i] = { ...p, cts: pick(r, [-(2 ** 23), -1000, -40, 2 ** 23 - 1, 20_000, int(r, 400) - 200]) };
        break;
      case 3:
        if (p.kind === 'video') ps[i] = { ...p, keyframe: !p.keyframe };
        break;
      case 4:
        ps.splice(i, 1 + int(r, 30));
        break;
      case 5:
        ps.splice(i, 0, ...ps.slice(i, i + 1 + int(r, 5)));
        break;
      case 6:
        if (i + 1 < ps.length) [ps[i], ps[i + 1]] = [ps[i + 1] as MediaPacket, p];
        break;
      case 7:
        if (p.kind !== 'metadata') ps[i] = { ...p, data: mutate(r, p.data) } as MediaPacket;
        break;
      case 8:
        if (p.kind === 'video') ps[i] = { ...p, packetType: pick(r, ['config', 'frame', 'end'] as const) };
        if (p.kind === 'audio') ps[i] = { ...p, packetType: p.packetType === 'config' ? 'frame' : 'config' };
        break;
      case 9:
        if (p.kind === 'video') ps[i] = { ...p, codec: p.codec === 'avc' ? 'hevc' : 'avc' };
        if (p.kind === 'audio') ps[i] = { ...p, codec: pick(r, ['aac', 'pcmu', 'pcma'] as const) };
        break;
      case 10: {
        // Re-parse a mutated tag body, as the RTMP path would hand it over.
        const body = mutate(r, p.tag.body);
        try {
          const q = parseFlvTag({ ...p.tag, body });
          if (q.kind === 'video' || q.kind === 'audio' || q.kind === 'metadata') ps[i] = q;
        } catch (err) {
          if (!(err instanceof MediaError || err instanceof AmfError)) throw err;
        }
        break;
      }
      default:
        if (p.kind === 'metadata') {
          const values = Object.assign(Object.create(null) as Record<string, number | string | null>, p.values, {
            audiocodecid: pick(r, [10, 7, 'mp4a', null, 99]),
            videocodecid: pick(r, [7, 12, null, 'hvc1']),
          });
          ps[i] = { ...p, values };
        }
    }
  }
  return ps;
}

/**
 * The remuxer's output, split by the product's splitter: no ContainerError, our MediaFragment values
 * equal the splitter's, and per track the decode times never go back within one object.
 */
function checkOutput(perPush: Array<{ at: number; outputs: ContainerOutput[] }>): void {
  const splitter = new Fmp4Splitter();
  const split: ContainerOutput[] = [];
  const ours: ContainerOutput[] = [];
  for (const { at, outputs } of perPush) {
    for (const o of outputs) {
      ours.push(o);
      split.push(...splitter.push(o.bytes, at));
    }
  }
  split.push(...splitter.flush());
  expect(split.length).toBe(ours.length);
  let defaults = new Map<number, { sampleDuration: number; sampleFlags: number }>();
  let lastStart = new Map<number, number>();
  split.forEach((s, i) => {
    const o = ours[i] as ContainerOutput;
    expect(s.type).toBe(o.type);
    if (o.type === 'init') {
      const moov = childBoxes(o.bytes, 0, o.bytes.length, 0).find((b) => b.type === 'moov');
      defaults = parseMoov(o.bytes.subarray(moov?.start ?? 0, moov?.end ?? 0), 0).defaults;
      lastStart = new Map();
      return;
    }
    if (o.type !== 'fragment') return;
    const { bytes: _a, ...a } = s as MediaFragment;
    const { bytes: _b, ...b } = o;
    expect(b).toEqual(a);
    const moof = childBoxes(o.bytes, 0, o.bytes.length, 0)[0];
    const summary = parseMoof(o.bytes.subarray(0, moof?.end ?? 0), 0, defaults);
    for (const t of summary.trafs) {
      expect(t.sampleCount).toBeGreaterThan(0);
      const start = t.baseDecodeTime as number;
      const previous = lastStart.get(t.trackId);
      if (previous !== undefined) expect(start).toBeGreaterThan(previous);
      lastStart.set(t.trackId, start);
    }
  });
}
