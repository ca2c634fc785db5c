/**
 * avcC / hvcC / AudioSpecificConfig parsers: real encoder output (libx264, libx265, ffmpeg's aac)
 * checked against ffprobe; hand-built H.265 SPSs exercising what x265 never writes (short-term RPS
 * sets with inter-RPS prediction in the SPS, scaling lists, PCM, long-term refs, sub-layers) checked
 * against ffmpeg's own SPS parser (`-bsf:v trace_headers`); hand-built ASCs for SBR/PS/960/escape
 * forms; and hostile records, which must fail as MediaError with the stable reason.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFragmentedMp4 } from '../../scripts/mp4-to-flv.js';
import { parseAacConfig } from '../../src/media/codec/aac-config.js';
import { parseAvcConfig, parseAvcSps } from '../../src/media/codec/avc-config.js';
import { BitReader, unescapeRbsp } from '../../src/media/codec/bit-reader.js';
import { hevcCodecString, parseHevcConfig, parseHevcSps } from '../../src/media/codec/hevc-config.js';
import { readFlv } from '../../src/media/flv/flv-file.js';
import { parseFlvTag } from '../../src/media/flv/flv-tag.js';
import { expectMediaError } from '../helpers/expect-error.js';

const run = promisify(execFile);
const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg';
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'codec-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function ffmpeg(args: string[]): Promise<string> {
  const { stderr } = await run(FFMPEG, ['-hide_banner', '-nostdin', '-y', ...args], { maxBuffer: 32 << 20 });
  return stderr;
}

interface Probed {
  width: number;
  height: number;
  sar: string;
  profile: string;
  level: number;
}

async function ffprobeVideo(file: string): Promise<Probed> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height,sample_aspect_ratio,profile,level', '-of', 'json', file]);
  const s = (JSON.parse(stdout) as { streams: Array<{ width: number; height: number; sample_aspect_ratio?: string; profile: string; level: number }> }).streams[0];
  if (s === undefined) throw new Error(`no video stream in ${file}`);
  return { width: s.width, height: s.height, sar: s.sample_aspect_ratio ?? '1:1', profile: s.profile, level: s.level };
}

/** Encodes 2 frames of testsrc2 with libx264 into FLV; returns the avcC from the FLV and ffprobe's view. */
async function x264(name: string, size: string, extra: string[]): Promise<{ record: Buffer; probed: Probed }> {
  const file = join(dir, `${name}.flv`);
  await ffmpeg(['-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25`, '-frames:v', '2', '-c:v', 'libx264', '-threads', '1', ...extra, '-f', 'flv', file]);
  const config = readFlv(await readFile(file)).tags.map(parseFlvTag).find((p) => p.kind === 'video' && p.packetType === 'config');
  if (config?.kind !== 'video') throw new Error('no avcC');
  return { record: Buffer.from(config.data), probed: await ffprobeVideo(file) };
}

async function x265(name: string, size: string, extra: string[], params = ''): Promise<{ record: Buffer; probed: Probed }> {
  const file = join(dir, `${name}.mp4`);
  await ffmpeg(['-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25`, '-frames:v', '2', '-c:v', 'libx265', '-preset', 'ultrafast',
    '-x265-params', `log-level=error:pools=1:frame-threads=1${params}`, '-tag:v', 'hvc1', ...extra, '-f', 'mp4', '-movflags', '+frag_keyframe+empty_moov+default_base_moof', file]);
  const track = readFragmentedMp4(await readFile(file)).tracks.find((t) => t.kind === 'video');
  if (track?.config == null) throw new Error('no hvcC');
  return { record: track.config, probed: await ffprobeVideo(file) };
}

const sarOf = (s: { num: number; den: number }): string => `${s.num}:${s.den}`;

describe('avcC (H.264) from libx264', () => {
  const cases: Array<[string, string, string[]]> = [
    ['baseline-320x240', '320x240', ['-preset', 'ultrafast']],
    ['high-1920x1080-crop', '1920x1080', ['-preset', 'ultrafast', '-profile:v', 'high']],
    ['sar-4-3-odd-size', '322x242', ['-preset', 'ultrafast', '-vf', 'setsar=4/3']],
    ['sar-explicit-7-5', '322x242', ['-preset', 'ultrafast', '-vf', 'setsar=7/5']],
    ['interlaced', '320x240', ['-preset', 'veryfast', '-flags', '+ildct+ilme', '-x264-params', 'tff=1']],
    ['scaling-matrices', '330x250', ['-preset', 'veryfast', '-x264-params', 'cqm=jvt']],
    ['yuv444-high444', '322x242', ['-preset', 'ultrafast', '-pix_fmt', 'yuv444p']],
    ['yuv422-high422', '322x242', ['-preset', 'ultrafast', '-pix_fmt', 'yuv422p']],
  ];
  it.each(cases)('%s: size, SAR and codec string agree with ffprobe', async (name, size, extra) => {
    const { record, probed } = await x264(name, size, extra);
    const c = parseAvcConfig(record);
    expect({ w: c.width, h: c.height, sar: sarOf(c.sar) }).toEqual({ w: probed.width, h: probed.height, sar: probed.sar === '0:1' ? '1:1' : probed.sar });
    expect(c.level).toBe(probed.level);
    expect(c.codecString).toBe(`avc1.${record.subarray(1, 4).toString('hex')}`);
    expect(c.codecString).toMatch(/^avc1\.[0-9a-f]{6}$/);
    expect(c.nalLengthSize).toBe(4);
    expect(c.sps.length).toBe(1);
    expect(c.pps.length).toBe(1);
    // Views into the record, no copies.
    expect(c.sps[0]?.buffer).toBe(record.buffer);
  });
});

describe('hvcC (H.265) from libx265', () => {
  const cases: Array<[string, string, string[], string]> = [
    ['main-320x240', '320x240', [], ''],
    ['main-1920x1080-conformance-window', '1920x1080', [], ''],
    ['sar-explicit-7-5', '322x242', ['-vf', 'setsar=7/5'], ''],
    ['sar-idc-16-11', '322x242', ['-vf', 'setsar=16/11'], ''],
    ['main10', '320x240', ['-pix_fmt', 'yuv420p10le'], ''],
    ['rext-444', '322x242', ['-pix_fmt', 'yuv444p'], ''],
    ['scaling-lists-medium', '330x250', [], ':scaling-list=default:bframes=4:b-pyramid=1:ref=4'],
  ];
  it.each(cases)('%s: size, SAR and codec string agree with ffprobe', async (name, size, extra, params) => {
    const { record, probed } = await x265(name, size, extra, params);
    const c = parseHevcConfig(record);
    expect({ w: c.width, h: c.height, sar: sarOf(c.sar) }).toEqual({ w: probed.width, h: probed.height, sar: probed.sar === '0:1' ? '1:1' : probed.sar });
    expect(c.level).toBe(probed.level);
    expect(c.codecString.startsWith(`hvc1.${c.profile}.`)).toBe(true);
    expect(c.arrays.filter((a) => a.nalType >= 32 && a.nalType <= 34).every((a) => a.complete)).toBe(true);
    expect(c.nalLengthSize).toBe(4);
  });

  it('codec strings follow ISO/IEC 14496-15 Annex E', async () => {
    const { record } = await x265('codec-string', '320x240', []);
    expect(parseHevcConfig(record).codecString).toBe('hvc1.1.6.L60.90');
    // Main profile, level 3.1, progressive/frame-only constraint byte.
    expect(hevcCodecString(0, 0, 1, 0x60000000, Buffer.from([0xb0, 0, 0, 0, 0, 0]), 93)).toBe('hvc1.1.6.L93.B0');
    // High tier, Main10 (compat bit 2 → reversed 4), profile space 1, two constraint bytes.
    expect(hevcCodecString(1, 1, 2, 0x20000000, Buffer.from([0x90, 0x08, 0, 0, 0, 0]), 120)).toBe('hvc1.A2.4.H120.90.08');
    expect(hevcCodecString(0, 0, 1, 0x60000000, Buffer.alloc(6), 93)).toBe('hvc1.1.6.L93');
  });
});

/** MSB-first bit writer with Exp-Golomb codes, for building parameter sets. */
class BitWriter {
  private bits: number[] = [];
  u(n: number, v: number): this {
    for (let i = n - 1; i >= 0; i--) this.bits.push(Math.floor(v / 2 ** i) % 2);
    return this;
  }
  flag(b: boolean | number): this {
    return this.u(1, b ? 1 : 0);
  }
  ue(v: number): this {
    const len = Math.floor(Math.log2(v + 1));
    this.u(len, 0);
    return this.u(len + 1, v + 1);
  }
  se(v: number): this {
    return this.ue(v > 0 ? 2 * v - 1 : -2 * v);
  }
  /** rbsp_trailing_bits, then emulation prevention: a NAL unit payload. */
  nal(): Buffer {
    this.bits.push(1);
    while (this.bits.length % 8 !== 0) this.bits.push(0);
    const raw: number[] = [];
    for (let i = 0; i < this.bits.length; i += 8) raw.push(parseInt(this.bits.slice(i, i + 8).join(''), 2));
    const out: number[] = [];
    let zeros = 0;
    for (const b of raw) {
      if (zeros >= 2 && b <= 3) {
        out.push(3);
        zeros = 0;
      }
      out.push(b);
      zeros = b === 0 ? zeros + 1 : 0;
    }
    return Buffer.from(out);
  }
}

interface Rps {
  negative: number[];
  positive: number[];
}

interface SpsSpec {
  subLayers: number;
  width: number;
  height: number;
  window?: [number, number, number, number];
  chroma?: number;
  scalingLists: boolean;
  pcm: boolean;
  /** Explicit sets as delta POC lists, or inter-predicted ones as {deltaRps, used[], useDelta[]}. */
  rps: Array<Rps | { deltaRps: number; used: boolean[]; useDelta: boolean[] }>;
  longTerm: number[];
  sar: [number, number, number] | null; // idc, w, h
}

/** Writes an H.265 SPS (ITU-T H.265 §7.3.2.2) from the spec, returning the NAL unit. */
function buildHevcSps(spec: SpsSpec): Buffer {
  const w = new BitWriter();
  w.u(16, 0x4201); // NAL header: type 33, layer 0, tid 1
  w.u(4, 0).u(3, spec.subLayers - 1).u(1, 1);
  // profile_tier_level
  w.u(2, 0).u(1, 0).u(5, 1).u(32, 0x60000000).u(4, 0b1001).u(32, 0).u(12, 0).u(8, 93);
  for (let i = 0; i < spec.subLayers - 1; i++) w.flag(i % 2 === 0).flag(true);
  if (spec.subLayers > 1) for (let i = spec.subLayers - 1; i < 8; i++) w.u(2, 0);
  for (let i = 0; i < spec.subLayers - 1; i++) {
    if (i % 2 === 0) w.u(2, 0).u(1, 0).u(5, 1).u(32, 0x60000000).u(4, 0b1001).u(32, 0).u(12, 0);
    w.u(8, 90);
  }
  w.ue(0); // sps_seq_parameter_set_id
  const chroma = spec.chroma ?? 1;
  w.ue(chroma);
  if (chroma === 3) w.flag(0);
  w.ue(spec.width).ue(spec.height);
  w.flag(spec.window !== undefined);
  if (spec.window !== undefined) for (const v of spec.window) w.ue(v);
  w.ue(0).ue(0); // bit depths
  w.ue(4); // log2_max_pic_order_cnt_lsb_minus4 → 8 bits
  w.flag(1);
  for (let i = 0; i < spec.subLayers; i++) w.ue(4).ue(2).ue(0);
  w.ue(0).ue(3).ue(0).ue(3).ue(1).ue(1);
  w.flag(spec.scalingLists);
  if (spec.scalingLists) {
    w.flag(1); // sps_scaling_list_data_present_flag
    for (let sizeId = 0; sizeId < 4; sizeId++) {
      for (let matrixId = 0; matrixId < 6; matrixId += sizeId === 3 ? 3 : 1) {
        const explicit = (sizeId + matrixId) % 2 === 0;
        w.flag(explicit);
        if (!explicit) {
          w.ue(0);
          continue;
        }
        const coefNum = Math.min(64, 1 << (4 + (sizeId << 1)));
        if (sizeId > 1) w.se(3);
        for (let i = 0; i < coefNum; i++) w.se(i % 3 === 0 ? 1 : i % 3 === 1 ? -1 : 0);
      }
    }
  }
  w.flag(0).flag(1); // amp, sao
  w.flag(spec.pcm);
  if (spec.pcm) w.u(4, 7).u(4, 7).ue(0).ue(1).flag(1);
  w.ue(spec.rps.length);
  const derived: Rps[] = [];
  spec.rps.forEach((set, idx) => {
    if (idx > 0) w.flag('deltaRps' in set);
    if (!('deltaRps' in set)) {
      w.ue(set.negative.length).ue(set.positive.length);
      let prev = 0;
      for (const d of set.negative) {
        w.ue(prev - d - 1).flag(1);
        prev = d;
      }
      prev = 0;
      for (const d of set.positive) {
        w.ue(d - prev - 1).flag(1);
        prev = d;
      }
      derived.push(set);
      return;
    }
    const ref = derived[idx - 1] as Rps;
    w.flag(set.deltaRps < 0).ue(Math.abs(set.deltaRps) - 1);
    const n = ref.negative.length + ref.positive.length;
    for (let j = 0; j <= n; j++) {
      w.flag(set.used[j] ?? false);
      if (!(set.used[j] ?? false)) w.flag(set.useDelta[j] ?? false);
    }
    // H.265 eq. 7-61/7-62, written independently of the parser under test.
    const use = (j: number): boolean => (set.used[j] ?? false) || (set.useDelta[j] ?? false);
    const all: number[] = [];
    ref.negative.forEach((d, j) => use(j) && all.push(d + set.deltaRps));
    ref.positive.forEach((d, j) => use(ref.negative.length + j) && all.push(d + set.deltaRps));
    if (use(n)) all.push(set.deltaRps);
    derived.push({ negative: all.filter((d) => d < 0).sort((a, b) => b - a), positive: all.filter((d) => d > 0).sort((a, b) => a - b) });
  });
  w.flag(spec.longTerm.length > 0);
  if (spec.longTerm.length > 0) {
    w.ue(spec.longTerm.length);
    for (const lsb of spec.longTerm) w.u(8, lsb).flag(1);
  }
  w.flag(1).flag(1); // temporal mvp, strong intra smoothing
  w.flag(spec.sar !== null);
  if (spec.sar !== null) {
    w.flag(1).u(8, spec.sar[0]);
    if (spec.sar[0] === 255) w.u(16, spec.sar[1]).u(16, spec.sar[2]);
    w.flag(0).flag(0).flag(0).flag(0).flag(0).flag(0).flag(0).flag(0).flag(0); // rest of the VUI: all absent
  }
  w.flag(0); // sps_extension_present_flag
  return w.nal();
}

/** ffmpeg's own reading of an SPS (CBS via -bsf:v trace_headers): field name → last value, and its complaints. */
async function ffmpegReadsSps(name: string, sps: Buffer, vps: Buffer): Promise<{ fields: Map<string, number>; errors: string }> {
  const file = join(dir, `${name}.hevc`);
  const sc = Buffer.from([0, 0, 0, 1]);
  await writeFile(file, Buffer.concat([sc, vps, sc, sps]));
  const stderr = await ffmpeg(['-loglevel', 'trace', '-f', 'hevc', '-i', file, '-c:v', 'copy', '-bsf:v', 'trace_headers', '-f', 'null', '-']).catch((e: { stderr?: string }) => e.stderr ?? '');
  const fields = new Map<string, number>();
  for (const line of stderr.split('\n')) {
    const m = /trace_headers[^\]]*\]\s+\d+\s+([a-z_0-9[\]]+)\s+[01]+ = (-?\d+)/.exec(line);
    if (m) fields.set(m[1] as string, Number(m[2]));
  }
  const errors = stderr.split('\n').filter((l) => /trace_headers.*(Failed to read|Invalid|error)/i.test(l)).join('\n');
  return { fields, errors };
}

