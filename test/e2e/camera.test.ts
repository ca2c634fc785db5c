import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { crc64 } from '../../src/store/crc64.js';
import { startCamera } from '../helpers/camera.js';
import { metricValue, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { waitFor } from '../helpers/wait.js';

/** A gateway on an fs store under `dir` with cam1 (key-one) and cam2 (key-two). */
function startCameraGateway(dir: string, root: string): Promise<GatewayProcess> {
  // reconnectGraceSeconds 0: every publish is a new object, whichever test published the same
  // stream a few seconds before (the tests share one gateway and run in any order).
  return startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
log: { level: info }
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage: { kind: fs, root: ${root} }
spool: { sessionSha256: true }
streamDefaults: { reconnectGraceSeconds: 0 }
streams:
  - { id: cam1, key: key-one }
  - { id: cam2, key: key-two }
`);
}

/** A counter's value, 0 before its first increment. */
const counter = (metrics: string, name: string, labels: Record<string, string>): number => metricValue(metrics, name, labels) ?? 0;
const rejected = (metrics: string, stream: string, reason: string): number => counter(metrics, 'appendcast_rejected_publishes_total', { stream, reason });

/**
 * The walking skeleton end to end, as an operator runs it: the real CLI in its own process, two
 * synthetic cameras publishing 10 s of H.264+AAC (1 s GOP) over RTMP at the same time. The tests
 * share the gateway; each compares with what was there before it ran, so they run in any order.
 */
describe('end to end: RTMP cameras → gateway → appendable objects on the fs store', () => {
  let dir: string;
  let gw: GatewayProcess;
  let root: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-e2e-'));
    root = join(dir, 'objects');
    gw = await startCameraGateway(dir, root);
  });

  afterAll(async () => {
    await gw?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('records each camera into its own object: growing while live, decodable, byte-exact', async () => {
    const reader = new FsStore({ root });
    const sessionsBefore = new Map((await gw.streams()).map((s) => [s.id, s.sessions.length]));
    const metricsBefore = await gw.metrics();
    const cam1KeysBefore = new Set((await reader.list('cam1/')).map((e) => e.key));
    const cam1 = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam1?key=key-one`, seconds: 10 });
    const cam2 = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam2?key=key-two`, seconds: 10 });
    try {
      // A viewer tails the object while the camera is live: it only needs the object's length.
      const key1 = (await waitFor('cam1 object', async () => (await reader.list('cam1/')).find((e) => e.key.endsWith('.mp4') && !cam1KeysBefore.has(e.key))?.key, 10_000))!;
      const sizes: number[] = [];
      let midStreamMetrics = '';
      while (cam1.proc.exitCode === null && sizes.length < 400) {
        const h = await reader.head(key1);
        if (h && h.size !== sizes[sizes.length - 1]) sizes.push(h.size);
        if (!midStreamMetrics && sizes.length >= 3) midStreamMetrics = await gw.metrics();
        await delay(100); // the viewer looks every 100 ms while the camera is live
      }
      const growth = sizes.filter((s, i) => i > 0 && s > sizes[i - 1]!).length;
      expect(growth).toBeGreaterThanOrEqual(5);
      // Lag while live: now − arrival of the newest appended fragment, about one GOP at most.
      const lag = metricValue(midStreamMetrics, 'appendcast_lag_seconds', { stream: 'cam1' });
      expect(lag).toBeDefined();
      expect(lag!).toBeLessThan(3);
      expect(metricValue(midStreamMetrics, 'appendcast_stream_up', { stream: 'cam1' })).toBe(1);

      expect((await cam1.done).code).toBe(0);
      expect((await cam2.done).code).toBe(0);
      const streams = await waitFor('both sessions finished', async () => {
        const all = await gw.streams();
        return all.every((s) => s.sessions.length === (sessionsBefore.get(s.id) ?? 0) + 1 && s.sessions.at(-1)!.endedAt && !s.sessions.at(-1)!.draining) ? all : undefined;
      }, 15_000);
      const metrics = await gw.metrics();
      const grown = (name: string, stream: string): number => counter(metrics, name, { stream }) - counter(metricsBefore, name, { stream });

      for (const s of streams) {
        const session = s.sessions.at(-1)!;
        expect(session.remuxExit?.clean).toBe(true);
        expect(session.objects).toHaveLength(1);
        const key = session.objects[0]!;
        expect(key.startsWith(`${s.id}/`)).toBe(true);
        const file = join(root, key);
        const bytes = await readFile(file);
        // Byte-exact: the object is exactly what the remuxer wrote to stdout.
        expect(bytes.length).toBe(session.remuxBytes);
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(session.remuxSha256);
        const head = await reader.head(key);
        expect(head).toMatchObject({ size: bytes.length, appendable: true, contentType: 'video/mp4' });
        expect(head!.crc64).toBe(crc64(bytes));
        expect(head!.metadata).toMatchObject({ 'appendcast-stream': s.id, 'appendcast-session': session.id, 'appendcast-object-seq': '0' });
        // Media checked as media.
        expect(await decodeErrors(file)).toBe('');
        const p = await probe(file);
        expect(Math.abs(p.duration - 10)).toBeLessThan(0.5);
        expect(p.streams.map((x) => x.codec_name).sort()).toEqual(['aac', 'h264']);
        // Metrics agree with the store.
        expect(metricValue(metrics, 'appendcast_object_position_bytes', { stream: s.id })).toBe(bytes.length);
        expect(grown('appendcast_appends_total', s.id)).toBeGreaterThanOrEqual(5);
        expect(grown('appendcast_ingest_bytes_total', s.id)).toBe(session.ingestBytes);
        expect(session.ingestBytes).toBeGreaterThan(bytes.length * 0.9);
      }
      const keys = streams.map((s) => s.sessions.at(-1)!.objects[0]!);
      expect(new Set(keys).size).toBe(2);
    } finally {
      cam1.stop();
      cam2.stop();
      await reader.close();
    }
  });

  it('refuses a wrong key and an unknown stream: nothing is written, both are counted', async () => {
    const reader = new FsStore({ root });
    const before = (await reader.list('')).map((e) => e.key);
    const metricsBefore = await gw.metrics();
    const cam1Sessions = (await gw.streams()).find((s) => s.id === 'cam1')!.sessions.length;
    const bad = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam1?key=guess`, seconds: 3 });
    const unknown = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam9?key=key-one`, seconds: 3 });
    expect((await bad.done).code).not.toBe(0);
    expect((await unknown.done).code).not.toBe(0);
    expect((await reader.list('')).map((e) => e.key)).toEqual(before);
    const m = await gw.metrics();
    expect(rejected(m, 'cam1', 'bad-key') - rejected(metricsBefore, 'cam1', 'bad-key')).toBe(1);
    expect(rejected(m, '_unknown', 'unknown-stream') - rejected(metricsBefore, '_unknown', 'unknown-stream')).toBe(1);
    expect((await gw.streams()).find((s) => s.id === 'cam1')!.sessions).toHaveLength(cam1Sessions);
    // The refused key is never logged.
    expect(gw.logs()).not.toContain('guess');
    expect(gw.logs()).not.toContain('key-one');
    await reader.close();
  });

  it('refuses a second publisher of a live stream without disturbing the first, and an unsupported codec', async () => {
    const reader = new FsStore({ root });
    const before = new Set((await reader.list('cam2/')).map((e) => e.key));
    const cam1Objects = (await reader.list('cam1/')).filter((e) => e.key.endsWith('.mp4')).length;
    const cam2Sessions = (await gw.streams()).find((s) => s.id === 'cam2')!.sessions.length;
    const metricsBefore = await gw.metrics();
    const first = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam2?key=key-two`, seconds: 6 });
    await waitFor('cam2 publishing', async () => (await gw.streams()).find((s) => s.id === 'cam2')?.publishing, 10_000);
    const second = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam2?key=key-two`, seconds: 3 });
    const s2 = await second.done;
    expect(s2.code).not.toBe(0);
    expect(s2.stderr).toMatch(/already publishing/);
    // An intruder with the key but a codec we do not record (VP9 over enhanced RTMP) is refused at its sequence header.
    const { RtmpTestPublisher } = await import('../helpers/rtmp-publisher.js');
    const vp9 = await RtmpTestPublisher.open({ port: gw.rtmpPort });
    await vp9.connect();
    await vp9.publish('cam1?key=key-one');
    vp9.sendTag({ type: 9, timestamp: 0, body: Buffer.concat([Buffer.from([0x90]), Buffer.from('vp09'), Buffer.alloc(8)]) });
    expect((await vp9.nextStatus())?.code).toBe('NetStream.Publish.Rejected');
    await vp9.closed;
    expect((await first.done).code).toBe(0);
    const objects = await waitFor('one new cam2 object, complete', async () => {
      const sessions = (await gw.streams()).find((s) => s.id === 'cam2')!.sessions;
      const last = sessions.at(-1)!;
      return sessions.length === cam2Sessions + 1 && last.endedAt && !last.draining ? last.objects : undefined;
    }, 15_000);
    expect(objects).toHaveLength(1);
    expect(before.has(objects[0]!)).toBe(false);
    const file = join(root, objects[0]!);
    expect(await decodeErrors(file)).toBe('');
    const p = await probe(file, true);
    expect(Math.abs(p.duration - p.startTime - 6)).toBeLessThan(0.5);
    expect(Number(p.streams.find((x) => x.codec_type === 'video')?.nb_read_frames)).toBe(150);
    const m = await gw.metrics();
    expect(rejected(m, 'cam2', 'already-publishing') - rejected(metricsBefore, 'cam2', 'already-publishing')).toBe(1);
    expect(rejected(m, 'cam1', 'unsupported-codec') - rejected(metricsBefore, 'cam1', 'unsupported-codec')).toBe(1);
    // The VP9 publish wrote nothing: cam1 has the objects it had.
    expect((await reader.list('cam1/')).filter((e) => e.key.endsWith('.mp4'))).toHaveLength(cam1Objects);
    await reader.close();
  });

  it('stops cleanly on SIGTERM', async () => {
    // A gateway of its own, which has recorded a camera: stopping the shared one would end the others.
    const own = await mkdtemp(join(tmpdir(), 'apc-e2e-stop-'));
    const g = await startCameraGateway(own, join(own, 'objects'));
    try {
      expect((await startCamera({ url: `rtmp://127.0.0.1:${g.rtmpPort}/live/cam1?key=key-one`, seconds: 2 }).done).code).toBe(0);
      expect(await g.stop()).toBe(0);
      expect(g.logs()).toContain('gateway stopped');
    } finally {
      await g.kill();
      await rm(own, { recursive: true, force: true });
    }
  });
});
