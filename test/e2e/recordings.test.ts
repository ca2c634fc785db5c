/**
 * Finding recordings from the store alone: GET /api/v1/recordings and `appendcast ls` list a
 * stream's objects (each rollover its own) with when they began and last grew, their size and
 * whether they still grow, on fs and on oss → serve-oss, while a real ffmpeg camera publishes and
 * after; GET /api/v1/clip cuts a time range across a rollover into one playable file. Every listed
 * object and the clip decode with 0 errors.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { Recording } from '../../src/playback/recordings.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { startCamera } from '../helpers/camera.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { readObject } from '../helpers/objects.js';
import { startServeOss, type ServeOssProcess } from '../helpers/serve-oss-process.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const TSX = import.meta.resolve('tsx');
const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const CREDS = { id: 'rec-key-id', secret: 'rec-secret' };

async function status(gw: GatewayProcess, path: string): Promise<number> {
  return (await fetch(`http://127.0.0.1:${gw.httpPort}${path}`)).status;
}

describe('recordings: listed from the store', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  for (const kind of ['fs', 'oss'] as const) {
    it(`${kind}: the API and appendcast ls list every object with its times, size and growth; ranges select`, async () => {
      const dir = await mkdtemp(join(tmpdir(), `apc-rec-${kind}-`));
      cleanup.push(() => rm(dir, { recursive: true, force: true }));
      let oss: ServeOssProcess | undefined;
      if (kind === 'oss') {
        oss = await startServeOss(join(dir, 'oss'), 'cams', CREDS);
        cleanup.push(() => oss!.stop());
      }
      const env = { OSS_ACCESS_KEY_ID: CREDS.id, OSS_ACCESS_KEY_SECRET: CREDS.secret };
      const gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
${kind === 'fs' ? `storage: { kind: fs, root: ${join(dir, 'objects')} }` : `storage: { kind: oss, endpoint: ${oss!.url}, bucket: cams, region: cn-hangzhou, pathStyle: true }`}
streamDefaults: { rollover: { maxDurationSeconds: 3 } }
streams:
  - { id: cam1, key: k1 }
  - { id: cam2, key: k2 }
`, env);
      cleanup.push(() => gw.kill());
      const list = (q: string) => gw.get<{ stream: string; recordings: Recording[] }>(`/api/v1/recordings?${q}`);

      const cam = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam1?key=k1`, seconds: 8 });
      cleanup.push(async () => cam.stop());
      // While it publishes: the newest object is listed as growing.
      const live = await waitFor('a growing recording', async () => (await list('stream=cam1')).recordings.find((r) => r.growing), 30_000, 200);
      expect(live.bytes).toBeGreaterThan(0);
      expect((await cam.done).code).toBe(0);
      await waitFor('the session drained', async () => (await gw.streams()).find((s) => s.id === 'cam1')?.sessions.every((s) => !s.draining), 30_000, 200);

      const all = (await list('stream=cam1')).recordings;
      const objects = (await gw.streams()).find((s) => s.id === 'cam1')!.sessions.flatMap((s) => s.objects);
      expect(objects.length).toBeGreaterThanOrEqual(2); // duration rollovers
      expect(all.map((r) => r.key).sort()).toEqual([...objects].sort());
      expect(all.map((r) => r.objectSeq)).toEqual(all.map((_, i) => i));
      const reader = new FsStore({ root: kind === 'fs' ? join(dir, 'objects') : join(dir, 'oss', 'cams') });
      cleanup.push(() => reader.close());
      for (const [i, r] of all.entries()) {
        expect(r.growing).toBe(false);
        expect(r.start).not.toBeNull();
        expect(Date.parse(r.start!)).toBeLessThanOrEqual(Date.parse(r.end));
        if (i > 0) expect(Date.parse(r.start!)).toBeGreaterThanOrEqual(Date.parse(all[i - 1]!.start!));
        const bytes = await readObject(reader, r.key);
        expect(bytes.length).toBe(r.bytes);
        const file = join(dir, `rec-${i}.mp4`);
        await writeFile(file, bytes);
        expect(await decodeErrors(file), r.key).toBe('');
      }
      // A range inside the second recording selects it alone; one before everything, nothing.
      const second = all[1]!;
      const t = Date.parse(second.start!);
      const inside = (await list(`stream=cam1&start=${new Date(t + 50).toISOString()}&end=${new Date(t + 100).toISOString()}`)).recordings;
      expect(inside.map((r) => r.key)).toEqual([second.key]);
      expect((await list(`stream=cam1&end=${new Date(Date.parse(all[0]!.start!) - 60_000).toISOString()}`)).recordings).toEqual([]);
      expect((await list('stream=cam2')).recordings).toEqual([]);
      // Refusals.
      expect(await status(gw, '/api/v1/recordings')).toBe(400);
      expect(await status(gw, '/api/v1/recordings?stream=cam1&start=yesterday')).toBe(400);
      expect(await status(gw, '/api/v1/recordings?stream=nope')).toBe(404);

      // A clip across the first rollover: from 1.5 s into the first object, 4 s long.
      const want = Date.parse(all[0]!.start!) + 1500;
      const t0 = performance.now();
      const resp = await fetch(`http://127.0.0.1:${gw.httpPort}/api/v1/clip?stream=cam1&start=${new Date(want).toISOString()}&duration=4`);
      const ttfbMs = performance.now() - t0;
      expect(resp.status).toBe(200);
      expect(resp.headers.get('content-type')).toBe('video/mp4');
      const clip = Buffer.from(await resp.arrayBuffer());
      expect(clip.length).toBe(Number(resp.headers.get('content-length')));
      const clipFile = join(dir, 'clip.mp4');
      await writeFile(clipFile, clip);
      expect(await decodeErrors(clipFile)).toBe('');
      const clipStart = Date.parse(resp.headers.get('x-appendcast-clip-start')!);
      const clipSeconds = Number(resp.headers.get('x-appendcast-clip-duration'));
      // Starts at the keyframe at or before the request (1 s GOP), ends at or after its end, by at most a GOP each.
      expect(clipStart).toBeLessThanOrEqual(want + 50);
      expect(clipStart).toBeGreaterThanOrEqual(want - 1300);
      expect(clipSeconds).toBeGreaterThanOrEqual(3.9);
      expect(clipSeconds).toBeLessThanOrEqual(6.3);
      expect(clipStart + clipSeconds * 1000).toBeGreaterThanOrEqual(want + 4000 - 100); // it reaches the requested end
      expect(clipStart + clipSeconds * 1000).toBeGreaterThan(Date.parse(all[1]!.start!)); // it spans the rollover
      const clipProbe = await probe(clipFile, true);
      const clipVideo = clipProbe.streams.find((x) => x.codec_type === 'video')!;
      expect(Number(clipVideo.nb_read_frames)).toBe(Math.round(clipSeconds * 25));
      expect(resp.headers.get('x-appendcast-clip-truncated')).toBeNull();
      console.log(`clip ${kind}: asked ${new Date(want).toISOString()} +4 s, got ${resp.headers.get('x-appendcast-clip-start')} +${clipSeconds} s, ${clipVideo.nb_read_frames} frames, ${clip.length} B, response in ${ttfbMs.toFixed(0)} ms`);
      // The same clip as a progressive MP4 (moov before mdat, no fragments): every frame, playable.
      const prog = await fetch(`http://127.0.0.1:${gw.httpPort}/api/v1/clip?stream=cam1&start=${new Date(want).toISOString()}&duration=4&format=mp4`);
      expect(prog.status).toBe(200);
      expect(prog.headers.get('content-type')).toBe('video/mp4');
      const progBytes = Buffer.from(await prog.arrayBuffer());
      const progFile = join(dir, 'clip-progressive.mp4');
      await writeFile(progFile, progBytes);
      expect(await decodeErrors(progFile)).toBe('');
      const boxes: string[] = [];
      for (let at = 0; at + 8 <= progBytes.length;) {
        const size = progBytes.readUInt32BE(at);
        boxes.push(progBytes.toString('latin1', at + 4, at + 8));
        if (size < 8) break;
        at += size;
      }
      expect(boxes.indexOf('moov')).toBeGreaterThanOrEqual(0);
      expect(boxes.indexOf('moov')).toBeLessThan(boxes.indexOf('mdat'));
      expect(boxes).not.toContain('moof');
      const progVideo = (await probe(progFile, true)).streams.find((x) => x.codec_type === 'video')!;
      expect(progVideo.nb_read_frames).toBe(clipVideo.nb_read_frames);
      expect(await status(gw, `/api/v1/clip?stream=cam1&start=${new Date(want).toISOString()}&duration=4&format=avi`)).toBe(400);
      expect(await status(gw, `/api/v1/clip?stream=cam1&start=${new Date(want - 3_600_000).toISOString()}&duration=10`)).toBe(404);
      expect(await status(gw, '/api/v1/clip?stream=cam1&start=now&duration=4')).toBe(400);
      expect(await status(gw, `/api/v1/clip?stream=cam1&start=${new Date(want).toISOString()}&duration=0`)).toBe(400);
      expect(await status(gw, `/api/v1/clip?stream=nope&start=${new Date(want).toISOString()}&duration=4`)).toBe(404);

      // appendcast ls and get: the same list and the same clip from the store, without the gateway's help.
      const envAll = { ...process.env, ...env };
      const gotFile = join(dir, 'got.mp4');
      await run(process.execPath, ['--import', TSX, CLI, 'get', 'cam1', '--config', gw.configFile, '--start', new Date(want).toISOString(), '--duration', '4', '-o', gotFile], { env: envAll });
      expect((await readFile(gotFile)).equals(clip)).toBe(true);
      await expect(run(process.execPath, ['--import', TSX, CLI, 'get', 'cam1', '--config', gw.configFile, '--start', new Date(want - 3_600_000).toISOString(), '--duration', '4', '-o', join(dir, 'none.mp4')], { env: envAll })).rejects.toMatchObject({ code: 1 });
      const { stdout } = await run(process.execPath, ['--import', TSX, CLI, 'ls', 'cam1', '--config', gw.configFile, '--json'], { env: envAll });
      const fromCli = JSON.parse(stdout) as Recording[];
      expect(fromCli.map((r) => [r.key, r.bytes, r.start, r.objectSeq])).toEqual(all.map((r) => [r.key, r.bytes, r.start, r.objectSeq]));
      const table = (await run(process.execPath, ['--import', TSX, CLI, 'ls', 'cam1', '--config', gw.configFile], { env: envAll })).stdout;
      for (const r of all) expect(table).toContain(r.key);
      await expect(run(process.execPath, ['--import', TSX, CLI, 'ls', 'cam1', '--config', gw.configFile, '--start', 'nonsense'], { env: envAll })).rejects.toMatchObject({ code: 2 });
      console.log(`recordings ${kind}:\n${table}`);
      await gw.stop();
    }, 120_000);
  }
});
