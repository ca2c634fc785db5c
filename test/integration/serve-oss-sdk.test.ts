import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc64 } from '../../src/store/crc64.js';
import { parseServeOssArgs, serveOssMain, ServeOssUsageError, startServeOss } from '../../src/serve-oss/cli.js';
import { OssLocalServer, type OssLocalServerOptions } from '../../src/serve-oss/server.js';
import { signV1 } from '../../src/store/oss/sign-v1.js';
import { rejectionOf } from '../helpers/expect-error.js';
import { logLine } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';

// ---------------------------------------------------------------------------------------------
// The official SDK (CommonJS, no type declarations): typed here with only what the tests use.
// ---------------------------------------------------------------------------------------------
interface AliRes {
  status: number;
  headers: Record<string, string>;
}
interface AliWriteOptions {
  position?: number | string;
  meta?: Record<string, string>;
  headers?: Record<string, string>;
  mime?: string;
}
interface AliListedObject {
  name: string;
  size: number;
  type: string;
  etag: string;
  lastModified: string;
}
interface AliListResult {
  objects: AliListedObject[];
  prefixes: string[] | null;
  keyCount: number;
  isTruncated: boolean;
  nextContinuationToken: string | null;
  res: AliRes;
}
interface AliOssClient {
  append(name: string, file: Buffer | Readable, options?: AliWriteOptions): Promise<{ nextAppendPosition: string; res: AliRes }>;
  put(name: string, file: Buffer, options?: AliWriteOptions): Promise<{ res: AliRes }>;
  head(name: string): Promise<{ status: number; meta: Record<string, string> | null; res: AliRes }>;
  getObjectMeta(name: string): Promise<{ status: number; res: AliRes }>;
  get(name: string, options?: { headers?: Record<string, string> }): Promise<{ content: Buffer; res: AliRes }>;
  delete(name: string): Promise<{ res: AliRes }>;
  listV2(query: Record<string, string | number>, options?: Record<string, unknown>): Promise<AliListResult>;
}
interface AliOssError extends Error {
  code?: string;
  status?: number;
  requestId?: string;
  ecCode?: string;
}
type AliOssCtor = new (options: Record<string, unknown>) => AliOssClient;
const OSS = createRequire(import.meta.url)('ali-oss') as AliOssCtor;

const AK = 'LTAI5tLocalServerTest';
const SK = 'local-secret/with+chars=0123456789';
const BUCKET = 'media';
const REGION = 'oss-cn-hangzhou';
const silent = pino({ level: 'silent' });

function client(url: string, opts: { v4: boolean; sld?: boolean; accessKeyId?: string; accessKeySecret?: string }): AliOssClient {
  return new OSS({
    accessKeyId: opts.accessKeyId ?? AK,
    accessKeySecret: opts.accessKeySecret ?? SK,
    bucket: BUCKET,
    endpoint: url,
    region: REGION,
    authorizationV4: opts.v4,
    ...(opts.sld === false ? {} : { sldEnable: true }),
  });
}

const ossError = async (p: Promise<unknown>): Promise<AliOssError> => (await rejectionOf(p)) as AliOssError;

function xmlField(xml: string, name: string): string | undefined {
  return new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
}

function md5b64(b: Buffer): string {
  return createHash('md5').update(b).digest('base64');
}

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'serve-oss-'));
}

/** A server on port 0 over a fresh temp dir: AK/SK known, bucket BUCKET, no fsync, silent. */
async function startLocal(over: Partial<OssLocalServerOptions> = {}): Promise<{ dir: string; server: OssLocalServer; url: string; port: number }> {
  const dir = await tempDir();
  const server = new OssLocalServer({
    root: dir, port: 0, credentials: [{ accessKeyId: AK, accessKeySecret: SK }], buckets: [BUCKET], fsync: 'never', logger: silent, ...over,
  });
  const { url, port } = await server.start();
  return { dir, server, url, port };
}

