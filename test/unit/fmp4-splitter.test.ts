/**
 * Fmp4Splitter on synthetic fMP4 built here box by box (sample tables, box sizes, errors) and on
 * the committed fixtures read as bytes. ffmpeg-made streams and ffprobe's view of the fixtures are
 * in test/integration/fmp4-splitter-ffmpeg.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_BOX_BYTES, Fmp4Splitter } from '../../src/container/index.js';
import type { ContainerOutput, MediaFragment } from '../../src/container/index.js';
import { prng } from '../../src/util/prng.js';
import { randomChunks } from '../helpers/bytes.js';
import { expectContainerError, fragmentsOf, initsOf, splitAll } from '../helpers/container.js';
import { thrown } from '../helpers/expect-error.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures');

// ---------- helpers ----------

const split = (chunks: readonly Uint8Array[], options?: { maxBoxBytes?: number }): ContainerOutput[] => splitAll(new Fmp4Splitter(options), chunks);


const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const box = (type: string, ...parts: Buffer[]): Buffer => {
  const payload = Buffer.concat(parts);
  return Buffer.concat([u32(8 + payload.length), Buffer.from(type, 'latin1'), payload]);
};
const box64 = (type: string, ...parts: Buffer[]): Buffer => {
  const payload = Buffer.concat(parts);
  return Buffer.concat([u32(1), Buffer.from(type, 'latin1'), u64(16 + payload.length), payload]);
};
const box0 = (type: string, ...parts: Buffer[]): Buffer => Buffer.concat([u32(0), Buffer.from(type, 'latin1'), ...parts]);
const full = (version: number, flags: number): Buffer => u32(((version & 0xff) << 24) | (flags & 0xffffff));

const SYNC = 0x02000000;
const NON_SYNC = 0x01010000;

function trak(id: number, handler: string, timescale: number, codec: string, version = 0): Buffer {
  const times = version === 1 ? Buffer.alloc(16) : Buffer.alloc(8);
  return box(
    'trak',
    box('tkhd', full(version, 3), times, u32(id), Buffer.alloc(version === 1 ? 68 : 64)),
    box(
      'mdia',
      box('mdhd', full(version, 0), times, u32(timescale), version === 1 ? u64(0) : u32(0), u32(0)),
      box('hdlr', full(0, 0), u32(0), Buffer.from(handler, 'latin1'), Buffer.alloc(13)),
      box('minf', box('stbl', box('stsd', full(0, 0), u32(1), box(codec, Buffer.alloc(8))))),
    ),
  );
}
const trex = (id: number, duration: number, flags: number): Buffer =>
  box('trex', full(0, 0), u32(id), u32(1), u32(duration), u32(0), u32(flags));

const FTYP = box('ftyp', Buffer.from('isom', 'latin1'), u32(512), Buffer.from('isomiso2avc1mp41', 'latin1'));
/** Video track 1 at 90 kHz (trex: 3000 ticks, non-sync) and audio track 2 at 48 kHz (trex: 1024, sync). */
const MOOV = box('moov', box('mvhd', full(0, 0), Buffer.alloc(96)), trak(1, 'vide', 90000, 'hvc1', 1), trak(2, 'soun', 48000, 'mp4a'),
  box('mvex', trex(1, 3000, NON_SYNC), trex(2, 1024, 0)));

interface TrunSpec {
  flags: number;
  firstFlags?: number;
  samples: { duration?: number; size?: number; flags?: number; cto?: number }[];
}
function trun({ flags, firstFlags, samples }: TrunSpec): Buffer {
  const parts = [full(flags & 0x800 ? 1 : 0, flags), u32(samples.length)];
  if (flags & 0x1) parts.push(u32(0));
  if (flags & 0x4) parts.push(u32(firstFlags ?? 0));
  for (const s of samples) {
    if (flags & 0x100) parts.push(u32(s.duration ?? 0));
    if (flags & 0x200) parts.push(u32(s.size ?? 0));
    if (flags & 0x400) parts.push(u32(s.flags ?? 0));
    if (flags & 0x800) parts.push(u32(s.cto ?? 0));
  }
  return box('trun', ...parts);
}
function traf(id: number, opts: { tfdt?: { version: 0 | 1; time: number }; defaultDuration?: number; defaultFlags?: number; truns: TrunSpec[] }): Buffer {
  const tfhdFlags = 0x020000 | (opts.defaultDuration !== undefined ? 0x8 : 0) | (opts.defaultFlags !== undefined ? 0x20 : 0);
  const tfhd = [full(0, tfhdFlags), u32(id)];
  if (opts.defaultDuration !== undefined) tfhd.push(u32(opts.defaultDuration));
  if (opts.defaultFlags !== undefined) tfhd.push(u32(opts.defaultFlags));
  const parts = [box('tfhd', ...tfhd)];
  if (opts.tfdt) parts.push(box('tfdt', full(opts.tfdt.version, 0), opts.tfdt.version === 1 ? u64(opts.tfdt.time) : u32(opts.tfdt.time)));
  for (const t of opts.truns) parts.push(trun(t));
  return box('traf', ...parts);
}
const moof = (seq: number, ...trafs: Buffer[]): Buffer => box('moof', box('mfhd', full(0, 0), u32(seq)), ...trafs);
const MDAT = box('mdat', Buffer.from('not really media'));

