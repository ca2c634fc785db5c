/**
 * Mpeg2TsSplitter on transport streams made by ffmpeg at test time (into a temp dir, nothing
 * committed): H.264+AAC remuxed from FLV the way the gateway would (`-c copy -f mpegts`), H.265+AAC
 * (x265 defaults: open GOP, CRA keyframes, B-frames), H.264 only, AAC only. Expectations come from
 * ffprobe, so another ffmpeg build (Debian 13's 7.1) gives other bytes but the same verdicts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mpeg2TsSplitter } from '../../src/container/index.js';
import type { ContainerOutput, InitSegment, MediaFragment } from '../../src/container/index.js';
import { prng } from '../../src/util/prng.js';
import { randomChunks } from '../helpers/bytes.js';
import { fragmentsOf, initsOf, splitAll, splitFfmpegStdout, splitUntilContainerError, summary } from '../helpers/container.js';
import { decodeErrors, probe } from '../helpers/media.js';

const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg';
const FFPROBE = process.env.FFPROBE_PATH ?? 'ffprobe';

const VIDEO_SRC = ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25'];
const AUDIO_SRC = ['-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000'];
const X264 = ['-c:v', 'libx264', '-preset', 'veryfast', '-threads', '1', '-g', '25', '-keyint_min', '25', '-sc_threshold', '0', '-b:v', '300k', '-pix_fmt', 'yuv420p'];
const X265 = ['-c:v', 'libx265', '-preset', 'veryfast', '-x265-params', 'keyint=25:min-keyint=25:scenecut=0:pools=1:frame-threads=1:log-level=error', '-pix_fmt', 'yuv420p'];
const AAC = ['-c:a', 'aac', '-b:a', '32k', '-ac', '1'];
const QUIET = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y'];

type FixtureName = 'av-h264' | 'av-hevc' | 'video-h264' | 'audio-aac';
const FIXTURES: FixtureName[] = ['av-h264', 'av-hevc', 'video-h264', 'audio-aac'];

let dir = '';
const files = new Map<FixtureName, string>();
let flvFile = '';

function ffmpeg(args: string[]): void {
  execFileSync(FFMPEG, [...QUIET, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'appendcast-ts-'));
  const path = (name: string): string => join(dir, name);
  // Like a camera: H.264+AAC in FLV, then the gateway's stream-copy remux to MPEG-TS.
  flvFile = path('av.flv');
  ffmpeg([...VIDEO_SRC, ...AUDIO_SRC, '-t', '4', ...X264, ...AAC, '-f', 'flv', flvFile]);
  ffmpeg(['-f', 'flv', '-i', flvFile, '-map', '0:v', '-map', '0:a', '-c', 'copy', '-f', 'mpegts', path('av-h264.ts')]);
  ffmpeg([...VIDEO_SRC, ...AUDIO_SRC, '-t', '4', ...X265, ...AAC, '-f', 'mpegts', path('av-hevc.ts')]);
  ffmpeg([...VIDEO_SRC, '-t', '4', ...X264, '-f', 'mpegts', path('video-h264.ts')]);
  ffmpeg([...AUDIO_SRC, '-t', '4', ...AAC, '-f', 'mpegts', path('audio-aac.ts')]);
  for (const name of FIXTURES) files.set(name, path(`${name}.ts`));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---------- helpers ----------

const split = (chunks: readonly Uint8Array[]): ContainerOutput[] => splitAll(new Mpeg2TsSplitter(), chunks);

interface ProbePacket {
  video: boolean;
  dts: number;
  duration: number;
  /** Byte offset of the PES's first TS packet; null for frames the parser split out of a PES. */
  pos: number | null;
  key: boolean;
}

interface Probed {
  streams: { id: number; kind: string; codec: string }[];
  packets: ProbePacket[];
}

function ffprobe(file: string): Probed {
  const j = JSON.parse(
    execFileSync(FFPROBE, ['-v', 'error', '-show_entries', 'stream=index,id,codec_type,codec_name', '-of', 'json', file], { encoding: 'utf8' }),
  ) as { streams: { index: number; id: string; codec_type: string; codec_name: string }[] };
  const videoIndex = j.streams.find((s) => s.codec_type === 'video')?.index;
  const csv = execFileSync(FFPROBE, ['-v', 'error', '-show_entries', 'packet=stream_index,dts_time,duration_time,pos,flags', '-of', 'csv=p=0', file], {
    encoding: 'utf8',
  });
  const packets = csv
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [index, dts, duration, pos, flags] = line.split(',');
      return { video: Number(index) === videoIndex, dts: Number(dts), duration: Number(duration), pos: pos === 'N/A' ? null : Number(pos), key: (flags ?? '').startsWith('K') };
    });
  return { streams: j.streams.map((s) => ({ id: Number(s.id), kind: s.codec_type, codec: s.codec_name })), packets };
}

