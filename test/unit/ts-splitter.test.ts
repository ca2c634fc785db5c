/**
 * Mpeg2TsSplitter on synthetic transport streams built here packet by packet, so every rule
 * (cuts, keyframe detection, PSI handling, times, bounds, errors) is exercised on exact bytes.
 * ffmpeg-made streams are covered in test/integration/ts-splitter-ffmpeg.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FRAGMENT_BYTES, Mpeg2TsSplitter } from '../../src/container/index.js';
import type { ContainerOutput, InitSegment, Mpeg2TsSplitterOptions } from '../../src/container/index.js';
import { prng } from '../../src/util/prng.js';
import { randomChunks as randomChunksOf } from '../helpers/bytes.js';
import { expectContainerError, fragmentsOf, initsOf, splitAll, splitUntilContainerError, summary } from '../helpers/container.js';
import { thrown } from '../helpers/expect-error.js';

// ---------- a small TS writer ----------

const VPID = 0x100;
const APID = 0x101;
const PMT_PID = 0x1000;
const SDT_PID = 0x11;

/** CRC-32/MPEG-2, bit by bit (independent of the table-driven one under test). */
function crc32(buf: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of buf) {
    crc ^= byte << 24;
    for (let k = 0; k < 8; k++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
  }
  return crc >>> 0;
}

/** A long-form section: table_id, syntax bit, length, id, version, current, section 0 of 1, body, CRC. */
function section(tableId: number, id: number, body: Buffer, version = 0): Buffer {
  const head = Buffer.alloc(8);
  head[0] = tableId;
  head.writeUInt16BE(0xb000 | (5 + body.length + 4), 1);
  head.writeUInt16BE(id, 3);
  head[5] = 0xc1 | ((version & 0x1f) << 1);
  const withoutCrc = Buffer.concat([head, body]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(withoutCrc));
  return Buffer.concat([withoutCrc, crc]);
}

function pat(pmtPid = PMT_PID, program = 1, version = 0): Buffer {
  const body = Buffer.alloc(4);
  body.writeUInt16BE(program, 0);
  body.writeUInt16BE(0xe000 | pmtPid, 2);
  return section(0x00, 1, body, version);
}

function pmt(streams: [type: number, pid: number, infoLength?: number][], program = 1, version = 0): Buffer {
  const parts = [Buffer.from([0xe0 | (streams[0]?.[1] ?? 0x1fff) >> 8, (streams[0]?.[1] ?? 0x1fff) & 0xff, 0xf0, 0x00])];
  for (const [type, pid, infoLength = 0] of streams) {
    const e = Buffer.alloc(5 + infoLength, 0x55);
    e[0] = type;
    e.writeUInt16BE(0xe000 | pid, 1);
    e.writeUInt16BE(0xf000 | infoLength, 3);
    parts.push(e);
  }
  return section(0x02, program, Buffer.concat(parts), version);
}

const AV: [number, number][] = [[0x1b, VPID], [0x0f, APID]];

class TsWriter {
  private readonly cc = new Map<number, number>();
  readonly packets: Buffer[] = [];

  /** One packet: header, adaptation field (for RAI or stuffing) and `payload` (which must fit). */
  packet(pid: number, payload: Buffer, opts: { pusi?: boolean; rai?: boolean; afBytes?: number } = {}): this {
    const p = Buffer.alloc(188, 0xff);
    const cc = this.cc.get(pid) ?? 0;
    this.cc.set(pid, (cc + 1) & 0xf);
    p[0] = 0x47;
    p[1] = (opts.pusi ? 0x40 : 0) | (pid >> 8);
    p[2] = pid & 0xff;
    const room = 184 - payload.length;
    if (room < 0) throw new Error('payload too long');
    const needAf = opts.rai === true || room > 0 || (opts.afBytes ?? 0) > 0;
    if (!needAf) {
      p[3] = 0x10 | cc;
      payload.copy(p, 4);
      return this.push(p);
    }
    if (room < 1) throw new Error('no room for an adaptation field');
    // adaptation field of `room` bytes: length byte + flags + stuffing
    p[3] = (payload.length > 0 ? 0x30 : 0x20) | cc;
    p[4] = room - 1;
    if (room >= 2) p[5] = opts.rai ? 0x40 : 0x00;
    payload.copy(p, 4 + room);
    return this.push(p);
  }

  private push(p: Buffer): this {
    this.packets.push(p);
    return this;
  }

  /** A section (pointer_field 0) over as many packets as it needs. */
  section(pid: number, s: Buffer): this {
    let data = Buffer.concat([Buffer.from([0]), s]);
    let first = true;
    while (data.length > 0) {
      const n = Math.min(184, data.length);
      const body = Buffer.alloc(184, 0xff);
      data.copy(body, 0, 0, n);
      this.packet(pid, body, { pusi: first });
      first = false;
      data = data.subarray(n);
    }
    return this;
  }

