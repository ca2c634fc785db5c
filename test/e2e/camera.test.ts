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

/**
 * The walking skeleton end to end, as an operator runs it: the real CLI in its own process, two
 * synthetic cameras publishing 10 s of H.264+AAC (1 s GOP) over RTMP at the same time.
 */
describe('end to end: RTMP cameras → gateway → appendable objects on the fs store', () => {
  let dir: string;
  let gw: GatewayProcess;
  let root: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-e2e-'));
    root = join(dir, 'objects');
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
log: { level: info }
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage: { kind: fs, root: ${root} }
streams:
  - { id: cam1, key: key-one }
  - { id: cam2, key: key-two }
`);
  });

  afterAll(async () => {
    await gw?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('records each camera into its own object: growing while live, decodable, byte-exact', async () => {
    const reader = new FsStore({ root });
    const cam1 = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam1?key=key-one`, seconds: 10 });
    const cam2 = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam2?key=key-two`, seconds: 10 });
    try {
      // A viewer tails the object while the camera is live: it only needs the object's length.
      const key1 = (await waitFor('cam1 object', async () => (await reader.list('cam1/')).find((e) => e.key.endsWith('.mp4'))?.key, 10_000))!;
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
      const api = await waitFor('both sessions finished', async () => {
        const a = { streams: await gw.streams() };
        return a.streams.every((s) => s.sessions.length === 1 && s.sessions[0]!.endedAt && !s.sessions[0]!.draining) ? a : undefined;
      }, 15_000);
      const metrics = await gw.metrics();

      for (const s of api.streams) {
        const session = s.sessions[0]!;
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
        expect(metricValue(metrics, 'appendcast_appends_total', { stream: s.id })).toBeGreaterThanOrEqual(5);
        expect(metricValue(metrics, 'appendcast_ingest_bytes_total', { stream: s.id })).toBe(session.ingestBytes);
        expect(session.ingestBytes).toBeGreaterThan(bytes.length * 0.9);
      }
      const keys = api.streams.map((s) => s.sessions[0]!.objects[0]!);
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
    const bad = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam1?key=guess`, seconds: 3 });
    const unknown = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam9?key=key-one`, seconds: 3 });
    expect((await bad.done).code).not.toBe(0);
    expect((await unknown.done).code).not.toBe(0);
    expect((await reader.list('')).map((e) => e.key)).toEqual(before);
    const m = await gw.metrics();
    expect(metricValue(m, 'appendcast_rejected_publishes_total', { stream: 'cam1', reason: 'bad-key' })).toBe(1);
    expect(metricValue(m, 'appendcast_rejected_publishes_total', { stream: '_unknown', reason: 'unknown-stream' })).toBe(1);
    expect((await gw.streams()).find((s) => s.id === 'cam1')!.sessions).toHaveLength(1);
    // The refused key is never logged.
    expect(gw.logs()).not.toContain('guess');
    expect(gw.logs()).not.toContain('key-one');
    await reader.close();
  });

  it('refuses a second publisher of a live stream without disturbing the first, and an unsupported codec', async () => {
    const reader = new FsStore({ root });
    const before = new Set((await reader.list('cam2/')).map((e) => e.key));
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
      return last.endedAt && !last.draining ? last.objects : undefined;
    }, 15_000);
    expect(objects).toHaveLength(1);
    expect(before.has(objects[0]!)).toBe(false);
    const file = join(root, objects[0]!);
    expect(await decodeErrors(file)).toBe('');
    const p = await probe(file, true);
    expect(Math.abs(p.duration - p.startTime - 6)).toBeLessThan(0.5);
    expect(Number(p.streams.find((x) => x.codec_type === 'video')?.nb_read_frames)).toBe(150);
    const m = await gw.metrics();
    expect(metricValue(m, 'appendcast_rejected_publishes_total', { stream: 'cam2', reason: 'already-publishing' })).toBe(1);
    expect(metricValue(m, 'appendcast_rejected_publishes_total', { stream: 'cam1', reason: 'unsupported-codec' })).toBe(1);
    // The VP9 publish wrote nothing: cam1 still has only its first object.
    expect((await reader.list('cam1/')).filter((e) => e.key.endsWith('.mp4'))).toHaveLength(1);
    await reader.close();
  });

  it('stops cleanly on SIGTERM', async () => {
    expect(await gw.stop()).toBe(0);
    expect(gw.logs()).toContain('gateway stopped');
  });
});