/** Each output with its stream offset range. */
function withOffsets(outs: ContainerOutput[]): { o: ContainerOutput; start: number; end: number }[] {
  let at = 0;
  return outs.map((o) => ({ o, start: at, end: (at += o.bytes.length) }));
}

function writeObject(name: string, init: InitSegment, frags: MediaFragment[]): string {
  const file = join(dir, name);
  writeFileSync(file, Buffer.concat([init.bytes, ...frags.map((f) => f.bytes)]));
  return file;
}

// ---------- tests ----------

describe.each(FIXTURES)('Mpeg2TsSplitter on ffmpeg %s', (name) => {
  let data = Buffer.alloc(0);
  let reference: ContainerOutput[] = [];
  let probed: Probed = { streams: [], packets: [] };
  beforeAll(() => {
    data = readFileSync(files.get(name) as string);
    reference = split([data]);
    probed = ffprobe(files.get(name) as string);
  });
  const hasVideo = name !== 'audio-aac';

  it('reassembles byte-exactly, with the same outputs for 60 random chunkings', () => {
    expect(Buffer.concat(reference.map((o) => o.bytes)).equals(data)).toBe(true);
    const expected = summary(reference);
    const rand = prng(0x75 + name.length);
    for (let i = 0; i < 60; i++) {
      const outs = split(randomChunks(data, rand));
      expect(Buffer.concat(outs.map((o) => o.bytes)).equals(data)).toBe(true);
      expect(summary(outs)).toEqual(expected);
    }
    if (name === 'audio-aac') {
      expect(summary(split(Array.from({ length: data.length }, (_, i) => data.subarray(i, i + 1))))).toEqual(expected);
    }
  });

  it('starts with one init segment holding PAT+PMT, with the tracks ffprobe sees', () => {
    expect(reference[0]?.type).toBe('init');
    expect(reference.map((o) => o.type).filter((t) => t !== 'fragment')).toEqual(['init']);
    const init = reference[0] as InitSegment;
    const pids = Array.from({ length: init.bytes.length / 188 }, (_, i) => ((init.bytes[i * 188 + 1]! & 0x1f) << 8) | init.bytes[i * 188 + 2]!);
    expect(pids).toContain(0);
    expect(init.tracks.map((t) => ({ id: t.id, kind: t.kind, codec: t.codec }))).toEqual(probed.streams);
    expect(init.tracks.every((t) => t.timescale === 90000)).toBe(true);
  });

  it('cuts one fragment per GOP; each starts with a video keyframe; times and sample counts agree with ffprobe', () => {
    const frags = fragmentsOf(reference);
    const video = probed.packets.filter((p) => p.video);
    if (hasVideo) {
      expect(frags).toHaveLength(video.filter((p) => p.key).length);
      expect(frags.length).toBe(4);
    }
    const ranges = withOffsets(reference).filter((r) => r.o.type === 'fragment');
    ranges.forEach(({ o, start, end }, i) => {
      const f = o as MediaFragment;
      expect(f.sequence).toBe(i + 1);
      expect(f.keyframe).toBe(true);
      const inside = probed.packets.filter((p) => p.pos !== null && p.pos >= start && p.pos < end);
      if (hasVideo) {
        const v = inside.filter((p) => p.video);
        expect(v.length).toBe(f.videoSamples);
        expect(v[0]?.key).toBe(true); // the fragment's first video access unit is a keyframe
        expect(Math.abs(v[0]!.dts - f.startTime)).toBeLessThan(1e-6);
      } else {
        expect(f.videoSamples).toBe(0);
        expect(Math.abs(inside[0]!.dts - f.startTime)).toBeLessThan(1e-6);
      }
      const next = ranges[i + 1]?.o as MediaFragment | undefined;
      if (next) expect(Math.abs(f.startTime + f.duration - next.startTime)).toBeLessThan(1e-9);
    });
    // The last fragment ends at flush: its duration is estimated from the last PES interval.
    const last = frags[frags.length - 1]!;
    const track = probed.packets.filter((p) => p.video === hasVideo);
    const end = Math.max(...track.map((p) => p.dts + p.duration));
    expect(Math.abs(last.startTime + last.duration - end)).toBeLessThan(hasVideo ? 0.002 : 0.5);
    if (!hasVideo) {
      // about one fragment per second of audio, each cut at a PES at least 1 s after the previous cut
      expect(frags.length).toBeGreaterThanOrEqual(3);
      for (const f of frags.slice(0, -1)) expect(f.duration).toBeGreaterThanOrEqual(1);
    }
  });

  it('makes objects (init + any run of fragments) that decode on their own with no errors and every frame', async () => {
    const init = initsOf(reference)[0]!;
    const frags = fragmentsOf(reference);
    const n = frags.length;
    const runs: [number, number][] = [[0, n], [1, n], [2, 3], [n - 1, n], ...frags.map((_, i): [number, number] => [i, i + 1])];
    for (const [from, to] of runs) {
      const file = writeObject(`${name}-${from}-${to}.ts`, init, frags.slice(from, to));
      expect(await decodeErrors(file), `${name} fragments ${from}..${to}`).toBe('');
      if (name.endsWith('h264')) {
        const p = await probe(file, true);
        const frames = Number(p.streams.find((s) => s.codec_type === 'video')?.nb_read_frames);
        expect(frames).toBe(frags.slice(from, to).reduce((sum, f) => sum + f.videoSamples, 0));
      }
    }
  });
});

