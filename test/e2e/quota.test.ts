import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { OssLocalServer } from '../../src/serve-oss/server.js';
import { startCamera } from '../helpers/camera.js';
import { metricValue, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { groupBySession, listStreamObjects, readObject, splitObject, stitch } from '../helpers/objects.js';

const CREDS = { accessKeyId: 'quota-ak', accessKeySecret: 'quota-secret-never-logged' };
const BUCKET = 'cams';
const CAMERA_SECONDS = 20;
const GOP_SECONDS = 1;
/** ~4 s of the ~62 KB/s camera: a 10 s outage must drop about 6 s of it. */
const QUOTA_BYTES = 256 * 1024;
const OUTAGE_START_S = 2;
const OUTAGE_MS = 10_000;

/** Every nonzero `appendcast_dropped_bytes_total` sample of one stream, by reason (each reason exists from the start, at 0). */
function droppedByReason(metrics: string, stream: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of metrics.matchAll(/^appendcast_dropped_bytes_total\{([^}]*)\}\s+(\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((kv) => [kv[1]!, kv[2]!]));
    if (labels['stream'] === stream && Number(m[2]) !== 0) out[labels['reason'] ?? ''] = Number(m[2]);
  }
  return out;
}

/**
 * The spool's drop policy end to end: the gateway records to serve-oss (oss store), the store goes
 * away for 10 s while the camera keeps publishing into a spool with a tiny quota. The oldest
 * unacknowledged fragments are dropped whole, counted to the byte; when the store is back, the
 * recording goes on in a new object that starts with the init segment, and nothing is recorded twice.
 */
