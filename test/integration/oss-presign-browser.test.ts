/**
 * The real peer of serve-oss's CORS: Debian's Chromium, on a page from another origin, fetches a
 * presigned URL with XHR and a `Range` header, the way hls.js loads media (issue 11). With
 * `corsOrigins` naming the page's origin the bytes and the exposed Content-Range reach the script;
 * without it the browser blocks the response.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OssLocalServer } from '../../src/serve-oss/server.js';
import { OssStore } from '../../src/store/oss/oss-store.js';
import { CHROMIUM_ARGS, CHROMIUM_PATH, chromiumAvailable } from '../helpers/mse-player.js';

const AK = 'LTAI5tPresignBrowser';
const SK = 'presign-browser-secret';
const BUCKET = 'media';
const KEY = 'cam 1/seg+1.ts';
const BYTES = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 13 + 5) & 0xff));

interface XhrResult {
  status: number;
  contentRange: string | null;
  bytes: number[];
  error: string | null;
}

/**
 * Runs in the page: one XHR GET with a Range header, as hls.js's loader does. Chromium sends a simple
 * `bytes=a-b` Range without a preflight (Fetch safelists it); other browsers may not, so `extra`
 * headers force one.
 */
const XHR_IN_PAGE = `(url, extra) => new Promise((resolve) => {
  const xhr = new XMLHttpRequest();
  xhr.open('GET', url);
  xhr.responseType = 'arraybuffer';
  xhr.setRequestHeader('Range', 'bytes=100-199');
  for (const [name, value] of Object.entries(extra)) xhr.setRequestHeader(name, value);
  xhr.timeout = 10000;
  const done = (error) => resolve({
    status: xhr.status,
    contentRange: error ? null : xhr.getResponseHeader('content-range'),
    bytes: xhr.response ? Array.from(new Uint8Array(xhr.response)) : [],
    error,
  });
  xhr.onload = () => done(null);
  xhr.onerror = () => done('error');
  xhr.ontimeout = () => done('timeout');
  xhr.send();
})`;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return (server.address() as AddressInfo).port;
}

describe('a browser page on another origin fetches presigned URLs (CORS)', () => {
  let dir: string;
  let page: Server;
  let pageOrigin: string;
  const servers: OssLocalServer[] = [];
  const urls: { cors: string; plain: string } = { cors: '', plain: '' };
  let context: BrowserContext | undefined;
  let profile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oss-presign-browser-'));
    page = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>player</title>');
    });
    pageOrigin = `http://127.0.0.1:${await listen(page)}`;
    for (const name of ['cors', 'plain'] as const) {
      const server = new OssLocalServer({
        root: join(dir, name), port: 0, credentials: [{ accessKeyId: AK, accessKeySecret: SK }], buckets: [BUCKET],
        fsync: 'never', logger: pino({ level: 'silent' }), ...(name === 'cors' ? { corsOrigins: [pageOrigin] } : {}),
      });
      servers.push(server);
      const { url } = await server.start();
      const store = new OssStore({
        kind: 'oss', endpoint: url, bucket: BUCKET, region: 'cn-hangzhou', signatureVersion: 'v4', pathStyle: true,
        accessKeyId: AK, accessKeySecret: SK, timeouts: { connectMs: 2000, headersMs: 10_000, bodyMs: 10_000 },
      }, { env: {} });
      await store.append(KEY, 0, [BYTES]);
      urls[name] = await store.presignGet(KEY, { expiresInSeconds: 300 });
      await store.close();
    }
    profile = await mkdtemp(join(tmpdir(), 'oss-presign-chromium-'));
  });

  afterAll(async () => {
    await context?.close();
    for (const s of servers) await s.close();
    await new Promise<void>((ok) => page.close(() => ok()));
    await rm(dir, { recursive: true, force: true });
    if (profile !== undefined) await rm(profile, { recursive: true, force: true });
  });

  it('gets the range and its Content-Range with --cors-origin, and is blocked without it', async () => {
    expect(await chromiumAvailable(), "/usr/bin/chromium is missing: .ci/run installs Debian's chromium").toBe(true);
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: 20_000 });
    const tab = context.pages()[0] ?? (await context.newPage());
    await tab.goto(`${pageOrigin}/`);
    expect(new URL(urls.cors).origin).not.toBe(pageOrigin); // really cross-origin

    const xhr = async (url: string, extra: Record<string, string> = {}): Promise<XhrResult> =>
      (await tab.evaluate(`(${XHR_IN_PAGE})(${JSON.stringify(url)}, ${JSON.stringify(extra)})`)) as XhrResult;

    // Without and with a preflight (the extra header is not CORS-safelisted).
    for (const extra of [{}, { 'x-player': 'hls' }] as Array<Record<string, string>>) {
      const allowed = await xhr(urls.cors, extra);
      expect(allowed.error, JSON.stringify(extra)).toBeNull();
      expect(allowed.status).toBe(206);
      expect(allowed.contentRange).toBe(`bytes 100-199/${BYTES.length}`); // readable only because it is exposed
      expect(Buffer.from(allowed.bytes).equals(BYTES.subarray(100, 200))).toBe(true);

      const blocked = await xhr(urls.plain, extra);
      expect(blocked.error, JSON.stringify(extra)).toBe('error');
      expect(blocked.status).toBe(0);
      expect(blocked.bytes).toEqual([]);
    }
  });
});
