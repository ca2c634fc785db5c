/**
 * FlvToFmp4 policies, one scenario each, built from real encoder output (the remux corpus plus a few
 * encodes of our own) with timestamps, configs and packet order rewritten the way live streams get
 * them: 32-bit wrap, backward and forward jumps, a resolution change and an AAC config change
 * mid-stream, fragmentDurationMs, audio-only, video frames before the first keyframe, late audio
 * (announced and not), negative and huge CTS, byte limits, repeats and refusals. Every output that
 * is media is decoded by ffmpeg (and split by the product's Fmp4Splitter, whose MediaFragment values
 * must equal ours); a few are also played through MSE in Chromium when it is installed.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFragmentedMp4 } from '../../scripts/mp4-to-flv.js';
import { childBoxes } from '../../src/container/fmp4/box-reader.js';
import { Fmp4Splitter } from '../../src/container/fmp4/splitter.js';
import type { ContainerOutput, InitSegment, MediaFragment } from '../../src/container/types.js';
import { readFlv } from '../../src/media/flv/flv-file.js';
import { parseFlvTag } from '../../src/media/flv/flv-tag.js';
import type { AmfObject, AudioPacket, MediaPacket, VideoPacket } from '../../src/media/types.js';
import { FlvToFmp4, type FlvToFmp4Options } from '../../src/remux/native/flv-to-fmp4.js';
import { frameMd5, type FrameStream } from '../helpers/framemd5.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { chromiumAvailable, playInChromium } from '../helpers/mse-player.js';
import { flvPackets, remuxCorpus } from '../helpers/remux-corpus.js';
import { expectMediaError } from '../helpers/expect-error.js';

const run = promisify(execFile);
const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg';
let dir = '';
const corpus = new Map<string, MediaPacket[]>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'native-remux-'));
  for (const c of await remuxCorpus()) corpus.set(c.name, flvPackets(await readFile(c.flv)));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function packets(name: string): MediaPacket[] {
  const p = corpus.get(name);
  if (p === undefined) throw new Error(`no corpus case ${name}`);
  return p;
}

// ---------- packet surgery ----------

const isConfig = (p: MediaPacket): boolean => p.kind !== 'metadata' && p.packetType === 'config';
const isMedia = (p: MediaPacket): boolean => p.kind !== 'metadata' && p.packetType === 'frame';
const isVideoFrame = (p: MediaPacket): p is VideoPacket => p.kind === 'video' && p.packetType === 'frame';
const isAudioFrame = (p: MediaPacket): p is AudioPacket => p.kind === 'audio' && p.packetType === 'frame';

function withTimestamp<T extends MediaPacket>(p: T, timestamp: number): T {
  return { ...p, tag: { ...p.tag, timestamp: ((timestamp % 2 ** 32) + 2 ** 32) % 2 ** 32 } };
}

/** Media packets get f(ts); configs and metadata keep theirs (sequence headers stay at 0, as in the wild). */
function retime(ps: readonly MediaPacket[], f: (ts: number, p: MediaPacket, i: number) => number): MediaPacket[] {
  return ps.map((p, i) => (isMedia(p) ? withTimestamp(p, f(p.tag.timestamp, p, i)) : p));
}

// ---------- running and checking ----------

interface Run {
  outputs: ContainerOutput[];
  perPush: Array<{ receivedAt: number; outputs: ContainerOutput[] }>;
  remuxer: FlvToFmp4;
  maxPending: number;
}

function remux(ps: readonly MediaPacket[], opts?: FlvToFmp4Options): Run {
  const remuxer = new FlvToFmp4(opts);
  const perPush: Run['perPush'] = [];
  let maxPending = 0;
  ps.forEach((p, i) => {
    perPush.push({ receivedAt: 5000 + i, outputs: remuxer.push(p, 5000 + i) });
    maxPending = Math.max(maxPending, remuxer.pendingBytes);
  });
  perPush.push({ receivedAt: 5000 + ps.length - 1, outputs: remuxer.flush() });
  return { outputs: perPush.flatMap((x) => x.outputs), perPush, remuxer, maxPending };
}

/** The outputs as objects: each init segment and the fragments after it (what the appender writes). */
function objects(r: Run): Buffer[] {
  const out: Buffer[][] = [];
  for (const o of r.outputs) {
    if (o.type === 'init') out.push([o.bytes]);
    else (out[out.length - 1] as Buffer[]).push(o.bytes);
  }
  return out.map((parts) => Buffer.concat(parts));
}