describe('Fmp4Splitter stream boundaries (synthetic)', () => {
  it('accepts a bare moov after fragments as a new init segment', () => {
    const v1 = moof(1, traf(1, { tfdt: { version: 0, time: 0 }, truns: [{ flags: 0x4, firstFlags: SYNC, samples: [{}] }] }));
    const stream = Buffer.concat([FTYP, MOOV, v1, MDAT, MOOV, v1, MDAT]);
    const outs = split([stream]);
    expect(outs.map((o) => o.type)).toEqual(['init', 'fragment', 'init', 'fragment']);
    expect(outs[2]?.bytes.equals(MOOV)).toBe(true);
  });
});

describe('Fmp4Splitter sample tables (synthetic)', () => {
  const one = (...frags: Buffer[]): MediaFragment[] => fragmentsOf(split([Buffer.concat([FTYP, MOOV, ...frags])]));

  it('reads moov tracks, including version-1 tkhd/mdhd', () => {
    const outs = split([Buffer.concat([FTYP, MOOV])]);
    expect(initsOf(outs)[0]?.tracks).toEqual([
      { id: 1, kind: 'video', timescale: 90000, codec: 'hvc1' },
      { id: 2, kind: 'audio', timescale: 48000, codec: 'mp4a' },
    ]);
  });

  it('uses trun first-sample-flags, trex default durations and a 64-bit tfdt; the video traf wins over audio', () => {
    const [f] = one(
      moof(
        7,
        traf(2, { tfdt: { version: 0, time: 48000 }, truns: [{ flags: 0x200, samples: [{ size: 1 }, { size: 1 }] }] }),
        traf(1, { tfdt: { version: 1, time: 2 ** 33 }, truns: [{ flags: 0x205, firstFlags: SYNC, samples: [{}, {}, {}, {}] }] }),
      ),
      MDAT,
    );
    expect(f).toMatchObject({ sequence: 7, keyframe: true, videoSamples: 4, startTime: 2 ** 33 / 90000, duration: 12000 / 90000 });
  });

  it('falls back to tfhd default duration and flags', () => {
    const [key, delta] = one(
      moof(1, traf(1, { tfdt: { version: 0, time: 0 }, defaultDuration: 1500, defaultFlags: SYNC, truns: [{ flags: 0x200, samples: [{}, {}] }] })),
      MDAT,
      moof(2, traf(1, { tfdt: { version: 0, time: 3000 }, defaultDuration: 1500, defaultFlags: NON_SYNC, truns: [{ flags: 0, samples: [{}, {}] }] })),
      MDAT,
    );
    expect(key).toMatchObject({ keyframe: true, duration: 3000 / 90000, startTime: 0 });
    expect(delta).toMatchObject({ keyframe: false, duration: 3000 / 90000, startTime: 3000 / 90000 });
  });

  it('uses per-sample durations, flags and composition offsets', () => {
    const samples = [{ duration: 3000, flags: NON_SYNC, cto: 6000 }, { duration: 3001, flags: SYNC, cto: 0 }, { duration: 2999, flags: SYNC, cto: 3000 }];
    const [f] = one(moof(1, traf(1, { tfdt: { version: 0, time: 90000 }, truns: [{ flags: 0xf01, samples }] })), MDAT);
    expect(f).toMatchObject({ keyframe: false, duration: 9000 / 90000, startTime: 1, videoSamples: 3 });
  });

  it('uses trex default flags when nothing else says, and sums several truns', () => {
    const [f] = one(moof(1, traf(1, { truns: [{ flags: 0, samples: [{}] }] })), MDAT);
    expect(f?.keyframe).toBe(false);
    const [g] = one(
      moof(1, traf(1, { truns: [{ flags: 0x4, firstFlags: SYNC, samples: [{}, {}] }, { flags: 0x104, firstFlags: NON_SYNC, samples: [{ duration: 10 }] }] })),
      MDAT,
    );
    expect(g).toMatchObject({ keyframe: true, videoSamples: 3, duration: 6010 / 90000 });
  });

  it('continues start times from the previous fragment when a traf has no tfdt', () => {
    const frags = one(
      moof(1, traf(1, { tfdt: { version: 0, time: 9000 }, truns: [{ flags: 0x4, firstFlags: SYNC, samples: [{}, {}] }] })),
      MDAT,
      moof(2, traf(1, { truns: [{ flags: 0, samples: [{}] }] })),
      MDAT,
    );
    expect(frags.map((f) => f.startTime)).toEqual([0.1, 15000 / 90000]);
  });

  it('marks an audio-only fragment of an A/V stream not-key, and every fragment of an audio-only stream key', () => {
    const [audioOnly] = one(moof(1, traf(2, { tfdt: { version: 0, time: 96000 }, truns: [{ flags: 0, samples: [{}, {}] }] })), MDAT);
    expect(audioOnly).toMatchObject({ keyframe: false, videoSamples: 0, startTime: 2, duration: 2048 / 48000 });
    const audioMoov = box('moov', trak(5, 'soun', 44100, 'mp4a'));
    const outs = split([Buffer.concat([FTYP, audioMoov, moof(3, traf(5, { tfdt: { version: 1, time: 44100 }, defaultDuration: 1024, truns: [{ flags: 0, samples: [{}] }] })), MDAT])]);
    expect(fragmentsOf(outs)[0]).toMatchObject({ keyframe: true, videoSamples: 0, startTime: 1, duration: 1024 / 44100 });
    expect(initsOf(outs)[0]?.tracks).toEqual([{ id: 5, kind: 'audio', timescale: 44100, codec: 'mp4a' }]);
  });

  it('keeps styp/sidx/prft/free boxes in front of the fragment they precede', () => {
    const f1 = moof(1, traf(1, { tfdt: { version: 0, time: 0 }, truns: [{ flags: 0x4, firstFlags: SYNC, samples: [{}] }] }));
    const styp = box('styp', Buffer.from('msdh', 'latin1'), u32(0));
    const prft = box('prft', full(1, 0), u32(1), u64(123), u64(0));
    const sidx = box('sidx', full(0, 0), Buffer.alloc(24));
    const free = box('free');
    const stream = Buffer.concat([FTYP, MOOV, styp, sidx, prft, f1, MDAT, free, f1, MDAT]);
    const outs = split(randomChunks(stream, prng(3)));
    expect(outs.map((o) => o.type)).toEqual(['init', 'fragment', 'fragment']);
    expect(outs[1]?.bytes.equals(Buffer.concat([styp, sidx, prft, f1, MDAT]))).toBe(true);
    expect(outs[2]?.bytes.equals(Buffer.concat([free, f1, MDAT]))).toBe(true);
  });
});

