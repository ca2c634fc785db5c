/**
 * Watching from the objects, in a real browser: the web page at `/` behind its login (apiToken),
 * the live player (hls.js, /live/<stream>/index.m3u8 byte ranges into the growing object) while a
 * real ffmpeg camera publishes, a past range chosen by clicking the timeline that plays to its end
 * (/vod/…), and the page's clip download; all in Debian's Chromium driven by playwright-core, on
 * fs (media through the gateway) and on oss → serve-oss (media by presigned OSS URLs, straight
 * from the store). The same playlists are decoded by ffmpeg through signed URLs (0 errors, the
 * expected frames). Live latency (camera frame time → shown) and a clip's time to first frame are
 * measured and written next to the screenshots.
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import type { Recording } from '../../src/playback/recordings.js';
import { startCamera } from '../helpers/camera.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../helpers/mse-player.js';
import { startServeOss, type ServeOssProcess } from '../helpers/serve-oss-process.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'web-playback-test-token-4f1c9';
const CREDS = { id: 'web-key-id', secret: 'web-secret' };
const ARTIFACTS = join(process.env['APPENDCAST_ARTIFACTS'] ?? join(tmpdir(), 'appendcast-artifacts'), `web-${Date.now()}`);

interface PageState {
  mode: string;
  errors: Array<{ type: string; details: string; fatal: boolean }>;
  latencyMs: number | null;
  vodEnded: boolean;
  currentTime: number;
  duration: number;
}

/** What the page's script sees, typed without the DOM library (this project compiles for Node). */
interface PageVideo {
  currentTime: number;
  duration: number;
  muted: boolean;
  src: string;
  error: { code: number } | null;
  addEventListener(type: string, fn: () => void, opts?: { once: boolean }): void;
}
interface PageGlobal {
  appendcast: Omit<PageState, 'currentTime' | 'duration'>;
  document: {
    getElementById(id: string): unknown;
    querySelectorAll(selector: string): { length: number };
    createElement(tag: 'video'): PageVideo;
  };
}

const pageState = (page: Page): Promise<PageState> =>
  page.evaluate(() => {
    const g = globalThis as unknown as PageGlobal;
    const v = g.document.getElementById('video') as PageVideo;
    const s = g.appendcast;
    return { mode: s.mode, errors: s.errors, latencyMs: s.latencyMs, vodEnded: s.vodEnded, currentTime: v.currentTime, duration: v.duration };
  });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