  /** SDT-like filler on PID 0x11, then PAT and PMT: what ffmpeg writes first. */
  psi(streams: [number, number][] = AV, opts: { sdt?: boolean; pmtPid?: number; program?: number; version?: number } = {}): this {
    if (opts.sdt !== false) this.section(SDT_PID, Buffer.from([0x42, 0xf0, 0x05, 0, 1, 0xc1, 0, 0]));
    this.section(0, pat(opts.pmtPid ?? PMT_PID, opts.program ?? 1, opts.version ?? 0));
    return this.section(opts.pmtPid ?? PMT_PID, pmt(streams, opts.program ?? 1, opts.version ?? 0));
  }

  /** A PES: header with PTS (and DTS), then `es`, split into packets; `firstPayload` caps the first packet's payload. */
  pes(pid: number, streamId: number, pts: number, dts: number | null, es: Buffer, opts: { rai?: boolean; firstPayload?: number; noPts?: boolean } = {}): this {
    const header = pesHeader(streamId, opts.noPts ? null : pts, dts);
    let data = Buffer.concat([header, es]);
    let first = true;
    while (data.length > 0) {
      const cap = first && opts.firstPayload !== undefined ? opts.firstPayload : first && opts.rai ? 182 : 184;
      const n = Math.min(cap, data.length);
      this.packet(pid, data.subarray(0, n), { pusi: first, rai: first && opts.rai });
      first = false;
      data = data.subarray(n);
    }
    return this;
  }

  video(dts: number, key: boolean, opts: { codec?: 'h264' | 'hevc'; rai?: boolean; size?: number; pts?: number; sei?: number } = {}): this {
    const es = (opts.codec ?? 'h264') === 'hevc' ? hevcAu(key, opts.size ?? 400, opts.sei ?? 0) : h264Au(key, opts.size ?? 400, opts.sei ?? 0);
    return this.pes(VPID, 0xe0, opts.pts ?? dts, opts.pts !== undefined ? dts : null, es, { rai: opts.rai ?? key });
  }

  audio(pts: number, size = 300): this {
    return this.pes(APID, 0xc0, pts, null, Buffer.alloc(size, 0x21), { rai: true });
  }

  bytes(): Buffer {
    return Buffer.concat(this.packets);
  }

  get length(): number {
    return this.packets.length * 188;
  }
}

function ts5(b: Buffer, at: number, prefix: number, t: number): void {
  const hi = Math.floor(t / 2 ** 30) & 0x7;
  const lo = t % 2 ** 30;
  b[at] = (prefix << 4) | (hi << 1) | 1;
  b[at + 1] = (lo >> 22) & 0xff;
  b[at + 2] = (((lo >> 15) & 0x7f) << 1) | 1;
  b[at + 3] = (lo >> 7) & 0xff;
  b[at + 4] = ((lo & 0x7f) << 1) | 1;
}

function pesHeader(streamId: number, pts: number | null, dts: number | null): Buffer {
  const timing = pts === null ? 0 : dts === null ? 5 : 10;
  const h = Buffer.alloc(9 + timing);
  h[2] = 1;
  h[3] = streamId;
  h[6] = 0x80;
  h[7] = pts === null ? 0 : dts === null ? 0x80 : 0xc0;
  h[8] = timing;
  if (pts !== null) ts5(h, 9, dts === null ? 2 : 3, pts);
  if (pts !== null && dts !== null) ts5(h, 14, 1, dts);
  return h;
}

const nal = (header: number[], size: number): Buffer => Buffer.concat([Buffer.from([0, 0, 0, 1, ...header]), Buffer.alloc(size, 0x5a)]);

/** AUD, then for a keyframe SPS/PPS/SEI (SEI of `sei` bytes) and an IDR slice, else a non-IDR slice. */
function h264Au(key: boolean, size: number, sei = 0): Buffer {
  const parts: Buffer[] = [Buffer.from([0, 0, 0, 1, 0x09, 0xf0])];
  if (key) parts.push(nal([0x67], 12), nal([0x68], 4), nal([0x06], sei));
  parts.push(nal([key ? 0x65 : 0x41], size));
  return Buffer.concat(parts);
}

function hevcAu(key: boolean, size: number, sei = 0, sliceType?: number): Buffer {
  const h = (type: number): number[] => [type << 1, 1];
  const parts: Buffer[] = [nal(h(35), 1)];
  if (key) parts.push(nal(h(32), 10), nal(h(33), 20), nal(h(34), 5), nal(h(39), sei));
  parts.push(nal(h(sliceType ?? (key ? 19 : 1)), size));
  return Buffer.concat(parts);
}

/** 25 fps in 90 kHz ticks. */
const FRAME = 3600;
const T0 = 126000; // 1.4 s, like ffmpeg

/** `gops` GOPs of `frames` frames, ffmpeg style: PAT+PMT before each keyframe, one audio PES every 5 frames. */
function avStream(gops: number, frames: number, w = new TsWriter().psi()): TsWriter {
  for (let g = 0; g < gops; g++) {
    for (let f = 0; f < frames; f++) {
      const i = g * frames + f;
      if (f === 0 && i > 0) w.section(0, pat()).section(PMT_PID, pmt(AV));
      w.video(T0 + i * FRAME, f === 0);
      if (i % 5 === 0) w.audio(T0 + i * FRAME + 900);
    }
  }
  return w;
}

// ---------- helpers ----------

