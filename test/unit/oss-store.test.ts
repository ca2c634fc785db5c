import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OssStorageConfig } from '../../src/config/schema.js';
import { crc64 } from '../../src/store/crc64.js';
import {
  InvalidRangeError,
  NoSuchKeyError,
  ObjectNotAppendableError,
  ObjectTooLargeError,
  PositionNotEqualToLengthError,
  StoreError,
} from '../../src/store/errors.js';
import {
  OssIntegrityError,
  OssServiceError,
  OssTransportError,
  decodeOssErrHeader,
  parseOssErrorXml,
} from '../../src/store/oss/oss-errors.js';
import { parseListObjectsV2 } from '../../src/store/oss/oss-list.js';
import { OssStore } from '../../src/store/oss/oss-store.js';
import type { OssStoreOptions } from '../../src/store/oss/oss-store.js';
import { encodeKeyPath, requestTarget, requestUrl, resolveAddressing } from '../../src/store/oss/oss-url.js';
import { unescapeXml } from '../../src/store/oss/oss-xml.js';
import { errorXml, startMiniOss } from '../helpers/mini-oss.js';
import type { MiniOss, MiniOssOptions } from '../helpers/mini-oss.js';
import { StoreClosedError } from '../../src/store/errors.js';
import { rejectionOf } from '../helpers/expect-error.js';
import { readAll } from '../helpers/objects.js';
import { describeStoreConformance } from '../helpers/store-conformance.js';

const AK = 'test-ak';
const SECRET = 'SuperSecretKey-0123456789abcdef';
const TOKEN = 'StsToken-fedcba9876543210-XYZ';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function ossConfig(endpoint: string, over: Partial<OssStorageConfig> = {}): OssStorageConfig {
  return {
    kind: 'oss',
    endpoint,
    bucket: 'test-bucket',
    region: 'cn-hangzhou',
    accessKeyId: AK,
    accessKeySecret: SECRET,
    signatureVersion: 'v4',
    pathStyle: true,
    timeouts: { connectMs: 2000, headersMs: 5000, bodyMs: 5000 },
    ...over,
  };
}

function expectNoSecrets(err: unknown, secrets: string[]): void {
  const e = err as Error;
  const renderings = [String(e), e.stack ?? '', JSON.stringify(e), inspect(e, { depth: 10 })];
  for (const r of renderings) for (const s of secrets) expect(r).not.toContain(s);
}

// ------------------------------------------------------------------------------------------------
// Pure units
// ------------------------------------------------------------------------------------------------

describe('oss-url', () => {
  it('builds virtual-hosted URLs with the bucket in the host and keys encoded per segment', () => {
    const addr = resolveAddressing('https://oss-cn-hangzhou.aliyuncs.com', 'my-bucket', false);
    expect(addr).toEqual({ origin: 'https://my-bucket.oss-cn-hangzhou.aliyuncs.com', bucket: 'my-bucket', pathStyle: false });
    expect(requestUrl(addr, 'live/cam 1/a+b(1)*.mp4')).toBe('https://my-bucket.oss-cn-hangzhou.aliyuncs.com/live/cam%201/a%2Bb%281%29%2A.mp4');
    expect(requestTarget(addr, '摄像头/流.mp4', { position: 17, append: '' })).toBe('/%E6%91%84%E5%83%8F%E5%A4%B4/%E6%B5%81.mp4?append&position=17');
    expect(requestTarget(addr, '', { 'list-type': '2', prefix: 'a b/', 'continuation-token': undefined })).toBe('/?list-type=2&prefix=a%20b%2F');
    // An endpoint without a scheme is https; ports are kept.
    expect(resolveAddressing('oss-cn-beijing.aliyuncs.com:8443', 'b1x', false).origin).toBe('https://b1x.oss-cn-beijing.aliyuncs.com:8443');
  });

  it('builds path-style URLs, and forces path style for IP endpoints', () => {
    const addr = resolveAddressing('http://localhost:9000', 'bkt', true);
    expect(requestUrl(addr, 'a/b c.ts', { append: '', position: 0 })).toBe('http://localhost:9000/bkt/a/b%20c.ts?append&position=0');
    expect(requestTarget(addr, '')).toBe('/bkt/');
    expect(resolveAddressing('http://127.0.0.1:9000', 'bkt', false)).toEqual({ origin: 'http://127.0.0.1:9000', bucket: 'bkt', pathStyle: true });
    expect(resolveAddressing('http://[::1]:9000', 'bkt', false).pathStyle).toBe(true);
    expect(encodeKeyPath('a/~b_c-d.e/%')).toBe('a/~b_c-d.e/%25');
    expect(() => resolveAddressing('http://host/some/path', 'bkt', false)).toThrow(/bare origin/);
  });
});