describe('the web page: live, a past range and a clip in Chromium', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  for (const kind of ['fs', 'oss'] as const) {
    it(`${kind}: live plays and advances, a clicked past range plays to its end, a clip downloads; playlists decode clean`, async () => {
      const dir = await mkdtemp(join(tmpdir(), `apc-web-${kind}-`));
      cleanup.push(() => rm(dir, { recursive: true, force: true }));
      await mkdir(ARTIFACTS, { recursive: true });
      let oss: ServeOssProcess | undefined;
      if (kind === 'oss') {
        // A browser page on the gateway's origin reads presigned URLs from the store: the bucket allows it (CORS).
        oss = await startServeOss(join(dir, 'oss'), 'cams', CREDS, ['--cors-origin', '*']);
        cleanup.push(() => oss!.stop());
      }
      const env = { OSS_ACCESS_KEY_ID: CREDS.id, OSS_ACCESS_KEY_SECRET: CREDS.secret };
      const gw: GatewayProcess = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http}, apiToken: ${TOKEN} }
${kind === 'fs' ? `storage: { kind: fs, root: ${join(dir, 'objects')} }` : `storage: { kind: oss, endpoint: ${oss!.url}, bucket: cams, region: cn-hangzhou, pathStyle: true }`}
streamDefaults: { rollover: { maxDurationSeconds: 8 } }
streams:
  - { id: cam1, key: k1 }
`, env, undefined, { apiToken: TOKEN });
      cleanup.push(() => gw.kill());
      const base = `http://127.0.0.1:${gw.httpPort}`;
      const bearer = { authorization: `Bearer ${TOKEN}` };
      const status = async (path: string, headers: Record<string, string> = {}): Promise<number> => (await fetch(base + path, { headers })).status;
      const sign = async (path: string): Promise<string> =>
        base + (await gw.get<{ url: string }>(`/api/v1/sign?path=${encodeURIComponent(path)}&ttl=900`)).url;

      // Access: monitoring open, the rest needs the token; a browser at / gets the login form.
      expect(await status('/metrics')).toBe(200);
      expect(await status('/healthz')).toBe(200);
      for (const p of ['/api/v1/streams', '/live/cam1/index.m3u8', '/vod/cam1/index.m3u8', '/media/cam1/x.mp4', '/app.js']) expect(await status(p), p).toBe(401);
      expect(await status('/api/v1/streams', bearer)).toBe(200);
      const login = await fetch(`${base}/`, { headers: { accept: 'text/html' } });
      expect(login.status).toBe(401);
      expect(await login.text()).toContain('action="/login"');

      const cam = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam1?key=k1`, seconds: 24 });
      cleanup.push(async () => cam.stop());

      // The live playlist through a signed URL, as a player that cannot send headers gets it.
      const liveUrl = await sign('/live/cam1/index.m3u8');
      const playlist = await waitFor('a live playlist with 3 segments', async () => {
        const r = await fetch(liveUrl);
        const text = r.ok ? await r.text() : '';
        return (text.match(/#EXTINF/g) ?? []).length >= 3 ? text : undefined;
      }, 30_000, 250);
      expect(playlist).toMatch(/^#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:[12]\n/);
      expect(playlist).toMatch(/#EXT-X-MAP:URI="[^"]+",BYTERANGE="\d+@0"/);
      expect(playlist).toMatch(/#EXT-X-PROGRAM-DATE-TIME:\d{4}-\d\d-\d\dT/);
      expect(playlist).toMatch(/#EXT-X-BYTERANGE:\d+@\d+\n/);
      expect(playlist).not.toContain('#EXT-X-ENDLIST');
      const mediaUri = playlist.split('\n').find((l) => l.length > 0 && !l.startsWith('#'))!;
      if (kind === 'fs') expect(mediaUri).toMatch(/^\/media\/cam1\/.+\.mp4\?exp=\d+&sig=/);
      else expect(mediaUri).toMatch(new RegExp(`^${oss!.url}/cams/cam1/.+\\.mp4\\?.*(Signature|x-oss-signature)=`));
      expect(await status(liveUrl.replace(/sig=./, 'sig=Z').slice(base.length))).toBe(401);

      // The page, signed in through its form.
      const profile = await mkdtemp(join(tmpdir(), 'apc-web-profile-'));
      cleanup.push(() => rm(profile, { recursive: true, force: true }));
      const context: BrowserContext = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 900 }, timeout: 20_000,
      });
      cleanup.push(() => context.close());
      const page = context.pages()[0] ?? (await context.newPage());
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(`${base}/`);
      await page.fill('input[name=token]', TOKEN);
      await Promise.all([page.waitForURL(`${base}/`), page.click('button[type=submit]')]);
      await page.waitForSelector('#streams tbody tr[data-stream=cam1]', { timeout: 15_000 });

      // Live: the page picks the publishing stream; its playback must advance by 5 s of media.
      const latencies: number[] = [];
      let firstTime: number | undefined;
      const live = await waitFor('live playback advancing 5 s', async () => {
        const s = await pageState(page);
        if (s.latencyMs !== null) latencies.push(s.latencyMs);
        if (s.mode === 'live' && s.currentTime > 0 && firstTime === undefined) firstTime = s.currentTime;
        return firstTime !== undefined && s.currentTime >= firstTime + 5 ? s : undefined;
      }, 40_000, 250);
      expect(live.errors.filter((e) => e.fatal || e.type === 'mediaError')).toEqual([]);
      expect(pageErrors).toEqual([]);
      expect(await page.textContent('#streams tbody tr[data-stream=cam1]')).toContain('publishing');
      await page.screenshot({ path: join(ARTIFACTS, `${kind}-live.png`) });
      expect(latencies.length).toBeGreaterThan(0);

      expect((await cam.done).code).toBe(0);
      await waitFor('the session drained', async () => (await gw.streams()).find((s) => s.id === 'cam1')?.sessions.every((s) => !s.draining), 30_000, 200);
      await waitFor('the live playlist ended', async () => (await (await fetch(liveUrl)).text()).includes('#EXT-X-ENDLIST'), 10_000, 200);

      // The recordings: a rollover every 8 s.
      const recs = (await gw.get<{ recordings: Recording[] }>('/api/v1/recordings?stream=cam1')).recordings;
      expect(recs.length).toBeGreaterThanOrEqual(3);
      const first = recs[0]!;

      // A VOD range across the first rollover, decoded by ffmpeg through a signed URL.
      const vodStart = Date.parse(first.start!) + 2000;
      const vodEnd = Date.parse(recs[1]!.start!) + 4000;
      const vodUrl = await sign(`/vod/cam1/index.m3u8?start=${new Date(vodStart).toISOString()}&end=${new Date(vodEnd).toISOString()}`);
      const vodText = await (await fetch(vodUrl)).text();
      expect(vodText).toContain('#EXT-X-PLAYLIST-TYPE:VOD');
      expect(vodText).toContain('#EXT-X-DISCONTINUITY');
      expect(vodText).toMatch(/#EXT-X-ENDLIST\n$/);
      const vodSeconds = [...vodText.matchAll(/#EXTINF:([\d.]+),/g)].reduce((n, m) => n + Number(m[1]), 0);
      expect(await decodeErrors(vodUrl)).toBe('');
      const vodProbe = await probe(vodUrl, true);
      expect(Number(vodProbe.streams.find((s) => s.codec_type === 'video')!.nb_read_frames)).toBe(Math.round(vodSeconds * 25));
      // It starts at the keyframe at or before the request and reaches its end, within a GOP (1 s) each.
      expect(vodSeconds).toBeGreaterThanOrEqual((vodEnd - vodStart) / 1000 - 0.1);
      expect(vodSeconds).toBeLessThanOrEqual((vodEnd - vodStart) / 1000 + 2.1);

      // A past range by clicking the timeline (last hour): from that moment to the recording's end.
      await page.selectOption('#span', '3600');
      await page.waitForFunction(() => (globalThis as unknown as PageGlobal).document.querySelectorAll('#timeline .rec').length >= 3, undefined, { timeout: 10_000 });
      const box = (await page.locator('#timeline').boundingBox())!;
      const span = await page.evaluate(() => { const now = Date.now(); return { start: now - 3600_000, end: now }; });
      const clickAt = Date.parse(recs[1]!.start!) + 3000;
      await page.mouse.click(box.x + ((clickAt - span.start) / (span.end - span.start)) * box.width, box.y + box.height / 2);
      const ended = await waitFor('the past range played to its end', async () => {
        const s = await pageState(page);
        return s.mode === 'vod' && s.vodEnded ? s : undefined;
      }, 40_000, 250);
      expect(ended.errors.filter((e) => e.fatal || e.type === 'mediaError')).toEqual([]);
      expect(ended.currentTime).toBeGreaterThan(1);
      expect(Math.abs(ended.currentTime - ended.duration)).toBeLessThan(0.5);
      await page.screenshot({ path: join(ARTIFACTS, `${kind}-vod-ended.png`) });

      // The page's clip link (from the clicked moment): time to first frame in the browser, then the file checked.
      const href = await page.getAttribute('#clip-download', 'href');
      expect(href).toMatch(/^\/api\/v1\/clip\?stream=cam1&start=.+&duration=60&format=mp4$/);
      const clipFirstFrameMs = await page.evaluate(async (src) => {
        const v = (globalThis as unknown as PageGlobal).document.createElement('video');
        v.muted = true;
        const t0 = performance.now();
        await new Promise<void>((resolve, reject) => {
          v.addEventListener('loadeddata', () => resolve(), { once: true });
          v.addEventListener('error', () => reject(new Error(`clip: media error ${v.error?.code}`)), { once: true });
          v.src = src;
        });
        return performance.now() - t0;
      }, href!);
      // The download button, clicked: the browser saves the file (its session cookie is the credential).
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.click('#clip-download')]);
      const clipFile = join(dir, 'clip.mp4');
      await download.saveAs(clipFile);
      expect(download.suggestedFilename()).toMatch(/^cam1-.+\.mp4$/);
      expect(await decodeErrors(clipFile)).toBe('');
      // The same request with the bearer token, for its headers.
      const clip = await fetch(base + href!, { headers: bearer });
      expect(clip.status).toBe(200);
      expect(Number(clip.headers.get('content-length'))).toBe((await stat(clipFile)).size);
      await clip.body?.cancel();
      const clipSeconds = Number(clip.headers.get('x-appendcast-clip-duration'));
      const clipProbe = await probe(clipFile, true);
      expect(Math.abs(clipProbe.duration - clipSeconds)).toBeLessThan(0.2);
      // 60 s asked, from a moment 3 s into the second of 3+ recordings of one 24 s session: to the end of the recording.
      expect(Number(clipProbe.streams.find((s) => s.codec_type === 'video')!.nb_read_frames)).toBe(Math.round(clipSeconds * 25));
      expect(clipSeconds).toBeGreaterThan(10);

      const figures = {
        kind,
        liveLatencyMs: { median: Math.round(median(latencies)), min: Math.round(Math.min(...latencies)), max: Math.round(Math.max(...latencies)), samples: latencies.length },
        clipFirstFrameMs: Math.round(clipFirstFrameMs),
        vodSeconds,
      };
      await writeFile(join(ARTIFACTS, `${kind}-figures.json`), JSON.stringify(figures, null, 2));
      console.log(`web-playback ${kind}: ${JSON.stringify(figures)} (screenshots in ${ARTIFACTS})`);
    }, 180_000);
  }
});
