/**
 * Recordings that survive reconnects: a camera back within `reconnectGraceSeconds` with the same
 * codec parameters goes on in the same object, its timestamps moved to follow the last fragment
 * plus the real gap (the sidecar index marks the gap); other parameters, or a longer absence, give
 * a new object. And the acceptance case: 20 short drops in an hour-long object give one object that
 * decodes cleanly, with media time = camera time + gaps.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFlv } from '../../src/media/flv/flv-file.js';
import type { FlvTag } from '../../src/media/types.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { metricValue, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, packetTimes } from '../helpers/media.js';
import { waitFor } from '../helpers/net.js';
import { INDEX_SUFFIX, listStreamObjects, readObject } from '../helpers/objects.js';
import { RtmpTestPublisher } from '../helpers/rtmp-publisher.js';

const run = promisify(execFile);
const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg';

/** A GOP-aligned clip (1 s GOP) as FLV tags. */
async function clip(dir: string, name: string, size: string, fps: number, seconds: number): Promise<FlvTag[]> {
  const file = join(dir, `${name}.flv`);
  await run(FFMPEG, ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${fps}`,
    '-f', 'lavfi', '-i', 'sine=frequency=700:sample_rate=48000', '-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0',
    '-g', String(fps), '-keyint_min', String(fps), '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-b:v', '60k', '-c:a', 'aac', '-b:a', '32k', '-ac', '1',
    '-f', 'flv', file]);
  return readFlv(await readFile(file)).tags;
}

/** The clip repeated `times` times with increasing timestamps (sequence headers only once): a long camera session. */
function loop(tags: FlvTag[], times: number, seconds: number): FlvTag[] {
  const isConfig = (t: FlvTag) => t.type === 18 || (t.body.length > 1 && t.body[1] === 0 && (t.type === 9 || (t.body[0]! >> 4) === 10));
  const out: FlvTag[] = [];
  for (let k = 0; k < times; k++) {
    for (const t of tags) {
      if (k > 0 && isConfig(t)) continue;
      out.push({ ...t, timestamp: t.timestamp + k * seconds * 1000 });
    }
  }
  return out;
}

async function publish(port: number, stream: string, tags: FlvTag[], speed?: number): Promise<void> {
  const pub = await RtmpTestPublisher.open({ port });
  await pub.connect();
  await pub.publish(`${stream}?key=k`);
  await pub.sendTags(tags, speed ? { realtime: true, speed } : {});
  await pub.unpublish();
}

interface VideoTimes { frames: number; first: number; last: number; monotonic: boolean }
async function videoTimes(file: string): Promise<VideoTimes> {
  const dts = await packetTimes(file);
  return { frames: dts.length, first: dts[0]!, last: dts.at(-1)!, monotonic: dts.every((d, i) => i === 0 || d > dts[i - 1]!) };
}

interface IndexLine { type: string; t?: number; d?: number; g?: number }
async function indexOf(store: FsStore, key: string): Promise<IndexLine[]> {
  return (await readObject(store, key + INDEX_SUFFIX)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as IndexLine);
}

describe('reconnects within the grace continue the same object', () => {
  let dir: string;
  let gw: GatewayProcess;
  let root: string;
  let small: FlvTag[];
  let large: FlvTag[];
  let tiny: FlvTag[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-grace-'));
    root = join(dir, 'objects');
    [small, large, tiny] = await Promise.all([
      clip(dir, 'small', '320x240', 25, 3), clip(dir, 'large', '640x360', 25, 3), clip(dir, 'tiny', '160x120', 10, 4),
    ]);
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage: { kind: fs, root: ${root}, fsync: never }
streamDefaults: { rollover: { maxDurationSeconds: null } }
streams:
  - { id: cont, key: k }
  - { id: change, key: k }
  - { id: late, key: k, reconnectGraceSeconds: 1 }
  - { id: hour, key: k }
`);
  });

  afterAll(async () => {
    await gw?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  const drained = (ids: string[]) => waitFor('drained', async () => {
    const a = await gw.get<{ streams: Array<{ id: string; publishing: boolean; sessions: Array<{ endedAt: string | null; draining: boolean }> }> }>('/api/v1/streams');
    return ids.every((id) => { const s = a.streams.find((x) => x.id === id)!; return !s.publishing && s.sessions.every((x) => x.endedAt && !x.draining); });
  }, 60_000, 200);

  it('same parameters within the grace: one object; other parameters: a new one; after the grace: a new one', async () => {
    const gapMs = 800;
    await Promise.all([
      (async () => { await publish(gw.rtmpPort, 'cont', small, 3); await new Promise((r) => setTimeout(r, gapMs)); await publish(gw.rtmpPort, 'cont', small, 3); })(),
      (async () => { await publish(gw.rtmpPort, 'change', small, 3); await publish(gw.rtmpPort, 'change', large, 3); })(),
      (async () => { await publish(gw.rtmpPort, 'late', small, 3); await new Promise((r) => setTimeout(r, 1500)); await publish(gw.rtmpPort, 'late', small, 3); })(),
    ]);
    await drained(['cont', 'change', 'late']);
    const store = new FsStore({ root });

    const cont = await listStreamObjects(store, 'cont');
    expect(cont).toHaveLength(1);
    const file = join(root, cont[0]!.key);
    expect(await decodeErrors(file)).toBe('');
    const v = await videoTimes(file);
    expect(v.frames).toBe(150); // both sessions, 75 frames each
    expect(v.monotonic).toBe(true);
    const index = await indexOf(store, cont[0]!.key);
    const gaps = index.filter((l) => l.type === 'gap');
    expect(gaps).toHaveLength(1);
    // The gap is the real one (the pause, plus the reconnect itself), and the media time follows it.
    expect(gaps[0]!.g!).toBeGreaterThanOrEqual(gapMs / 1000);
    expect(gaps[0]!.g!).toBeLessThan(gapMs / 1000 + 1);
    const frags = index.filter((l) => l.type === 'fragment');
    const firstAfter = index.findIndex((l) => l.type === 'gap') + 1;
    const before = frags.filter((_, i) => index.indexOf(frags[i]!) < firstAfter);
    const lastBefore = before.at(-1)!;
    const nextT = index[firstAfter]!.t!;
    expect(nextT - (lastBefore.t! + lastBefore.d!)).toBeCloseTo(gaps[0]!.g!, 1);
    // Media time = camera time (2 × 3 s) + the gap.
    expect(v.last + 0.04 - v.first).toBeCloseTo(6 + gaps[0]!.g!, 0);

    const change = await listStreamObjects(store, 'change');
    expect(change).toHaveLength(2);
    for (const o of change) expect(await decodeErrors(join(root, o.key))).toBe('');
    expect((await listStreamObjects(store, 'late'))).toHaveLength(2);
    const m = await gw.metrics();
    expect(metricValue(m, 'appendcast_continuations_total', { stream: 'cont' })).toBe(1);
    expect(metricValue(m, 'appendcast_continuations_total', { stream: 'change' }) ?? 0).toBe(0);
    expect(metricValue(m, 'appendcast_continuations_total', { stream: 'late' }) ?? 0).toBe(0);
    await store.close();
  }, 120_000);

  it('20 short drops in an hour-long recording: one object, decodes cleanly, media time = camera time + gaps', async () => {
    // 21 sessions of 172 s (43 loops of a 4 s clip, 160x120 at 10 fps): 3612 s of camera time,
    // each sent as fast as the gateway takes it; the camera drops and comes back at once 20 times.
    const session = loop(tiny, 43, 4);
    const cameraSeconds = 21 * 43 * 4;
    for (let i = 0; i < 21; i++) await publish(gw.rtmpPort, 'hour', session);
    await drained(['hour']);
    const store = new FsStore({ root });
    const objects = await listStreamObjects(store, 'hour');
    expect(objects).toHaveLength(1);
    const file = join(root, objects[0]!.key);
    expect(await decodeErrors(file)).toBe('');
    const v = await videoTimes(file);
    expect(v.frames).toBe(cameraSeconds * 10);
    expect(v.monotonic).toBe(true);
    const index = await indexOf(store, objects[0]!.key);
    const gaps = index.filter((l) => l.type === 'gap');
    expect(gaps).toHaveLength(20);
    const gapSeconds = gaps.reduce((n, g) => n + g.g!, 0);
    expect(gapSeconds).toBeLessThan(20); // short drops: reconnected at once
    // Within one AAC frame per reconnect: the camera's own audio/video start offset is kept each time.
    expect(Math.abs(v.last + 0.1 - v.first - (cameraSeconds + gapSeconds))).toBeLessThan(20 * 0.025);
    expect(metricValue(await gw.metrics(), 'appendcast_continuations_total', { stream: 'hour' })).toBe(20);
    console.log(`hour-long recording: ${objects[0]!.size} bytes, ${v.frames} frames, camera ${cameraSeconds} s + gaps ${gapSeconds.toFixed(3)} s = media ${(v.last + 0.1 - v.first).toFixed(3)} s`);
    await store.close();
  }, 300_000);
});