describe('Fmp4Splitter box sizes', () => {
  const frag = moof(9, box64('traf', box64('tfhd', full(0, 0x20000), u32(1)), box('tfdt', full(1, 0), u64(180000)),
    box('trun', full(0, 0x4), u32(2), u32(SYNC))));
  it('handles 64-bit box sizes at top level and inside moof', () => {
    const stream = Buffer.concat([box64('ftyp', Buffer.from('isom', 'latin1'), u32(0)), box64('moov', MOOV.subarray(8)), frag, box64('mdat', Buffer.alloc(300, 7))]);
    for (const chunks of [[stream], Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1)), randomChunks(stream, prng(11))]) {
      const outs = split(chunks);
      expect(Buffer.concat(outs.map((o) => o.bytes)).equals(stream)).toBe(true);
      expect(initsOf(outs)[0]?.tracks).toHaveLength(2);
      expect(fragmentsOf(outs)).toEqual([
        expect.objectContaining({ sequence: 9, keyframe: true, startTime: 2, duration: 6000 / 90000, videoSamples: 2, bytes: Buffer.concat([frag, box64('mdat', Buffer.alloc(300, 7))]) }),
      ]);
    }
  });

  it('completes a size==0 mdat (to end of stream) at flush', () => {
    const mdat0 = box0('mdat', Buffer.alloc(1000, 1));
    const stream = Buffer.concat([FTYP, MOOV, frag, MDAT, frag, mdat0]);
    const s = new Fmp4Splitter();
    const pushed = randomChunks(stream, prng(5)).flatMap((c) => s.push(c));
    expect(pushed.map((o) => o.type)).toEqual(['init', 'fragment']);
    const flushed = s.flush();
    expect(flushed).toHaveLength(1);
    expect(flushed[0]?.type).toBe('fragment');
    expect(flushed[0]?.bytes.equals(Buffer.concat([frag, mdat0]))).toBe(true);
    expect(Buffer.concat([...pushed, ...flushed].map((o) => o.bytes)).equals(stream)).toBe(true);
  });

  it('emits a size==0 trailing box as trailer at flush', () => {
    const mfra0 = box0('mfra', Buffer.alloc(40, 2));
    const stream = Buffer.concat([FTYP, MOOV, frag, MDAT, mfra0]);
    const outs = split([stream]);
    expect(outs.map((o) => o.type)).toEqual(['init', 'fragment', 'trailer']);
    expect(outs[2]?.bytes.equals(mfra0)).toBe(true);
  });
});