const randomChunks = (data: Buffer, rand: () => number): Buffer[] => randomChunksOf(data, rand, 16 * 1024);
const split = (chunks: readonly Uint8Array[], options?: Mpeg2TsSplitterOptions): ContainerOutput[] => splitAll(new Mpeg2TsSplitter(options), chunks);
/** Stream offsets where each output starts. */
const offsetsOf = (outs: ContainerOutput[]): number[] => {
  let at = 0;
  return outs.map((o) => ((at += o.bytes.length), at - o.bytes.length));
};

const pidOf = (b: Buffer, at = 0): number => ((b[at + 1]! & 0x1f) << 8) | b[at + 2]!;

// ---------- tests ----------

describe('Mpeg2TsSplitter: init segment and GOP fragments', () => {
  const w = avStream(3, 10);
  const data = w.bytes();
  const reference = split([data]);

  it('emits the opening PSI run as the init segment with the PMT tracks', () => {
    expect(reference.map((o) => o.type)).toEqual(['init', 'fragment', 'fragment', 'fragment']);
    const init = reference[0] as InitSegment;
    expect(init.bytes.equals(data.subarray(0, 3 * 188))).toBe(true);
    expect([pidOf(init.bytes, 0), pidOf(init.bytes, 188), pidOf(init.bytes, 376)]).toEqual([SDT_PID, 0, PMT_PID]);
    expect(init.tracks).toEqual([
      { id: VPID, kind: 'video', timescale: 90000, codec: 'h264' },
      { id: APID, kind: 'audio', timescale: 90000, codec: 'aac' },
    ]);
  });

  it('cuts one fragment per GOP, each starting with the PAT+PMT ffmpeg writes before the keyframe', () => {
    const frags = fragmentsOf(reference);
    const offsets = offsetsOf(reference);
    expect(frags.map((f) => f.sequence)).toEqual([1, 2, 3]);
    for (const [i, f] of frags.entries()) {
      expect(f).toMatchObject({ keyframe: true, videoSamples: 10, startTime: (T0 + i * 10 * FRAME) / 90000, duration: (10 * FRAME) / 90000 });
      expect(f.bytes.length % 188).toBe(0);
      if (i > 0) {
        expect([pidOf(f.bytes, 0), pidOf(f.bytes, 188), pidOf(f.bytes, 376)]).toEqual([0, PMT_PID, VPID]);
        expect(data[offsets[i + 1]! + 376 + 1]! & 0x40).toBe(0x40); // the keyframe's unit start follows
      }
    }
    // The last fragment ends at flush: its duration extrapolates the last frame interval.
    expect(frags[2]!.duration).toBeCloseTo((10 * FRAME) / 90000, 9);
  });

  it('is byte-exact and chunking-independent (1-byte chunks and 200 random chunkings), receivedAt = completing push', () => {
    const expected = summary(reference);
    const rand = prng(0x75);
    const chunkings: Buffer[][] = [Array.from({ length: data.length }, (_, i) => data.subarray(i, i + 1))];
    for (let i = 0; i < 200; i++) chunkings.push(randomChunks(data, rand));
    for (const chunks of chunkings) {
      const outs = split(chunks);
      expect(Buffer.concat(outs.map((o) => o.bytes)).equals(data)).toBe(true);
      expect(summary(outs)).toEqual(expected);
      // A cut is decided once the keyframe's first slice NAL header arrived (here: in its first packet).
      const ends: number[] = [];
      chunks.reduce((end, c) => (ends.push(end + c.length), end + c.length), 0);
      const offsets = offsetsOf(outs);
      outs.forEach((o, i) => {
        if (o.type !== 'fragment') return;
        const next = offsets[i + 1];
        const decidedAt = next === undefined ? data.length : next + 3 * 188; // PAT, PMT, then the keyframe packet
        const push = next === undefined ? chunks.length - 1 : ends.findIndex((e) => e >= decidedAt);
        expect(o.receivedAt).toBe(push);
      });
    }
  });

  it('keeps references to the pushed chunk when an output lies within one (no copy)', () => {
    const outs = split([data]);
    expect(outs[1]!.bytes.buffer).toBe(data.buffer);
  });

  it('accepts Uint8Array views into a larger buffer', () => {
    const backing = new Uint8Array(data.length + 20);
    backing.set(data, 10);
    const view = new Uint8Array(backing.buffer, 10, data.length);
    const outs = split([view.subarray(0, 5000), view.subarray(5000)]);
    expect(Buffer.concat(outs.map((o) => o.bytes)).equals(data)).toBe(true);
    expect(summary(outs)).toEqual(summary(reference));
  });

  it('reports tracks once the init is known', () => {
    const s = new Mpeg2TsSplitter();
    expect(s.tracks).toBeNull();
    s.push(data.subarray(0, 3 * 188));
    expect(s.tracks?.map((t) => t.codec)).toEqual(['h264', 'aac']);
  });
});