/** Writes each object, decodes it (no complaint allowed) and returns per-object framemd5 + probe. */
async function decodeObjects(r: Run, name: string): Promise<Array<{ file: string; streams: FrameStream[]; width: number | null; frames: Record<string, number> }>> {
  const res = [];
  for (const [i, bytes] of objects(r).entries()) {
    const file = join(dir, `${name}-${i}.mp4`);
    await writeFile(file, bytes);
    expect(await decodeErrors(file), `${name} object ${i} decodes cleanly`).toBe('');
    const [streams, p, dims] = await Promise.all([frameMd5(file), probe(file, true), videoWidth(file)]);
    const frames: Record<string, number> = {};
    for (const s of p.streams) frames[s.codec_type] = Number(s.nb_read_frames);
    res.push({ file, streams, width: dims, frames });
  }
  return res;
}

async function videoWidth(file: string): Promise<number | null> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width', '-of', 'csv=p=0', file]);
  return stdout.trim() === '' ? null : Number(stdout.trim());
}

/** The product's splitter, fed the same chunks with the same receivedAt, reads the same values. */
function expectSplitterAgrees(r: Run): void {
  const splitter = new Fmp4Splitter();
  const split: ContainerOutput[] = [];
  for (const { receivedAt, outputs } of r.perPush) for (const o of outputs) split.push(...splitter.push(o.bytes, receivedAt));
  split.push(...splitter.flush());
  expect(split.length).toBe(r.outputs.length);
  split.forEach((s, i) => {
    const ours = r.outputs[i] as ContainerOutput;
    expect(s.type).toBe(ours.type);
    const { bytes: _a, ...a } = s as MediaFragment;
    const { bytes: _b, ...b } = ours as MediaFragment;
    expect(b).toEqual(a);
  });
}

const fragments = (r: Run): MediaFragment[] => r.outputs.filter((o): o is MediaFragment => o.type === 'fragment');
const inits = (r: Run): InitSegment[] => r.outputs.filter((o): o is InitSegment => o.type === 'init');
const ms = (s: FrameStream, v: number): number => (v * s.timeBase.num * 1000) / s.timeBase.den;
const stream = (streams: FrameStream[], type: string): FrameStream => {
  const s = streams.find((x) => x.mediaType === type);
  if (s === undefined) throw new Error(`no ${type} stream`);
  return s;
};

function expectMonotonic(s: FrameStream): void {
  for (let i = 1; i < s.packets.length; i++) expect((s.packets[i] as { dts: number }).dts).toBeGreaterThan((s.packets[i - 1] as { dts: number }).dts);
}

// ---------- scenarios ----------