describe('Fmp4Splitter errors', () => {
  const av = readFileSync(join(FIXTURES, 'av-gop1s.mp4'));
  const frag = moof(1, traf(1, { tfdt: { version: 0, time: 0 }, truns: [{ flags: 0x4, firstFlags: SYNC, samples: [{}] }] }));

  it('has a 64 MiB default box limit', () => {
    expect(DEFAULT_MAX_BOX_BYTES).toBe(64 * 1024 * 1024);
  });

  it('rejects garbage at the first header', () => {
    const garbage = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256));
    const e = expectContainerError(thrown(() => new Fmp4Splitter().push(garbage)), /offset 0/);
    expect(e.offset).toBe(0);
    expectContainerError(thrown(() => new Fmp4Splitter().push(Buffer.from('<!DOCTYPE html><html>'))), /stream does not start with ftyp/);
  });

  it('rejects boxes smaller than their header, and 64-bit sizes below 16', () => {
    expectContainerError(thrown(() => new Fmp4Splitter().push(Buffer.concat([u32(4), Buffer.from('ftyp')]))), /size 4 < 8.*offset 0|offset 0.*size 4 < 8/);
    expectContainerError(thrown(() => new Fmp4Splitter().push(Buffer.concat([u32(1), Buffer.from('ftyp'), u64(12)]))), /64-bit size 12 < 16/);
    // The init segment completes in the same push, so the error surfaces on the next call (flush).
    const e = expectContainerError(thrown(() => split([Buffer.concat([FTYP, MOOV, u32(3), Buffer.from('moof')])])), /box moof at offset \d+ has size 3 < 8/);
    expect(e.offset).toBe(FTYP.length + MOOV.length);
  });

  it('rejects out-of-order structure, naming the box type and offset', () => {
    const at = FTYP.length + MOOV.length;
    const cases: [Buffer, RegExp, number][] = [
      [MOOV, /does not start with ftyp \(box moov at offset 0\)/, 0],
      [Buffer.concat([FTYP, frag]), new RegExp(`moof before moov \\(box moof at offset ${FTYP.length}\\)`), FTYP.length],
      [Buffer.concat([FTYP, FTYP]), /ftyp before moov/, FTYP.length],
      [Buffer.concat([FTYP, MOOV, MDAT]), new RegExp(`mdat without a preceding moof \\(box mdat at offset ${at}\\)`), at],
      [Buffer.concat([FTYP, MOOV, frag, frag]), new RegExp(`moof at offset ${at} is not followed by mdat \\(box moof at offset ${at + frag.length}\\)`), at + frag.length],
      [Buffer.concat([FTYP, MOOV, frag, FTYP]), /is not followed by mdat \(box ftyp/, at + frag.length],
    ];
    for (const [stream, pattern, offset] of cases) {
      const e = expectContainerError(thrown(() => split([stream])), pattern);
      expect(e.offset).toBe(offset);
    }
  });

  it('rejects inconsistent moof contents', () => {
    const stranger = moof(1, traf(3, { truns: [{ flags: 0, samples: [{}] }] }));
    expectContainerError(thrown(() => split([Buffer.concat([FTYP, MOOV, stranger, MDAT])])), /track 3, which moov does not declare/);
    const lying = moof(1, box('traf', box('tfhd', full(0, 0), u32(1)), box('trun', full(0, 0x100), u32(1_000_000), u32(1))));
    expectContainerError(thrown(() => split([Buffer.concat([FTYP, MOOV, lying, MDAT])])), /trun at offset \d+ declares 1000000 samples/);
    const overrun = Buffer.concat([u32(100), Buffer.from('moof'), box('mfhd', full(0, 0), u32(1)), u32(500), Buffer.from('traf'), Buffer.alloc(100 - 8 - 16 - 8)]);
    expectContainerError(thrown(() => split([Buffer.concat([FTYP, MOOV, overrun, MDAT])])), /box traf at offset \d+ .* overruns its parent/);
  });

  it('refuses a box over maxBoxBytes as soon as its header arrives, without buffering it', () => {
    const mdatAt = 28 + 1204 + 764;
    expect(av.subarray(mdatAt + 4, mdatAt + 8).toString('latin1')).toBe('mdat');
    const s = new Fmp4Splitter({ maxBoxBytes: 4096 });
    const outs = s.push(av.subarray(0, mdatAt));
    expect(outs.map((o) => o.type)).toEqual(['init']);
    const e = expectContainerError(thrown(() => s.push(av.subarray(mdatAt, mdatAt + 8))), /box mdat at offset 1996 is 19600 bytes, over maxBoxBytes 4096/);
    expect(e.unit).toBe('mdat');
    expect(e.offset).toBe(mdatAt);
    // A 64-bit size beyond what a number holds exactly is refused too.
    const huge = Buffer.concat([u32(1), Buffer.from('mdat'), Buffer.from('ffffffffffffffff', 'hex')]);
    expectContainerError(thrown(() => split([Buffer.concat([FTYP, MOOV, frag, huge])])), /declares 18446744073709551615 bytes/);
  });

  it('refuses a size==0 box once it outgrows maxBoxBytes, and too many held boxes', () => {
    const s = new Fmp4Splitter({ maxBoxBytes: 2048 });
    s.push(Buffer.concat([FTYP, MOOV, frag, box0('mdat')]));
    s.push(Buffer.alloc(1500));
    expectContainerError(thrown(() => s.push(Buffer.alloc(1500))), /box mdat at offset \d+ is 3008 bytes, over maxBoxBytes 2048/);
    const frees = Array.from({ length: 10 }, () => box('free', Buffer.alloc(300)));
    expectContainerError(thrown(() => split([Buffer.concat([FTYP, MOOV, ...frees])], { maxBoxBytes: 2048 })), /bytes of boxes held .* over maxBoxBytes 2048/);
  });

  it('reports a truncated stream at flush with the bytes it drops', () => {
    const cut = av.subarray(0, av.length - 100);
    const s = new Fmp4Splitter();
    const outs = s.push(cut);
    const emitted = outs.reduce((n, o) => n + o.bytes.length, 0);
    expect(fragmentsOf(outs)).toHaveLength(3);
    const e = expectContainerError(thrown(() => s.flush()), /stream ended inside a box: mdat at offset \d+/);
    expect(e.droppedBytes).toBe(cut.length - emitted);
    expectContainerError(thrown(() => split([Buffer.concat([FTYP, MOOV, frag])])), /ended after a moof without its mdat/);
    expectContainerError(thrown(() => split([FTYP])), /ended before moov/);
    expectContainerError(thrown(() => split([FTYP.subarray(0, 5)])), /ended inside a box/);
    expect(split([])).toEqual([]);
  });

  it('delivers outputs completed before an error, then stays failed', () => {
    const s = new Fmp4Splitter();
    const outs = s.push(Buffer.concat([FTYP, MOOV, frag, MDAT, Buffer.from('\x00\x00\x00\x10\xff\xfe\xfd\xfc garbage', 'latin1')]));
    expect(outs.map((o) => o.type)).toEqual(['init', 'fragment']);
    const e = expectContainerError(thrown(() => s.push(Buffer.from('more'))), /invalid box type 0xfffefdfc/);
    expect(thrown(() => s.flush())).toBe(e);
    const ended = new Fmp4Splitter();
    ended.flush();
    expectContainerError(thrown(() => ended.push(FTYP)), /push after flush/);
  });

  it('accepts Uint8Array chunks that are views into a larger buffer', () => {
    const backing = new Uint8Array(av.length + 20);
    backing.set(av, 10);
    const view = new Uint8Array(backing.buffer, 10, av.length);
    const outs = split([view.subarray(0, 5000), view.subarray(5000)]);
    expect(Buffer.concat(outs.map((o) => o.bytes)).equals(av)).toBe(true);
  });
});