describe('Mpeg2TsSplitter: where cuts go', () => {
  it('keeps repeated PAT/PMT inside the fragment where they occur (no new init)', () => {
    const w = new TsWriter().psi();
    for (let i = 0; i < 12; i++) {
      if (i % 3 === 1) w.section(0, pat()).section(PMT_PID, pmt(AV)); // periodic repeats mid-GOP
      w.video(T0 + i * FRAME, i % 6 === 0);
    }
    const outs = split([w.bytes()]);
    expect(outs.map((o) => o.type)).toEqual(['init', 'fragment', 'fragment']);
    expect(fragmentsOf(outs).map((f) => f.videoSamples)).toEqual([6, 6]);
  });

  it('cuts at the keyframe packet itself when no PSI precedes it', () => {
    const w = new TsWriter().psi();
    for (let i = 0; i < 8; i++) w.video(T0 + i * FRAME, i % 4 === 0);
    const data = w.bytes();
    const outs = split([data]);
    const [, f1, f2] = outs;
    expect(f1!.bytes.length + f2!.bytes.length).toBe(data.length - 3 * 188);
    expect(pidOf(f2!.bytes)).toBe(VPID);
    expect(f2!.bytes[1]! & 0x40).toBe(0x40);
  });

  it('keeps audio that precedes the first keyframe with it, and makes leading non-keyframes one keyframe:false fragment', () => {
    const lead = new TsWriter().psi().audio(T0 - 1800).audio(T0);
    for (let i = 0; i < 4; i++) lead.video(T0 + i * FRAME, i === 0);
    const outs = split([lead.bytes()]);
    expect(outs.map((o) => o.type)).toEqual(['init', 'fragment']);
    expect(fragmentsOf(outs)[0]).toMatchObject({ keyframe: true, videoSamples: 4, startTime: T0 / 90000 });

    const mid = new TsWriter().psi();
    for (let i = 0; i < 9; i++) mid.video(T0 + i * FRAME, i === 3 || i === 6); // joined mid-GOP
    const frags = fragmentsOf(split([mid.bytes()]));
    expect(frags.map((f) => [f.keyframe, f.videoSamples, Math.round(f.startTime * 90000), Math.round(f.duration * 90000)])).toEqual([
      [false, 3, T0, 3 * FRAME],
      [true, 3, T0 + 3 * FRAME, 3 * FRAME],
      [true, 3, T0 + 6 * FRAME, 3 * FRAME],
    ]);
  });

  it('cuts sub-GOP fragments (keyframe false) with fragmentDurationMs', () => {
    const w = new TsWriter().psi();
    for (let i = 0; i < 50; i++) w.video(T0 + i * FRAME, i % 25 === 0); // 2 GOPs of 1 s
    const frags = fragmentsOf(split([w.bytes()], { fragmentDurationMs: 200 }));
    expect(frags.map((f) => f.keyframe)).toEqual([true, false, false, false, false, true, false, false, false, false]);
    expect(frags.map((f) => f.videoSamples)).toEqual([5, 5, 5, 5, 5, 5, 5, 5, 5, 5]);
    expect(frags.reduce((n, f) => n + f.duration, 0)).toBeCloseTo(2, 9);
  });

  it('uses DTS for the start time when PTS differs (B-frames)', () => {
    const w = new TsWriter().psi();
    for (let i = 0; i < 6; i++) w.video(T0 + i * FRAME, i % 3 === 0, { pts: T0 + (i + 2) * FRAME });
    const frags = fragmentsOf(split([w.bytes()]));
    expect(frags.map((f) => Math.round(f.startTime * 90000))).toEqual([T0, T0 + 3 * FRAME]);
  });

  it('cuts a stream without video every ~1 s of the audio track (or audioFragmentMs), all keyframe', () => {
    const w = new TsWriter().psi([[0x0f, APID]]);
    const step = 1920 * 4; // 4 AAC frames at 48 kHz per PES: 85.33 ms
    for (let i = 0; i < 40; i++) {
      if (i > 0 && i % 6 === 0) w.section(0, pat()).section(PMT_PID, pmt([[0x0f, APID]]));
      w.audio(T0 + i * step);
    }
    const outs = split([w.bytes()]);
    expect(initsOf(outs)[0]!.tracks).toEqual([{ id: APID, kind: 'audio', timescale: 90000, codec: 'aac' }]);
    const frags = fragmentsOf(outs);
    // 12 PES = 1.024 s is the first start >= 1 s after the fragment's start
    expect(frags.map((f) => [f.keyframe, f.videoSamples, Math.round(f.startTime * 90000)])).toEqual([
      [true, 0, T0],
      [true, 0, T0 + 12 * step],
      [true, 0, T0 + 24 * step],
      [true, 0, T0 + 36 * step],
    ]);
    expect(frags.slice(0, 3).every((f) => Math.abs(f.duration - (12 * step) / 90000) < 1e-9)).toBe(true);
    expect(frags[3]!.duration).toBeCloseTo((4 * step) / 90000, 9);
    // the PSI run right before a cut PES goes with the new fragment
    for (const f of frags.slice(1)) expect([pidOf(f.bytes), pidOf(f.bytes, 188), pidOf(f.bytes, 376)]).toEqual([0, PMT_PID, APID]);
    expect(fragmentsOf(split([w.bytes()], { audioFragmentMs: 500 }))).toHaveLength(7);
  });

  it('handles the 33-bit timestamp wrap relative to the first timestamp', () => {
    const w = new TsWriter().psi();
    const start = 2 ** 33 - 5 * FRAME;
    for (let i = 0; i < 10; i++) w.video((start + i * FRAME) % 2 ** 33, i % 5 === 0);
    const frags = fragmentsOf(split([w.bytes()]));
    expect(frags.map((f) => Math.round(f.startTime * 90000))).toEqual([start, start + 5 * FRAME]);
    expect(frags.map((f) => Math.round(f.duration * 90000))).toEqual([5 * FRAME, 5 * FRAME]);
  });
});

