import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { startCamera } from '../helpers/camera.js';
import { metricValue, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { groupBySession, indexTilingProblem, listStreamObjects, readIndex, readObject, splitObject, stitch } from '../helpers/objects.js';

const CAMERA_SECONDS = 18;
/** The camera's GOP (helpers/camera.ts default: 25 frames at 25 fps); one fragment per GOP. */
const GOP_SECONDS = 1;
/** ~62 KB/s of fMP4 from the 400 kbps camera: about four objects in 18 s. */
const MAX_BYTES = 256 * 1024;
const MAX_DURATION_SECONDS = 4;

/**
 * Rollover end to end: two cameras publish at once, one to a stream that rolls over by size, one to
 * a stream that rolls over by duration. Each object must stand alone (starts with the init
 * segment, decodes), and the session's objects stitched back together must be exactly what the
 * remuxer wrote.
 */
describe('end to end: rollover by size and by duration through the gateway (fs store)', () => {
  let dir: string;
  let root: string;
  let gw: GatewayProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-e2e-rollover-'));
    root = join(dir, 'objects');
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
log: { level: info }
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage: { kind: fs, root: ${root}, fsync: never }
spool: { fsync: never, sessionSha256: true }
streams:
  - id: bysize
    key: k-size
    rollover: { maxBytes: ${MAX_BYTES}, maxDurationSeconds: null }
  - id: bytime
    key: k-time
    rollover: { maxDurationSeconds: ${MAX_DURATION_SECONDS} }
`);
  }, 30_000);

  afterAll(async () => {
    if (gw) await withTimeout(gw.stop(), 15_000, 'the gateway to stop').catch(() => gw.kill());
    await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it('produces several objects per session, each decodable alone, together byte-exact', async () => {
    const reader = new FsStore({ root });
    const camSize = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/bysize?key=k-size`, seconds: CAMERA_SECONDS });
    const camTime = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/bytime?key=k-time`, seconds: CAMERA_SECONDS });
    try {
      expect((await camSize.done).code).toBe(0);
      expect((await camTime.done).code).toBe(0);
      const streams = await waitFor('both sessions ended and drained', async () => {
        const all = await gw.streams();
        return all.every((s) => s.sessions.length === 1 && s.sessions[0]!.endedAt && !s.sessions[0]!.draining) ? all : undefined;
      }, 20_000, 200);
      const metrics = await gw.metrics();

      const measured: Record<string, unknown> = {};
      for (const stream of ['bysize', 'bytime'] as const) {
        const session = streams.find((s) => s.id === stream)!.sessions[0]!;
        expect(session.remuxExit?.clean).toBe(true);
        expect(session.remuxBytes).toBeGreaterThan(0);
        expect(session.spooledBytes).toBe(session.remuxBytes);

        // The API's object list and the store's (grouped by the objects' own metadata) agree.
        const listed = groupBySession(await listStreamObjects(reader, stream));
        expect([...listed.keys()]).toEqual([session.id]);
        const objects = listed.get(session.id)!;
        expect(objects.map((o) => o.key)).toEqual(session.objects);
        expect(objects.map((o) => o.seq)).toEqual(objects.map((_, i) => i));
        expect(objects.length).toBeGreaterThanOrEqual(3);

        const bodies: Buffer[] = [];
        const spans: number[] = [];
        let init: Buffer | null = null;
        for (const [i, o] of objects.entries()) {
          const bytes = await readObject(reader, o.key);
          expect(bytes.length).toBe(o.size);
          bodies.push(bytes);
          if (stream === 'bysize') expect(bytes.length).toBeLessThanOrEqual(MAX_BYTES);

          // Each object starts with the session's init segment and holds whole fragments only.
          const parts = splitObject(bytes);
          expect(parts.init).not.toBeNull();
          init ??= parts.init;
          expect(parts.init!.equals(init!)).toBe(true);
          expect(parts.other).toBe(0);
          expect(parts.fragments.length).toBeGreaterThan(0);
          expect(parts.fragments[0]!.keyframe).toBe(true);

          // Each object decodes on its own.
          const file = join(dir, `${stream}-${i}.mp4`);
          await writeFile(file, bytes);
          expect(await decodeErrors(file)).toBe('');
          const p = await probe(file);
          spans.push(p.duration - p.startTime);

          // The sidecar index tiles the object exactly: init first, then one line per fragment.
          const lines = await readIndex(reader, o.key);
          expect(indexTilingProblem(lines, bytes.length)).toBeNull();
          expect(lines[0]!.type).toBe('init');
          expect(lines.filter((l) => l.type === 'fragment')).toHaveLength(parts.fragments.length);
        }

        // Stitched in object-seq order without the repeated init segments: the remuxer's output.
        const stitched = stitch(bodies);
        expect(stitched.length).toBe(session.remuxBytes);
        expect(createHash('sha256').update(stitched).digest('hex')).toBe(session.remuxSha256);

        // Together the objects hold the whole recording, and nothing twice.
        const total = spans.reduce((a, b) => a + b, 0);
        expect(Math.abs(total - CAMERA_SECONDS)).toBeLessThan(0.5);
        if (stream === 'bytime') {
          for (const s of spans) expect(s).toBeLessThanOrEqual(MAX_DURATION_SECONDS + GOP_SECONDS + 0.15);
          // Every object but the last was cut by the clock, so it is not much shorter than the limit.
          for (const s of spans.slice(0, -1)) expect(s).toBeGreaterThanOrEqual(MAX_DURATION_SECONDS - GOP_SECONDS);
        }

        const reason = stream === 'bysize' ? 'size' : 'duration';
        expect(metricValue(metrics, 'appendcast_rollovers_total', { stream, reason })).toBe(objects.length - 1);
        const other = reason === 'size' ? 'duration' : 'size';
        expect(metricValue(metrics, 'appendcast_rollovers_total', { stream, reason: other }) ?? 0).toBe(0);
        expect(metricValue(metrics, 'appendcast_objects_opened_total', { stream })).toBe(objects.length);
        measured[stream] = { objects: objects.length, sizes: bodies.map((b) => b.length), spans: spans.map((s) => Math.round(s * 100) / 100), remuxBytes: session.remuxBytes };
      }
      console.log('e2e-rollover measured', JSON.stringify(measured));
    } finally {
      camSize.stop();
      camTime.stop();
      await reader.close();
    }
  }, 60_000);
});
