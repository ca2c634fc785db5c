/**
 * Odd but common inputs, through the gateway: 29.97 fps (30000/1001) over RTMP's milliseconds and
 * over RTSP's 90 kHz clock, variable frame rate, no audio, and audio that starts late. Each gives one
 * object that decodes with 0 errors, with every frame and monotonic timestamps.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFlv } from '../../src/media/flv/flv-file.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, packetTimes, probe } from '../helpers/media.js';
import { waitFor } from '../helpers/net.js';
import { listStreamObjects } from '../helpers/objects.js';
import { remuxCorpus } from '../helpers/remux-corpus.js';
import { RtmpTestPublisher } from '../helpers/rtmp-publisher.js';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';

const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg';

/** An ffmpeg camera pushing RTMP with extra video filter/rate options; resolves with its exit. */
function camera(url: string, seconds: number, video: string[], audio: boolean): Promise<{ code: number | null; stderr: string }> {
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', ...video];
  if (audio) args.push('-f', 'lavfi', '-i', 'sine=frequency=500:sample_rate=48000');
  args.push('-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '30', '-bf', '0');
  if (audio) args.push('-c:a', 'aac', '-b:a', '48k', '-ac', '1');
  args.push('-flvflags', 'no_duration_filesize', '-f', 'flv', url);
  const p = spawn(FFMPEG, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  return new Promise((r) => p.once('close', (code) => r({ code, stderr })));
}

interface Times { frames: number; dts: number[]; monotonic: boolean }
async function videoTimes(file: string): Promise<Times> {
  const dts = await packetTimes(file);
  return { frames: dts.length, dts, monotonic: dts.every((d, i) => i === 0 || d > dts[i - 1]!) };
}

describe('odd but common inputs', () => {
  let dir: string;
  let gw: GatewayProcess;
  let rtsp: RtspTestServer;
  let root: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-odd-'));
    root = join(dir, 'objects');
    rtsp = await startRtspServer();
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage: { kind: fs, root: ${root}, fsync: never }
streams:
  - { id: ntsc, key: k }
  - { id: vfr, key: k }
  - { id: novideo-audio-late, key: k }
  - { id: rtspntsc, source: { rtsp: "rtsp://127.0.0.1:${rtsp.port}/ntsc" } }
`);
  });

  afterAll(async () => {
    await gw?.kill();
    await rtsp?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('29.97 fps (RTMP and RTSP), variable frame rate, late audio: clean objects with every frame', async () => {
    const url = (id: string) => `rtmp://127.0.0.1:${gw.rtmpPort}/live/${id}?key=k`;
    const late = (await remuxCorpus()).find((c) => c.name === 'h264-late-audio')!;
    const lateTags = readFlv(await readFile(late.flv)).tags;
    const [ntsc, vfr] = await Promise.all([
      camera(url('ntsc'), 5, ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30000/1001'], true),
      // Variable frame rate: a 30 fps source where frames 3k+1 are dropped (irregular 33/67 ms steps), no audio.
      camera(url('vfr'), 5, ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-vf', "select='not(eq(mod(n\\,3)\\,1))'", '-fps_mode', 'vfr'], false),
      (async () => {
        const pub = await RtmpTestPublisher.open({ port: gw.rtmpPort });
        await pub.connect();
        await pub.publish('novideo-audio-late?key=k');
        await pub.sendTags(lateTags, { realtime: true });
        await pub.unpublish();
        return { code: 0, stderr: '' };
      })(),
    ]);
    expect(ntsc.code, ntsc.stderr).toBe(0);
    expect(vfr.code, vfr.stderr).toBe(0);
    // Let the RTSP pull record a few seconds too.
    const store = new FsStore({ root });
    await waitFor('rtsp object ≥ 4 s', async () => ((await listStreamObjects(store, 'rtspntsc'))[0]?.size ?? 0) > 60_000, 30_000, 250);
    expect(await gw.stop()).toBe(0);

    const only = async (id: string) => {
      const objs = await listStreamObjects(store, id);
      expect(objs, id).toHaveLength(1);
      const file = join(root, objs[0]!.key);
      expect(await decodeErrors(file), id).toBe('');
      return file;
    };
    // 29.97 over RTMP: 5 s → 150 frames (±1 for where ffmpeg stops), steps of 33 or 34 ms (after
    // the first sample, which, as ffmpeg does without an edit list, starts at 0 and absorbs the
    // audio's head start).
    const n = await videoTimes(await only('ntsc'));
    expect(n.monotonic).toBe(true);
    expect(Math.abs(n.frames - 150)).toBeLessThanOrEqual(1);
    const steps = n.dts.slice(2).map((d, i) => Math.round((d - n.dts[i + 1]!) * 1000));
    expect(new Set(steps)).toEqual(new Set([33, 34]));
    // VFR: 2 of every 3 frames of 30 fps for 5 s = 100 frames, irregular steps kept.
    const v = await videoTimes(await only('vfr'));
    expect(v.monotonic).toBe(true);
    expect(Math.abs(v.frames - 100)).toBeLessThanOrEqual(1);
    const vsteps = new Set(v.dts.slice(2).map((d, i) => Math.round((d - v.dts[i + 1]!) * 1000)));
    expect([...vsteps].every((ms) => ms >= 33 && ms <= 67)).toBe(true);
    expect(vsteps.has(33) || vsteps.has(34)).toBe(true);
    expect(vsteps.has(66) || vsteps.has(67)).toBe(true);
    // Late audio: both tracks, every video frame.
    const lateFile = await only('novideo-audio-late');
    const p = await probe(lateFile, true);
    expect(p.streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect(Number(p.streams.find((s) => s.codec_type === 'video')!.nb_read_frames)).toBe(88);
    // 29.97 over RTSP (90 kHz): monotonic, about 30 frames a second.
    const r = await videoTimes(await only('rtspntsc'));
    expect(r.monotonic).toBe(true);
    const seconds = r.dts.at(-1)! - r.dts[0]!;
    expect(r.frames / seconds).toBeGreaterThan(28.5);
    expect(r.frames / seconds).toBeLessThan(31.5);
    await store.close();
  }, 120_000);
});
