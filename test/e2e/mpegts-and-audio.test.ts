/**
 * RTMP cameras recorded as MPEG-TS (`format: mpegts`), with duration rollover: `.ts` objects in
 * whole 188-byte packets, each starting with PAT/PMT and a keyframe, each playable on its own, with
 * their sidecar index; H.265 over RTMP into TS; and the audio policy (`drop`, `aac`, `copy` of G.711).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFlv } from '../../src/media/flv/flv-file.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { startCamera } from '../helpers/camera.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { waitFor } from '../helpers/net.js';
import { INDEX_SUFFIX, listStreamObjects, readObject } from '../helpers/objects.js';
import { remuxCorpus } from '../helpers/remux-corpus.js';
import { RtmpTestPublisher } from '../helpers/rtmp-publisher.js';

function g711Camera(url: string, seconds: number): Promise<{ code: number | null; stderr: string }> {
  const proc = spawn(process.env.FFMPEG_PATH ?? 'ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=8000', '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '25', '-keyint_min', '25', '-sc_threshold', '0',
    '-c:a', 'pcm_alaw', '-ar', '8000', '-ac', '1', '-flvflags', 'no_duration_filesize', '-f', 'flv', url], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  return new Promise((r) => proc.once('close', (code) => r({ code, stderr })));
}

describe('MPEG-TS objects and the audio policy, from RTMP', () => {
  let dir: string;
  let gw: GatewayProcess;
  let root: string;
  const IDS = ['ts', 'tshevc', 'drop', 'aac', 'g711copy', 'tsg711'];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-ts-'));
    root = join(dir, 'objects');
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage: { kind: fs, root: ${root}, fsync: never }
streams:
  - { id: ts, key: k, format: mpegts, rollover: { maxDurationSeconds: 3 } }
  - { id: tshevc, key: k, format: mpegts }
  - { id: drop, key: k, audio: drop }
  - { id: aac, key: k, audio: aac }
  - { id: g711copy, key: k, audio: copy }
  - { id: tsg711, key: k, format: mpegts }
`);
  });

  afterAll(async () => {
    await gw?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('records each as configured; every object plays on its own', async () => {
    const url = (id: string) => `rtmp://127.0.0.1:${gw.rtmpPort}/live/${id}?key=k`;
    const hevc = (await remuxCorpus()).find((c) => c.name === 'hevc-enhanced-rtmp')!;
    const hevcTags = readFlv(await readFile(hevc.flv)).tags;
    const results = await Promise.all([
      startCamera({ url: url('ts'), seconds: 8 }).done,
      (async () => {
        const pub = await RtmpTestPublisher.open({ port: gw.rtmpPort });
        await pub.connect();
        await pub.publish('tshevc?key=k');
        await pub.sendTags(hevcTags, { realtime: true });
        await pub.unpublish();
        return { code: 0, stderr: '' };
      })(),
      startCamera({ url: url('drop'), seconds: 4 }).done,
      startCamera({ url: url('aac'), seconds: 4 }).done,
      g711Camera(url('g711copy'), 4),
      g711Camera(url('tsg711'), 4),
    ]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    await waitFor('all drained', async () => {
      const a = await gw.get<{ streams: Array<{ id: string; sessions: Array<{ endedAt: string | null; draining: boolean }> }> }>('/api/v1/streams');
      return IDS.every((id) => { const s = a.streams.find((x) => x.id === id)!; return s.sessions.length === 1 && s.sessions.every((x) => x.endedAt && !x.draining); });
    }, 30_000, 200);
    const store = new FsStore({ root });

    // MPEG-TS with a 3 s duration rollover: several .ts objects, each whole packets, PAT first, a keyframe, playable alone.
    const ts = await listStreamObjects(store, 'ts');
    expect(ts.length).toBeGreaterThanOrEqual(2);
    let frames = 0;
    for (const o of ts) {
      expect(o.key.endsWith('.ts')).toBe(true);
      const bytes = await readObject(store, o.key);
      expect(bytes.length % 188).toBe(0);
      expect(bytes[0]).toBe(0x47);
      // It starts with the PSI run ffmpeg writes (SDT, PAT, PMT): a PAT (PID 0) among the first packets.
      const pids = [0, 1, 2].map((i) => bytes.readUInt16BE(i * 188 + 1) & 0x1fff);
      expect(pids, o.key).toContain(0);
      expect(await decodeErrors(join(root, o.key)), o.key).toBe('');
      const p = await probe(join(root, o.key), true);
      expect(p.streams.map((s) => s.codec_name).sort(), o.key).toEqual(['aac', 'h264']);
      frames += Number(p.streams.find((s) => s.codec_type === 'video')!.nb_read_frames);
      // The sidecar index has one line per fragment (and one for the init segment).
      const index = (await readObject(store, o.key + INDEX_SUFFIX)).toString('utf8').trim().split('\n');
      expect(index.length, o.key).toBeGreaterThanOrEqual(2);
    }
    expect(frames).toBe(200); // 8 s at 25 fps, split across objects, none lost or doubled

    const hevcTs = await listStreamObjects(store, 'tshevc');
    expect(hevcTs).toHaveLength(1);
    expect(hevcTs[0]!.key.endsWith('.ts')).toBe(true);
    expect(await decodeErrors(join(root, hevcTs[0]!.key))).toBe('');
    expect((await probe(join(root, hevcTs[0]!.key))).streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'hevc']);

    for (const [id, codecs] of [['drop', ['h264']], ['aac', ['aac', 'h264']], ['g711copy', ['h264']], ['tsg711', ['aac', 'h264']]] as const) {
      const objs = await listStreamObjects(store, id);
      expect(objs, id).toHaveLength(1);
      const file = join(root, objs[0]!.key);
      expect(await decodeErrors(file), id).toBe('');
      expect((await probe(file)).streams.map((s) => s.codec_name).sort(), id).toEqual([...codecs]);
    }
    const api = await gw.get<{ streams: Array<{ id: string; sessions: Array<{ remux: string }> }> }>('/api/v1/streams');
    const remux = (id: string) => api.streams.find((s) => s.id === id)!.sessions[0]!.remux;
    expect(IDS.map(remux)).toEqual(['ffmpeg', 'ffmpeg', 'native', 'ffmpeg', 'native', 'ffmpeg']);
    await store.close();
  });
});