describe('H.265 SPS beyond what x265 writes, cross-checked with ffmpeg trace_headers', () => {
  let vps: Buffer = Buffer.alloc(0);
  beforeAll(async () => {
    const { record } = await x265('vps-source', '320x240', []);
    vps = parseHevcConfig(record).arrays.find((a) => a.nalType === 32)?.units[0] as Buffer;
  });

  const specs: Array<[string, SpsSpec, { width: number; height: number; sar: string }]> = [
    ['explicit and inter-predicted RPS chain, SAR 255', {
      subLayers: 1, width: 1920, height: 1088, window: [0, 0, 0, 4], scalingLists: false, pcm: false,
      rps: [
        { negative: [-1, -3, -5], positive: [2] },
        { deltaRps: -1, used: [true, false, true, true, true], useDelta: [false, true] },
        { deltaRps: 2, used: [true, true, false, true, false], useDelta: [false, false, true, false, true] },
        { deltaRps: -3, used: [true, true, true, true, true, true], useDelta: [] },
      ],
      longTerm: [], sar: [255, 7, 5],
    }, { width: 1920, height: 1080, sar: '7:5' }],
    ['scaling lists, PCM, long-term refs, sub-layers, SAR idc 16', {
      subLayers: 3, width: 640, height: 360, scalingLists: true, pcm: true,
      rps: [{ negative: [-1], positive: [] }, { deltaRps: -1, used: [true, true], useDelta: [] }],
      longTerm: [3, 200, 17], sar: [16, 0, 0],
    }, { width: 640, height: 360, sar: '2:1' }],
    ['4:4:4 conformance window in luma units, no VUI', {
      subLayers: 1, width: 336, height: 256, chroma: 3, window: [5, 5, 4, 5], scalingLists: false, pcm: false,
      rps: [], longTerm: [], sar: null,
    }, { width: 326, height: 247, sar: '1:1' }],
  ];

  it.each(specs)('%s', async (name, spec, expected) => {
    const sps = buildHevcSps(spec);
    const ours = parseHevcSps(sps);
    expect({ width: ours.width, height: ours.height, sar: sarOf(ours.sar) }).toEqual(expected);
    const { fields: theirs, errors } = await ffmpegReadsSps(name.replace(/\W+/g, '-'), sps, vps);
    expect(errors).toBe('');
    expect(theirs.get('pic_width_in_luma_samples')).toBe(spec.width);
    expect(theirs.get('sps_extension_present_flag')).toBe(0); // ffmpeg read the whole SPS in step with us
    if (spec.sar !== null) {
      expect(theirs.get('aspect_ratio_idc')).toBe(spec.sar[0]);
      if (spec.sar[0] === 255) expect([theirs.get('sar_width'), theirs.get('sar_height')]).toEqual([spec.sar[1], spec.sar[2]]);
    }
  });
});

