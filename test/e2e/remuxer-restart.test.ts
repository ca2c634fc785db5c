import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { startCamera } from '../helpers/camera.js';
import { metricValue, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { waitFor } from '../helpers/wait.js';
import { groupBySession, listStreamObjects, readObject, stitch } from '../helpers/objects.js';

const CAMERA_SECONDS = 16;

/**
 * ffmpeg (the remuxer for G.711 audio, or with `remux: ffmpeg`) can hang or die under a live camera. The gateway kills a remuxer that takes input but
 * writes nothing for ffmpeg.stallTimeoutSeconds, replaces a dead one, and the recording goes on —
 * the camera never notices.
 */
describe('remuxer watchdog: a stalled or killed ffmpeg is replaced while the camera publishes', () => {
  let dir: string;
  let gw: GatewayProcess;
  let root: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-restart-'));
    root = join(dir, 'objects');
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
ffmpeg: { stallTimeoutSeconds: 2 }
storage: { kind: fs, root: ${root}, fsync: never }
streams:
  - { id: cam1, key: k1, remux: ffmpeg }
`);
  });

  afterAll(async () => {
    await gw?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  const sessions = async () =>
    (await gw.streams()).find((s) => s.id === 'cam1')!.sessions;

  it('replaces a stalled (SIGSTOP) and then a killed (SIGKILL) remuxer; every session is recorded and playable', async () => {
    const t0 = Date.now();
    const cam = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam1?key=k1`, seconds: CAMERA_SECONDS });
    try {
      await waitFor('first appends', async () => (metricValue(await gw.metrics(), 'appendcast_appends_total', { stream: 'cam1' }) ?? 0) >= 3, 15_000, 100);
      const first = (await sessions())[0]!;
      expect(first.remuxerPid).toBeGreaterThan(0);
      process.kill(first.remuxerPid!, 'SIGSTOP'); // ffmpeg hangs: input keeps coming, no output
      const second = await waitFor('replacement after the stall', async () => (await sessions()).find((s) => s.id === `${first.id}-r1` && s.remuxerPid), 10_000, 100);
      await waitFor('replacement writes', async () => (metricValue(await gw.metrics(), 'appendcast_objects_opened_total', { stream: 'cam1' }) ?? 0) >= 2, 10_000, 100);
      process.kill(second.remuxerPid!, 'SIGKILL'); // ffmpeg dies
      await waitFor('replacement after the crash', async () => (await sessions()).some((s) => s.id === `${first.id}-r2`), 10_000, 100);
      expect((await cam.done).code).toBe(0); // the camera never noticed
    } finally {
      cam.stop();
    }
    const cameraEnd = Date.now();
    const all = await waitFor('all drained', async () => {
      const s = await sessions();
      return s.length === 3 && s.every((x) => x.endedAt && !x.draining) ? s : undefined;
    }, 20_000, 200);
    const m = await gw.metrics();
    expect(metricValue(m, 'appendcast_ffmpeg_restarts_total', { stream: 'cam1', reason: 'stall' })).toBe(1);
    expect(metricValue(m, 'appendcast_ffmpeg_restarts_total', { stream: 'cam1', reason: 'signal-SIGKILL' })).toBe(1);
    expect(gw.logs()).toContain('remuxer stalled');

    const store = new FsStore({ root });
    const bySession = groupBySession(await listStreamObjects(store, 'cam1'));
    expect([...bySession.keys()].sort()).toEqual(all.map((s) => s.id).sort());
    for (const s of all) {
      const bodies = await Promise.all(bySession.get(s.id)!.map((o) => readObject(store, o.key)));
      const stitched = stitch(bodies);
      // Everything each remuxer wrote in whole boxes reached the store, once.
      expect(stitched.length).toBe(s.spooledBytes);
      const f = join(dir, `${s.id}.mp4`);
      await writeFile(f, stitched);
      expect(await decodeErrors(f)).toBe('');
      if (s.id.endsWith('-r2')) {
        // The last remuxer ended cleanly with the camera: its output is all there, and it covers
        // the camera from its restart (fed from the last keyframe) to the end.
        expect(s.remuxBytes).toBe(s.spooledBytes);
        const p = await probe(f);
        const span = p.duration - p.startTime;
        expect(span).toBeGreaterThan(2);
        expect(span).toBeLessThan((cameraEnd - t0) / 1000);
      }
    }
    await store.close();
  }, 90_000);
});