describe('timestamps', () => {
  it('a stream whose u32 timestamps cross 2^32 remuxes byte-identically to the same stream from 0', async () => {
    const base = packets('h264-bframes-aac48k');
    const start = 2 ** 32 - 1500; // wraps 1.5 s in
    const wrapped = retime(base, (ts) => ts + start);
    expect(wrapped.some((p) => isMedia(p) && p.tag.timestamp > 2 ** 32 - 100)).toBe(true);
    expect(wrapped.some((p) => isMedia(p) && p.tag.timestamp < 100)).toBe(true);
    const a = remux(base);
    const b = remux(wrapped);
    expect(Buffer.concat(b.outputs.map((o) => o.bytes)).equals(Buffer.concat(a.outputs.map((o) => o.bytes)))).toBe(true);
    expect(b.remuxer.stats.discontinuities).toBe(0);
    expect(b.remuxer.stats.clampedTimestamps).toBe(0);
    expectSplitterAgrees(b);
    await decodeObjects(b, 'wrap');
  });

  async function jump(name: string, deltaMs: number): Promise<{ r: Run; streams: FrameStream[]; ref: FrameStream[] }> {
    const base = packets('h264-bframes-aac48k');
    const at = base.findIndex((p) => isMedia(p) && p.tag.timestamp >= 2000);
    const jumped = retime(base, (ts, _p, i) => (i >= at ? ts + deltaMs : ts));
    const r = remux(jumped);
    const ref = remux(base);
    expectSplitterAgrees(r);
    const [ours] = await decodeObjects(r, name);
    const [theirs] = await decodeObjects(ref, `${name}-ref`);
    return { r, streams: (ours as { streams: FrameStream[] }).streams, ref: (theirs as { streams: FrameStream[] }).streams };
  }

  /** Offset (ms) between our PTS and the unjumped stream's, per packet, for one media type. */
  function offsets(ours: FrameStream[], ref: FrameStream[], type: string): number[] {
    const a = stream(ours, type);
    const b = stream(ref, type);
    expect(a.packets.map((p) => p.md5)).toEqual(b.packets.map((p) => p.md5)); // nothing lost or reordered
    return a.packets.map((p, i) => ms(a, p.pts) - ms(b, (b.packets[i] as { pts: number }).pts));
  }

  function expectRebasedInSync(ours: FrameStream[], ref: FrameStream[]): void {
    const v = offsets(ours, ref, 'video');
    const a = offsets(ours, ref, 'audio');
    // Before the jump nothing moved; after it, one offset, the same for both tracks, and the timeline
    // continues right after the latest sample (no gap or overlap beyond a frame).
    const vAfter = [...new Set(v.slice(-30).map((x) => Math.round(x)))];
    expect(vAfter).toHaveLength(1);
    const shift = vAfter[0] as number;
    expect(Math.abs(shift)).toBeLessThanOrEqual(40);
    for (const x of a.slice(-50)) expect(Math.abs(x - shift)).toBeLessThanOrEqual(2);
    expect(v.slice(1, 40).every((x) => x === 0)).toBe(true);
    expectMonotonic(stream(ours, 'video'));
    expectMonotonic(stream(ours, 'audio'));
  }

  it('a backward jump (encoder restart: −100 s) is one discontinuity; DTS stays monotonic and A/V in sync', async () => {
    const { r, streams, ref } = await jump('backward', -100_000);
    expect(r.remuxer.stats.discontinuities).toBe(1);
    expect(inits(r)).toHaveLength(1);
    expectRebasedInSync(streams, ref);
  });

  it('a forward jump beyond maxForwardJumpMs (+60 s) is one discontinuity and is closed up', async () => {
    const { r, streams, ref } = await jump('forward', 60_000);
    expect(r.remuxer.stats.discontinuities).toBe(1);
    expectRebasedInSync(streams, ref);
  });

  it('a forward gap under the threshold (+5 s) is kept as a gap, on both tracks', async () => {
    const { r, streams, ref } = await jump('gap', 5_000);
    expect(r.remuxer.stats.discontinuities).toBe(0);
    const v = offsets(streams, ref, 'video');
    const a = offsets(streams, ref, 'audio');
    expect(v.at(-1)).toBe(5000);
    expect(Math.abs((a.at(-1) as number) - 5000)).toBeLessThanOrEqual(1);
  });

  it('audio DTS follows the nominal 1024-sample step through jitter and re-syncs after a real gap', async () => {
    const base = packets('h264-aac48k-stereo');
    let k = 0;
    const jitter = [0, 12, -9, 15, -14, 7, -3];
    const gapFrom = 2000;
    const withGap = retime(base, (ts, p) => (p.kind === 'audio' ? Math.max(0, ts + (jitter[k++ % jitter.length] as number)) : ts))
      .filter((p) => !(isAudioFrame(p) && p.tag.timestamp >= gapFrom && p.tag.timestamp < gapFrom + 500));
    const r = remux(withGap);
    expect(r.remuxer.stats.audioResyncs).toBe(1);
    expect(r.remuxer.stats.discontinuities).toBe(0);
    const [obj] = await decodeObjects(r, 'audio-resync');
    const a = stream(obj?.streams ?? [], 'audio');
    const steps = a.packets.slice(1).map((p, i) => p.dts - (a.packets[i] as { dts: number }).dts);
    // Every step is one frame except the first (moved to 0) and the one across the gap.
    const odd = steps.map((d, i) => [i + 1, d] as const).filter(([, d]) => d !== 1024);
    expect(odd.length).toBeLessThanOrEqual(2);
    const across = odd.find(([, d]) => d > 1024 * 10);
    expect(across).toBeDefined();
    // After the gap the DTS is the FLV timestamp again (within the 1-sample rounding).
    const after = a.packets[(across as readonly [number, number])[0]] as { dts: number };
    const flvAfter = withGap.filter(isAudioFrame)[(across as readonly [number, number])[0]] as AudioPacket;
    expect(Math.abs(ms(a, after.dts) - flvAfter.tag.timestamp)).toBeLessThanOrEqual(0.5);
  });

  it('small steps back are clamped to stay monotonic, not rebased', () => {
    const base = packets('h264-aac48k-stereo');
    // Audio timestamps jitter back by up to 30 ms (capture-clock style), video is untouched.
    const jittered = retime(base, (ts, p, i) => (p.kind === 'audio' && i % 7 === 0 ? Math.max(0, ts - 30) : ts));
    const r = remux(jittered);
    expect(r.remuxer.stats.discontinuities).toBe(0);
    expectSplitterAgrees(r);
  });

  it('negative CTS: DTS kept, signed offsets in a version-1 trun, no PTS below 0, decodes in order', async () => {
    const base = packets('h264-bframes-aac48k');
    // The same pictures with DTS 120 ms later and CTS 120 ms smaller: PTS unchanged, CTS down to −120.
    const shifted = base.map((p) => (isVideoFrame(p) ? { ...withTimestamp(p, p.tag.timestamp + 120), cts: p.cts - 120 } : p));
    expect(shifted.filter(isVideoFrame).some((p) => p.cts < 0)).toBe(true);
    const r = remux(shifted);
    expectSplitterAgrees(r);
    const trunVersions = fragments(r).flatMap((f) => truns(f.bytes).map((t) => t.version));
    expect(trunVersions).toContain(1);
    const [obj] = await decodeObjects(r, 'negative-cts');
    const v = stream((obj as { streams: FrameStream[] }).streams, 'video');
    expectMonotonic(v);
    // As written (ffmpeg's reader adds its own dts_shift to PTS): output 0 = the first audio (59 ms),
    // the first picture keeps its place, DTS 61 ms and PTS 21 ms, never below 0.
    const mp4 = readFragmentedMp4(Buffer.concat(r.outputs.map((o) => o.bytes)));
    const first = mp4.samples.find((x) => x.trackId === 1);
    expect([(first?.dts ?? 0) / 90, ((first?.dts ?? 0) + (first?.cto ?? 0)) / 90]).toEqual([61, 21]);
    expect(Math.min(...mp4.samples.filter((x) => x.trackId === 1).map((x) => x.dts + x.cto))).toBe(21 * 90);
    // Same pictures, same presentation times relative to each other as the original stream.
    const ref = stream((await decodeObjects(remux(base), 'negative-cts-ref'))[0]?.streams ?? [], 'video');
    expect(v.packets.map((p) => p.md5)).toEqual(ref.packets.map((p) => p.md5));
    const rel = (s: FrameStream): number[] => s.packets.slice(1).map((p) => ms(s, p.pts) - ms(s, (s.packets[1] as { pts: number }).pts));
    expect(rel(v)).toEqual(rel(ref));
  });

  it('|CTS| beyond maxCtsMs is treated as 0 and counted', async () => {
    const base = packets('h264-aac48k-stereo');
    let n = 0;
    const huge = base.map((p) => (isVideoFrame(p) && !p.keyframe && n++ % 10 === 0 ? { ...p, cts: 8_000_000 } : p));
    const r = remux(huge);
    expect(r.remuxer.stats.ctsOutOfRange).toBe(9);
    await decodeObjects(r, 'huge-cts');
  });
});