describe('Mpeg2TsSplitter: keyframe detection', () => {
  const frameTypes = (w: TsWriter, opts?: Mpeg2TsSplitterOptions): boolean[] => fragmentsOf(split([w.bytes()], opts)).map((f) => f.keyframe);

  it('finds the IDR slice behind a large SEI spanning packets, and NAL start codes split across packets', () => {
    const w = new TsWriter().psi();
    w.video(T0, true, { sei: 1500 });
    w.video(T0 + FRAME, false);
    // A keyframe whose IDR start code straddles the packet boundary: 00 00 | 01 65
    const au = h264Au(true, 300);
    const idr = au.indexOf(Buffer.from([0, 0, 0, 1, 0x65]));
    const header = pesHeader(0xe0, T0 + 2 * FRAME, null);
    w.pes(VPID, 0xe0, T0 + 2 * FRAME, null, au, { firstPayload: header.length + idr + 3 });
    w.video(T0 + 3 * FRAME, false);
    const frags = fragmentsOf(split([w.bytes()]));
    expect(frags.map((f) => [f.keyframe, f.videoSamples])).toEqual([[true, 2], [true, 2]]);
  });

  it('trusts the slice type over random_access_indicator', () => {
    const w = new TsWriter().psi();
    w.video(T0, true);
    w.video(T0 + FRAME, false, { rai: true }); // a recovery point flagged key: not an IDR, no cut
    w.video(T0 + 2 * FRAME, true, { rai: false }); // an IDR without the flag: a cut
    const frags = fragmentsOf(split([w.bytes()]));
    expect(frags.map((f) => f.videoSamples)).toEqual([2, 1]);
  });

  it('falls back to random_access_indicator when no slice shows up within keyframeScanBytes or the PES', () => {
    const w = new TsWriter().psi();
    w.video(T0, true, { sei: 3000 });
    w.video(T0 + FRAME, false);
    w.video(T0 + 2 * FRAME, true, { sei: 3000 });
    w.video(T0 + 3 * FRAME, false, { sei: 0, rai: false });
    expect(frameTypes(w)).toEqual([true, true]);
    // scan bound 1 KiB: the keyframes' slices are out of reach, their RAI decides
    expect(frameTypes(w, { keyframeScanBytes: 1024 })).toEqual([true, true]);
    const noRai = new TsWriter().psi();
    noRai.video(T0, true, { sei: 3000, rai: false });
    noRai.video(T0 + FRAME, true, { sei: 3000, rai: false });
    expect(frameTypes(noRai, { keyframeScanBytes: 1024 })).toEqual([false]);
    expect(frameTypes(noRai)).toEqual([true, true]);
    // a PES with no VCL NAL at all (only SEI) ends undecided: RAI decides
    const seiOnly = new TsWriter().psi();
    seiOnly.video(T0, true);
    seiOnly.pes(VPID, 0xe0, T0 + FRAME, null, nal([0x06], 50), { rai: true });
    seiOnly.video(T0 + 2 * FRAME, false);
    expect(fragmentsOf(split([seiOnly.bytes()])).map((f) => f.videoSamples)).toEqual([1, 2]);
  });

  it('recognises H.265 IRAP pictures (IDR, CRA, BLA) and not trailing pictures', () => {
    const streams: [number, number][] = [[0x24, VPID]];
    for (const [type, key] of [[19, true], [20, true], [21, true], [16, true], [1, false], [0, false], [9, false]] as const) {
      const w = new TsWriter().psi(streams);
      w.video(T0, true, { codec: 'hevc', sei: 2000 });
      w.pes(VPID, 0xe0, T0 + FRAME, null, hevcAu(false, 200, 0, type), { rai: false });
      const frags = fragmentsOf(split([w.bytes()]));
      expect(initsOf(split([w.bytes()]))[0]!.tracks[0]!.codec).toBe('hevc');
      expect(frags.length).toBe(key ? 2 : 1);
    }
  });

  it('reads a PES header that spans packets (large adaptation field in the first packet)', () => {
    const w = new TsWriter().psi();
    w.video(T0, true);
    const au = h264Au(true, 500);
    w.pes(VPID, 0xe0, T0 + FRAME + 1800, T0 + FRAME, au, { firstPayload: 4 }); // 4 of the 19 header bytes
    w.video(T0 + 2 * FRAME, false);
    const frags = fragmentsOf(split([w.bytes()]));
    expect(frags.map((f) => [Math.round(f.startTime * 90000), f.videoSamples])).toEqual([[T0, 1], [T0 + FRAME, 2]]);
  });
});