async function stopLocal(local: { dir: string; server: OssLocalServer }): Promise<void> {
  await local.server.close();
  await rm(local.dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// ali-oss, V1 and V4, path style (sldEnable) and virtual-hosted (IP endpoint → bucket in Host)
// ---------------------------------------------------------------------------------------------
describe('serve-oss with the real ali-oss client', () => {
  let dir: string;
  let server: OssLocalServer;
  let url: string;

  beforeAll(async () => {
    ({ dir, server, url } = await startLocal());
  });

  afterAll(async () => {
    await stopLocal({ dir, server });
  });

  describe.each([
    { name: 'V1', v4: false },
    { name: 'V4', v4: true },
  ])('signature $name, path style', ({ name, v4 }) => {
    const key = (k: string): string => `${name}/cam 1/${k}`; // a space and a sub-directory in every key

    it('appends three times, then head, ranged get, whole get and getObjectMeta agree', async () => {
      const oss = client(url, { v4 });
      const k = key('seg+1.mp4');
      const parts = [Buffer.from('hello '), Buffer.from('appendable '), Buffer.from('world!')];
      let position = 0;
      let sent = Buffer.alloc(0);
      let lastEtag = '';
      for (const [i, part] of parts.entries()) {
        // Metadata and a content type on every append: only the creating one may count.
        const r = await oss.append(k, part, { position, meta: { camera: `cam-${i}` }, mime: i === 0 ? 'video/mp4' : 'text/plain' });
        sent = Buffer.concat([sent, part]);
        expect(r.nextAppendPosition).toBe(String(sent.length));
        expect(r.res.status).toBe(200);
        expect(r.res.headers['x-oss-hash-crc64ecma']).toBe(crc64(sent).toString());
        expect(r.res.headers['x-oss-request-id']).toMatch(/^[0-9A-F]{24}$/);
        lastEtag = r.res.headers['etag']!;
        position = Number(r.nextAppendPosition);
      }

      const head = await oss.head(k);
      expect(head.status).toBe(200);
      expect(head.res.headers['x-oss-next-append-position']).toBe(String(sent.length));
      expect(head.res.headers['content-length']).toBe(String(sent.length));
      expect(head.res.headers['x-oss-hash-crc64ecma']).toBe(crc64(sent).toString());
      expect(head.res.headers['x-oss-object-type']).toBe('Appendable');
      expect(head.res.headers['content-type']).toBe('video/mp4');
      expect(head.res.headers['etag']).toBe(lastEtag);
      expect(head.res.headers['server']).toBe('AppendcastOSS');
      expect(new Date(head.res.headers['last-modified']!).getTime()).toBeGreaterThan(Date.now() - 60_000);
      expect(head.meta).toEqual({ camera: 'cam-0' });

      const ranged = await oss.get(k, { headers: { Range: 'bytes=2-5' } });
      expect(ranged.res.status).toBe(206);
      expect(ranged.content.equals(sent.subarray(2, 6))).toBe(true);
      expect(ranged.res.headers['content-range']).toBe(`bytes 2-5/${sent.length}`);
      // The CRC header of a ranged GET is still the whole object's.
      expect(ranged.res.headers['x-oss-hash-crc64ecma']).toBe(crc64(sent).toString());

      const whole = await oss.get(k);
      expect(whole.res.status).toBe(200);
      expect(whole.content.equals(sent)).toBe(true);

      const meta = await oss.getObjectMeta(k);
      expect(meta.status).toBe(200);
      expect(meta.res.headers['content-length']).toBe(String(sent.length));
      expect(meta.res.headers['x-oss-hash-crc64ecma']).toBe(crc64(sent).toString());

      // The bytes are where the fs store keeps them: root/<bucket>/<key>.
      expect((await stat(join(dir, BUCKET, k))).size).toBe(sent.length);
    });

    it('refuses a wrong position with PositionNotEqualToLength (409) and leaves the object alone', async () => {
      const oss = client(url, { v4 });
      const k = key('position.ts');
      await oss.append(k, Buffer.from('12345'), { position: 0 });
      const err = await ossError(oss.append(k, Buffer.from('xx'), { position: 3 }));
      expect(err.code).toBe('PositionNotEqualToLength');
      expect(err.status).toBe(409);
      expect(err.ecCode).toBe('0026-00000016');
      expect(err.requestId).toMatch(/^[0-9A-F]{24}$/);
      const head = await oss.head(k);
      expect(head.res.headers['x-oss-next-append-position']).toBe('5');
      // Position 0 on an existing non-empty object is a mismatch too.
      expect((await ossError(oss.append(k, Buffer.from('x'), { position: 0 }))).code).toBe('PositionNotEqualToLength');
    });

    it('put makes a Normal object that append refuses with ObjectNotAppendable (409)', async () => {
      const oss = client(url, { v4 });
      const k = key('normal.bin');
      const put = await oss.put(k, Buffer.from('normal object'));
      expect(put.res.headers['x-oss-hash-crc64ecma']).toBe(crc64(Buffer.from('normal object')).toString());
      const head = await oss.head(k);
      expect(head.res.headers['x-oss-object-type']).toBe('Normal');
      expect(head.res.headers['x-oss-next-append-position']).toBeUndefined();
      const err = await ossError(oss.append(k, Buffer.from('more'), { position: 13 }));
      expect(err.code).toBe('ObjectNotAppendable');
      expect(err.status).toBe(409);
    });

    it('deletes (204, also when absent), after which head is a 404 NoSuchKey', async () => {
      const oss = client(url, { v4 });
      const k = key('deleted.ts');
      await oss.append(k, Buffer.from('abc'), { position: 0 });
      expect((await oss.delete(k)).res.status).toBe(204);
      expect((await oss.delete(k)).res.status).toBe(204);
      const err = await ossError(oss.head(k));
      expect(err.status).toBe(404);
      expect(err.code).toBe('NoSuchKey');
      const getErr = await ossError(oss.get(k));
      expect(getErr.status).toBe(404);
      expect(getErr.code).toBe('NoSuchKey');
      // A deleted key can be created again by an append at 0.
      expect((await oss.append(k, Buffer.from('again'), { position: 0 })).nextAppendPosition).toBe('5');
    });

    it('lists with listV2: prefix, types, sizes, pages with continuation tokens', async () => {
      const oss = client(url, { v4 });
      const prefix = `${name}/list/`;
      await oss.append(`${prefix}a.ts`, Buffer.from('aaaa'), { position: 0 });
      await oss.put(`${prefix}b.bin`, Buffer.from('bb'));
      await oss.append(`${prefix}c/d.ts`, Buffer.from('d'), { position: 0 });
      await oss.put(`${name}/listx.bin`, Buffer.from('not under the prefix'));

      const all = await oss.listV2({ prefix, 'max-keys': 100 });
      expect(all.objects.map((o) => [o.name, o.size, o.type])).toEqual([
        [`${prefix}a.ts`, 4, 'Appendable'],
        [`${prefix}b.bin`, 2, 'Normal'],
        [`${prefix}c/d.ts`, 1, 'Appendable'],
      ]);
      expect(all.keyCount).toBe(3);
      expect(all.isTruncated).toBe(false);
      const head = await oss.head(`${prefix}a.ts`);
      expect(all.objects[0]!.etag).toBe(head.res.headers['etag']);
      expect(new Date(all.objects[0]!.lastModified).toUTCString()).toBe(head.res.headers['last-modified']);

      const page1 = await oss.listV2({ prefix, 'max-keys': 2 });
      expect(page1.objects.map((o) => o.name)).toEqual([`${prefix}a.ts`, `${prefix}b.bin`]);
      expect(page1.isTruncated).toBe(true);
      expect(page1.nextContinuationToken).toBeTruthy();
      const page2 = await oss.listV2({ prefix, 'max-keys': 2, 'continuation-token': page1.nextContinuationToken! });
      expect(page2.objects.map((o) => o.name)).toEqual([`${prefix}c/d.ts`]);
      expect(page2.isTruncated).toBe(false);

      const after = await oss.listV2({ prefix, 'start-after': `${prefix}a.ts` });
      expect(after.objects.map((o) => o.name)).toEqual([`${prefix}b.bin`, `${prefix}c/d.ts`]);

      const delimited = await oss.listV2({ prefix, delimiter: '/' });
      expect(delimited.objects.map((o) => o.name)).toEqual([`${prefix}a.ts`, `${prefix}b.bin`]);
      expect(delimited.prefixes).toEqual([`${prefix}c/`]);
    });

    it('takes a streamed (chunked) append body', async () => {
      const oss = client(url, { v4 });
      const k = key('streamed.ts');
      await oss.append(k, Buffer.from('head-'), { position: 0 });
      const r = await oss.append(k, Readable.from([Buffer.from('chunk-1 '), Buffer.from('chunk-2')]), { position: 5 });
      expect(r.nextAppendPosition).toBe('20');
      expect((await oss.get(k)).content.toString()).toBe('head-chunk-1 chunk-2');
    });

    it('head of a missing key is a 404', async () => {
      const err = await ossError(client(url, { v4 }).head(key('missing.ts')));
      expect(err.status).toBe(404);
      expect(err.code).toBe('NoSuchKey');
    });

    it('refuses a wrong secret with SignatureDoesNotMatch (403), writing nothing; HEAD errors decode from x-oss-err', async () => {
      const bad = client(url, { v4, accessKeySecret: 'not-the-secret' });
      const k = key('forged.ts');
      const err = await ossError(bad.append(k, Buffer.from('forged'), { position: 0 }));
      expect(err.code).toBe('SignatureDoesNotMatch');
      expect(err.status).toBe(403);
      // A HEAD reply has no body: ali-oss reads the error from the base64 x-oss-err header.
      const headErr = await ossError(bad.head(k));
      expect(headErr.code).toBe('SignatureDoesNotMatch');
      expect(headErr.status).toBe(403);
      expect((await ossError(client(url, { v4 }).head(k))).status).toBe(404);
    });

    it('refuses an unknown access key id with InvalidAccessKeyId (403)', async () => {
      const err = await ossError(client(url, { v4, accessKeyId: 'LTAI-nobody' }).get(key('x.ts')));
      expect(err.code).toBe('InvalidAccessKeyId');
      expect(err.status).toBe(403);
    });

    it('rejects a Content-MD5 that does not match the body with InvalidDigest (400), appending nothing', async () => {
      const oss = client(url, { v4 });
      const k = key('digest.ts');
      await oss.append(k, Buffer.from('first'), { position: 0 });
      const err = await ossError(oss.append(k, Buffer.from('second'), { position: 5, headers: { 'Content-MD5': md5b64(Buffer.from('other')) } }));
      expect(err.code).toBe('InvalidDigest');
      expect(err.status).toBe(400);
      expect((await oss.head(k)).res.headers['x-oss-next-append-position']).toBe('5');
    });

    it('serializes racing appends at one position: exactly one wins', async () => {
      const oss = client(url, { v4 });
      const k = key('race.ts');
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => oss.append(k, Buffer.from(`writer-${i}`), { position: 0 })),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost.map((r) => (r.reason as AliOssError).code)).toEqual(Array(5).fill('PositionNotEqualToLength'));
      expect((await oss.get(k)).content.toString()).toMatch(/^writer-\d$/);
    });
  });

  describe.each([
    { name: 'V1', v4: false },
    { name: 'V4', v4: true },
  ])('signature $name, virtual-hosted (bucket from the Host header)', ({ name, v4 }) => {
    it('appends, heads, gets and lists', async () => {
      const oss = client(url, { v4, sld: false });
      const k = `${name}/virtual/a.ts`;
      expect((await oss.append(k, Buffer.from('vir'), { position: 0 })).nextAppendPosition).toBe('3');
      expect((await oss.append(k, Buffer.from('tual'), { position: 3 })).nextAppendPosition).toBe('7');
      const head = await oss.head(k);
      expect(head.res.headers['x-oss-hash-crc64ecma']).toBe(crc64(Buffer.from('virtual')).toString());
      expect((await oss.get(k, { headers: { Range: 'bytes=3-' } })).content.toString()).toBe('tual');
      const list = await oss.listV2({ prefix: `${name}/virtual/` });
      expect(list.objects.map((o) => o.name)).toEqual([k]);
      // The same object seen through a path-style client.
      expect((await client(url, { v4 }).get(k)).content.toString()).toBe('virtual');
    });

    it('keeps a key that starts with the bucket name (Host and path are both plausible; the signature decides)', async () => {
      const k = `${BUCKET}/${name}/inner.ts`;
      await client(url, { v4, sld: false }).append(k, Buffer.from('inner'), { position: 0 });
      const pathStyle = client(url, { v4 });
      expect((await pathStyle.get(k)).content.toString()).toBe('inner');
      expect((await ossError(pathStyle.head(`${name}/inner.ts`))).status).toBe(404);
    });
  });

  it('rejects an unsigned request with AccessDenied (403) and an OSS error document', async () => {
    const r = await fetch(`${url}/${BUCKET}/anything.ts`);
    expect(r.status).toBe(403);
    expect(r.headers.get('content-type')).toBe('application/xml');
    const requestId = r.headers.get('x-oss-request-id');
    expect(requestId).toMatch(/^[0-9A-F]{24}$/);
    expect(r.headers.get('x-oss-ec')).toBeTruthy();
    const xml = await r.text();
    expect(xmlField(xml, 'Code')).toBe('AccessDenied');
    expect(xmlField(xml, 'RequestId')).toBe(requestId);
    expect(xmlField(xml, 'HostId')).toBe('127.0.0.1');
    expect(xmlField(xml, 'EC')).toBe(r.headers.get('x-oss-ec'));
  });

  it('sends StringToSign, SignatureProvided and OSSAccessKeyId with SignatureDoesNotMatch', async () => {
    const date = new Date();
    const signed = signV1(
      { method: 'GET', bucket: BUCKET, key: 'sts.ts', query: {}, headers: {} },
      { accessKeyId: AK, accessKeySecret: 'wrong' },
      date,
    );
    const r = await fetch(`${url}/${BUCKET}/sts.ts`, { headers: signed.headers });
    expect(r.status).toBe(403);
    const xml = await r.text();
    expect(xmlField(xml, 'Code')).toBe('SignatureDoesNotMatch');
    expect(xmlField(xml, 'StringToSign')).toBe(signed.stringToSign);
    expect(xmlField(xml, 'OSSAccessKeyId')).toBe(AK);
    expect(xmlField(xml, 'SignatureProvided')).toBe(signed.headers['authorization']!.split(':')[1]);
  });

  it('answers 404 NoSuchBucket for a bucket without a directory, and 400 for an invalid bucket name', async () => {
    const other = new OSS({ accessKeyId: AK, accessKeySecret: SK, bucket: 'no-such-bucket', endpoint: url, region: REGION, sldEnable: true });
    const err = await ossError(other.get('x.ts'));
    expect(err.status).toBe(404);
    expect(err.code).toBe('NoSuchBucket');
    const date = new Date();
    const signed = signV1({ method: 'GET', bucket: 'A_B', key: 'x', query: {}, headers: {} }, { accessKeyId: AK, accessKeySecret: SK }, date);
    const r = await fetch(`${url}/A_B/x`, { headers: signed.headers });
    expect(r.status).toBe(400);
    expect(xmlField(await r.text(), 'Code')).toBe('InvalidBucketName');
  });
});