/** trun boxes of a fragment: version and sample count. */
function truns(bytes: Buffer): Array<{ version: number; count: number }> {
  const out = [];
  for (const moof of childBoxes(bytes, 0, bytes.length, 0).filter((b) => b.type === 'moof')) {
    for (const traf of childBoxes(bytes, moof.payload, moof.end, 0).filter((b) => b.type === 'traf')) {
      for (const t of childBoxes(bytes, traf.payload, traf.end, 0).filter((b) => b.type === 'trun')) {
        out.push({ version: bytes[t.payload] as number, count: bytes.readUInt32BE(t.payload + 4) });
      }
    }
  }
  return out;
}

describe('fragments', () => {
  it('default: one fragment per GOP, each starting with a keyframe', () => {
    const r = remux(packets('h264-bframes-aac48k'));
    const f = fragments(r);
    expect(f).toHaveLength(4); // 3.5 s, 1 s GOP
    expect(f.map((x) => x.videoSamples)).toEqual([25, 25, 25, 13]);
    expect(f.every((x) => x.keyframe)).toBe(true);
    expect(f.map((x) => x.startTime)).toEqual([0, 1, 2, 3]);
    expect(f.map((x) => x.sequence)).toEqual([1, 2, 3, 4]);
  });

  it('fragmentDurationMs: also cut mid-GOP (keyframe false there), same packets, splitter agrees', async () => {
    const r = remux(packets('h264-aac48k-stereo'), { fragmentDurationMs: 200 });
    const f = fragments(r);
    expect(f.length).toBeGreaterThanOrEqual(17);
    expect(f.filter((x) => x.keyframe)).toHaveLength(4);
    // Cut at the first sample 200 ms or more after the fragment's first one (25 fps: 200–240 ms).
    for (const x of f.slice(0, -1)) expect(x.duration >= 0.2 && x.duration <= 0.24).toBe(true);
    expectSplitterAgrees(r);
    const [obj] = await decodeObjects(r, 'frag200');
    const ref = (await decodeObjects(remux(packets('h264-aac48k-stereo')), 'frag200-ref'))[0];
    for (const type of ['video', 'audio']) {
      expect(stream((obj as { streams: FrameStream[] }).streams, type).packets).toEqual(stream(ref?.streams ?? [], type).packets);
    }
  });

  it('audio-only: a fragment per second by default, per fragmentDurationMs when set; always keyframe', async () => {
    for (const [opts, expected] of [[{}, 1], [{ fragmentDurationMs: 500 }, 0.5]] as const) {
      const r = remux(packets('aac-only'), opts);
      const f = fragments(r);
      expect(f.every((x) => x.keyframe && x.videoSamples === 0)).toBe(true);
      for (const x of f.slice(0, -1)) expect(Math.abs(x.duration - expected)).toBeLessThan(0.03);
      expect(inits(r)[0]?.tracks.map((t) => [t.id, t.kind, t.timescale, t.codec])).toEqual([[1, 'audio', 48000, 'mp4a']]);
      expectSplitterAgrees(r);
      const [obj] = await decodeObjects(r, `audio-only-${expected}`);
      expect(obj?.frames['audio']).toBe(packets('aac-only').filter(isAudioFrame).length);
    }
  });

  it('maxPendingBytes bounds what is held: fragments are cut early, nothing is lost, output decodes', async () => {
    const r = remux(packets('h264-aac48k-stereo'), { maxPendingBytes: 24_000 });
    expect(r.maxPending).toBeLessThanOrEqual(24_000);
    expect(r.remuxer.stats.forcedCuts).toBeGreaterThan(0);
    expect(r.remuxer.stats.droppedOverLimit).toBe(0);
    expectSplitterAgrees(r);
    const [obj] = await decodeObjects(r, 'bounded');
    expect(obj?.frames['video']).toBe(88);
    expectMediaError(() => remux(packets('h264-aac48k-stereo'), { maxPendingBytes: 1000 }), 'media-too-large');
  });
});