describe('OSS XML parsing', () => {
  it('parses error bodies with and without a namespace, with EC and RecommendDoc', () => {
    const plain = parseOssErrorXml(
      '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>PositionNotEqualToLength</Code>\n  <Message>Position is not equal to file length.</Message>\n' +
        '  <RequestId>5C3D8D2A0ACA5D0D1E3F8C2B</RequestId>\n  <HostId>examplebucket.oss-cn-hangzhou.aliyuncs.com</HostId>\n' +
        '  <EC>0026-00000016</EC>\n  <RecommendDoc>https://api.aliyun.com/troubleshoot?q=0026-00000016&amp;x=1</RecommendDoc>\n</Error>',
    );
    expect(plain).toEqual({
      code: 'PositionNotEqualToLength',
      message: 'Position is not equal to file length.',
      requestId: '5C3D8D2A0ACA5D0D1E3F8C2B',
      hostId: 'examplebucket.oss-cn-hangzhou.aliyuncs.com',
      ec: '0026-00000016',
      recommendDoc: 'https://api.aliyun.com/troubleshoot?q=0026-00000016&x=1',
      serverTime: undefined,
    });
    const namespaced = parseOssErrorXml(
      '<Error xmlns="http://doc.oss-cn-hangzhou.aliyuncs.com"><Code>AccessDenied</Code><Message>You &lt;b&gt; &quot;no&quot; &apos;way&apos; &#65;&#x42;</Message>' +
        '<RequestId>R1</RequestId><Unknown><Nested>x</Nested></Unknown></Error>',
    );
    expect(namespaced).toMatchObject({ code: 'AccessDenied', message: `You <b> "no" 'way' AB`, requestId: 'R1', ec: undefined, recommendDoc: undefined });
    expect(parseOssErrorXml('<oss:Error xmlns:oss="urn:x"><oss:Code>X</oss:Code><oss:Message><![CDATA[a<b>&amp;]]></oss:Message></oss:Error>'))
      .toMatchObject({ code: 'X', message: 'a<b>&amp;' });
    expect(parseOssErrorXml('<ListBucketResult/>')).toBeUndefined();
    expect(parseOssErrorXml('not xml at all')).toBeUndefined();
    expect(parseOssErrorXml('<Error><Message>no code</Message></Error>')).toBeUndefined();
  });

  it('decodes the base64 x-oss-err header', () => {
    const header = Buffer.from(errorXml('NoSuchBucket', 'The specified bucket does not exist.', 'RID9')).toString('base64');
    expect(decodeOssErrHeader(header)).toMatchObject({ code: 'NoSuchBucket', requestId: 'RID9', ec: '0000-00000000' });
    expect(decodeOssErrHeader('!!!')).toBeUndefined();
  });

  it('parses ListObjectsV2 pages exactly (keys unescaped, never trimmed)', () => {
    const page = parseListObjectsV2(
      '<?xml version="1.0"?><ListBucketResult xmlns="http://doc.oss-cn-hangzhou.aliyuncs.com"><IsTruncated>true</IsTruncated>' +
        '<NextContinuationToken>tok&amp;1</NextContinuationToken>' +
        '<Contents><Key> a&amp;b&lt;c </Key><LastModified>2024-01-02T03:04:05.000Z</LastModified><Type>Appendable</Type><Size>12</Size></Contents>' +
        '<Contents><Key>n</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified><Type>Normal</Type><Size>18446744073</Size></Contents>' +
        '</ListBucketResult>',
    );
    expect(page).toEqual({
      truncated: true,
      nextContinuationToken: 'tok&1',
      entries: [
        { key: ' a&b<c ', size: 12, appendable: true, lastModified: new Date('2024-01-02T03:04:05.000Z') },
        { key: 'n', size: 18446744073, appendable: false, lastModified: new Date('2024-01-02T03:04:05.000Z') },
      ],
    });
    expect(parseListObjectsV2('<Error><Code>X</Code></Error>')).toBe('not a ListBucketResult document');
    expect(unescapeXml('&amp;lt; &#x1F600; &bogus;')).toBe('&lt; 😀 &bogus;');
  });
});

