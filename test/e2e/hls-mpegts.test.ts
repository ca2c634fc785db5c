/**
 * HLS of an MPEG-TS stream: the same playlists as for fMP4 (byte ranges into the objects), with the
 * object's PAT/PMT as EXT-X-MAP. A real ffmpeg camera publishes across a rollover; the live
 * playlist (ended once the stream drained) and a VOD range across the rollover are played by
 * ffmpeg's HLS demuxer with 0 errors and exactly the frames their EXTINFs add up to.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startCamera } from '../helpers/camera.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { startGateway } from '../helpers/gateway-process.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { waitFor } from '../helpers/wait.js';

const cleanup = cleanupAfterEach('apc-hls-ts-');

const seconds = (playlist: string): number => [...playlist.matchAll(/#EXTINF:([\d.]+),/g)].reduce((n, m) => n + Number(m[1]), 0);

async function videoFrames(url: string): Promise<number> {
  return Number((await probe(url, true)).streams.find((s) => s.codec_type === 'video')!.nb_read_frames);
}

describe('HLS of MPEG-TS objects', () => {
  it('live and VOD playlists point into .ts objects with the PAT/PMT as the map, and play clean across a rollover', async () => {
    const dir = await cleanup.tempDir();
    const gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage: { kind: fs, root: ${join(dir, 'objects')} }
streamDefaults: { rollover: { maxDurationSeconds: 4 } }
streams:
  - { id: cam1, key: k1, format: mpegts }
`);
    cleanup.push(() => gw.kill());
    const base = `http://127.0.0.1:${gw.httpPort}`;
    const cam = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam1?key=k1`, seconds: 10 });
    cleanup.push(async () => cam.stop());
    expect((await cam.done).code).toBe(0);
    await waitFor('the session drained', async () => (await gw.streams()).find((s) => s.id === 'cam1')?.sessions.every((s) => !s.draining), 30_000, 200);

    const live = await waitFor('the live playlist ended', async () => {
      const text = await (await fetch(`${base}/live/cam1/index.m3u8`)).text();
      return text.includes('#EXT-X-ENDLIST') ? text : undefined;
    }, 10_000, 200);
    expect(live).toMatch(/#EXT-X-MAP:URI="\/media\/cam1\/[^"]+\.ts",BYTERANGE="\d+@0"/);
    expect(live).toContain('#EXT-X-DISCONTINUITY'); // the rollovers
    expect(await decodeErrors(`${base}/live/cam1/index.m3u8`)).toBe('');
    expect(await videoFrames(`${base}/live/cam1/index.m3u8`)).toBe(Math.round(seconds(live) * 25));

    const recs = (await gw.get<{ recordings: Array<{ start: string }> }>('/api/v1/recordings?stream=cam1')).recordings;
    expect(recs.length).toBeGreaterThanOrEqual(2);
    const start = new Date(Date.parse(recs[0]!.start) + 1500).toISOString();
    const end = new Date(Date.parse(recs[1]!.start) + 2000).toISOString();
    const vodUrl = `${base}/vod/cam1/index.m3u8?start=${start}&end=${end}`;
    const vod = await (await fetch(vodUrl)).text();
    expect(vod).toContain('#EXT-X-PLAYLIST-TYPE:VOD');
    expect(vod.match(/#EXT-X-MAP:/g)).toHaveLength(2); // one per object
    expect(await decodeErrors(vodUrl)).toBe('');
    expect(await videoFrames(vodUrl)).toBe(Math.round(seconds(vod) * 25));
    expect(seconds(vod)).toBeGreaterThanOrEqual((Date.parse(end) - Date.parse(start)) / 1000 - 0.1);
  }, 90_000);
});
