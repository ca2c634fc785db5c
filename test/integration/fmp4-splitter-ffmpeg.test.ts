/**
 * Fmp4Splitter on what ffmpeg makes: the committed fixtures checked against ffprobe's view of them,
 * a stream ending in an mfra trailer, and ffmpeg's stdout split live from a pipe (the gateway setup).
 * Synthetic streams are covered in test/unit/fmp4-splitter.test.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fmp4Splitter } from '../../src/container/index.js';
import type { ContainerOutput } from '../../src/container/index.js';
import { prng } from '../../src/util/prng.js';
import { randomChunks } from '../helpers/bytes.js';
import { fragmentsOf, initsOf, splitAll, splitFfmpegStdout, summary } from '../helpers/container.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures');
const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg';
const FFPROBE = process.env.FFPROBE_PATH ?? 'ffprobe';

const split = (chunks: readonly Uint8Array[]): ContainerOutput[] => splitAll(new Fmp4Splitter(), chunks);


// ---------- fixtures + ffprobe ----------

interface Probe {
  videoDuration: number | null;
  streams: { id: number; kind: string; timescale: number; codec: string }[];
  moofCount: number;
  packets: { video: boolean; dts: number; key: boolean; pos: number }[];
}

function ffprobe(file: string): Probe {
  const streams = JSON.parse(
    execFileSync(FFPROBE, ['-v', 'error', '-show_entries', 'stream=index,id,codec_type,codec_tag_string,time_base,duration', '-of', 'json', file], {
      encoding: 'utf8',
    }),
  ) as { streams: { index: number; id: string; codec_type: string; codec_tag_string: string; time_base: string; duration: string }[] };
  const video = streams.streams.find((s) => s.codec_type === 'video');
  const csv = execFileSync(FFPROBE, ['-v', 'error', '-show_entries', 'packet=stream_index,dts_time,pos,flags', '-of', 'csv=p=0', file], {
    encoding: 'utf8',
  });
  const packets = csv
    .trim()
    .split('\n')
    .map((line) => {
      const [index, dts, pos, flags] = line.split(',');
      return { video: Number(index) === video?.index, dts: Number(dts), pos: Number(pos), key: (flags ?? '').startsWith('K') };
    });
  // The mov demuxer logs every top-level box it reads at -v trace: count the moofs it saw.
  const trace = spawnSync(FFPROBE, ['-v', 'trace', '-i', file], { encoding: 'utf8' });
  const moofCount = (trace.stderr.match(/type:'moof' parent:'root'/g) ?? []).length;
  return {
    videoDuration: video ? Number(video.duration) : null,
    streams: streams.streams.map((st) => ({
      id: Number(st.id),
      kind: st.codec_type,
      timescale: Number(st.time_base.split('/')[1]),
      codec: st.codec_tag_string,
    })),
    moofCount,
    packets,
  };
}

const FIXTURE_NAMES = ['av-gop1s', 'video-gop1s', 'av-frag200ms'] as const;

describe('Fmp4Splitter on ffmpeg fixtures', () => {
  for (const name of FIXTURE_NAMES) {
    describe(name, () => {
      const file = join(FIXTURES, `${name}.mp4`);
      const data = readFileSync(file);
      const reference = split([data]);
      const probe = ffprobe(file);

      it('reassembles byte-exactly and gives the same outputs under 200 random chunkings and 1-byte chunks', () => {
        expect(Buffer.concat(reference.map((o) => o.bytes)).equals(data)).toBe(true);
        const expected = summary(reference);
        const rand = prng(0x5eed + name.length);
        const chunkings: Buffer[][] = [Array.from({ length: data.length }, (_, i) => data.subarray(i, i + 1))];
        for (let i = 0; i < 200; i++) chunkings.push(randomChunks(data, rand));
        let sawTinyChunk = false;
        let sawHugeChunk = false;
        for (const chunks of chunkings) {
          sawTinyChunk ||= chunks.some((c) => c.length < 8);
          sawHugeChunk ||= chunks.some((c) => c.length > 32 * 1024);
          const outs = split(chunks);
          expect(Buffer.concat(outs.map((o) => o.bytes)).equals(data)).toBe(true);
          expect(summary(outs)).toEqual(expected);
          // receivedAt is the index of the push that delivered the fragment's last byte.
          const ends: number[] = [];
          chunks.reduce((end, c) => (ends.push(end + c.length), end + c.length), 0);
          let offset = 0;
          for (const o of outs) {
            offset += o.bytes.length;
            if (o.type === 'fragment') expect(o.receivedAt).toBe(ends.findIndex((e) => e >= offset));
          }
        }
        expect(sawTinyChunk && sawHugeChunk).toBe(true);
      });

      it('reports the tracks ffprobe sees', () => {
        const inits = initsOf(reference);
        expect(inits).toHaveLength(1);
        expect(reference[0]?.type).toBe('init');
        expect(inits[0]?.tracks).toEqual(probe.streams);
        const expected = name.startsWith('av')
          ? [{ id: 1, kind: 'video', timescale: 16000, codec: 'avc1' }, { id: 2, kind: 'audio', timescale: 48000, codec: 'mp4a' }]
          : [{ id: 1, kind: 'video', timescale: 16000, codec: 'avc1' }];
        expect(inits[0]?.tracks).toEqual(expected);
      });

      it('agrees with ffprobe on fragment count, duration, start times, sample counts and keyframes', () => {
        const frags = fragmentsOf(reference);
        expect(probe.moofCount).toBeGreaterThan(0);
        expect(frags).toHaveLength(probe.moofCount);
        expect(frags.map((f) => f.sequence)).toEqual(frags.map((_, i) => i + 1));
        const total = frags.reduce((sum, f) => sum + f.duration, 0);
        expect(Math.abs(total - (probe.videoDuration ?? NaN))).toBeLessThan(0.002);
        let offset = 0;
        for (const o of reference) {
          const start = offset;
          offset += o.bytes.length;
          if (o.type !== 'fragment') continue;
          const video = probe.packets.filter((p) => p.video && p.pos >= start && p.pos < offset);
          expect(video.length).toBe(o.videoSamples);
          expect(Math.abs((video[0]?.dts ?? NaN) - o.startTime)).toBeLessThan(0.001);
          expect(video[0]?.key).toBe(o.keyframe);
          expect(o.bytes.subarray(4, 8).toString('latin1')).toBe('moof');
        }
        const keyPackets = probe.packets.filter((p) => p.video && p.key).length;
        expect(frags.filter((f) => f.keyframe)).toHaveLength(keyPackets);
      });

      if (name.endsWith('gop1s')) {
        it('makes every fragment of a 1 s GOP stream a 1 s keyframe fragment', () => {
          const frags = fragmentsOf(reference);
          expect(frags).toHaveLength(4);
          for (const f of frags) {
            expect(f.keyframe).toBe(true);
            expect(f.videoSamples).toBe(25);
          }
        });
      } else {
        it('cuts sub-GOP fragments, only one per GOP starting with a keyframe', () => {
          const frags = fragmentsOf(reference);
          expect(frags.length).toBeGreaterThanOrEqual(16);
          expect(frags.filter((f) => f.keyframe).map((f) => Math.round(f.startTime * 1000))).toEqual([0, 1021, 2021, 3021]);
        });
      }
    });
  }
});

describe('Fmp4Splitter stream boundaries', () => {
  let dir = '';
  let withTrailer: Buffer = Buffer.alloc(0);
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'appendcast-fmp4-'));
    const out = join(dir, 'trailer.mp4');
    // Same remux as the gateway but without +skip_trailer: ffmpeg ends the stream with an mfra box.
    execFileSync(FFMPEG, ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', join(FIXTURES, 'av-gop1s.mp4'), '-c', 'copy', '-f', 'mp4',
      '-movflags', '+frag_keyframe+empty_moov+default_base_moof', out]);
    withTrailer = readFileSync(out);
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('emits a trailing mfra as TrailerBoxes, byte-exact under random chunkings', () => {
    const rand = prng(42);
    let expected: unknown[] | null = null;
    for (let i = 0; i < 50; i++) {
      const outs = split(i === 0 ? [withTrailer] : randomChunks(withTrailer, rand));
      expect(Buffer.concat(outs.map((o) => o.bytes)).equals(withTrailer)).toBe(true);
      expected ??= summary(outs);
      expect(summary(outs)).toEqual(expected);
      const last = outs[outs.length - 1];
      expect(last?.type).toBe('trailer');
      expect(last?.bytes.subarray(4, 8).toString('latin1')).toBe('mfra');
      expect(last?.bytes.length).toBe(last?.bytes.readUInt32BE(0));
      expect(fragmentsOf(outs)).toHaveLength(4);
    }
  });

  it('splits ffmpeg stdout as it arrives from a pipe (the gateway setup)', async () => {
    const s = new Fmp4Splitter();
    const { code, received, outs } = await splitFfmpegStdout(['-re', '-f', 'mp4', '-i', join(FIXTURES, 'av-gop1s.mp4'),
      '-c', 'copy', '-f', 'mp4', '-movflags', '+frag_keyframe+empty_moov+default_base_moof', '-frag_duration', '500000', 'pipe:1'], s);
    expect(code).toBe(0);
    outs.push(...s.flush());
    expect(received.length).toBeGreaterThan(1);
    expect(Buffer.concat(outs.map((o) => o.bytes)).equals(Buffer.concat(received))).toBe(true);
    expect(outs[0]?.type).toBe('init');
    expect(outs[outs.length - 1]?.type).toBe('trailer');
    const frags = fragmentsOf(outs);
    expect(frags.length).toBeGreaterThanOrEqual(8);
    expect(frags.filter((f) => f.keyframe)).toHaveLength(4);
    // -re paces the input at real time: fragments arrive spread over ~4 s of wall clock.
    expect((frags[frags.length - 1]?.receivedAt ?? 0) - (frags[0]?.receivedAt ?? 0)).toBeGreaterThan(2000);
    expect(Math.abs(frags.reduce((sum, f) => sum + f.duration, 0) - 4.021)).toBeLessThan(0.01);
  });

  it('treats a new ftyp+moov mid-stream as a new init segment, and what precedes it as trailer', () => {
    const video = readFileSync(join(FIXTURES, 'video-gop1s.mp4'));
    const joined = Buffer.concat([withTrailer, video]);
    const outs = split(randomChunks(joined, prng(7)));
    expect(Buffer.concat(outs.map((o) => o.bytes)).equals(joined)).toBe(true);
    expect(outs.map((o) => o.type)).toEqual(['init', 'fragment', 'fragment', 'fragment', 'fragment', 'trailer',
      'init', 'fragment', 'fragment', 'fragment', 'fragment']);
    const inits = initsOf(outs);
    expect(inits[0]?.tracks.map((t) => t.codec)).toEqual(['avc1', 'mp4a']);
    expect(inits[1]?.tracks.map((t) => t.codec)).toEqual(['avc1']);
    expect(inits[1]?.bytes.subarray(4, 8).toString('latin1')).toBe('ftyp');
    expect(fragmentsOf(outs)[4]?.sequence).toBe(1);
  });
});