describe('H.264 SPS forms x264 does not write', () => {
  it('pic_order_cnt_type 1 with a cycle, frame cropping and VUI SAR', () => {
    const w = new BitWriter();
    w.u(8, 0x67).u(8, 77).u(8, 0).u(8, 30); // Main, level 3.0
    w.ue(0).ue(0); // sps id, log2_max_frame_num_minus4
    w.ue(1).flag(0).se(-2).se(3).ue(3).se(1).se(-1).se(2); // poc type 1 with a 3-entry cycle
    w.ue(4).flag(0); // max refs, gaps
    w.ue(44).ue(35); // 720 x 576
    w.flag(1).flag(1); // frame_mbs_only, direct_8x8
    w.flag(1).ue(0).ue(4).ue(0).ue(2); // crop right 8, bottom 4 (4:2:0 units of 2)
    w.flag(1).flag(1).u(8, 2); // VUI, aspect idc 2 = 12:11
    const sps = w.nal();
    const info = parseAvcSps(sps);
    expect(info).toMatchObject({ profile: 77, level: 30, width: 712, height: 572, sar: { num: 12, den: 11 } });
  });

  it('a VUI cut short reads as square pixels; a truncated size does not', () => {
    const w = new BitWriter();
    w.u(8, 0x67).u(8, 66).u(8, 0).u(8, 30).ue(0).ue(0).ue(2).ue(1).flag(0).ue(19).ue(14).flag(1).flag(1).flag(0);
    w.flag(1).flag(1); // VUI present, aspect present, then only the trailing bits: no room for the idc
    const bytes = w.nal();
    expect(parseAvcSps(bytes).sar).toEqual({ num: 1, den: 1 });
    expectMediaError(() => parseAvcSps(bytes.subarray(0, 6)), 'sps-invalid');
  });
});

