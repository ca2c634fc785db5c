/**
 * The client matrix: real publishers from Debian (ffmpeg, GStreamer's rtmp2sink and librtmp's
 * rtmpsink) and our own test publisher for H.265 (enhanced RTMP and the legacy codec id 12, which no
 * Debian tool sends) publish into the real gateway at the same time; each recording is one object
 * that decodes with 0 errors, with the expected codecs and duration. G.711 audio takes the ffmpeg
 * path and is recorded as AAC.
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
import { startGstPublisher } from '../helpers/gst-publisher.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { waitFor } from '../helpers/wait.js';
import { listStreamObjects } from '../helpers/objects.js';
import { remuxCorpus } from '../helpers/remux-corpus.js';
import { RtmpTestPublisher } from '../helpers/rtmp-publisher.js';

function g711Camera(url: string, seconds: number, codec: 'pcm_alaw' | 'pcm_mulaw') {
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=8000', '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-g', '25', '-keyint_min', '25', '-sc_threshold', '0', '-b:v', '300k',
    '-c:a', codec, '-ar', '8000', '-ac', '1', '-flvflags', 'no_duration_filesize', '-f', 'flv', url];
  const proc = spawn(process.env.FFMPEG_PATH ?? 'ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  return new Promise<{ code: number | null; stderr: string }>((r) => proc.once('close', (code) => r({ code, stderr })));
}

describe('client matrix: each real publisher gets a clean recording', () => {
  let dir: string;
  let gw: GatewayProcess;
  let root: string;
  const STREAMS = ['ffmpeg', 'rtmp2sink', 'rtmpsink', 'hevcenh', 'hevc12', 'alaw', 'ulaw'];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-clients-'));
    root = join(dir, 'objects');
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage: { kind: fs, root: ${root}, fsync: never }
streams:
${STREAMS.map((s) => `  - { id: ${s}, key: k-${s} }`).join('\n')}
`);
  });

  afterAll(async () => {
    await gw?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('ffmpeg, rtmp2sink, rtmpsink (H.264+AAC), our publisher (H.265 enhanced and codec id 12), ffmpeg with G.711 A-law and µ-law', async () => {
    const url = (s: string, keyInApp = false) =>
      keyInApp ? `rtmp://127.0.0.1:${gw.rtmpPort}/live?key=k-${s}/${s}` : `rtmp://127.0.0.1:${gw.rtmpPort}/live/${s}?key=k-${s}`;
    const corpus = await remuxCorpus();
    const hevc = async (stream: string, corpusCase: string) => {
      const c = corpus.find((x) => x.name === corpusCase)!;
      const tags = readFlv(await readFile(c.flv)).tags;
      const pub = await RtmpTestPublisher.open({ port: gw.rtmpPort });
      await pub.connect();
      await pub.publish(`${stream}?key=k-${stream}`);
      await pub.sendTags(tags, { realtime: true });
      await pub.unpublish();
      return tags;
    };
    const SECONDS = 6;
    const [ff, r2, r1, , , alaw, ulaw] = await Promise.all([
      startCamera({ url: url('ffmpeg'), seconds: SECONDS }).done,
      startGstPublisher({ url: url('rtmp2sink'), seconds: SECONDS, sink: 'rtmp2sink' }).done,
      // librtmp with the key in the app's query (how rtmpsink users often write it).
      startGstPublisher({ url: url('rtmpsink', true), seconds: SECONDS, sink: 'rtmpsink' }).done,
      hevc('hevcenh', 'hevc-enhanced-rtmp'),
      hevc('hevc12', 'hevc-legacy-id12'),
      g711Camera(url('alaw'), SECONDS, 'pcm_alaw'),
      g711Camera(url('ulaw'), SECONDS, 'pcm_mulaw'),
    ]);
    expect(ff.code, ff.stderr).toBe(0);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r1.code, r1.stderr).toBe(0);
    expect(alaw.code, alaw.stderr).toBe(0);
    expect(ulaw.code, ulaw.stderr).toBe(0);

    const streams = () => gw.streams();
    await waitFor('every session ended and drained', async () => {
      const all = await streams();
      return STREAMS.every((id) => {
        const s = all.find((x) => x.id === id);
        return s && !s.publishing && s.sessions.length === 1 && s.sessions.every((x) => x.endedAt && !x.draining);
      });
    }, 30_000, 200);
    const api = await streams();
    const remuxOf = (id: string) => api.find((s) => s.id === id)!.sessions[0]!.remux;
    expect(STREAMS.map(remuxOf)).toEqual(['native', 'native', 'native', 'native', 'native', 'ffmpeg', 'ffmpeg']);

    const store = new FsStore({ root });
    const expected: Record<string, { video: string; audio: string | null; seconds: number }> = {
      ffmpeg: { video: 'h264', audio: 'aac', seconds: SECONDS },
      rtmp2sink: { video: 'h264', audio: 'aac', seconds: SECONDS },
      rtmpsink: { video: 'h264', audio: 'aac', seconds: SECONDS },
      hevcenh: { video: 'hevc', audio: 'aac', seconds: 3.5 },
      hevc12: { video: 'hevc', audio: 'aac', seconds: 3.5 },
      alaw: { video: 'h264', audio: 'aac', seconds: SECONDS },
      ulaw: { video: 'h264', audio: 'aac', seconds: SECONDS },
    };
    const rows: string[] = [];
    for (const id of STREAMS) {
      const objects = await listStreamObjects(store, id);
      expect(objects, id).toHaveLength(1);
      const file = join(root, objects[0]!.key);
      expect(await decodeErrors(file), id).toBe('');
      const p = await probe(file, true);
      const v = p.streams.find((s) => s.codec_type === 'video');
      const a = p.streams.find((s) => s.codec_type === 'audio');
      const e = expected[id]!;
      expect(v?.codec_name, id).toBe(e.video);
      expect(a?.codec_name ?? null, id).toBe(e.audio);
      const media = p.duration - p.startTime;
      expect(media, id).toBeGreaterThan(e.seconds - 0.6);
      expect(media, id).toBeLessThan(e.seconds + 0.6);
      expect(Number(v?.nb_read_frames), id).toBeGreaterThanOrEqual(Math.floor(e.seconds * 25) - 2);
      rows.push(`${id.padEnd(10)} ${remuxOf(id)!.padEnd(7)} ${e.video}+${a?.codec_name ?? '-'}  ${media.toFixed(2)} s  ${v?.nb_read_frames} frames  0 decode errors`);
    }
    console.log(`client matrix:\n${rows.join('\n')}`);
  });
});