describe('Mpeg2TsSplitter: PSI', () => {
  it('reassembles a PMT spanning packets and a section that starts mid-packet after a pointer_field', () => {
    const big: [number, number, number][] = [[0x1b, VPID, 150], [0x0f, APID, 150]];
    const w = new TsWriter().section(0, pat()).section(PMT_PID, pmt(big));
    for (let i = 0; i < 4; i++) w.video(T0 + i * FRAME, i % 2 === 0);
    const outs = split([w.bytes()]);
    expect((outs[0] as InitSegment).bytes.length).toBe(3 * 188);
    expect((outs[0] as InitSegment).tracks.map((t) => t.id)).toEqual([VPID, APID]);
    expect(fragmentsOf(outs)).toHaveLength(2);

    // PAT whose packet first finishes a previous (junk) section tail, then starts the PAT at pointer 3
    const s = pat();
    const body = Buffer.alloc(184, 0xff);
    body[0] = 3;
    body.set([0xaa, 0xbb, 0xcc], 1);
    s.copy(body, 4);
    const w2 = new TsWriter().packet(0, body, { pusi: true }).section(PMT_PID, pmt(AV));
    w2.video(T0, true);
    expect(split([w2.bytes()]).map((o) => o.type)).toEqual(['init', 'fragment']);
  });

  it('emits a second init when PAT/PMT change, ending the open fragment where the new PSI run starts', () => {
    const w = avStream(2, 5);
    const changeAt = w.length;
    w.psi([[0x24, 0x200]], { version: 1 });
    for (let i = 0; i < 10; i++) w.pes(0x200, 0xe0, 900000 + i * FRAME, null, hevcAu(i % 5 === 0, 300), { rai: i % 5 === 0 });
    const data = w.bytes();
    for (const chunks of [[data], randomChunks(data, prng(9))]) {
      const outs = split(chunks);
      expect(Buffer.concat(outs.map((o) => o.bytes)).equals(data)).toBe(true);
      expect(outs.map((o) => o.type)).toEqual(['init', 'fragment', 'fragment', 'init', 'fragment', 'fragment']);
      expect(offsetsOf(outs)[3]).toBe(changeAt);
      const inits = initsOf(outs);
      expect(inits[1]!.bytes.length).toBe(3 * 188);
      expect(inits[1]!.tracks).toEqual([{ id: 0x200, kind: 'video', timescale: 90000, codec: 'hevc' }]);
      const frags = fragmentsOf(outs);
      expect(frags.map((f) => [f.sequence, f.keyframe, f.videoSamples, Math.round(f.startTime * 90000)])).toEqual([
        [1, true, 5, T0],
        [2, true, 5, T0 + 5 * FRAME],
        [3, true, 5, 900000],
        [4, true, 5, 900000 + 5 * FRAME],
      ]);
      // the fragment cut short by the new init gets the extrapolated duration
      expect(frags[1]!.duration * 90000).toBeCloseTo(5 * FRAME, 6);
    }
  });

  it('treats a changed PAT with the same PMT as a new init, and an unchanged repeat as none', () => {
    const w = avStream(1, 5);
    const body = Buffer.from([0, 1, 0xe0 | (PMT_PID >> 8), PMT_PID & 0xff]);
    w.section(0, section(0x00, 2, body)).section(PMT_PID, pmt(AV)); // transport_stream_id 1 -> 2
    for (let i = 5; i < 10; i++) w.video(T0 + i * FRAME, i === 5);
    w.section(0, section(0x00, 2, body)).section(PMT_PID, pmt(AV));
    for (let i = 10; i < 15; i++) w.video(T0 + i * FRAME, i === 10);
    const outs = split([w.bytes()]);
    expect(outs.map((o) => o.type)).toEqual(['init', 'fragment', 'init', 'fragment', 'fragment']);
    expect(initsOf(outs)[1]!.bytes.length).toBe(2 * 188);
    expect(fragmentsOf(outs).map((f) => f.keyframe)).toEqual([true, true, true]);
  });

  it('follows a PAT that moves the PMT to another PID', () => {
    const w = avStream(1, 5);
    w.psi(AV, { pmtPid: 0x1001, sdt: false });
    for (let i = 5; i < 10; i++) w.video(T0 + i * FRAME, i === 5);
    const outs = split([w.bytes()]);
    expect(outs.map((o) => o.type)).toEqual(['init', 'fragment', 'init', 'fragment']);
    expect(pidOf((outs[2] as InitSegment).bytes, 188)).toBe(0x1001);
  });

  it('emits PSI-only bytes before a new init as a trailer', () => {
    const v = new TsWriter().psi();
    v.packet(0x1fff, Buffer.alloc(184, 0xff));
    v.packet(0x300, Buffer.alloc(184, 0x11)); // a PID the PMT does not list: carried, ends the PSI run
    v.psi([[0x1b, VPID]], { version: 3, sdt: false });
    v.video(T0, true);
    const o2 = split([v.bytes()]);
    expect(o2.map((o) => o.type)).toEqual(['init', 'trailer', 'init', 'fragment']);
    expect(o2[1]!.bytes.length).toBe(2 * 188);
  });

  it('ignores a PMT of another program and a table that is not yet current', () => {
    const w = new TsWriter().psi();
    w.section(PMT_PID, pmt([[0x24, 0x300]], 7)); // program 7 on the same PID
    const next = pmt([[0x24, 0x300]]);
    next[5] = next[5]! & 0xfe; // current_next_indicator 0
    next.writeUInt32BE(crc32(next.subarray(0, next.length - 4)), next.length - 4);
    w.section(PMT_PID, next);
    for (let i = 0; i < 4; i++) w.video(T0 + i * FRAME, i % 2 === 0);
    expect(split([w.bytes()]).map((o) => o.type)).toEqual(['init', 'fragment', 'fragment']);
  });

  it('maps stream types to tracks', () => {
    const w = new TsWriter().psi([[0x1b, 0x100], [0x24, 0x101], [0x0f, 0x102], [0x11, 0x103], [0x03, 0x104], [0x06, 0x105], [0x86, 0x106]]);
    const [init] = split([w.bytes()]);
    expect((init as InitSegment).tracks.map((t) => [t.id, t.kind, t.codec])).toEqual([
      [0x100, 'video', 'h264'],
      [0x101, 'video', 'hevc'],
      [0x102, 'audio', 'aac'],
      [0x103, 'audio', 'aac_latm'],
      [0x104, 'audio', 'mpeg_audio'],
      [0x105, 'other', 'other'],
      [0x106, 'other', 'other'],
    ]);
  });
});