describe('start', () => {
  it('video frames before the first keyframe are dropped and counted; the output starts with one', async () => {
    const base = packets('h264-aac48k-stereo');
    const firstKey = base.findIndex((p) => isVideoFrame(p) && p.keyframe);
    const r = remux(base.filter((_, i) => i !== firstKey));
    expect(r.remuxer.stats.droppedBeforeKeyframe).toBe(24);
    expect(fragments(r)[0]?.keyframe).toBe(true);
    const [obj] = await decodeObjects(r, 'no-first-key');
    expect(obj?.frames['video']).toBe(88 - 25);
    // Audio from before the keyframe is kept (as ffmpeg keeps it); video's first sample starts at 0 too.
    expect(obj?.frames['audio']).toBe(base.filter(isAudioFrame).length);
    expect(stream(obj?.streams ?? [], 'video').packets[0]?.dts).toBe(0);
  });

  it('frames before their codec config are dropped and counted', () => {
    const base = packets('h264-aac48k-stereo');
    const configs = base.filter(isConfig);
    const r = remux([...base.filter((p) => !isConfig(p)).slice(0, 20), ...configs, ...base.filter((p) => !isConfig(p)).slice(20)]);
    expect(r.remuxer.stats.droppedBeforeConfig).toBe(base.slice(0, 23).filter(isMedia).length - 1);
    expect(fragments(r)[0]?.keyframe).toBe(true);
  });

  function lateAudio(announce: boolean, waitMs?: number): Run & { input: MediaPacket[] } {
    const base = packets('h264-aac48k-stereo').filter((p) => announce || p.kind !== 'metadata');
    const asc = base.find((p) => p.kind === 'audio' && p.packetType === 'config') as MediaPacket;
    const out: MediaPacket[] = [];
    let sent = false;
    for (const p of base) {
      if (p === asc) continue;
      if (p.kind === 'audio' && p.tag.timestamp < 1500) continue;
      if (p.kind === 'audio' && !sent) {
        out.push(withTimestamp(asc, p.tag.timestamp));
        sent = true;
      }
      out.push(p);
    }
    return { ...remux(out, waitMs === undefined ? {} : { audioWaitMs: waitMs }), input: out };
  }

  it('late AAC config, announced by onMetaData: the start waits for it; one init with both tracks', async () => {
    const r = lateAudio(true);
    expect(inits(r)).toHaveLength(1);
    expect(inits(r)[0]?.tracks.map((t) => t.kind)).toEqual(['video', 'audio']);
    expect(r.outputs[0]?.type).toBe('init');
    // Nothing came out before the config arrived at 1.5 s.
    const firstOut = r.perPush.findIndex((x) => x.outputs.length > 0);
    const all = packets('h264-aac48k-stereo');
    expect(firstOut).toBeGreaterThan(r.input.findIndex((p) => p.kind === 'audio'));
    expectSplitterAgrees(r);
    const [obj] = await decodeObjects(r, 'late-announced');
    expect(obj?.frames['video']).toBe(88);
    expect(obj?.frames['audio']).toBe(all.filter((p) => isAudioFrame(p) && p.tag.timestamp >= 1500).length);
  });

  it('late AAC config, not announced: video-only first, then a new init with audio at the next keyframe', async () => {
    const r = lateAudio(false);
    expect(inits(r).map((i) => i.tracks.map((t) => t.kind))).toEqual([['video'], ['video', 'audio']]);
    // The new object starts with a keyframe, and the audio that waited for it is in it.
    const second = r.outputs.indexOf(inits(r)[1] as InitSegment);
    expect((r.outputs[second + 1] as MediaFragment).keyframe).toBe(true);
    expect(r.remuxer.stats.droppedOverLimit).toBe(0);
    expectSplitterAgrees(r);
    const objs = await decodeObjects(r, 'late-unannounced');
    expect(objs.map((o) => o.frames['video'])).toEqual([50, 38]);
    const audioFrames = packets('h264-aac48k-stereo').filter((p) => isAudioFrame(p) && p.tag.timestamp >= 1500).length;
    expect(objs[1]?.frames['audio']).toBe(audioFrames);
  });

  it('announced audio that does not come within audioWaitMs: video-only start, audio joins later', () => {
    const r = lateAudio(true, 500);
    expect(inits(r).map((i) => i.tracks.map((t) => t.kind))).toEqual([['video'], ['video', 'audio']]);
  });

  it('audio without video: with no onMetaData the start waits videoWaitMs of audio for video, then goes audio-only', () => {
    const base = packets('aac-only').filter((p) => p.kind !== 'metadata');
    const r = remux(base, { videoWaitMs: 1000 });
    expect(inits(r)[0]?.tracks.map((t) => t.kind)).toEqual(['audio']);
    const firstOut = r.perPush.findIndex((x) => x.outputs.length > 0);
    expect(base[firstOut]?.tag.timestamp).toBeGreaterThanOrEqual(1000);
    expect(base[firstOut - 1]?.tag.timestamp).toBeLessThan(1000);
    // With the default wait (5 s) this 3.5 s stream starts at flush, and nothing is lost.
    const late = remux(base);
    expect(late.perPush.slice(0, -1).every((x) => x.outputs.length === 0)).toBe(true);
    expect(fragments(late).reduce((n, f) => n + f.duration, 0)).toBeCloseTo(fragments(r).reduce((n, f) => n + f.duration, 0), 6);
  });

  it('G.711 is dropped and counted, and announcing it does not hold the start', () => {
    const base = packets('h264-video-only');
    const meta = base.find((p) => p.kind === 'metadata');
    const g711: MediaPacket[] = base.flatMap((p): MediaPacket[] => {
      if (p.kind === 'metadata') return [{ ...p, values: Object.assign(Object.create(null) as AmfObject, p.values, { audiocodecid: 8 }) }];
      if (!isVideoFrame(p)) return [p];
      const pcmu: AudioPacket = { kind: 'audio', codec: 'pcmu', packetType: 'frame', channels: 1, data: Buffer.alloc(320, 0xff), tag: { type: 8, timestamp: p.tag.timestamp, body: Buffer.alloc(321) } };
      return [p, pcmu];
    });
    expect(meta).toBeDefined();
    const r = remux(g711);
    expect(r.remuxer.stats.droppedUnsupportedAudio).toBe(88);
    expect(inits(r)).toHaveLength(1);
    expect(inits(r)[0]?.tracks.map((t) => t.kind)).toEqual(['video']);
    // Started at the first cut (1 s), not after a wait for AAC.
    expect(r.perPush.findIndex((x) => x.outputs.length > 0)).toBeLessThan(g711.findIndex((p) => p.tag.timestamp >= 1100));
  });
});

