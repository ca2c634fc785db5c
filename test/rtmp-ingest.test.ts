import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
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
  let busyPortError: unknown;
  let signalListenersBefore = 0;
  let cwdBefore: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-ingest-'));
    // Quirk: NMS calls process.exit(1) on EADDRINUSE. The adapter probes the port first.
    const squatter = createServer();
    const busy = await new Promise<number>((r) => squatter.listen(0, '127.0.0.1', () => r((squatter.address() as { port: number }).port)));
    busyPortError = await new RtmpIngest({
      host: '127.0.0.1', port: busy, stateDir: join(dir, 'nms-busy'), logger: createLogger('silent'),
      authorize: () => ({ ok: false, reason: 'unknown-stream' }), onPublish: () => ({ write() {}, end() {} }),
    }).start().catch((e: unknown) => e);
    await new Promise((r) => squatter.close(r));
    signalListenersBefore = process.listenerCount('SIGTERM') + process.listenerCount('SIGINT');
    cwdBefore = await readdir(process.cwd());
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

  it('contains node-media-server\'s process-wide quirks', async () => {
    // A busy port is a typed error, not process.exit(1): this process is still here to check it.
    expect(busyPortError).toMatchObject({ code: 'APC_ERR_INGEST_PORT_IN_USE' });
    // One instance per process (module singletons): a second start is refused.
    const second = new RtmpIngest({
      host: '127.0.0.1', port: await freePort(), stateDir: join(dir, 'nms2'), logger: createLogger('silent'),
      authorize: () => ({ ok: false, reason: 'unknown-stream' }), onPublish: () => ({ write() {}, end() {} }),
    });
    await expect(second.start()).rejects.toThrow(/one instance per process/);
    // Its SIGINT/SIGTERM handlers (flush and re-raise) are removed: the gateway owns shutdown.
    expect(process.listenerCount('SIGTERM') + process.listenerCount('SIGINT')).toBe(signalListenersBefore);
    // Its JSON store lives in stateDir, not in ./data of the working directory.
    expect(await readdir(join(dir, 'nms'))).toContain('.lock');
    expect(await readdir(process.cwd())).toEqual(cwdBefore);
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

  it('a camera that reconnects at once is a new publish, not a 30 s "resume" of the old one', async () => {
    const before = published.length;
    const first = startCamera({ url: `rtmp://127.0.0.1:${port}/live/cam2?key=cam2-secret`, seconds: 2 });
    expect((await first.done).code).toBe(0);
    const t = Date.now();
    const again = startCamera({ url: `rtmp://127.0.0.1:${port}/live/cam2?key=cam2-secret`, seconds: 2 });
    expect((await again.done).code).toBe(0);
    expect(published.length).toBe(before + 2);
    const [a, b] = published.slice(before);
    expect(a!.id).not.toBe(b!.id);
    expect(b!.startedAt - t).toBeLessThan(2000); // accepted at once: no grace window
    // Each publish is its own remuxer session starting at media time 0 (no timestamp carry-over).
    for (const p of [a!, b!]) {
      const out = outputs.get(p.id)!;
      await out.ended;
      const file = join(dir, `${p.id}.mp4`);
      await writeFile(file, Buffer.concat(out.chunks));
      expect(await decodeErrors(file)).toBe('');
      const pr = await probe(file);
      expect(pr.startTime).toBeLessThan(0.2);
      expect(Math.abs(pr.duration - 2)).toBeLessThan(0.5);
    }
  });
});
