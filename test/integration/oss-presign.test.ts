/**
 * Presigned GET URLs (issue 11: media bytes go straight from OSS to the viewer) and serve-oss CORS.
 * The official ali-oss SDK is the reference: its signatureUrl / signatureUrlV4 URLs must be served by
 * serve-oss (the verifier is faithful), and OssStore.presignGet must sign exactly as it does.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseServeOssArgs, ServeOssUsageError } from '../../src/serve-oss/cli.js';
import { OssLocalServer } from '../../src/serve-oss/server.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { OssStore } from '../../src/store/oss/oss-store.js';
import { QueuedStore } from '../../src/store/queued-store.js';
import { startServeOss } from '../helpers/serve-oss-process.js';

// The official SDK (CommonJS, no type declarations): only what these tests use.
interface AliOssClient {
  signatureUrl(name: string, options?: { expires?: number; method?: string }): string;
  signatureUrlV4(method: string, expires: number, request: undefined, objectName: string): Promise<string>;
}
type AliOssCtor = new (options: Record<string, unknown>) => AliOssClient;
const OSS = createRequire(import.meta.url)('ali-oss') as AliOssCtor;

const AK = 'LTAI5tPresignTest';
const SK = 'presign-secret/with+chars=0123456789';
const TOKEN = 'sts-token+/=with chars';
const BUCKET = 'media';
const REGION = 'oss-cn-hangzhou';
const GATEWAY_ORIGIN = 'http://127.0.0.1:8080';
const KEY = 'cam 1/seg+1.ts'; // a space, a plus and a sub-directory: every encoding rule is exercised
const OTHER_KEY = 'cam 1/seg+2.ts';
const BYTES = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7 + 3) & 0xff));
const OTHER_BYTES = Buffer.alloc(1000, 0x55);
const silent = pino({ level: 'silent' });

/** ali-oss refuses IP endpoints in signatureUrl, so it signs for `localhost`; we fetch from 127.0.0.1 (path style: the host is not signed). */
function aliClient(port: number, opts: { v4: boolean; sts?: boolean }): AliOssClient {
  return new OSS({
    accessKeyId: AK, accessKeySecret: SK, bucket: BUCKET, endpoint: `http://localhost:${port}`, region: REGION,
    sldEnable: true, authorizationV4: opts.v4, ...(opts.sts ? { stsToken: TOKEN } : {}),
  });
}
const toLoopback = (url: string): string => url.replace('//localhost:', '//127.0.0.1:');
const param = (url: string, name: string): string | null => new URL(url).searchParams.get(name);

function ossStore(url: string, signatureVersion: 'v1' | 'v4', securityToken?: string): OssStore {
  return new OssStore({
    kind: 'oss', endpoint: url, bucket: BUCKET, region: REGION, signatureVersion, pathStyle: true,
    accessKeyId: AK, accessKeySecret: SK, securityToken,
    timeouts: { connectMs: 2000, headersMs: 10_000, bodyMs: 10_000 },
  }, { env: {} });
}

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}
async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' | 'OPTIONS' = 'GET'): Promise<Got> {
  const res = await request(url, { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}
const xmlField = (xml: Buffer | string, name: string): string | undefined =>
  new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml.toString())?.[1];

async function startLocal(corsOrigins?: string[]): Promise<{ dir: string; server: OssLocalServer; url: string; port: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'oss-presign-'));
  const server = new OssLocalServer({
    root: dir, port: 0, credentials: [{ accessKeyId: AK, accessKeySecret: SK }], buckets: [BUCKET], fsync: 'never', logger: silent,
    ...(corsOrigins !== undefined ? { corsOrigins } : {}),
  });
  const { url, port } = await server.start();
  return { dir, server, url, port };
}