describe('AudioSpecificConfig', () => {
  /** Builds an ASC bit by bit. */
  const asc = (build: (w: BitWriter) => void): Buffer => {
    const w = new BitWriter();
    build(w);
    const b = w.nal(); // trailing 1-bit + alignment is harmless padding for an ASC
    return b;
  };

  it('ffmpeg aac 48 kHz stereo and 44.1 kHz mono (with its 0x2B7 sync extension)', async () => {
    for (const [rate, ch] of [[48000, 2], [44100, 1]] as const) {
      const file = join(dir, `aac-${rate}-${ch}.flv`);
      await ffmpeg(['-loglevel', 'error', '-f', 'lavfi', '-i', `sine=sample_rate=${rate}`, '-t', '0.2', '-c:a', 'aac', '-ac', String(ch), '-f', 'flv', file]);
      const p = readFlv(await readFile(file)).tags.map(parseFlvTag).find((x) => x.kind === 'audio' && x.packetType === 'config');
      if (p?.kind !== 'audio') throw new Error('no ASC');
      const c = parseAacConfig(Buffer.from(p.data));
      expect(c).toMatchObject({ objectType: 2, sampleRate: rate, channels: ch, timescale: rate, samplesPerFrame: 1024, frameLength: 1024, extensionSampleRate: null, codecString: 'mp4a.40.2' });
    }
  });

  it('the measured `11 88 56 E5 00` is LC, 48 kHz, mono, SBR signalled absent', () => {
    expect(parseAacConfig(Buffer.from('118856e500', 'hex'))).toMatchObject({ objectType: 2, sampleRate: 48000, channels: 1, timescale: 48000, samplesPerFrame: 1024 });
  });

  it('explicit HE-AAC (AOT 5): the SBR rate is the timescale, 2048 samples per frame', () => {
    const c = parseAacConfig(asc((w) => w.u(5, 5).u(4, 6).u(4, 2).u(4, 3).u(5, 2).u(3, 0)));
    expect(c).toMatchObject({ objectType: 5, coreObjectType: 2, sampleRate: 24000, extensionSampleRate: 48000, timescale: 48000, samplesPerFrame: 2048, channels: 2, codecString: 'mp4a.40.5' });
  });

  it('HE-AAC v2 (AOT 29, mono core → stereo)', () => {
    const c = parseAacConfig(asc((w) => w.u(5, 29).u(4, 6).u(4, 1).u(4, 3).u(5, 2).u(3, 0)));
    expect(c).toMatchObject({ objectType: 29, channels: 2, timescale: 48000, samplesPerFrame: 2048, codecString: 'mp4a.40.29' });
  });

  it('backward-compatible SBR (sync extension with sbrPresentFlag 1)', () => {
    const c = parseAacConfig(asc((w) => w.u(5, 2).u(4, 6).u(4, 2).u(3, 0).u(11, 0x2b7).u(5, 5).u(1, 1).u(4, 3)));
    expect(c).toMatchObject({ objectType: 2, sampleRate: 24000, extensionSampleRate: 48000, timescale: 48000, samplesPerFrame: 2048, codecString: 'mp4a.40.2' });
  });

  it('960-sample frames, explicit 24-bit rate, escape object types, PCE channel config', () => {
    expect(parseAacConfig(asc((w) => w.u(5, 2).u(4, 3).u(4, 2).u(1, 1).u(2, 0)))).toMatchObject({ frameLength: 960, samplesPerFrame: 960 });
    expect(parseAacConfig(asc((w) => w.u(5, 2).u(4, 15).u(24, 12345).u(4, 1).u(3, 0)))).toMatchObject({ sampleRate: 12345, timescale: 12345 });
    expect(parseAacConfig(asc((w) => w.u(5, 2).u(4, 4).u(4, 0).u(3, 0)))).toMatchObject({ channelConfig: 0, channels: 0 });
    expect(parseAacConfig(asc((w) => w.u(5, 23).u(4, 3).u(4, 1).u(3, 0).u(2, 0)))).toMatchObject({ objectType: 23, codecString: 'mp4a.40.23' });
    expectMediaError(() => parseAacConfig(asc((w) => w.u(5, 31).u(6, 10).u(4, 3).u(4, 2))), 'asc-invalid'); // AOT 42 (USAC)
  });

  it('refuses truncated, reserved and untimeable configs', () => {
    expectMediaError(() => parseAacConfig(Buffer.from([0x12])), 'asc-invalid');
    expectMediaError(() => parseAacConfig(Buffer.alloc(0)), 'asc-invalid');
    expectMediaError(() => parseAacConfig(asc((w) => w.u(5, 0).u(4, 3).u(4, 2))), 'asc-invalid'); // AOT 0
    expectMediaError(() => parseAacConfig(asc((w) => w.u(5, 2).u(4, 13).u(4, 2))), 'asc-invalid'); // reserved rate index
    expectMediaError(() => parseAacConfig(asc((w) => w.u(5, 2).u(4, 15).u(24, 0).u(4, 2))), 'asc-invalid'); // rate 0
    expectMediaError(() => parseAacConfig(Buffer.from([0x17, 0x80])), 'asc-invalid'); // AOT 2, index 15, no 24-bit rate
  });
});

