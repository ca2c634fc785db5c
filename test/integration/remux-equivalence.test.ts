/**
 * The acceptance bar of the native remuxer: for every corpus case (scripts/make-remux-corpus.ts), our
 * fragmented MP4 carries packet for packet what ffmpeg's `-c copy` remux carries — same payload bytes
 * (size + md5 per packet), same codec extradata, same timestamps in ms (video exactly, audio ±1 ms;
 * the first audio DTS, durations and interleaving ignored, see reference notes §7) — decodes without
 * a single error, and cuts into the same InitSegment/MediaFragment values the Fmp4Splitter reads from
 * those bytes. Prints the table quoted in the release note.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CorpusCase } from '../../scripts/make-remux-corpus.js';
import { Fmp4Splitter } from '../../src/container/fmp4/splitter.js';
import type { ContainerOutput } from '../../src/container/types.js';
import { FlvToFmp4 } from '../../src/remux/native/flv-to-fmp4.js';
import { compareFrameMd5, frameMd5, type StreamComparison } from '../helpers/framemd5.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { ffmpegVersion, flvPackets, remuxCorpus } from '../helpers/remux-corpus.js';

interface CaseResult {
  c: CorpusCase;
  out: string;
  outputs: ContainerOutput[];
  /** Outputs per push, for replaying the same chunks into the splitter. */
  perPush: Array<{ receivedAt: number; outputs: ContainerOutput[] }>;
  streams: StreamComparison[];
  decode: string;
  framesOurs: Record<string, number>;
  durationOurs: number;
  durationRef: number;
}

let dir = '';
const results = new Map<string, CaseResult>();

async function runCase(c: CorpusCase): Promise<CaseResult> {
  const remuxer = new FlvToFmp4();
  const perPush: CaseResult['perPush'] = [];
  const packets = flvPackets(await readFile(c.flv));
  packets.forEach((p, i) => perPush.push({ receivedAt: 1000 + i, outputs: remuxer.push(p, 1000 + i) }));
  // flush completes the last fragment with the bytes of the last push: same receivedAt.
  perPush.push({ receivedAt: 1000 + packets.length - 1, outputs: remuxer.flush() });
  const outputs = perPush.flatMap((x) => x.outputs);
  const out = join(dir, `${c.name}.native.mp4`);
  await writeFile(out, Buffer.concat(outputs.map((o) => o.bytes)));
  const [ours, ref, decode, pOurs, pRef] = await Promise.all([
    frameMd5(out),
    frameMd5(c.reference),
    decodeErrors(out),
    probe(out, true),
    probe(c.reference),
  ]);
  const framesOurs: Record<string, number> = {};
  for (const s of pOurs.streams) framesOurs[s.codec_type] = Number(s.nb_read_frames);
  return { c, out, outputs, perPush, streams: compareFrameMd5(ours, ref), decode, framesOurs, durationOurs: pOurs.duration, durationRef: pRef.duration };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'remux-equivalence-'));
  const cases = await remuxCorpus();
  // Two at a time: the box has two cores and each case runs several ffmpeg/ffprobe processes.
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < cases.length; i = next++) {
      const c = cases[i] as CorpusCase;
      results.set(c.name, await runCase(c));
    }
  };
  await Promise.all([worker(), worker()]);
}, 120_000);

afterAll(async () => {
  const rows = CASES.flatMap((name) => (results.has(name) ? [results.get(name) as CaseResult] : [])).map((r) => {
    const cell = (type: string): string => {
      const s = r.streams.find((x) => x.mediaType === type);
      if (s === undefined) return '—';
      const equal = s.payloadsEqual && s.extradataEqual && s.timestampsEqual;
      return `${s.ours}/${s.reference} ${equal ? 'yes' : 'NO'}${type === 'audio' && equal ? ` (±${s.maxTimestampDeltaMs.toFixed(2)} ms)` : ''}`;
    };
    return `| ${r.c.name.padEnd(20)} | ${cell('video').padEnd(12)} | ${cell('audio').padEnd(24)} | ${r.decode === '' ? 'clean' : 'ERRORS'} |`;
  });
  console.log(
    [
      `native remux vs ffmpeg -c copy (${ffmpegVersion()}); packets ours/ffmpeg, equal = size+md5 per packet,`,
      'extradata md5, DTS/PTS in ms (video exact, audio ±1 ms, max |Δ| shown; first audio DTS not compared)',
      '| case                 | video pkts   | audio pkts               | decode |',
      '|----------------------|--------------|--------------------------|--------|',
      ...rows,
    ].join('\n'),
  );
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

const CASES = [
  'h264-aac48k-stereo',
  'h264-bframes-aac48k',
  'h264-aac44k-mono',
  'h264-video-only',
  'h264-late-audio',
  'aac-only',
  'hevc-enhanced-rtmp',
  'hevc-legacy-id12',
];

describe('native FLV → fMP4 remux is packet-for-packet equal to ffmpeg -c copy', () => {
  it.each(CASES)('%s', (name) => {
    const r = results.get(name);
    expect(r, `case ${name} was not produced`).toBeDefined();
    if (r === undefined) return;
    const c = r.c;
    const expectedTypes = [c.video !== null ? 'video' : null, c.audio !== null ? 'audio' : null].filter((x) => x !== null);
    expect(r.streams.map((s) => s.mediaType)).toEqual(expectedTypes);
    for (const s of r.streams) {
      expect(s.firstDifference, `${name} ${s.mediaType}`).toBeNull();
      expect(s.payloadsEqual && s.extradataEqual && s.timestampsEqual).toBe(true);
      expect(s.ours).toBeGreaterThan(0);
      // Every packet decodes into one frame.
      expect(r.framesOurs[s.mediaType]).toBe(s.reference);
    }
    expect(r.decode).toBe('');
    expect(Math.abs(r.durationOurs - r.durationRef)).toBeLessThan(0.1);

    // Structure: one init, then fragments; with video, each fragment starts with a keyframe.
    expect(r.outputs[0]?.type).toBe('init');
    expect(r.outputs.filter((o) => o.type === 'init')).toHaveLength(1);
    const fragments = r.outputs.filter((o) => o.type === 'fragment');
    expect(fragments.length).toBeGreaterThanOrEqual(3);
    for (const f of fragments) expect(f.keyframe).toBe(true);
  });

  it.each(CASES)('%s: MediaFragment fields equal what the Fmp4Splitter reads from the same bytes', (name) => {
    const r = results.get(name);
    if (r === undefined) throw new Error(`case ${name} was not produced`);
    const splitter = new Fmp4Splitter();
    const split: ContainerOutput[] = [];
    for (const { receivedAt, outputs } of r.perPush) {
      for (const o of outputs) split.push(...splitter.push(o.bytes, receivedAt));
    }
    split.push(...splitter.flush());
    expect(split.map((o) => o.type)).toEqual(r.outputs.map((o) => o.type));
    split.forEach((s, i) => {
      const ours = r.outputs[i] as ContainerOutput;
      expect(s.bytes.equals(ours.bytes)).toBe(true);
      if (s.type === 'fragment' && ours.type === 'fragment') {
        const { bytes: _a, ...fieldsSplit } = s;
        const { bytes: _b, ...fieldsOurs } = ours;
        expect(fieldsOurs).toEqual(fieldsSplit);
      }
      if (s.type === 'init' && ours.type === 'init') expect(ours.tracks).toEqual(s.tracks);
    });
  });
});