describe('config changes', () => {
  async function encode(name: string, size: string, rate: number): Promise<MediaPacket[]> {
    const file = join(dir, `${name}.flv`);
    await run(FFMPEG, ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25`, '-f', 'lavfi', '-i', `sine=sample_rate=${rate}`,
      '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-threads', '1', '-g', '25', '-bf', '0', '-c:a', 'aac', '-ac', '2', '-fflags', '+bitexact', '-flags:v', '+bitexact', '-flags:a', '+bitexact', '-f', 'flv', file]);
    return flvPackets(await readFile(file));
  }

  /** Stream A then stream B (its configs re-sent at the join), B's timestamps continuing after A's. */
  function splice(a: MediaPacket[], b: MediaPacket[]): MediaPacket[] {
    const end = Math.max(...a.filter(isMedia).map((p) => p.tag.timestamp)) + 40;
    return [...a, ...b.map((p) => withTimestamp(p, p.tag.timestamp + end))];
  }

  it('a resolution change mid-stream (new avcC) gives a second init; each object starts with a keyframe and decodes', async () => {
    const [a, b] = await Promise.all([encode('res-a', '320x240', 48000), encode('res-b', '480x360', 48000)]);
    const r = remux(splice(a, b));
    expect(inits(r)).toHaveLength(2);
    expect(r.remuxer.stats.configRepeats).toBeGreaterThanOrEqual(1); // B's identical ASC
    const second = r.outputs.indexOf(inits(r)[1] as InitSegment);
    expect((r.outputs[second + 1] as MediaFragment).keyframe).toBe(true);
    expectSplitterAgrees(r);
    const objs = await decodeObjects(r, 'resolution');
    expect(objs.map((o) => o.width)).toEqual([320, 480]);
    expect(objs.map((o) => o.frames['video'])).toEqual([50, 50]);
    expect((objs[0]?.frames['audio'] ?? 0) + (objs[1]?.frames['audio'] ?? 0)).toBe([...a, ...b].filter(isAudioFrame).length);
    // One timeline across the objects: the second object continues where the first ended.
    const v0 = stream(objs[0]?.streams ?? [], 'video');
    const v1 = stream(objs[1]?.streams ?? [], 'video');
    expect(ms(v1, (v1.packets[0] as { dts: number }).dts)).toBeGreaterThan(ms(v0, (v0.packets.at(-1) as { dts: number }).dts));
  });

  it('an AAC config change (48 → 44.1 kHz) switches at the next keyframe, with the new timescale', async () => {
    const [a, b] = await Promise.all([encode('aac-a', '320x240', 48000), encode('aac-b', '320x240', 44100)]);
    const r = remux(splice(a, b));
    expect(inits(r).map((i) => i.tracks.find((t) => t.kind === 'audio')?.timescale)).toEqual([48000, 44100]);
    expectSplitterAgrees(r);
    const objs = await decodeObjects(r, 'aac-change');
    expect(objs.map((o) => o.frames['video'])).toEqual([50, 50]);
    expect((objs[0]?.frames['audio'] ?? 0) + (objs[1]?.frames['audio'] ?? 0) + r.remuxer.stats.droppedOverLimit).toBe([...a, ...b].filter(isAudioFrame).length);
  });

  it('identical config repeats are ignored; a switch back to the current config is no switch', () => {
    const base = packets('h264-aac48k-stereo');
    const configs = base.filter(isConfig);
    const noisy = base.flatMap((p, i) => (i % 10 === 9 ? [p, ...configs.map((c) => withTimestamp(c, p.tag.timestamp))] : [p]));
    const r = remux(noisy);
    expect(inits(r)).toHaveLength(1);
    expect(r.remuxer.stats.configRepeats).toBeGreaterThan(40);
    expect(Buffer.concat(r.outputs.map((o) => o.bytes)).equals(Buffer.concat(remux(base).outputs.map((o) => o.bytes)))).toBe(true);
  });
});

describe('refusals and state', () => {
  it('NAL lengths that overrun the payload are a MediaError, and the remuxer stays failed', () => {
    const base = packets('h264-aac48k-stereo');
    const r = new FlvToFmp4();
    for (const p of base.slice(0, 10)) r.push(p, 0);
    const frame = base.find((p) => isVideoFrame(p) && !p.keyframe) as VideoPacket;
    const bad = Buffer.from(frame.data);
    bad.writeUInt32BE(bad.length, 0);
    expectMediaError(() => r.push({ ...frame, data: bad }, 0), 'nal-length-invalid');
    expectMediaError(() => r.push(frame, 0), 'nal-length-invalid');
    expectMediaError(() => r.flush(), 'nal-length-invalid');
    const stray = new FlvToFmp4();
    for (const p of base.slice(0, 10)) stray.push(p, 0);
    expectMediaError(() => stray.push({ ...frame, data: Buffer.concat([frame.data, Buffer.from([0, 0])]) }, 0), 'nal-length-invalid');
  });

  it('a bad config record is a MediaError; push after flush is refused', () => {
    const base = packets('h264-aac48k-stereo');
    const avc = base.find((p) => p.kind === 'video' && p.packetType === 'config') as VideoPacket;
    const broken = Buffer.from(avc.data);
    broken[4] = 0xfe;
    expectMediaError(() => new FlvToFmp4().push({ ...avc, data: broken }, 0), 'avcc-invalid');
    const r = new FlvToFmp4();
    r.flush();
    expectMediaError(() => r.push(avc, 0), 'remuxer-state');
  });

  it('end-of-sequence packets are ignored; a flush before any keyframe emits nothing and counts the drops', () => {
    const base = packets('h264-aac48k-stereo');
    const r = new FlvToFmp4();
    const outs = base.slice(0, 3).flatMap((p) => r.push(p, 0));
    const eos: VideoPacket = { kind: 'video', codec: 'avc', packetType: 'end', keyframe: false, cts: 0, data: Buffer.alloc(0), header: 'legacy', tag: { type: 9, timestamp: 0, body: Buffer.from([0x17, 2, 0, 0, 0]) } };
    outs.push(...r.push(eos, 0), ...r.flush());
    expect(outs).toEqual([]);
  });

  it('a flood of tiny frames waiting for an init stays within maxPendingBytes and takes linear time', () => {
    const video = packets('h264-video-only');
    const asc = packets('h264-aac48k-stereo').find((p) => p.kind === 'audio' && p.packetType === 'config') as AudioPacket;
    const r = new FlvToFmp4({ maxPendingBytes: 1 << 20 });
    for (const p of video.slice(0, 40)) r.push(p, 0);
    r.push(asc, 0);
    const tiny: AudioPacket = { ...asc, packetType: 'frame', data: Buffer.from([0x21]) };
    // Linear time is bounded by the test's own timeout (a quadratic queue takes minutes here), not asserted as a timing.
    for (let i = 0; i < 200_000; i++) {
      r.push(withTimestamp(tiny, 1600 + (i >> 6)), 0);
      if (i % 10_000 === 0) expect(r.pendingBytes).toBeLessThanOrEqual(1 << 20);
    }
    expect(r.pendingBytes).toBeLessThanOrEqual(1 << 20);
    expect(r.stats.droppedOverLimit).toBeGreaterThan(190_000);
  });

  it('rejects nonsensical options', () => {
    expect(() => new FlvToFmp4({ fragmentDurationMs: 0 })).toThrow(RangeError);
    expect(() => new FlvToFmp4({ maxPendingBytes: -1 })).toThrow(RangeError);
  });
});

describe('MSE playback in Chromium', () => {
  it('plays our H.264+AAC output (B-frames) and the negative-CTS variant to their end', async (ctx) => {
    if (!(await chromiumAvailable())) ctx.skip();
    const base = packets('h264-bframes-aac48k');
    const negative = base.map((p) => (isVideoFrame(p) ? { ...withTimestamp(p, p.tag.timestamp + 120), cts: p.cts - 120 } : p));
    for (const [name, ps] of [['bframes', base], ['negative-cts', negative]] as const) {
      const bytes = Buffer.concat(remux(ps).outputs.map((o) => o.bytes));
      const res = await playInChromium(bytes, { timeoutMs: 20_000 });
      expect({ name, reason: res.stopReason, errors: res.errors }).toEqual({ name, reason: 'ended', errors: [] });
      expect(res.currentTime).toBeGreaterThan(3.4);
      expect([res.videoWidth, res.videoHeight]).toEqual([320, 240]);
    }
  }, 60_000);
});