describe('hostile avcC / hvcC', () => {
  let avcc: Buffer = Buffer.alloc(0);
  let hvcc: Buffer = Buffer.alloc(0);
  beforeAll(async () => {
    avcc = (await x264('hostile-src', '320x240', ['-preset', 'ultrafast'])).record;
    hvcc = (await x265('hostile-src', '320x240', [])).record;
  });
  const edit = (b: Buffer, f: (c: Buffer) => void): Buffer => {
    const c = Buffer.from(b);
    f(c);
    return c;
  };

  it('avcC: each inconsistency is an avcc-invalid / sps-invalid MediaError', () => {
    expectMediaError(() => parseAvcConfig(avcc.subarray(0, 6)), 'avcc-invalid');
    expectMediaError(() => parseAvcConfig(edit(avcc, (c) => (c[0] = 0))), 'avcc-invalid');
    expectMediaError(() => parseAvcConfig(edit(avcc, (c) => (c[4] = 0xfe))), 'avcc-invalid'); // lengthSizeMinusOne 2
    expectMediaError(() => parseAvcConfig(edit(avcc, (c) => (c[5] = 0xe0))), 'avcc-invalid'); // 0 SPS
    expectMediaError(() => parseAvcConfig(edit(avcc, (c) => c.writeUInt16BE(0xffff, 6))), 'avcc-invalid'); // SPS overruns
    expectMediaError(() => parseAvcConfig(edit(avcc, (c) => c.writeUInt16BE(0, 6))), 'avcc-invalid'); // empty SPS
    expectMediaError(() => parseAvcConfig(edit(avcc, (c) => (c[5] = 0xe2))), 'avcc-invalid'); // 2 SPS claimed
    const spsLen = avcc.readUInt16BE(6);
    expectMediaError(() => parseAvcConfig(edit(avcc, (c) => (c[8 + spsLen] = 0))), 'avcc-invalid'); // 0 PPS
    expectMediaError(() => parseAvcConfig(avcc.subarray(0, 8 + spsLen)), 'avcc-invalid'); // PPS count missing
    expectMediaError(() => parseAvcConfig(edit(avcc, (c) => (c[8] = 0x68))), 'avcc-invalid'); // SPS slot holds a PPS
    // An SPS cut short inside its picture size.
    const short = Buffer.concat([avcc.subarray(0, 6), Buffer.from([0, 5]), avcc.subarray(8, 13), Buffer.from([1, 0, 1, 0x68])]);
    expectMediaError(() => parseAvcConfig(short), 'sps-invalid');
  });

  it('hvcC: each inconsistency is an hvcc-invalid MediaError', () => {
    expectMediaError(() => parseHevcConfig(hvcc.subarray(0, 22)), 'hvcc-invalid');
    expectMediaError(() => parseHevcConfig(edit(hvcc, (c) => (c[0] = 7))), 'hvcc-invalid');
    expectMediaError(() => parseHevcConfig(edit(hvcc, (c) => (c[21] = (c[21] as number) & 0xfc | 2))), 'hvcc-invalid'); // 3-byte lengths
    expectMediaError(() => parseHevcConfig(edit(hvcc, (c) => (c[22] = 200))), 'hvcc-invalid'); // arrays past the end
    expectMediaError(() => parseHevcConfig(edit(hvcc, (c) => c.writeUInt16BE(0xffff, 26))), 'hvcc-invalid'); // VPS overruns
    expectMediaError(() => parseHevcConfig(edit(hvcc, (c) => c.writeUInt16BE(1, 26))), 'hvcc-invalid'); // 1-byte NAL
    expectMediaError(() => parseHevcConfig(hvcc.subarray(0, 23 + 3)), 'hvcc-invalid');
    expectMediaError(() => parseHevcConfig(edit(hvcc, (c) => (c[22] = 0))), 'hvcc-invalid'); // no arrays: no SPS
    // Zero-count arrays are tolerated (skipped), but the parameter sets must still be there.
    const zeroArray = Buffer.concat([edit(hvcc.subarray(0, 23), (c) => (c[22] = (hvcc[22] as number) + 1)), Buffer.from([0xa7, 0, 0]), hvcc.subarray(23)]);
    expect(parseHevcConfig(zeroArray).width).toBe(320);
  });
});