describe('presigned GET URLs against serve-oss', () => {
  let local: Awaited<ReturnType<typeof startLocal>>;
  let plain: Awaited<ReturnType<typeof startLocal>>; // no CORS option
  const stores: OssStore[] = [];
  const storeOf = (v: 'v1' | 'v4', token?: string, url = local.url): OssStore => {
    const s = ossStore(url, v, token);
    stores.push(s);
    return s;
  };

  beforeAll(async () => {
    local = await startLocal([GATEWAY_ORIGIN]);
    plain = await startLocal();
    for (const l of [local, plain]) {
      const writer = ossStore(l.url, 'v4');
      await writer.append(KEY, 0, [BYTES.subarray(0, 400)]);
      await writer.append(KEY, 400, [BYTES.subarray(400)]);
      await writer.put(OTHER_KEY, OTHER_BYTES);
      await writer.close();
    }
  });

  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    for (const l of [local, plain]) {
      await l.server.close();
      await rm(l.dir, { recursive: true, force: true });
    }
  });

  describe('(a) URLs made by the official ali-oss SDK', () => {
    it('signatureUrl (V1): a plain GET gets the object', async () => {
      const url = toLoopback(aliClient(local.port, { v4: false }).signatureUrl(KEY, { expires: 60 }));
      expect(param(url, 'Signature')).toBeTruthy();
      const r = await get(url);
      expect(r.status).toBe(200);
      expect(r.body.equals(BYTES)).toBe(true);
    });

    it('signatureUrl (V1) with an STS token: security-token is signed and served', async () => {
      const url = toLoopback(aliClient(local.port, { v4: false, sts: true }).signatureUrl(KEY, { expires: 60 }));
      expect(param(url, 'security-token')).toBe(TOKEN);
      const r = await get(url, { range: 'bytes=0-9' });
      expect(r.status).toBe(206);
      expect(r.body.equals(BYTES.subarray(0, 10))).toBe(true);
    });

    it('signatureUrl with method HEAD: a HEAD gets the length', async () => {
      const url = toLoopback(aliClient(local.port, { v4: false }).signatureUrl(KEY, { expires: 60, method: 'HEAD' }));
      const r = await get(url, {}, 'HEAD');
      expect(r.status).toBe(200);
      expect(r.headers['content-length']).toBe(String(BYTES.length));
    });

    it.each([false, true])('signatureUrlV4 (sts %s): a plain GET gets the object', async (sts) => {
      const url = toLoopback(await aliClient(local.port, { v4: true, sts }).signatureUrlV4('GET', 60, undefined, KEY));
      expect(param(url, 'x-oss-signature-version')).toBe('OSS4-HMAC-SHA256');
      const r = await get(url);
      expect(r.status).toBe(200);
      expect(r.body.equals(BYTES)).toBe(true);
    });
  });

  describe('(b) OssStore.presignGet signs exactly as ali-oss and is served', () => {
    it.each([undefined, TOKEN])('V1 (token %s): same Signature as signatureUrl at the same time', async (token) => {
      const ali = aliClient(local.port, { v4: false, sts: token !== undefined }).signatureUrl(KEY, { expires: 60 });
      const expires = Number(param(ali, 'Expires'));
      const ours = await storeOf('v1', token).presignGet(KEY, { expiresInSeconds: 60, now: new Date((expires - 60) * 1000) });
      expect(param(ours, 'Expires')).toBe(String(expires));
      expect(param(ours, 'OSSAccessKeyId')).toBe(AK);
      expect(param(ours, 'security-token')).toBe(token ?? null);
      expect(param(ours, 'Signature')).toBe(param(ali, 'Signature'));
      expect(new URL(ours).pathname).toBe(new URL(ali).pathname);
    });

    it.each([undefined, TOKEN])('V4 (token %s): same x-oss-signature as signatureUrlV4 at the same time', async (token) => {
      const ali = await aliClient(local.port, { v4: true, sts: token !== undefined }).signatureUrlV4('GET', 60, undefined, KEY);
      const d = param(ali, 'x-oss-date')!;
      const now = new Date(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${d.slice(9, 11)}:${d.slice(11, 13)}:${d.slice(13, 15)}Z`);
      const ours = await storeOf('v4', token).presignGet(KEY, { expiresInSeconds: 60, now });
      for (const name of ['x-oss-credential', 'x-oss-date', 'x-oss-expires', 'x-oss-signature-version', 'x-oss-security-token']) {
        expect(param(ours, name), name).toBe(param(ali, name));
      }
      expect(param(ours, 'x-oss-signature')).toMatch(/^[0-9a-f]{64}$/);
      expect(param(ours, 'x-oss-signature')).toBe(param(ali, 'x-oss-signature'));
    });

    it.each(['v1', 'v4'] as const)('%s: served whole, and a Range GET answers 206 with those bytes', async (v) => {
      const url = await storeOf(v).presignGet(KEY, { expiresInSeconds: 300 });
      const whole = await get(url);
      expect(whole.status).toBe(200);
      expect(whole.body.equals(BYTES)).toBe(true);
      const part = await get(url, { range: 'bytes=100-299' });
      expect(part.status).toBe(206);
      expect(part.headers['content-range']).toBe(`bytes 100-299/${BYTES.length}`);
      expect(part.body.equals(BYTES.subarray(100, 300))).toBe(true);
    });

    it('QueuedStore passes presignGet through; a store without it (fs) has none', async () => {
      const inner = storeOf('v4');
      const queued = new QueuedStore(inner, 1);
      const now = new Date();
      expect(queued.presignGet).toBeTypeOf('function');
      expect(await queued.presignGet!(KEY, { expiresInSeconds: 60, now })).toBe(await inner.presignGet(KEY, { expiresInSeconds: 60, now }));
      const dir = await mkdtemp(join(tmpdir(), 'oss-presign-fs-'));
      const fsQueued = new QueuedStore(new FsStore({ root: dir }), 1);
      expect(fsQueued.presignGet).toBeUndefined();
      await fsQueued.close();
      await rm(dir, { recursive: true, force: true });
    });

    it('refuses a lifetime outside 1 s … 7 days', async () => {
      const store = storeOf('v1');
      for (const bad of [0, -1, 1.5, 7 * 24 * 3600 + 1]) {
        await expect(store.presignGet(KEY, { expiresInSeconds: bad })).rejects.toThrow(/lifetime/);
      }
    });
  });

  describe('(c) refused URLs', () => {
    it.each(['v1', 'v4'] as const)('%s: expired → 403 AccessDenied "Request has expired."', async (v) => {
      const url = await storeOf(v).presignGet(KEY, { expiresInSeconds: 60, now: new Date(Date.now() - 10 * 60_000) });
      const r = await get(url);
      expect(r.status).toBe(403);
      expect(xmlField(r.body, 'Code')).toBe('AccessDenied');
      expect(xmlField(r.body, 'Message')).toBe('Request has expired.');
      expect(xmlField(r.body, 'Expires')).toBeDefined();
      expect(xmlField(r.body, 'ServerTime')).toBeDefined();
    });

    it.each(['v1', 'v4'] as const)('%s: the URL of one key used for another → 403 SignatureDoesNotMatch', async (v) => {
      const url = await storeOf(v).presignGet(KEY, { expiresInSeconds: 60 });
      const moved = url.replace('seg%2B1.ts', 'seg%2B2.ts');
      expect(moved).not.toBe(url);
      const r = await get(moved);
      expect(r.status).toBe(403);
      expect(xmlField(r.body, 'Code')).toBe('SignatureDoesNotMatch');
      expect(r.body.includes(OTHER_BYTES.subarray(0, 16))).toBe(false);
    });

    it.each(['v1', 'v4'] as const)('%s: a tampered signature → 403 SignatureDoesNotMatch', async (v) => {
      const url = new URL(await storeOf(v).presignGet(KEY, { expiresInSeconds: 60 }));
      const name = v === 'v1' ? 'Signature' : 'x-oss-signature';
      const sig = url.searchParams.get(name)!;
      url.searchParams.set(name, (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1));
      const r = await get(url.toString());
      expect(r.status).toBe(403);
      expect(xmlField(r.body, 'Code')).toBe('SignatureDoesNotMatch');
      expect(xmlField(r.body, 'SignatureProvided')).toBe(url.searchParams.get(name));
    });

    it('a GET URL does not sign a HEAD; an unknown AccessKeyId is refused', async () => {
      const url = await storeOf('v1').presignGet(KEY, { expiresInSeconds: 60 });
      const head = await get(url, {}, 'HEAD');
      expect(head.status).toBe(403);
      expect(Buffer.from(String(head.headers['x-oss-err']), 'base64').toString()).toContain('<Code>SignatureDoesNotMatch</Code>');
      const u = new URL(url);
      u.searchParams.set('OSSAccessKeyId', 'nobody');
      const r = await get(u.toString());
      expect(r.status).toBe(403);
      expect(xmlField(r.body, 'Code')).toBe('InvalidAccessKeyId');
    });

    it('anonymous serve-oss still checks a presigned URL', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'oss-presign-anon-'));
      const server = new OssLocalServer({
        root: dir, port: 0, credentials: [{ accessKeyId: AK, accessKeySecret: SK }], anonymous: true, buckets: [BUCKET], fsync: 'never', logger: silent,
      });
      const { url } = await server.start();
      try {
        const expired = await storeOf('v4', undefined, url).presignGet(KEY, { expiresInSeconds: 60, now: new Date(Date.now() - 10 * 60_000) });
        const r = await get(expired);
        expect(r.status).toBe(403);
        expect(xmlField(r.body, 'Message')).toBe('Request has expired.');
      } finally {
        await server.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('(d) CORS', () => {
    const preflight = (base: string, headers: Record<string, string>): Promise<Got> =>
      get(`${base}/${BUCKET}/cam%201/seg%2B1.ts`, headers, 'OPTIONS');

    it('answers a preflight for GET with a Range header from the allowed origin', async () => {
      const r = await preflight(local.url, {
        origin: GATEWAY_ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'range',
      });
      expect(r.status).toBe(200);
      expect(r.headers['access-control-allow-origin']).toBe(GATEWAY_ORIGIN);
      expect(r.headers['access-control-allow-methods']).toBe('GET, HEAD');
      expect(String(r.headers['access-control-allow-headers']).split(', ')).toContain('range');
      expect(Number(r.headers['access-control-max-age'])).toBeGreaterThan(0);
    });

    it('allows whatever other headers the browser asks for', async () => {
      const r = await preflight(local.url, {
        origin: GATEWAY_ORIGIN, 'access-control-request-method': 'HEAD', 'access-control-request-headers': 'Range, X-Requested-With',
      });
      expect(r.status).toBe(200);
      expect(String(r.headers['access-control-allow-headers']).split(', ')).toEqual(expect.arrayContaining(['range', 'x-requested-with']));
    });

    it('refuses a preflight from another origin or for PUT (403 AccessForbidden)', async () => {
      for (const [origin, method] of [['http://evil.example', 'GET'], [GATEWAY_ORIGIN, 'PUT']] as const) {
        const r = await preflight(local.url, { origin, 'access-control-request-method': method });
        expect(r.status, `${origin} ${method}`).toBe(403);
        expect(xmlField(r.body, 'Code')).toBe('AccessForbidden');
        expect(r.headers['access-control-allow-methods']).toBeUndefined();
      }
    });

    it('a ranged GET of a presigned URL carries Allow-Origin and Expose-Headers; so does its 403', async () => {
      const store = storeOf('v4');
      const url = await store.presignGet(KEY, { expiresInSeconds: 60 });
      const r = await get(url, { origin: GATEWAY_ORIGIN, range: 'bytes=0-99' });
      expect(r.status).toBe(206);
      expect(r.headers['access-control-allow-origin']).toBe(GATEWAY_ORIGIN);
      expect(r.headers['vary']).toBe('Origin');
      const exposed = String(r.headers['access-control-expose-headers']).split(', ');
      expect(exposed).toEqual(expect.arrayContaining(['content-range', 'content-length', 'etag', 'x-oss-next-append-position']));
      const expired = await store.presignGet(KEY, { expiresInSeconds: 60, now: new Date(Date.now() - 10 * 60_000) });
      const denied = await get(expired, { origin: GATEWAY_ORIGIN });
      expect(denied.status).toBe(403);
      expect(denied.headers['access-control-allow-origin']).toBe(GATEWAY_ORIGIN);
      const stranger = await get(url, { origin: 'http://evil.example' });
      expect(stranger.status).toBe(200);
      expect(stranger.headers['access-control-allow-origin']).toBeUndefined();
      expect(stranger.headers['vary']).toBe('Origin'); // a cache must not serve this answer to the allowed origin
    });

    it('without the option: no CORS headers, and preflights are refused', async () => {
      const url = await storeOf('v4', undefined, plain.url).presignGet(KEY, { expiresInSeconds: 60 });
      const r = await get(url, { origin: GATEWAY_ORIGIN, range: 'bytes=0-99' });
      expect(r.status).toBe(206);
      expect(Object.keys(r.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
      const p = await preflight(plain.url, { origin: GATEWAY_ORIGIN, 'access-control-request-method': 'GET' });
      expect(p.status).toBe(403);
      expect(xmlField(p.body, 'Code')).toBe('AccessForbidden');
    });

    it('--cors-origin: parsed and validated', () => {
      const base = ['--root', '/tmp/x', '--port', '0', '--anonymous'];
      expect(parseServeOssArgs([...base, '--cors-origin', GATEWAY_ORIGIN, '--cors-origin', '*'], {}).options.corsOrigins)
        .toEqual([GATEWAY_ORIGIN, '*']);
      expect(parseServeOssArgs(base, {}).options.corsOrigins).toBeUndefined();
      for (const bad of ['127.0.0.1:8080', 'http://127.0.0.1:8080/player', 'ftp://x.example', '']) {
        expect(() => parseServeOssArgs([...base, '--cors-origin', bad], {}), bad).toThrow(ServeOssUsageError);
      }
    });

    it('the serve-oss process with --cors-origin * serves a ranged cross-origin GET of an ali-oss URL', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'oss-presign-proc-'));
      const proc = await startServeOss(dir, BUCKET, { id: AK, secret: SK }, ['--cors-origin', '*']);
      try {
        const writer = ossStore(proc.url, 'v1');
        await writer.put(KEY, BYTES);
        await writer.close();
        const pre = await preflight(proc.url, { origin: GATEWAY_ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'range' });
        expect(pre.status).toBe(200);
        expect(pre.headers['access-control-allow-origin']).toBe('*');
        const url = toLoopback(aliClient(proc.port, { v4: false }).signatureUrl(KEY, { expires: 60 }));
        const r = await get(url, { origin: GATEWAY_ORIGIN, range: 'bytes=10-19' });
        expect(r.status).toBe(206);
        expect(r.headers['access-control-allow-origin']).toBe('*');
        expect(r.body.equals(BYTES.subarray(10, 20))).toBe(true);
      } finally {
        expect(await proc.stop()).toBe(0);
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