// ------------------------------------------------------------------------------------------------
// Against the in-test server
// ------------------------------------------------------------------------------------------------

const CONFORMANCE_CAP = 256 * 1024;

describeStoreConformance('oss over mini-oss (V4, path-style)', async () => {
  const mini = await startMiniOss({ accessKeySecret: SECRET, maxObjectBytes: CONFORMANCE_CAP, listPageSize: 2 });
  const store = new OssStore(ossConfig(mini.url));
  return { store, maxObjectBytes: CONFORMANCE_CAP, cleanup: () => mini.close() };
});

describe('OssStore against mini-oss', () => {
  let mini: MiniOss;
  const stores: OssStore[] = [];
  const servers: Server[] = [];

  async function setup(serverOpts: MiniOssOptions = {}, over: Partial<OssStorageConfig> = {}, opts: OssStoreOptions = {}): Promise<OssStore> {
    mini = await startMiniOss({ accessKeySecret: SECRET, ...serverOpts });
    return newStore(over, opts);
  }
  function newStore(over: Partial<OssStorageConfig> = {}, opts: OssStoreOptions = {}): OssStore {
    const s = new OssStore(ossConfig(mini.url, over), { env: {}, ...opts });
    stores.push(s);
    return s;
  }

  beforeEach(() => {
    stores.length = 0;
    servers.length = 0;
  });
  afterEach(async () => {
    for (const s of stores) await s.close();
    for (const srv of servers) {
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    }
    await mini?.close();
  });

  it('appends in sequence with verified length and CRC, sending creation headers only at position 0', async () => {
    const store = await setup();
    const a = await store.append('cam/x.mp4', 0, [enc('ab'), enc('c')], { contentType: 'video/mp4', metadata: { Camera: 'c1' }, acl: 'private', storageClass: 'IA' });
    expect(a).toEqual({ nextPosition: 3, crc64: 3231342946509354535n });
    const b = await store.append('cam/x.mp4', 3, [enc('te'), enc('st')], { contentType: 'text/plain', metadata: { camera: 'c2' } });
    expect(b).toEqual({ nextPosition: 7, crc64: 3454605731697256492n });
    const posts = mini.requests.filter((r) => r.method === 'POST');
    expect(posts.map((r) => r.url)).toEqual(['/test-bucket/cam/x.mp4?append&position=0', '/test-bucket/cam/x.mp4?append&position=3']);
    expect(posts[0]!.headers).toMatchObject({
      'content-type': 'video/mp4', 'x-oss-meta-camera': 'c1', 'x-oss-object-acl': 'private', 'x-oss-storage-class': 'IA',
      'content-length': '3', 'content-md5': createHash('md5').update('abc').digest('base64'),
    });
    for (const name of ['content-type', 'x-oss-meta-camera', 'x-oss-object-acl', 'x-oss-storage-class']) expect(posts[1]!.headers).not.toHaveProperty(name);
    expect(posts[1]!.headers['content-md5']).toBe(createHash('md5').update('test').digest('base64'));
    expect(posts.every((r) => r.auth === 'v4')).toBe(true);
    // The cache knew the CRC at 3: no HEAD was needed.
    expect(mini.requests.map((r) => r.method)).toEqual(['POST', 'POST']);
    expect(mini.objects.get('cam/x.mp4')?.data.toString()).toBe('abctest');
  });

  it('HEADs once to learn the CRC when a fresh store appends past position 0', async () => {
    const first = await setup();
    await first.append('k', 0, [enc('abc')]);
    const second = newStore();
    mini.requests.length = 0;
    expect(await second.append('k', 3, [enc('test')])).toEqual({ nextPosition: 7, crc64: 3454605731697256492n });
    expect(await second.append('k', 7, [enc('!')])).toMatchObject({ nextPosition: 8 });
    expect(mini.requests.map((r) => r.method)).toEqual(['HEAD', 'POST', 'POST']);
    // A foreign writer moves the object on: the cache is stale, and the server's 409 says so.
    await first.append('k', 8, [enc('zz')]);
    mini.requests.length = 0;
    const err = await rejectionOf(second.append('k', 8, [enc('x')]));
    expect(err).toBeInstanceOf(PositionNotEqualToLengthError);
    expect((err as PositionNotEqualToLengthError).currentLength).toBe(10);
  });

  it('raises OssIntegrityError when the server reports a wrong CRC or next position', async () => {
    const store = await setup();
    await store.append('i', 0, [enc('abc')]);
    mini.tamper = (h) => {
      if (h['x-oss-hash-crc64ecma'] !== undefined) h['x-oss-hash-crc64ecma'] = '12345';
    };
    const err = await rejectionOf(store.append('i', 3, [enc('test')]));
    expect(err).toBeInstanceOf(OssIntegrityError);
    const e = err as OssIntegrityError;
    expect(e).toMatchObject({ code: 'APC_ERR_STORE_INTEGRITY', key: 'i', position: 3, length: 4, expectedNextPosition: 7, actualNextPosition: 7 });
    expect(e.expectedCrc64).toBe(3454605731697256492n);
    expect(e.actualCrc64).toBe(12345n);
    expect(e.requestId).toMatch(/^MINI/);
    expect(JSON.parse(JSON.stringify(e))).toMatchObject({ expectedCrc64: '3454605731697256492', actualCrc64: '12345' });

    mini.tamper = (h) => {
      if (h['x-oss-next-append-position'] !== undefined) h['x-oss-next-append-position'] = '999';
    };
    mini.requests.length = 0;
    const err2 = await rejectionOf(store.append('i', 7, [enc('x')]));
    expect(err2).toBeInstanceOf(OssIntegrityError);
    expect((err2 as OssIntegrityError).actualNextPosition).toBe(999);
    // After the first mismatch the cache was dropped: the store re-learnt the CRC by HEAD.
    expect(mini.requests.map((r) => r.method)).toEqual(['HEAD', 'POST']);

    mini.tamper = (h) => {
      delete h['x-oss-hash-crc64ecma'];
    };
    const err3 = await rejectionOf(store.append('i', 8, [enc('y')]));
    expect(err3).toBeInstanceOf(OssIntegrityError);
    expect((err3 as OssIntegrityError).actualCrc64).toBeUndefined();
  });

  it('maps 409 PositionNotEqualToLength with currentLength from the header, or from a HEAD without it', async () => {
    const store = await setup();
    await store.append('p', 0, [enc('0123456789')]);
    const err = await rejectionOf(store.append('p', 0, [enc('x')]));
    expect(err).toBeInstanceOf(PositionNotEqualToLengthError);
    expect(err).toMatchObject({ currentLength: 10, position: 0, status: 409, ossCode: 'PositionNotEqualToLength', ec: '0000-00000000' });
    expect((err as { requestId?: string }).requestId).toMatch(/^MINI/);

    // A server that omits x-oss-next-append-position: one HEAD supplies the length.
    mini.intercept = (req, res, ctx) => {
      if (req.method !== 'POST') return false;
      res.statusCode = 409;
      res.setHeader('content-type', 'application/xml');
      res.end(errorXml('PositionNotEqualToLength', 'Position is not equal to file length.', 'RID-409'));
      void ctx;
      return true;
    };
    mini.requests.length = 0;
    const err2 = await rejectionOf(store.append('p', 0, [enc('x')]));
    expect(err2).toMatchObject({ currentLength: 10, position: 0, requestId: 'RID-409' });
    expect(mini.requests.map((r) => r.method)).toEqual(['POST', 'HEAD']);
  });

  it('maps ObjectNotAppendable, NoSuchKey and 416 InvalidRange, with request ids; sends x-oss-range-behavior on GET', async () => {
    const store = await setup();
    await store.put('normal', enc('abc'));
    const na = await rejectionOf(store.append('normal', 0, [enc('x')]));
    expect(na).toBeInstanceOf(ObjectNotAppendableError);
    expect((na as { requestId?: string }).requestId).toMatch(/^MINI/);

    const nk = await rejectionOf(store.read('absent'));
    expect(nk).toBeInstanceOf(NoSuchKeyError);
    expect(nk).toMatchObject({ status: 404, ossCode: 'NoSuchKey', ec: '0000-00000000' });

    await store.append('r', 0, [enc('hello')]);
    const ir = await rejectionOf(store.read('r', { start: 5 }));
    expect(ir).toBeInstanceOf(InvalidRangeError);
    expect((ir as Error).message).toContain('(5 bytes)');
    expect((await readAll(await store.read('r', { start: 1, end: 2 }))).toString()).toBe('el');
    expect((await readAll(await store.read('r'))).toString()).toBe('hello');
    const gets = mini.requests.filter((r) => r.method === 'GET');
    expect(gets.length).toBe(4);
    for (const g of gets) expect(g.headers['x-oss-range-behavior']).toBe('standard');
    expect(gets.map((g) => g.headers['range'])).toEqual([undefined, 'bytes=5-', 'bytes=1-2', undefined]);

    // A server that ignores the range (200 to a ranged GET) is a protocol error, not data.
    mini.intercept = (req, res) => {
      if (req.method !== 'GET') return false;
      res.statusCode = 200;
      res.end('hello');
      return true;
    };
    const pe = await rejectionOf(store.read('r', { start: 2 }));
    expect(pe).toBeInstanceOf(StoreError);
    expect(pe).toMatchObject({ ossCode: 'ProtocolViolation', code: 'APC_ERR_STORE_SERVICE', status: 200 });
  });

  it('maps EntityTooLarge to ObjectTooLargeError and refuses appends past 5 GiB without sending', async () => {
    const store = await setup({ maxObjectBytes: 4 });
    const err = await rejectionOf(store.put('big', enc('12345')));
    expect(err).toBeInstanceOf(ObjectTooLargeError);
    expect((err as ObjectTooLargeError).wouldBe).toBe(5);
    mini.requests.length = 0;
    const err2 = await rejectionOf(store.append('huge', 5 * 1024 ** 3, [enc('x')]));
    expect(err2).toBeInstanceOf(ObjectTooLargeError);
    expect(mini.requests).toHaveLength(0);
  });

  it('reads HEAD errors from x-oss-err, and other errors into OssServiceError with retryable', async () => {
    const store = await setup();
    mini.intercept = (req, res) => {
      if (req.method !== 'HEAD') return false;
      const xml = errorXml('AccessDenied', 'You have no right to access this object.', 'RID-403');
      res.statusCode = 403;
      res.setHeader('x-oss-ec', '0003-00000001');
      res.setHeader('x-oss-err', Buffer.from(xml).toString('base64'));
      res.end();
      return true;
    };
    const h = await rejectionOf(store.head('k'));
    expect(h).toBeInstanceOf(OssServiceError);
    expect(h).toMatchObject({
      code: 'APC_ERR_STORE_SERVICE', ossCode: 'AccessDenied', status: 403, requestId: 'RID-403', ec: '0000-00000000',
      ossMessage: 'You have no right to access this object.', retryable: false, method: 'HEAD', key: 'k',
    });
    expect((h as Error).message).toContain('AccessDenied');

    mini.intercept = (req, res) => {
      res.statusCode = 503;
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?><Error xmlns="http://doc.oss-cn-hangzhou.aliyuncs.com"><Code>ServiceUnavailable</Code>' +
          '<Message>Please reduce your request rate.</Message><RequestId>RID-503</RequestId><HostId>h</HostId><EC>0005-00000001</EC>' +
          '<RecommendDoc>https://api.aliyun.com/troubleshoot?q=0005-00000001</RecommendDoc></Error>',
      );
      void req;
      return true;
    };
    const s = await rejectionOf(store.append('k', 0, [enc('x')]));
    expect(s).toBeInstanceOf(OssServiceError);
    expect(s).toMatchObject({
      ossCode: 'ServiceUnavailable', status: 503, requestId: 'RID-503', ec: '0005-00000001', hostId: 'h',
      recommendDoc: 'https://api.aliyun.com/troubleshoot?q=0005-00000001', retryable: true,
    });

    // HEAD 404 with no x-oss-err at all is an absent object.
    mini.intercept = (req, res) => {
      res.statusCode = 404;
      res.end();
      void req;
      return true;
    };
    expect(await store.head('gone')).toBeNull();
  });

  it('is accepted by verifyRequest with V1 and with V4, and sends the STS token', async () => {
    const v1 = await setup({}, { signatureVersion: 'v1', securityToken: TOKEN });
    await v1.append('s/a', 0, [enc('abc')], { contentType: 'video/mp4', metadata: { a: 'b' } });
    await v1.head('s/a');
    await readAll(await v1.read('s/a', { start: 1 }));
    await v1.put('s/b', enc('x'));
    await v1.list('s/');
    await v1.delete('s/b');
    const v4 = newStore({ signatureVersion: 'v4', securityToken: TOKEN });
    await v4.append('s/a', 3, [enc('test')]);
    await v4.list('');
    expect(mini.requests.map((r) => r.auth)).toEqual(['v1', 'v1', 'v1', 'v1', 'v1', 'v1', 'v4', 'v4', 'v4']);
    for (const r of mini.requests) expect(r.headers['x-oss-security-token']).toBe(TOKEN);
    expect(mini.requests[0]!.headers['authorization']).toMatch(/^OSS test-ak:/);
    expect(mini.requests.at(-1)!.headers['authorization']).toMatch(/^OSS4-HMAC-SHA256 Credential=test-ak\/\d{8}\/cn-hangzhou\/oss\/aliyun_v4_request,Signature=[0-9a-f]{64}$/);
  });

  it('reads credentials from the environment when the config has none', async () => {
    mini = await startMiniOss({ accessKeySecret: SECRET });
    const store = new OssStore(ossConfig(mini.url, { accessKeyId: undefined, accessKeySecret: undefined }), {
      env: { OSS_ACCESS_KEY_ID: AK, OSS_ACCESS_KEY_SECRET: SECRET, OSS_SESSION_TOKEN: TOKEN },
    });
    stores.push(store);
    expect(await store.head('nope')).toBeNull();
    expect(mini.requests[0]).toMatchObject({ auth: 'v4' });
    expect(mini.requests[0]!.headers['x-oss-security-token']).toBe(TOKEN);
    expect(() => new OssStore(ossConfig(mini.url, { accessKeyId: undefined, accessKeySecret: undefined }), { env: {} }))
      .toThrow(expect.objectContaining({ code: 'APC_ERR_CREDENTIALS_MISSING' }));
  });

  it('re-signs once with the server clock after RequestTimeTooSkewed', async () => {
    const ahead = 20 * 60 * 1000;
    const warnings: object[] = [];
    const logger = { debug: () => {}, warn: (o: object) => warnings.push(o) };
    const store = await setup({ now: () => new Date(Date.now() + ahead) }, {}, { logger });
    expect(await store.append('skew', 0, [enc('abc')])).toEqual({ nextPosition: 3, crc64: 3231342946509354535n });
    expect(mini.requests.map((r) => r.auth)).toEqual(['RequestTimeTooSkewed', 'v4']);
    expect(mini.objects.get('skew')?.data.toString()).toBe('abc');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ key: 'skew' });
    // The offset sticks: the next request is signed right the first time.
    await store.head('skew');
    expect(mini.requests.map((r) => r.auth)).toEqual(['RequestTimeTooSkewed', 'v4', 'v4']);
  });

  it('gives up after one re-sign when the skew persists', async () => {
    const store = await setup();
    mini.intercept = (req, res) => {
      res.statusCode = 403;
      res.setHeader('Date', new Date(Date.now() + 3_600_000).toUTCString());
      res.end(errorXml('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', 'RID-S'));
      void req;
      return true;
    };
    const err = await rejectionOf(store.read('x'));
    expect(err).toBeInstanceOf(OssServiceError);
    expect(err).toMatchObject({ ossCode: 'RequestTimeTooSkewed', retryable: true, requestId: 'RID-S' });
    expect(mini.requests).toHaveLength(2);
  });

  it('reports a refused connection as a non-ambiguous connect failure', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    mini = await startMiniOss({ accessKeySecret: SECRET });
    const store = new OssStore(ossConfig(`http://127.0.0.1:${port}`, { securityToken: TOKEN }), { env: {} });
    stores.push(store);
    const err = await rejectionOf(store.append('t', 0, [enc('abc')]));
    expect(err).toBeInstanceOf(OssTransportError);
    expect(err).toMatchObject({ code: 'APC_ERR_STORE_TRANSPORT', phase: 'connect', ambiguous: false, retryable: true, causeCode: 'ECONNREFUSED', key: 't' });
    expectNoSecrets(err, [SECRET, TOKEN]);
  });

  it('reports a socket destroyed after the body was read as an ambiguous failure', async () => {
    const store = await setup({}, { securityToken: TOKEN });
    mini.intercept = (req, res) => {
      if (req.method !== 'POST') return false;
      res.socket?.destroy();
      return true;
    };
    const err = await rejectionOf(store.append('t', 0, [enc('abc'), enc('def')]));
    expect(err).toBeInstanceOf(OssTransportError);
    expect(err).toMatchObject({ phase: 'headers', ambiguous: true });
    expect(mini.requests[0]!.body.toString()).toBe('abcdef');
    expectNoSecrets(err, [SECRET, TOKEN]);
    // The next append at 0 HEADs nothing (position 0) and works once the server behaves.
    mini.intercept = undefined;
    expect((await store.append('t', 0, [enc('abc')])).nextPosition).toBe(3);
  });

  it('reports a server that never answers as an ambiguous headers timeout', async () => {
    const store = await setup({}, { timeouts: { connectMs: 2000, headersMs: 300, bodyMs: 5000 } });
    mini.intercept = () => true; // swallow the request, never respond
    const started = Date.now();
    const err = await rejectionOf(store.append('t', 0, [enc('abc')]));
    expect(err).toBeInstanceOf(OssTransportError);
    expect(err).toMatchObject({ phase: 'headers', ambiguous: true, causeCode: 'UND_ERR_HEADERS_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('reports a response body that stalls as a body-phase transport error on the read stream', async () => {
    const store = await setup({}, { timeouts: { connectMs: 2000, headersMs: 2000, bodyMs: 300 } });
    await store.append('slow', 0, [enc('0123456789')]);
    mini.intercept = (req, res) => {
      if (req.method !== 'GET') return false;
      res.writeHead(200, { 'content-length': '10' });
      res.write('01234'); // and never the rest
      return true;
    };
    const stream = await store.read('slow');
    const err = await rejectionOf(readAll(stream));
    expect(err).toBeInstanceOf(OssTransportError);
    expect(err).toMatchObject({ phase: 'body', ambiguous: true, causeCode: 'UND_ERR_BODY_TIMEOUT' });
  });

  it('never puts the secret or the STS token in errors, even when the server echoes them', async () => {
    // The server knows a different secret: SignatureDoesNotMatch, whose StringToSign (V1) holds the token.
    mini = await startMiniOss({ accessKeySecret: 'the-server-secret' });
    const store = newStore({ signatureVersion: 'v1', securityToken: TOKEN });
    const err = await rejectionOf(store.append('sig', 0, [enc('abc')]));
    expect(err).toBeInstanceOf(OssServiceError);
    expect(err).toMatchObject({ ossCode: 'SignatureDoesNotMatch', status: 403, retryable: false });
    expectNoSecrets(err, [SECRET, TOKEN]);

    // A hostile server that puts both into the message.
    mini.intercept = (req, res) => {
      res.statusCode = 400;
      res.end(errorXml('InvalidArgument', `bad request ${SECRET} ${TOKEN} ${String(req.headers['authorization'])}`, 'RID-X'));
      return true;
    };
    const err2 = await rejectionOf(store.put('sig', enc('x')));
    expect(err2).toBeInstanceOf(OssServiceError);
    expect((err2 as OssServiceError).ossMessage).toContain('[REDACTED]');
    expectNoSecrets(err2, [SECRET, TOKEN]);

    const err3 = await rejectionOf(store.head('\0bad'));
    expectNoSecrets(err3, [SECRET, TOKEN]);
    expectNoSecrets(store, [SECRET, TOKEN]);
  });

  it('follows ListObjectsV2 pagination', async () => {
    const store = await setup({ listPageSize: 3 });
    const keys = Array.from({ length: 10 }, (_, i) => `l/${String(i).padStart(2, '0')} &<x>`);
    for (const k of keys) await store.append(k, 0, [enc(k)]);
    mini.requests.length = 0;
    const listed = await store.list('l/');
    expect(listed.map((e) => e.key)).toEqual(keys);
    expect(listed.every((e) => e.appendable && e.size === e.key.length)).toBe(true);
    expect(mini.requests).toHaveLength(4);
    expect(mini.requests[1]!.url).toMatch(/continuation-token=/);
  });

  it('refuses work after close()', async () => {
    const store = await setup();
    await store.close();
    expect(await rejectionOf(store.head('k'))).toBeInstanceOf(StoreClosedError);
  });

  it('computes the CRC the same way the server does for multi-chunk appends', async () => {
    const store = await setup();
    const chunks = [new Uint8Array(70_000).fill(1), new Uint8Array(0), new Uint8Array(130_001).fill(2)];
    const r = await store.append('big', 0, chunks);
    expect(r.nextPosition).toBe(200_001);
    expect(r.crc64).toBe(crc64(Buffer.concat(chunks)));
    expect(mini.objects.get('big')?.crc).toBe(r.crc64);
  });
});