describe('bit reader', () => {
  it('reads bits, Exp-Golomb codes and fails past the end with the configured reason', () => {
    const r = new BitReader(Buffer.from([0b10100110, 0b01000000]), 'sps-invalid', 'test');
    expect(r.u(1)).toBe(1);
    expect(r.ue()).toBe(1); // '010'
    expect(r.se()).toBe(-1); // '011' = ue 2
    expect(r.bitsLeft).toBe(9);
    expectMediaError(() => r.u(20), 'sps-invalid');
    const long = new BitReader(Buffer.alloc(8), 'asc-invalid', 'zeros');
    expectMediaError(() => long.ue(), 'asc-invalid');
    expect(new BitReader(Buffer.from([0xff, 0xff, 0xff, 0xff]), 'sps-invalid', 'x').u(32)).toBe(0xffffffff);
  });

  it('removes emulation-prevention bytes, copying only when there is one', () => {
    const plain = Buffer.from([0x67, 0, 0, 1, 2]);
    expect(unescapeRbsp(plain)).toBe(plain);
    expect(Buffer.from(unescapeRbsp(Buffer.from([0x67, 0, 0, 3, 1, 0, 0, 3, 0, 0, 0, 3])))).toEqual(Buffer.from([0x67, 0, 0, 1, 0, 0, 0, 0, 0]));
  });
});
