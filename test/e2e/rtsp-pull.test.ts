/**
 * Pulled streams end to end: the real gateway pulls a real RTSP server (GStreamer's, from Debian)
 * serving H.264+AAC, H.265+PCMA, H.264+PCMU (recorded as MPEG-TS), H.264 without audio and a
 * digest-protected mount; a wrong password backs off; the server goes away mid-stream and comes
 * back on the same port. Every object decodes with 0 errors, with the codecs a browser plays.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { metricValue, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { waitFor } from '../helpers/net.js';
import { listStreamObjects } from '../helpers/objects.js';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';

const run = promisify(execFile);
const PASS = 'pa:ss/w@rd!';

interface ApiStream {
  id: string;
  publishing: boolean;
  source?: { url: string; up: boolean };
  sessions: Array<{ id: string; endedAt: string | null; draining: boolean; objects: string[]; remux: string | null }>;
}

async function codecTag(file: string): Promise<string> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_tag_string', '-of', 'csv=p=0', file]);
  return stdout.trim();
}

describe('pulled RTSP streams through the gateway', () => {
  let dir: string;
  let gw: GatewayProcess;
  let server: RtspTestServer;
  let root: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-rtsp-e2e-'));
    root = join(dir, 'objects');
    server = await startRtspServer({ user: 'viewer', pass: PASS });
    const base = `rtsp://127.0.0.1:${server.port}`;
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage: { kind: fs, root: ${root}, fsync: never }
streamDefaults: { rollover: { maxDurationSeconds: null } }
streams:
  - { id: h264aac, source: { rtsp: "${base}/h264aac", stallTimeoutSeconds: 3, reconnectBaseSeconds: 0.5, reconnectMaxSeconds: 2 } }
  - { id: h265pcma, source: { rtsp: "${base}/h265pcma", stallTimeoutSeconds: 3, reconnectBaseSeconds: 0.5, reconnectMaxSeconds: 2 } }
  - { id: h264pcmu, format: mpegts, source: { rtsp: "${base}/h264pcmu", stallTimeoutSeconds: 3, reconnectBaseSeconds: 0.5, reconnectMaxSeconds: 2 } }
  - { id: noaudio, source: { rtsp: "${base}/h264", stallTimeoutSeconds: 3, reconnectBaseSeconds: 0.5, reconnectMaxSeconds: 2 } }
  - { id: auth, source: { rtsp: "${base}/auth/h264aac", user: viewer, password: "\${CAM_PASS}", reconnectBaseSeconds: 0.5, reconnectMaxSeconds: 2 } }
  - { id: badauth, source: { rtsp: "rtsp://viewer:wrong@127.0.0.1:${server.port}/auth/h264aac", reconnectBaseSeconds: 0.3, reconnectMaxSeconds: 1 } }
`, { CAM_PASS: PASS });
  });

  afterAll(async () => {
    await gw?.kill();
    await server?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  const streams = async () => (await gw.get<{ streams: ApiStream[] }>('/api/v1/streams')).streams;
  const GOOD = ['h264aac', 'h265pcma', 'h264pcmu', 'noaudio', 'auth'];

  it('records every mount, survives the server going away and coming back, and never shows a password', async () => {
    // All five up and recording.
    await waitFor('every good source up', async () => {
      const m = await gw.metrics();
      return GOOD.every((id) => metricValue(m, 'appendcast_source_up', { stream: id }) === 1);
    }, 30_000, 200);
    const store = new FsStore({ root });
    await waitFor('each has an object with ≥ 3 fragments', async () => {
      for (const id of GOOD) {
        const objs = await listStreamObjects(store, id);
        if (objs.length === 0 || objs[0]!.size < 30_000) return false;
      }
      return true;
    }, 30_000, 250);

    // The server goes away mid-stream, then comes back on the same port.
    const port = server.port;
    await server.kill();
    await waitFor('sources down', async () => {
      const m = await gw.metrics();
      return GOOD.every((id) => metricValue(m, 'appendcast_source_up', { stream: id }) === 0);
    }, 20_000, 200);
    server = await startRtspServer({ port, user: 'viewer', pass: PASS });
    await waitFor('sources up again, second sessions recording', async () => {
      const api = await streams();
      return GOOD.every((id) => api.find((s) => s.id === id)!.sessions.length >= 2);
    }, 30_000, 250);
    await waitFor('second objects have ≥ 3 fragments', async () => {
      for (const id of GOOD) {
        const objs = await listStreamObjects(store, id);
        if (objs.length < 2 || objs.at(-1)!.size < 30_000) return false;
      }
      return true;
    }, 30_000, 250);

    const m = await gw.metrics();
    const api = await streams();
    expect(await gw.stop()).toBe(0);

    // The wrong password: backoff, counted as auth, never up, no session.
    expect(metricValue(m, 'appendcast_source_reconnects_total', { stream: 'badauth', reason: 'auth' })).toBeGreaterThanOrEqual(2);
    expect(metricValue(m, 'appendcast_source_up', { stream: 'badauth' })).toBe(0);
    expect(api.find((s) => s.id === 'badauth')!.sessions).toHaveLength(0);
    // The outage was seen and counted (eof when the connection dropped, unreachable while it was gone).
    for (const id of GOOD) {
      const down = ['eof', 'unreachable', 'stall', 'exit'].reduce((n, reason) => n + (metricValue(m, 'appendcast_source_reconnects_total', { stream: id, reason }) ?? 0), 0);
      expect(down, id).toBeGreaterThanOrEqual(1);
    }
    // Secrets: not in the logs, not in the API, not in the metrics.
    for (const text of [gw.logs(), JSON.stringify(api), m]) {
      expect(text).not.toContain(PASS);
      expect(text).not.toContain(encodeURIComponent(PASS));
      expect(text).not.toContain('viewer:wrong');
    }
    expect(api.find((s) => s.id === 'badauth')!.source!.url).toMatch(/^rtsp:\/\/\*+@127\.0\.0\.1/);

    const expected: Record<string, { video: string; tag?: string; audio: string | null; ext: string }> = {
      h264aac: { video: 'h264', audio: 'aac', ext: '.mp4' },
      h265pcma: { video: 'hevc', tag: 'hvc1', audio: 'aac', ext: '.mp4' },
      h264pcmu: { video: 'h264', audio: 'aac', ext: '.ts' },
      noaudio: { video: 'h264', audio: null, ext: '.mp4' },
      auth: { video: 'h264', audio: 'aac', ext: '.mp4' },
    };
    const rows: string[] = [];
    for (const id of GOOD) {
      const objects = await listStreamObjects(store, id);
      expect(objects.length, id).toBeGreaterThanOrEqual(2); // before and after the outage
      for (const o of objects) {
        const file = join(root, o.key);
        const e = expected[id]!;
        expect(o.key.endsWith(e.ext), o.key).toBe(true);
        expect(await decodeErrors(file), o.key).toBe('');
        const p = await probe(file, true);
        const v = p.streams.find((s) => s.codec_type === 'video');
        const a = p.streams.find((s) => s.codec_type === 'audio');
        expect(v?.codec_name, o.key).toBe(e.video);
        expect(a?.codec_name ?? null, o.key).toBe(e.audio);
        if (e.tag) expect(await codecTag(file), o.key).toBe(e.tag);
        expect(Number(v?.nb_read_frames), o.key).toBeGreaterThanOrEqual(50); // ≥ 2 s at 25 fps
        rows.push(`${id.padEnd(9)} ${o.key.split('/').pop()!.padEnd(24)} ${e.video}${e.tag ? `(${e.tag})` : ''}+${a?.codec_name ?? '-'} ${(p.duration - p.startTime).toFixed(2)} s ${v?.nb_read_frames} frames`);
      }
    }
    console.log(`pulled RTSP recordings:\n${rows.join('\n')}`);
    await store.close();
  }, 180_000);
});
