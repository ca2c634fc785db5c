/**
 * Pulled streams end to end: the real gateway pulls a real RTSP server (GStreamer's, from Debian)
 * serving H.264+AAC, H.265+PCMA, H.264+PCMU (recorded as MPEG-TS), H.264 without audio and a
 * digest-protected mount; a wrong password backs off; the server goes away mid-stream and comes
 * back on the same port within the reconnect grace: fMP4 and MPEG-TS recordings go on in the same
 * object (with a gap line in the index). Every object decodes with 0
 * errors, with the codecs a browser plays.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { metricValue, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, packetTimes, probe } from '../helpers/media.js';
import { waitFor } from '../helpers/net.js';
import { INDEX_SUFFIX, listStreamObjects, readObject } from '../helpers/objects.js';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';

const run = promisify(execFile);
const PASS = 'pa:ss/w@rd!';

interface ApiStream {
  id: string;
  publishing: boolean;
  source?: { url: string; up: boolean };
  sessions: Array<{ id: string; endedAt: string | null; draining: boolean; objects: string[]; remux: string | null }>;
}

async function dtsMonotonic(file: string): Promise<boolean> {
  const dts = await packetTimes(file);
  return dts.every((d, i) => i === 0 || d > dts[i - 1]!);
}

/** Video packets in a (possibly still growing) object: a cheap count, no decoding. */
async function videoPackets(file: string): Promise<number> {
  try {
    const { stdout } = await run('ffprobe', ['-v', 'quiet', '-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', file]);
    return Number.parseInt(stdout.trim(), 10) || 0; // MPEG-TS prints the stream again under its program: the first line
  } catch {
    return 0; // not yet readable (no header yet)
  }
}

const MIN_FRAMES = 50; // ≥ 2 s at 25 fps in every object

/** The largest step between consecutive video DTS (s): where a continued object's gap is. */
async function largestDtsStep(file: string): Promise<number> {
  const dts = await packetTimes(file);
  return dts.reduce((m, d, i) => (i === 0 ? m : Math.max(m, d - dts[i - 1]!)), 0);
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
  - { id: h265ts, format: mpegts, source: { rtsp: "${base}/h265pcma", stallTimeoutSeconds: 3, reconnectBaseSeconds: 0.5, reconnectMaxSeconds: 2 } }
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
  const GOOD = ['h264aac', 'h265pcma', 'h264pcmu', 'h265ts', 'noaudio', 'auth'];

  it('records every mount, survives the server going away and coming back, and never shows a password', async () => {
    // All five up and recording.
    await waitFor('every good source up', async () => {
      const m = await gw.metrics();
      return GOOD.every((id) => metricValue(m, 'appendcast_source_up', { stream: id }) === 1);
    }, 30_000, 200);
    const store = new FsStore({ root });
    // Waits on what is asserted below (frames per object), not on a byte count standing in for it:
    // H.265 in MPEG-TS reached 30 kB with 47 frames under load.
    const counted = new Set<string>();
    const everyObjectHasFrames = async (): Promise<boolean> => {
      for (const id of GOOD) {
        const objs = await listStreamObjects(store, id);
        if (objs.length === 0) return false;
        for (const o of objs) {
          if (counted.has(o.key)) continue;
          if ((await videoPackets(join(root, o.key))) < MIN_FRAMES + 5) return false;
          counted.add(o.key);
        }
      }
      return true;
    };
    await waitFor(`each stream has ≥ ${MIN_FRAMES} frames`, everyObjectHasFrames, 30_000, 500);

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
    const sizesAtOutage = new Map<string, number>();
    for (const id of GOOD) sizesAtOutage.set(id, (await listStreamObjects(store, id)).reduce((n, o) => n + o.size, 0));
    await waitFor('the recordings grow again by ≥ 3 fragments', async () => {
      for (const id of GOOD) {
        const total = (await listStreamObjects(store, id)).reduce((n, o) => n + o.size, 0);
        if (total < sizesAtOutage.get(id)! + 30_000) return false;
      }
      return true;
    }, 30_000, 250);
    // A continued fMP4 object was counted before the outage: it only grows. New (MPEG-TS) objects are counted now.
    await waitFor(`every new object has ≥ ${MIN_FRAMES} frames`, everyObjectHasFrames, 30_000, 500);

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
      h265ts: { video: 'hevc', audio: 'aac', ext: '.ts' },
      noaudio: { video: 'h264', audio: null, ext: '.mp4' },
      auth: { video: 'h264', audio: 'aac', ext: '.mp4' },
    };
    const rows: string[] = [];
    const gaps: string[] = [];
    for (const id of GOOD) {
      const objects = await listStreamObjects(store, id);
      // Back within the grace with the same parameters: the same object (fMP4 and MPEG-TS alike), the gap marked in its index.
      expect(objects, id).toHaveLength(1);
      const index = (await readObject(store, objects[0]!.key + INDEX_SUFFIX)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; g?: number });
      expect(index.filter((l) => l.type === 'gap').length, id).toBeGreaterThanOrEqual(1);
      expect(metricValue(m, 'appendcast_continuations_total', { stream: id }), id).toBeGreaterThanOrEqual(1);
      // The object's timeline holds the gap the index reports: one frame step plus g (MPEG-TS: leading
      // audio before the first keyframe is placed at the gap's end, so video may start later by up to a
      // GOP (1 s here) plus the TS muxer's interleaving delay (0.7 s)).
      const g = index.filter((l) => l.type === 'gap').reduce((n, l) => n + l.g!, 0);
      const step = await largestDtsStep(join(root, objects[0]!.key));
      expect(step, id).toBeGreaterThanOrEqual(g);
      expect(step, id).toBeLessThanOrEqual(g + (expected[id]!.ext === '.ts' ? 2 : 0.1));
      gaps.push(`${id} g=${g.toFixed(3)} s, largest DTS step ${step.toFixed(3)} s`);
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
        expect(Number(v?.nb_read_frames), o.key).toBeGreaterThanOrEqual(MIN_FRAMES);
        expect(await dtsMonotonic(file), o.key).toBe(true);
        rows.push(`${id.padEnd(9)} ${o.key.split('/').pop()!.padEnd(24)} ${e.video}${e.tag ? `(${e.tag})` : ''}+${a?.codec_name ?? '-'} ${(p.duration - p.startTime).toFixed(2)} s ${v?.nb_read_frames} frames`);
      }
    }
    console.log(`pulled RTSP recordings:\n${rows.join('\n')}\n${gaps.join('\n')}`);
    await store.close();
  }, 180_000);
});
