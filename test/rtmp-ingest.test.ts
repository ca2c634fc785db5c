import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RtmpIngest, type PublishInfo, type RejectReason } from '../src/ingest/rtmp/rtmp-ingest.js';
import { Remuxer } from '../src/remux/remuxer.js';
import { locateFfmpeg } from '../src/remux/ffmpeg-path.js';
import { createLogger } from '../src/util/logger.js';
import { startCamera } from './helpers/camera.js';
import { decodeErrors, probe } from './helpers/media.js';
import { freePort, waitFor } from './helpers/net.js';

// One node-media-server per process (its module singletons): one RtmpIngest for this whole file.
describe('RTMP ingest (node-media-server adapter)', () => {
  let dir: string;
  let ingest: RtmpIngest;
  let port: number;
  const published: PublishInfo[] = [];
  const rejected: Array<{ stream: string; reason: RejectReason }> = [];
  const outputs = new Map<string, { chunks: Buffer[]; warnings: string[]; flvBytes: number; ended: Promise<void> }>();
  const ffmpeg = locateFfmpeg().path;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-ingest-'));
    port = await freePort();
    ingest = new RtmpIngest({
      host: '127.0.0.1', port, stateDir: join(dir, 'nms'), logger: createLogger('silent'),
      authorize: (stream, key) => {
        if (stream !== 'cam1' && stream !== 'cam2') return { ok: false, reason: 'unknown-stream' };
        return key === `${stream}-secret` ? { ok: true } : { ok: false, reason: 'bad-key' };
      },
      onPublish: (info) => {
        published.push(info);
        const remux = new Remuxer({ ffmpegPath: ffmpeg, inputFormat: 'flv' });
        const out = { chunks: [] as Buffer[], warnings: [] as string[], flvBytes: 0, ended: remux.done().then(() => undefined) };
        remux.on('data', (c) => out.chunks.push(c));
        remux.on('stderr', (l) => out.warnings.push(l));
        outputs.set(info.id, out);
        return { write: (b) => { out.flvBytes += b.length; remux.write(b); }, end: () => void remux.stop() };
      },
    });
    ingest.on('rejected', (r) => rejected.push({ stream: r.stream, reason: r.reason }));
    await ingest.start();
  });

  afterAll(async () => {
    await ingest?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses an unknown stream and a wrong key: no publish, nothing written', async () => {
    const a = startCamera({ url: `rtmp://127.0.0.1:${port}/live/intruder?key=x`, seconds: 3 });
    const b = startCamera({ url: `rtmp://127.0.0.1:${port}/live/cam1?key=wrong`, seconds: 3 });
    const c = startCamera({ url: `rtmp://127.0.0.1:${port}/live/cam2`, seconds: 3 }); // no key at all
    const results = await Promise.all([a.done, b.done, c.done]);
    for (const r of results) expect(r.code).not.toBe(0);
    expect(published).toHaveLength(0);
    expect(outputs.size).toBe(0);
    expect(rejected).toEqual(expect.arrayContaining([
      { stream: 'intruder', reason: 'unknown-stream' },
      { stream: 'cam1', reason: 'bad-key' },
      { stream: 'cam2', reason: 'bad-key' },
    ]));
  });

  it('accepts the right key right after a rejection, taps the FLV into ffmpeg and ends it with the publish', async () => {
    const cam = startCamera({ url: `rtmp://127.0.0.1:${port}/live/cam1?key=cam1-secret`, seconds: 4 });
    await waitFor('publish', () => published.length === 1);
    // A second publisher on a live path is refused, without disturbing the first.
    const dup = startCamera({ url: `rtmp://127.0.0.1:${port}/live/cam1?key=cam1-secret`, seconds: 2 });
    expect((await dup.done).code).not.toBe(0);
    expect(rejected).toContainEqual({ stream: 'cam1', reason: 'already-publishing' });
    expect((await cam.done).code).toBe(0);
    const info = published[0]!;
    expect(info.stream).toBe('cam1');
    const out = outputs.get(info.id)!;
    await out.ended; // the remuxer exits on its own once the publisher has gone
    expect(out.flvBytes).toBeGreaterThan(13);
    // No refused publisher's frames were spliced in (NMS would broadcast them: DTS jumps here).
    expect(out.warnings).toEqual([]);
    const mp4 = Buffer.concat(out.chunks);
    expect(mp4.subarray(4, 8).toString('latin1')).toBe('ftyp');
    const file = join(dir, 'cam1.mp4');
    await writeFile(file, mp4);
    expect(await decodeErrors(file)).toBe('');
    const p = await probe(file);
    expect(Math.abs(p.duration - 4)).toBeLessThan(0.5);
    expect(p.streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect(ingest.publishing()).toHaveLength(0);
  });
});