describe('Mpeg2TsSplitter: errors and bounds', () => {
  const good = avStream(2, 5).bytes();

  it('has a 64 MiB default fragment bound', () => {
    expect(DEFAULT_MAX_FRAGMENT_BYTES).toBe(64 * 1024 * 1024);
  });

  it('fails on lost sync, naming the offset, without resync', () => {
    const bad = Buffer.from(good);
    const at = 188 * 7;
    bad[at] = 0x46;
    const e = expectContainerError(thrown(() => split([bad])), new RegExp(`lost sync: byte 0x46 at offset ${at}`));
    expect(e.offset).toBe(at);
    expect(e.unit).toBe('packet');
    // a partial packet is checked on its first byte
    const s = new Mpeg2TsSplitter();
    s.push(good.subarray(0, at));
    expectContainerError(thrown(() => s.push(bad.subarray(at, at + 10))), /lost sync/);
    // a byte missing mid-packet: the next packet boundary is off
    const short = Buffer.concat([good.subarray(0, 188 * 5 + 10), good.subarray(188 * 5 + 11)]);
    expect(expectContainerError(thrown(() => split([short])), /lost sync: byte 0x.. at offset 1128/).offset).toBe(188 * 6);
  });

  it('rejects garbage and non-TS input at offset 0', () => {
    const garbage = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256));
    expect(expectContainerError(thrown(() => new Mpeg2TsSplitter().push(garbage)), /offset 0/).offset).toBe(0);
    expectContainerError(thrown(() => new Mpeg2TsSplitter().push(Buffer.from('<!DOCTYPE html><html>'))), /lost sync: byte 0x3c at offset 0/);
  });

  it('rejects media before the first PAT+PMT', () => {
    const w = new TsWriter().video(T0, true).psi();
    const e = expectContainerError(thrown(() => split([w.bytes()])), /media packet on PID 256 at offset 0 before the first PAT and PMT/);
    expect(e.offset).toBe(0);
  });

  it('rejects bad packet headers', () => {
    const mutate = (at: number, fn: (b: Buffer) => void): Buffer => {
      const b = Buffer.from(good);
      fn(b.subarray(at, at + 188));
      return b;
    };
    const p = 188 * 5;
    expectContainerError(thrown(() => split([mutate(p, (b) => (b[1]! |= 0x80))])), /transport_error_indicator set \(TS packet on PID \d+ at offset 940\)/);
    expectContainerError(thrown(() => split([mutate(p, (b) => (b[3]! |= 0x80))])), /scrambled/);
    expectContainerError(thrown(() => split([mutate(p, (b) => (b[3]! &= 0xcf))])), /reserved adaptation_field_control/);
    expectContainerError(thrown(() => split([mutate(p, (b) => ((b[3] = (b[3]! & 0xcf) | 0x30), (b[4] = 183)))])), /adaptation_field_length 183 does not fit/);
  });

  it('rejects a PSI section with a bad CRC, an oversized section_length or a broken PMT', () => {
    const badCrc = pmt(AV);
    badCrc[badCrc.length - 1]! ^= 1;
    const w = new TsWriter().section(0, pat()).section(PMT_PID, badCrc);
    expect(expectContainerError(thrown(() => split([w.bytes()])), /PMT fails its CRC-32/).unit).toBe('PMT');

    const huge = pat();
    huge.writeUInt16BE(0xb000 | 1022, 1);
    expectContainerError(thrown(() => split([new TsWriter().section(0, huge).bytes()])), /section_length 1022 over 1021/);

    const reserved = new TsWriter().section(0, pat()).section(PMT_PID, pmt([[0x1b, 0x11]]));
    expectContainerError(thrown(() => split([reserved.bytes()])), /reserved or table PID 17/);
    const twice = new TsWriter().section(0, pat()).section(PMT_PID, pmt([[0x1b, VPID], [0x0f, VPID]]));
    expectContainerError(thrown(() => split([twice.bytes()])), /lists PID 256 twice/);
    const pointer = Buffer.alloc(184, 0xff);
    pointer[0] = 200;
    expectContainerError(thrown(() => split([new TsWriter().packet(0, pointer, { pusi: true }).bytes()])), /pointer_field 200 overruns/);
  });

  it('rejects broken PES headers on the video track', () => {
    const noStart = new TsWriter().psi().pes(VPID, 0xe0, T0, null, h264Au(true, 10));
    const first = noStart.packets[3]!;
    first[first.indexOf(Buffer.from([0, 0, 1, 0xe0])) + 2] = 0x02; // 00 00 02
    expectContainerError(thrown(() => split([noStart.bytes()])), /PES on PID 256 at offset 564: no start code/);
    const noPts = new TsWriter().psi().pes(VPID, 0xe0, T0, null, h264Au(true, 10), { noPts: true });
    expectContainerError(thrown(() => split([noPts.bytes()])), /PES on PID 256 at offset 564 has no PTS/);
    const cut = new TsWriter().psi().pes(VPID, 0xe0, T0, null, h264Au(true, 10), { firstPayload: 4 });
    cut.packets.splice(4);
    cut.video(T0 + FRAME, true);
    expectContainerError(thrown(() => split([cut.bytes()])), /PES header on PID 256 at offset 564 is cut short/);
  });

  it('refuses more than maxFragmentBytes without a cut, at the same stream position for any chunking', () => {
    const w = new TsWriter().psi();
    for (let i = 0; i < 40; i++) w.video(T0 + i * FRAME, i === 0, { size: 1000 });
    const data = w.bytes();
    let offset: number | null = null;
    for (const chunks of [[data], randomChunks(data, prng(4))]) {
      const e = expectContainerError(thrown(() => split(chunks, { maxFragmentBytes: 20_000 })), /without a cut, over maxFragmentBytes 20000/);
      offset ??= e.offset;
      expect(e.offset).toBe(offset);
    }
    // the init run is bounded too
    const psi = new TsWriter();
    for (let i = 0; i < 20; i++) psi.packet(0x1fff, Buffer.alloc(184));
    expectContainerError(thrown(() => split([psi.bytes()], { maxFragmentBytes: 1880 })), /without a PAT\+PMT, over maxFragmentBytes 1880/);
    expect(() => new Mpeg2TsSplitter({ maxFragmentBytes: 100 })).toThrow(RangeError);
  });

  it('reports a stream that ends inside a packet or before its PAT/PMT, with the bytes it drops', () => {
    const cut = good.subarray(0, good.length - 100);
    const s = new Mpeg2TsSplitter();
    const outs = s.push(cut);
    const emitted = outs.reduce((n, o) => n + o.bytes.length, 0);
    expect(outs.map((o) => o.type)).toEqual(['init', 'fragment']);
    const e = expectContainerError(thrown(() => s.flush()), /stream ended inside a TS packet: 88 of 188 bytes/);
    expect(e.droppedBytes).toBe(cut.length - emitted);
    const early = expectContainerError(thrown(() => split([good.subarray(0, 2 * 188)])), /ended before a complete PAT and PMT, 376 bytes dropped/);
    expect(early.droppedBytes).toBe(376);
    expect(split([])).toEqual([]);
  });

  it('delivers outputs completed before an error, then stays failed', () => {
    const s = new Mpeg2TsSplitter();
    const outs = s.push(Buffer.concat([good, Buffer.from('garbage after the stream')]));
    expect(outs.map((o) => o.type)).toEqual(['init', 'fragment']);
    const e = expectContainerError(thrown(() => s.push(Buffer.from('more'))), /lost sync/);
    expect(thrown(() => s.flush())).toBe(e);
    const ended = new Mpeg2TsSplitter();
    ended.flush();
    expectContainerError(thrown(() => ended.push(good)), /push after flush/);
  });

  it('fuzz: random bytes and bit flips in a valid stream raise only ContainerError, quickly', () => {
    const rand = prng(2024);
    const valid = avStream(3, 10).bytes();
    const started = performance.now();
    let errors = 0;
    for (let i = 0; i < 300; i++) {
      let input: Buffer;
      if (i % 3 === 0) {
        input = Buffer.from(Array.from({ length: 188 * (1 + Math.floor(rand() * 40)) }, () => Math.floor(rand() * 256)));
        if (i % 2 === 0) for (let p = 0; p < input.length; p += 188) input[p] = 0x47; // past the sync check
      } else {
        input = Buffer.from(valid);
        const flips = 1 + Math.floor(rand() * 8);
        for (let k = 0; k < flips; k++) input[Math.floor(rand() * input.length)]! ^= 1 << Math.floor(rand() * 8);
      }
      const { outs, failed } = splitUntilContainerError(new Mpeg2TsSplitter({ maxFragmentBytes: 64 * 1024 }), randomChunks(input, rand));
      if (failed) errors++;
      // whatever came out is a byte-exact prefix of the input, in whole packets
      const joined = Buffer.concat(outs.map((o) => o.bytes));
      expect(joined.equals(input.subarray(0, joined.length))).toBe(true);
      expect(joined.length % 188).toBe(0);
      expect(outs.length).toBeLessThanOrEqual(input.length / 188 + 1);
    }
    expect(errors).toBeGreaterThan(100);
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});