describe('serve-oss clock skew', () => {
  let dir: string;
  let server: OssLocalServer;
  let url: string;

  beforeAll(async () => {
    // The server's clock runs 20 minutes ahead of the client's: past OSS's 15-minute window.
    ({ dir, server, url } = await startLocal({ now: () => new Date(Date.now() + 20 * 60_000) }));
  });

  afterAll(async () => {
    await stopLocal({ dir, server });
  });

  it.each([false, true])('refuses a stale request with RequestTimeTooSkewed (V4: %s)', async (v4) => {
    const err = await ossError(client(url, { v4 }).append('skew.ts', Buffer.from('x'), { position: 0 }));
    expect(err.code).toBe('RequestTimeTooSkewed');
    expect(err.status).toBe(403);
  });

  it('includes the server time in the error', async () => {
    const signed = signV1({ method: 'GET', bucket: BUCKET, key: 'skew.ts', query: {}, headers: {} }, { accessKeyId: AK, accessKeySecret: SK }, new Date());
    const r = await fetch(`${url}/${BUCKET}/skew.ts`, { headers: signed.headers });
    expect(r.status).toBe(403);
    const serverTime = xmlField(await r.text(), 'ServerTime');
    expect(Math.abs(new Date(serverTime!).getTime() - (Date.now() + 20 * 60_000))).toBeLessThan(60_000);
    expect(Math.abs(new Date(r.headers.get('date')!).getTime() - (Date.now() + 20 * 60_000))).toBeLessThan(60_000);
  });
});