describe('end to end: a tiny spool quota while the store is down (oss store → serve-oss)', () => {
  let dir: string;
  let server: OssLocalServer;
  let gw: GatewayProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-e2e-quota-'));
    server = new OssLocalServer({ root: join(dir, 'oss'), port: 0, buckets: [BUCKET], credentials: [CREDS], fsync: 'never' });
    const addr = await server.start();
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
log: { level: info }
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage:
  kind: oss
  endpoint: ${addr.url}
  bucket: ${BUCKET}
  region: cn-hangzhou
  pathStyle: true
  timeouts: { connectMs: 1000, headersMs: 3000, bodyMs: 3000 }
spool: { fsync: never, quotaBytesPerStream: ${QUOTA_BYTES} }
retry: { baseDelayMs: 50, maxDelayMs: 400 }
streams:
  - { id: cam1, key: k1 }
`, { OSS_ACCESS_KEY_ID: CREDS.accessKeyId, OSS_ACCESS_KEY_SECRET: CREDS.accessKeySecret });
  }, 30_000);

  afterAll(async () => {
    if (gw) await withTimeout(gw.stop(), 15_000, 'the gateway to stop').catch(() => gw.kill());
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it('drops the oldest whole fragments, counts exactly the missing bytes, and resumes in a new object', async () => {
    // serve-oss keeps each bucket as an fs store root: read what it holds without going through it.
    const reader = new FsStore({ root: join(dir, 'oss', BUCKET) });
    const startedAt = Date.now();
    const cam = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam1?key=k1`, seconds: CAMERA_SECONDS });
    try {
      // The store goes down once the first object holds some media, at about t = 2 s.
      await waitFor('the first object with media', async () => (await reader.list('cam1/')).some((e) => e.key.endsWith('.mp4') && e.size > 10_000), 10_000, 100);
      await delay(Math.max(0, startedAt + OUTAGE_START_S * 1000 - Date.now())); // the schedule: the outage starts at t = 2 s
      const outageAt = (Date.now() - startedAt) / 1000;
      const outage = server.outage(OUTAGE_MS);
      // While it is down the spool hits its quota: drops are counted before the store is back.
      const during = await waitFor('drops counted during the outage', async () => {
        const d = droppedByReason(await gw.metrics(), 'cam1')['quota-stream'];
        return d !== undefined && d > 0 ? d : undefined;
      }, OUTAGE_MS, 200);
      await outage;
      const outageEnd = (Date.now() - startedAt) / 1000;

      expect((await cam.done).code).toBe(0);
      const session = await waitFor('the session ended and drained', async () => {
        const s = (await gw.streams())[0]!.sessions[0];
        return s?.endedAt && !s.draining ? s : undefined;
      }, 30_000, 200);
      const metrics = await gw.metrics();
      expect(session.remuxExit?.clean).toBe(true);
      expect(session.spooledBytes).toBe(session.remuxBytes);

      // The objects, from the API and from the store by their metadata, agree.
      const groups = groupBySession(await listStreamObjects(reader, 'cam1'));
      expect([...groups.keys()]).toEqual([session.id]);
      const objects = groups.get(session.id)!;
      expect(objects.map((o) => o.key)).toEqual(session.objects);
      expect(objects.length).toBeGreaterThanOrEqual(2);
      const bodies = await Promise.all(objects.map((o) => readObject(reader, o.key)));

      // Every object starts with the init segment, holds whole fragments only and decodes cleanly.
      const parts = bodies.map((b) => splitObject(b));
      const init = parts[0]!.init!;
      expect(init).not.toBeNull();
      const spans: number[] = [];
      for (const [i, p] of parts.entries()) {
        expect(p.init?.equals(init)).toBe(true);
        expect(p.other).toBe(0);
        expect(p.fragments.length).toBeGreaterThan(0);
        expect(p.fragments[0]!.keyframe).toBe(true);
        const file = join(dir, `cam1-${i}.mp4`);
        await writeFile(file, bodies[i]!);
        expect(await decodeErrors(file)).toBe('');
        const pr = await probe(file);
        spans.push(pr.duration - pr.startTime);
        if (i === parts.length - 1) {
          // Recording resumed: the last object runs to the camera's end.
          expect(Math.abs(pr.duration - CAMERA_SECONDS)).toBeLessThan(0.5);
        }
      }

      // The counted drops are exactly the bytes the remuxer wrote that are not in the store.
      const dropped = droppedByReason(metrics, 'cam1');
      expect(Object.keys(dropped)).toEqual(['quota-stream']);
      const quotaDropped = dropped['quota-stream']!;
      expect(quotaDropped).toBeGreaterThan(0);
      expect(quotaDropped).toBeGreaterThanOrEqual(during);
      const stitched = stitch(bodies);
      expect(stitched.length).toBe(bodies.reduce((n, b) => n + b.length, 0) - (bodies.length - 1) * init.length);
      expect(quotaDropped).toBe(session.remuxBytes! - stitched.length);

      // Nothing twice, nothing out of order: the fragments' mfhd sequence numbers strictly increase,
      // run without a hole inside an object, and only jump where a gap opened a new object.
      const seqs = parts.map((p) => p.fragments.map((f) => f.sequence));
      for (const s of seqs) for (let i = 1; i < s.length; i++) expect(s[i]).toBe(s[i - 1]! + 1);
      const all = seqs.flat();
      expect(all[0]).toBe(1);
      for (let i = 1; i < all.length; i++) expect(all[i]!).toBeGreaterThan(all[i - 1]!);
      const kept = all.length;
      const missing = session.fragments! - kept;
      expect(missing).toBeGreaterThan(0);
      expect(all[all.length - 1]).toBe(session.fragments);
      let gaps = 0;
      let gapSeconds = 0;
      for (let i = 1; i < parts.length; i++) {
        const prev = parts[i - 1]!.fragments[parts[i - 1]!.fragments.length - 1]!;
        const next = parts[i]!.fragments[0]!;
        expect(next.sequence).toBeGreaterThan(prev.sequence + 1);
        gaps += next.sequence - prev.sequence - 1;
        gapSeconds += next.startTime - (prev.startTime + prev.duration);
      }
      expect(gaps).toBe(missing);
      // Whole GOPs were dropped: the hole in media time is whole fragments long.
      expect(Math.abs(gapSeconds - missing * GOP_SECONDS)).toBeLessThan(0.1);

      // What is in the store plus what was dropped is the whole camera.
      const recorded = spans.reduce((a, b) => a + b, 0);
      expect(recorded).toBeGreaterThanOrEqual(CAMERA_SECONDS - gapSeconds - 0.5);
      expect(Math.abs(recorded + gapSeconds - CAMERA_SECONDS)).toBeLessThan(0.5);
      // The outage was about 10 s; the quota holds about 4 s of video: most of the outage was lost, not all.
      expect(gapSeconds).toBeLessThan(OUTAGE_MS / 1000);

      // Each object after the first was opened because of the gap.
      expect(metricValue(metrics, 'appendcast_rollovers_total', { stream: 'cam1', reason: 'gap' })).toBe(objects.length - 1);
      expect(metricValue(metrics, 'appendcast_objects_opened_total', { stream: 'cam1' })).toBe(objects.length);
      expect(gw.logs()).not.toContain(CREDS.accessKeySecret);

      console.log('e2e-quota measured', JSON.stringify({
        outage: [Math.round(outageAt * 10) / 10, Math.round(outageEnd * 10) / 10], objects: objects.length, sizes: bodies.map((b) => b.length),
        remuxBytes: session.remuxBytes, dropped: quotaDropped, fragments: session.fragments, missingFragments: missing,
        gapSeconds: Math.round(gapSeconds * 100) / 100, recordedSeconds: Math.round(recorded * 100) / 100,
      }));
    } finally {
      cam.stop();
      await reader.close();
    }
  }, 60_000);
});