describe('Mpeg2TsSplitter on ffmpeg streams joined together', () => {
  it('emits a second init when the PMT changes (H.264+AAC, then H.265+AAC), and both objects decode', async () => {
    const a = readFileSync(files.get('av-h264') as string);
    const b = readFileSync(files.get('video-h264') as string);
    const c = readFileSync(files.get('av-hevc') as string);
    const joined = Buffer.concat([a, c]);
    const outs = split(randomChunks(joined, prng(11)));
    expect(Buffer.concat(outs.map((o) => o.bytes)).equals(joined)).toBe(true);
    expect(outs.map((o) => o.type)).toEqual(['init', 'fragment', 'fragment', 'fragment', 'fragment', 'init', 'fragment', 'fragment', 'fragment', 'fragment']);
    const ranges = withOffsets(outs);
    expect(ranges[5]!.start).toBe(a.length); // the new init is c's opening PSI run
    const inits = initsOf(outs);
    expect(inits[1]!.tracks.map((t) => t.codec)).toEqual(['hevc', 'aac']);
    const frags = fragmentsOf(outs);
    expect(frags.map((f) => f.sequence)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(await decodeErrors(writeObject('joined-1.ts', inits[0]!, frags.slice(2, 4)))).toBe('');
    expect(await decodeErrors(writeObject('joined-2.ts', inits[1]!, frags.slice(5, 8)))).toBe('');

    // Two outputs with the same program layout (same PAT/PMT bytes) need no new init: one stream.
    const same = Buffer.concat([b, b]);
    const sameOuts = split([same]);
    expect(initsOf(sameOuts)).toHaveLength(1);
    expect(fragmentsOf(sameOuts)).toHaveLength(8);
  });

  it('splits ffmpeg stdout as it arrives from a pipe (the gateway setup)', async () => {
    const s = new Mpeg2TsSplitter();
    const { code, received, outs } = await splitFfmpegStdout(['-re', '-f', 'flv', '-i', flvFile, '-c', 'copy', '-f', 'mpegts', 'pipe:1'], s);
    expect(code).toBe(0);
    outs.push(...s.flush());
    expect(received.length).toBeGreaterThan(1);
    expect(Buffer.concat(outs.map((o) => o.bytes)).equals(Buffer.concat(received))).toBe(true);
    expect(outs[0]?.type).toBe('init');
    const frags = fragmentsOf(outs);
    expect(frags).toHaveLength(4);
    expect(frags.every((f) => f.keyframe)).toBe(true);
    // -re paces the input at real time: fragments complete spread over the 4 s of wall clock.
    expect((frags[frags.length - 1]?.receivedAt ?? 0) - (frags[0]?.receivedAt ?? 0)).toBeGreaterThan(2000);
  });

  it('fuzz: bit flips in real streams raise only ContainerError, in bounded time', () => {
    const rand = prng(31337);
    let failures = 0;
    for (let i = 0; i < 120; i++) {
      const name = FIXTURES[i % FIXTURES.length]!;
      const input = Buffer.from(readFileSync(files.get(name) as string));
      const flips = 1 + Math.floor(rand() * 6);
      for (let k = 0; k < flips; k++) input[Math.floor(rand() * input.length)]! ^= 1 << Math.floor(rand() * 8);
      const { outs, failed } = splitUntilContainerError(new Mpeg2TsSplitter({ maxFragmentBytes: 1024 * 1024 }), randomChunks(input, rand));
      if (failed) failures++;
      const joined = Buffer.concat(outs.map((o) => o.bytes));
      expect(joined.equals(input.subarray(0, joined.length))).toBe(true);
    }
    expect(failures).toBeGreaterThan(0);
  });
});