// ---------------------------------------------------------------------------------------------
// Raw HTTP against an anonymous server: range behaviours, argument checks, limits
// ---------------------------------------------------------------------------------------------
describe('serve-oss over plain HTTP (anonymous)', () => {
  let dir: string;
  let server: OssLocalServer;
  let url: string;
  let port: number;
  const object = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
  const obj = (k: string): string => `${url}/${BUCKET}/${k}`;

  beforeAll(async () => {
    ({ dir, server, url, port } = await startLocal({ anonymous: true, credentials: [], maxObjectBytes: 4096, maxRequestBytes: 8192 }));
    const r = await fetch(obj('range.bin'), { method: 'POST', body: object });
    expect(r.status).toBe(405); // POST without ?append is no operation here
    const put = await fetch(`${obj('range.bin')}?position=0&append`, { method: 'POST', body: object });
    expect(put.status).toBe(200);
    expect(put.headers.get('x-oss-next-append-position')).toBe('1000');
  });

  afterAll(async () => {
    await stopLocal({ dir, server });
  });

  async function get(range: string, standard: boolean): Promise<{ status: number; body: Buffer; headers: Headers }> {
    const headers: Record<string, string> = { range };
    if (standard) headers['x-oss-range-behavior'] = 'standard';
    const r = await fetch(obj('range.bin'), { headers });
    return { status: r.status, body: Buffer.from(await r.arrayBuffer()), headers: r.headers };
  }

  it.each([
    // [range, status, first byte, length]
    ['bytes=2-5', 206, 2, 4],
    ['bytes=990-', 206, 990, 10],
    ['bytes=-10', 206, 990, 10],
    ['bytes=0-999', 206, 0, 1000],
    ['bytes=500-2000', 200, 0, 1000], // end past EOF: ignored
    ['bytes=1000-2000', 200, 0, 1000], // start at EOF: ignored
    ['bytes=1000-', 200, 0, 1000],
    ['bytes=-2000', 200, 0, 1000],
    ['bytes=5-2', 200, 0, 1000], // malformed: ignored
    ['items=0-1', 200, 0, 1000],
    ['bytes=0-1,5-6', 206, 0, 2], // OSS serves the first range only
  ] as const)('default behaviour: Range %s → %i', async (range, status, first, length) => {
    const r = await get(range, false);
    expect(r.status).toBe(status);
    expect(r.body.equals(object.subarray(first, first + length))).toBe(true);
    expect(r.headers.get('content-range')).toBe(status === 206 ? `bytes ${first}-${first + length - 1}/1000` : null);
    expect(r.headers.get('x-oss-hash-crc64ecma')).toBe(crc64(object).toString());
  });

  it.each([
    ['bytes=500-2000', 206, 500, 500], // end past EOF: clamped
    ['bytes=2-5', 206, 2, 4],
    ['bytes=-2000', 206, 0, 1000],
  ] as const)('standard behaviour: Range %s → %i', async (range, status, first, length) => {
    const r = await get(range, true);
    expect(r.status).toBe(status);
    expect(r.body.equals(object.subarray(first, first + length))).toBe(true);
    expect(r.headers.get('content-range')).toBe(`bytes ${first}-${first + length - 1}/1000`);
  });

  it.each(['bytes=1000-2000', 'bytes=1000-', 'bytes=-0'])('standard behaviour: Range %s → 416 InvalidRange', async (range) => {
    const r = await get(range, true);
    expect(r.status).toBe(416);
    expect(r.headers.get('content-range')).toBe('bytes */1000');
    expect(xmlField(r.body.toString(), 'Code')).toBe('InvalidRange');
  });

  it('lets unsigned requests through: put, get, delete', async () => {
    const put = await fetch(obj('anon.txt'), { method: 'PUT', body: 'anonymous', headers: { 'content-type': 'text/plain' } });
    expect(put.status).toBe(200);
    const got = await fetch(obj('anon.txt'));
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('text/plain');
    expect(got.headers.get('x-oss-object-type')).toBe('Normal');
    expect(await got.text()).toBe('anonymous');
    expect((await fetch(obj('anon.txt'), { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(obj('anon.txt'))).status).toBe(404);
  });

  it('sends HEAD errors without a body, as base64 XML in x-oss-err', async () => {
    const r = await fetch(obj('missing.ts'), { method: 'HEAD' });
    expect(r.status).toBe(404);
    expect((await r.arrayBuffer()).byteLength).toBe(0);
    const xml = Buffer.from(r.headers.get('x-oss-err')!, 'base64').toString('utf8');
    expect(xml).toMatch(/^<\?xml/);
    expect(xmlField(xml, 'Code')).toBe('NoSuchKey');
    expect(xmlField(xml, 'RequestId')).toBe(r.headers.get('x-oss-request-id'));
  });

  it('accepts append, append= and any parameter order; refuses a missing or invalid position', async () => {
    expect((await fetch(`${obj('args.ts')}?append=&position=0`, { method: 'POST', body: 'ab' })).headers.get('x-oss-next-append-position')).toBe('2');
    expect((await fetch(`${obj('args.ts')}?position=2&append`, { method: 'POST', body: 'cd' })).headers.get('x-oss-next-append-position')).toBe('4');
    for (const q of ['append', 'append&position=', 'append&position=-1', 'append&position=1.5', 'position=abc&append']) {
      const r = await fetch(`${obj('args.ts')}?${q}`, { method: 'POST', body: 'x' });
      expect(r.status, q).toBe(400);
      expect(xmlField(await r.text(), 'Code'), q).toBe('MissingArgument');
    }
    const conflict = await fetch(`${obj('args.ts')}?append&position=1`, { method: 'POST', body: 'x' });
    expect(conflict.status).toBe(409);
    expect(conflict.headers.get('x-oss-next-append-position')).toBe('4');
    expect(conflict.headers.get('x-oss-ec')).toBe('0026-00000016');
  });

  it('rejects a Content-MD5 mismatch with InvalidDigest and appends nothing', async () => {
    const r = await fetch(`${obj('md5.ts')}?append&position=0`, {
      method: 'POST',
      body: 'payload',
      headers: { 'content-md5': md5b64(Buffer.from('different')) },
    });
    expect(r.status).toBe(400);
    expect(xmlField(await r.text(), 'Code')).toBe('InvalidDigest');
    expect((await fetch(obj('md5.ts'), { method: 'HEAD' })).status).toBe(404);
    const ok = await fetch(`${obj('md5.ts')}?append&position=0`, { method: 'POST', body: 'payload', headers: { 'content-md5': md5b64(Buffer.from('payload')) } });
    expect(ok.status).toBe(200);
  });

  it('applies the size caps: ObjectTooLarge (object) and EntityTooLarge (request body)', async () => {
    const first = await fetch(`${obj('big.ts')}?append&position=0`, { method: 'POST', body: Buffer.alloc(3000) });
    expect(first.status).toBe(200);
    const over = await fetch(`${obj('big.ts')}?append&position=3000`, { method: 'POST', body: Buffer.alloc(2000) });
    expect(over.status).toBe(400);
    expect(xmlField(await over.text(), 'Code')).toBe('ObjectTooLarge');
    expect((await fetch(obj('big.ts'), { method: 'HEAD' })).headers.get('content-length')).toBe('3000');
    const huge = await fetch(obj('huge.bin'), { method: 'PUT', body: Buffer.alloc(10_000) });
    expect(huge.status).toBe(400);
    expect(xmlField(await huge.text(), 'Code')).toBe('EntityTooLarge');
  });

  it('answers 411 MissingContentLength to a body with neither Content-Length nor chunked encoding', async () => {
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => {
        sock.write(`POST /${BUCKET}/nolen.ts?append&position=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      });
      let data = '';
      sock.setEncoding('utf8').on('data', (s: string) => (data += s));
      sock.on('end', () => resolve(data));
      sock.on('error', reject);
      sock.setTimeout(5000, () => sock.destroy(new Error('timeout')));
    });
    expect(raw).toMatch(/^HTTP\/1\.1 411 /);
    expect(raw).toContain('<Code>MissingContentLength</Code>');
  });

  it('writes nothing when the client goes away before sending the whole body', async () => {
    await new Promise<void>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => {
        sock.write(`POST /${BUCKET}/cut.ts?append&position=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789`, () => {
          sock.destroy();
          resolve();
        });
      });
      sock.on('error', reject);
    });
    // The server notices the abort asynchronously; the object must never appear: nothing may happen
    // in the next 200 ms (a negative, so time itself is what is waited for).
    await delay(200);
    expect((await fetch(obj('cut.ts'), { method: 'HEAD' })).status).toBe(404);
    const ok = await fetch(`${obj('cut.ts')}?append&position=0`, { method: 'POST', body: 'whole' });
    expect(ok.headers.get('x-oss-next-append-position')).toBe('5');
  });

  it('refuses unknown methods (405) and unsupported sub-resources (400)', async () => {
    const patch = await fetch(obj('range.bin'), { method: 'PATCH', body: 'x' });
    expect(patch.status).toBe(405);
    expect(xmlField(await patch.text(), 'Code')).toBe('MethodNotAllowed');
    const acl = await fetch(`${obj('range.bin')}?acl`);
    expect(acl.status).toBe(400);
    expect(xmlField(await acl.text(), 'Code')).toBe('InvalidArgument');
  });
});

// ---------------------------------------------------------------------------------------------
// The CLI entry
// ---------------------------------------------------------------------------------------------
describe('serve-oss command line', () => {
  it('refuses to start without credentials unless --anonymous', async () => {
    expect(() => parseServeOssArgs(['--root', '/tmp/x', '--port', '0'], {})).toThrow(ServeOssUsageError);
    expect(() => parseServeOssArgs(['--root', '/tmp/x', '--port', '0'], {})).toThrow(/--anonymous/);
    expect(() => parseServeOssArgs(['--root', '/tmp/x', '--port', '0', '--access-key-id', 'a'], {})).toThrow(/go together/);
    const fromEnv = parseServeOssArgs(['--root', '/tmp/x', '--port', '0'], { OSS_ACCESS_KEY_ID: 'id', OSS_ACCESS_KEY_SECRET: 's' });
    expect(fromEnv.options.credentials).toEqual([{ accessKeyId: 'id', accessKeySecret: 's' }]);
    expect(parseServeOssArgs(['--root', '/tmp/x', '--port', '0', '--anonymous'], {}).options.anonymous).toBe(true);
    // serveOssMain reports a bad command line with exit code 2 (and never starts listening).
    expect(await serveOssMain(['--port', 'eighty'])).toBe(2);
    expect(() => parseServeOssArgs(['--root', '/tmp/x', '--port', '0', '--anonymous', '--bucket', 'b1'], {})).toThrow(ServeOssUsageError);
  });

  it('startServeOss runs a server the caller can use and close', async () => {
    const dir = await tempDir();
    try {
      const h = await startServeOss(['--root', dir, '--port', '0', '--bucket', 'cli-bucket', '--anonymous'], { env: {}, logger: silent });
      try {
        const r = await fetch(`${h.address.url}/cli-bucket/a.ts?append&position=0`, { method: 'POST', body: 'x' });
        expect(r.status).toBe(200);
      } finally {
        await h.server.close();
      }
      expect((await stat(join(dir, 'cli-bucket', 'a.ts'))).size).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serveOssMain listens, logs where, and exits 0 on SIGTERM (child process)', async () => {
    const dir = await tempDir();
    const cli = new URL('../../src/serve-oss/cli.ts', import.meta.url).href;
    const script = `import { serveOssMain } from ${JSON.stringify(cli)}; process.exitCode = await serveOssMain(process.argv.slice(1));`;
    const proc = spawn(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script, '--', '--root', dir, '--port', '0', '--bucket', 'bucket-1'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OSS_ACCESS_KEY_ID: AK, OSS_ACCESS_KEY_SECRET: SK } },
    );
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    proc.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
    try {
      const listening = await waitFor('serve-oss listening line', () => {
        if (proc.exitCode !== null) throw new Error(`serve-oss exited early:\n${out}`);
        return logLine<{ url: string }>(out, 'serve-oss listening');
      }, 20_000);
      expect(listening.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const oss = new OSS({ accessKeyId: AK, accessKeySecret: SK, bucket: 'bucket-1', endpoint: listening.url, region: REGION, sldEnable: true });
      expect((await oss.append('cli.ts', Buffer.from('hi'), { position: 0 })).nextAppendPosition).toBe('2');
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(out).toContain('serve-oss stopped');
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
