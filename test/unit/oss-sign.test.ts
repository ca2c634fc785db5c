import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { format, inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import {
  canonicalQueryV4,
  canonicalResourceV1,
  parseRawQuery,
  parseV1Date,
  parseV4Date,
  uriEncode,
} from '../../src/store/oss/canonical.js';
import type { QueryParams } from '../../src/store/oss/canonical.js';
import { OssCredentials, OssCredentialsError, resolveOssCredentials } from '../../src/store/oss/credentials.js';
import type { SigningCredentials } from '../../src/store/oss/credentials.js';
import { signV1, signatureV1, stringToSignV1 } from '../../src/store/oss/sign-v1.js';
import type { SignableRequest } from '../../src/store/oss/sign-v1.js';
import { signV4 } from '../../src/store/oss/sign-v4.js';
import { verifyRequest } from '../../src/store/oss/verify.js';
import type { ReceivedRequest, VerifyResult } from '../../src/store/oss/verify.js';

// ---------------------------------------------------------------------------------------------
// The official SDK (CommonJS, no type declarations): typed here with only what the tests use.
// ---------------------------------------------------------------------------------------------
interface AliPutOptions {
  position?: number | string;
  headers?: Record<string, string>;
  mime?: string;
  additionalHeaders?: string[];
}
interface AliOssClient {
  append(name: string, file: Buffer, options?: AliPutOptions): Promise<{ nextAppendPosition: string }>;
  put(name: string, file: Buffer, options?: AliPutOptions): Promise<unknown>;
  head(name: string, options?: { additionalHeaders?: string[] }): Promise<{ status: number }>;
  getObjectMeta(name: string): Promise<{ status: number }>;
}
type AliOssCtor = new (options: Record<string, unknown>) => AliOssClient;
interface AliSignUtils {
  buildCanonicalString(method: string, resource: string, request: { headers: Record<string, string>; parameters: Record<string, string | number> }): string;
  computeSignature(secret: string, canonicalString: string): string;
  authorizationV4(
    ak: string, sk: string, region: string, method: string,
    request: { headers: Record<string, string>; queries: Record<string, string | number | null> },
    bucket: string, object: string, additionalHeaders?: string[],
  ): string;
}
const require = createRequire(import.meta.url);
const OSS = require('ali-oss') as AliOssCtor;
const aliSign = require('ali-oss/lib/common/signUtils.js') as AliSignUtils;

const AK = 'LTAI5tTestAccessKey';
const SK = 'sEcReT-kEy/with+chars=0123456789abcdef';
const TOKEN = 'CAIS-sts-token/+=example-0123456789';
const creds = (securityToken?: string): SigningCredentials => ({ accessKeyId: AK, accessKeySecret: SK, securityToken });

// ---------------------------------------------------------------------------------------------
// 1. Published test vectors (Alibaba's signature documentation) and vectors computed by ali-oss 6.23
// ---------------------------------------------------------------------------------------------
describe('V1 test vectors', () => {
  it('reproduces the Alibaba Cloud documentation example (Date header, no x-oss-date)', () => {
    const headers = {
      'content-md5': 'ODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=',
      'content-type': 'text/html',
      date: 'Thu, 17 Nov 2005 18:49:58 GMT',
      'x-oss-magic': 'abracadabra',
      'x-oss-meta-author': 'foo@bar.com',
    };
    const sts = stringToSignV1('PUT', 'oss-example', 'nelson', {}, headers);
    expect(sts).toBe(
      'PUT\nODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=\ntext/html\nThu, 17 Nov 2005 18:49:58 GMT\n' +
        'x-oss-magic:abracadabra\nx-oss-meta-author:foo@bar.com\n/oss-example/nelson',
    );
    expect(signatureV1('OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV', sts)).toBe('26NBxoKdsyly4EDv6inkoDft/yA=');
  });

  const goDate = new Date('Wed, 28 Dec 2022 10:27:41 GMT');
  const goHeaders = {
    'content-md5': 'eB5eJF1ptWaXm4bijSPyxw==',
    'content-type': 'text/html',
    'x-oss-meta-author': 'alice',
    'x-oss-meta-magic': 'abracadabra',
  };
  const sk = { accessKeyId: 'ak', accessKeySecret: 'sk' };

  it.each([
    ['PUT object', 'PUT', 'nelson', {}, goHeaders, 'kSHKmLxlyEAKtZPkJhG9bZb5k7M=', '/examplebucket/nelson'],
    ['PUT object ?acl', 'PUT', 'nelson', { acl: '' }, goHeaders, '/afkugFbmWDQ967j1vr6zygBLQk=', '/examplebucket/nelson?acl'],
    ['GET bucket, unsigned param dropped', 'GET', '', { resourceGroup: '', 'non-resousce': 'null' }, {}, 'vkQmfuUDyi1uDi3bKt67oemssIs=', '/examplebucket/?resourceGroup'],
    ['GET bucket, sorted subresources', 'GET', '', { resourceGroup: '', acl: '' }, {}, 'x3E5TgOvl/i7PN618s5mEvpJDYk=', '/examplebucket/?acl&resourceGroup'],
  ] as const)('reproduces Go SDK TestV1AuthHeader (%s)', (_name, method, key, query, headers, sig, resource) => {
    const r = signV1({ method, bucket: 'examplebucket', key, query, headers }, sk, goDate);
    expect(r.headers['authorization']).toBe(`OSS ak:${sig}`);
    expect(r.headers['x-oss-date']).toBe('Wed, 28 Dec 2022 10:27:41 GMT');
    expect(r.stringToSign.endsWith(`x-oss-date:Wed, 28 Dec 2022 10:27:41 GMT\n${Object.keys(headers).length ? 'x-oss-meta-author:alice\nx-oss-meta-magic:abracadabra\n' : ''}${resource}`)).toBe(true);
  });
});

const appendReq: SignableRequest = {
  method: 'POST',
  bucket: 'examplebucket',
  key: 'live/cam1.ts',
  query: { append: '', position: 1717 },
  headers: { 'content-md5': 'kAFQmDzST7DWlj99KOF/cg==', 'content-type': 'video/mp2t' },
};
const appendDate = new Date('Wed, 08 Jul 2015 06:57:01 GMT');
const akSk = (securityToken?: string): SigningCredentials => ({ accessKeyId: 'ak', accessKeySecret: 'sk', securityToken });

describe('append vectors', () => {
  it('V1 signs the bare `append` sub-resource', () => {
    const r = signV1(appendReq, akSk(), appendDate);
    expect(r.stringToSign).toBe(
      'POST\nkAFQmDzST7DWlj99KOF/cg==\nvideo/mp2t\nWed, 08 Jul 2015 06:57:01 GMT\n' +
        'x-oss-date:Wed, 08 Jul 2015 06:57:01 GMT\n/examplebucket/live/cam1.ts?append&position=1717',
    );
    expect(r.headers['authorization']).toBe('OSS ak:hwJke0qDd29Wx2VN26J/fIM8k04=');
  });

  it('V1 with an STS token adds and signs x-oss-security-token', () => {
    const r = signV1(appendReq, akSk('token'), appendDate);
    expect(r.headers['x-oss-security-token']).toBe('token');
    expect(r.stringToSign).toContain('x-oss-date:Wed, 08 Jul 2015 06:57:01 GMT\nx-oss-security-token:token\n/examplebucket/');
    expect(r.headers['authorization']).toBe('OSS ak:cDo4b2HJ5dqRHNDkr4WU1NtqSCs=');
  });

  it('V4 produces the exact canonical request, string to sign and signature', () => {
    const r = signV4(appendReq, akSk(), appendDate, 'cn-hangzhou');
    expect(r.canonicalRequest).toBe(
      'POST\n/examplebucket/live/cam1.ts\nappend&position=1717\ncontent-md5:kAFQmDzST7DWlj99KOF/cg==\n' +
        'content-type:video/mp2t\nx-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20150708T065701Z\n\n\nUNSIGNED-PAYLOAD',
    );
    expect(r.stringToSign).toBe(
      'OSS4-HMAC-SHA256\n20150708T065701Z\n20150708/cn-hangzhou/oss/aliyun_v4_request\n' +
        '680e2fcba10adadf00f8ea8aa3fb0abb22d5a4d5c6b3c20d5c79ac33a2c321e4',
    );
    expect(r.headers['authorization']).toBe(
      'OSS4-HMAC-SHA256 Credential=ak/20150708/cn-hangzhou/oss/aliyun_v4_request,' +
        'Signature=56e7756bfb0919b92f88e4902cab89f22486206238fc4076269436934db29628',
    );
    expect(r.headers['x-oss-date']).toBe('20150708T065701Z');
    expect(r.headers['x-oss-content-sha256']).toBe('UNSIGNED-PAYLOAD');
  });

  it('V4 with a token, and the region given as oss-cn-hangzhou', () => {
    const r = signV4(appendReq, akSk('token'), appendDate, 'oss-cn-hangzhou');
    expect(r.headers['authorization']).toBe(
      'OSS4-HMAC-SHA256 Credential=ak/20150708/cn-hangzhou/oss/aliyun_v4_request,' +
        'Signature=e824cf0be810957e2d4855ced14f71065ff25517064a1176eb003d9f0681ba4d',
    );
  });

  it('V4 HEAD vector', () => {
    const r = signV4({ method: 'HEAD', bucket: 'examplebucket', key: 'live/cam1.ts', query: {}, headers: {} }, akSk(), appendDate, 'cn-hangzhou');
    expect(r.headers['authorization']).toMatch(/,Signature=3b73ceefd6ab12de01a81d20ea49aed6fb813afa18125daf5dc8cfec7b3a96ba$/);
  });
});

describe('V4 Go SDK vectors', () => {
  const goReq: SignableRequest = {
    method: 'PUT',
    bucket: 'bucket',
    key: '1234+-/123/1.txt',
    query: { param1: 'value1', '+param1': 'value3', '|param1': 'value4', '+param2': '', '|param2': '', param2: '' },
    headers: { 'x-oss-head1': 'value', abc: 'value', zabc: 'value', xyz: 'value', 'content-type': 'text/plain', 'x-oss-content-sha256': 'UNSIGNED-PAYLOAD' },
  };
  const scope = (d: string): string => `OSS4-HMAC-SHA256 Credential=ak/${d}/cn-hangzhou/oss/aliyun_v4_request,`;

  it('TestV4AuthHeader', () => {
    const r = signV4(goReq, akSk(), new Date(1702743657_000), 'cn-hangzhou');
    expect(r.canonicalRequest.split('\n').slice(1, 3)).toEqual([
      '/bucket/1234%2B-/123/1.txt',
      '%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2&param1=value1&param2',
    ]);
    expect(r.headers['authorization']).toBe(`${scope('20231216')}Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe`);
  });

  it('TestV4AuthHeaderToken', () => {
    const r = signV4(goReq, akSk('token'), new Date(1702784856_000), 'cn-hangzhou');
    expect(r.headers['authorization']).toBe(`${scope('20231217')}Signature=b94a3f999cf85bcdc00d332fbd3734ba03e48382c36fa4d5af5df817395bd9ea`);
  });

  it.each([[['ZAbc', 'abc']], [['x-oss-no-exist', 'ZAbc', 'x-oss-head1', 'abc']]])(
    'TestV4AuthHeaderWithAdditionalHeaders %j (defaults and absent names dropped)',
    (additional) => {
      const r = signV4(goReq, akSk(), new Date(1702747512_000), 'cn-hangzhou', additional);
      expect(r.headers['authorization']).toBe(
        `${scope('20231216')}AdditionalHeaders=abc;zabc,Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f`,
      );
    },
  );
});

// ---------------------------------------------------------------------------------------------
// 2. Canonicalisation against ali-oss's own signUtils, at a fixed date, for awkward inputs
// ---------------------------------------------------------------------------------------------
const KEYS = [
  'live/cam1.ts',
  'a b+c.ts',
  'pct%20literal%2Fx.mp4',
  'dir/ünïcødé-视频-🎥.m4s',
  "tilde~star*quote'paren(bang)!.ts",
  'a/b/c/deep key.m4s',
  'semi;colon,comma=eq&amp?q#hash@at$.ts',
];

describe('canonicalisation matches ali-oss signUtils', () => {
  it('uriEncode is RFC 3986 with upper-case hex', () => {
    expect(uriEncode("a b+c~*'()!/é")).toBe('a%20b%2Bc~%2A%27%28%29%21%2F%C3%A9');
  });

  it.each(KEYS)('V1 and V4 signatures for key %j', (key) => {
    const date = new Date('Tue, 02 Jan 2024 03:04:05 GMT');
    const headers = {
      'content-md5': 'kAFQmDzST7DWlj99KOF/cg==',
      'content-type': 'video/mp4',
      'x-oss-meta-camera': '  cam 1  ',
      'x-oss-meta-b': 'two',
      'cache-control': 'no-cache',
    };
    const query = { append: '', position: 42, 'x-oss-process': 'image/resize,w_100', 'response-content-type': "text/plain; a=b ~*'()!" };
    const ours1 = signV1({ method: 'POST', bucket: 'examplebucket', key, query, headers }, creds(TOKEN), date);
    const aliSts = aliSign.buildCanonicalString('POST', `/examplebucket/${key}`, {
      headers: { ...headers, 'x-oss-date': ours1.headers['x-oss-date']!, 'x-oss-security-token': TOKEN },
      parameters: query,
    });
    expect(ours1.stringToSign).toBe(aliSts);
    expect(ours1.headers['authorization']).toBe(`OSS ${AK}:${aliSign.computeSignature(SK, aliSts)}`);

    const ours4 = signV4({ method: 'POST', bucket: 'examplebucket', key, query, headers }, creds(TOKEN), date, 'oss-cn-hangzhou', ['Cache-Control']);
    const ali4 = aliSign.authorizationV4(
      AK, SK, 'cn-hangzhou', 'POST',
      {
        headers: { ...headers, 'x-oss-date': '20240102T030405Z', 'x-oss-content-sha256': 'UNSIGNED-PAYLOAD', 'x-oss-security-token': TOKEN },
        // ali-oss's createRequest maps '' to null before signing, which is what makes `append` bare.
        queries: { ...query, append: null },
      },
      'examplebucket', key, ['cache-control'],
    );
    expect(ours4.headers['authorization']).toBe(ali4);
  });

  it('V1 signs only whitelisted sub-resources, V4 signs every parameter', () => {
    const q: QueryParams = { uploads: null, foo: 'bar', 'x-oss-ac': '1', skipped: undefined, partNumber: 0 };
    expect(canonicalResourceV1('b', 'k', q)).toBe('/b/k?partNumber=0&uploads&x-oss-ac=1');
    expect(canonicalQueryV4(q)).toBe('foo=bar&partNumber=0&uploads&x-oss-ac=1');
    expect(canonicalResourceV1('b', '', {})).toBe('/b/');
  });

  it('parses dates strictly', () => {
    expect(parseV1Date('Wed, 08 Jul 2015 06:57:01 GMT')?.toISOString()).toBe('2015-07-08T06:57:01.000Z');
    expect(parseV1Date('Wed, 8 Jul 2015 06:57:01 GMT')).toBeUndefined();
    expect(parseV1Date('Thu, 08 Jul 2015 06:57:01 GMT')).toBeUndefined(); // wrong weekday
    expect(parseV4Date('20150708T065701Z')?.toISOString()).toBe('2015-07-08T06:57:01.000Z');
    expect(parseV4Date('20150732T065701Z')).toBeUndefined();
    expect(parseRawQuery('append=&position=0&a%2Bb=c+d')).toEqual([['append', ''], ['position', '0'], ['a+b', 'c d']]);
    expect(parseRawQuery('bad=%E0%A4')).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Byte for byte against a real ali-oss client talking to a capture server on 127.0.0.1
// ---------------------------------------------------------------------------------------------
interface Captured {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

describe('against a real ali-oss client (capture server)', () => {
  let server: Server;
  let port = 0;
  const captured: Captured[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        captured.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
        const body = Buffer.concat(chunks);
        const position = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('position') ?? 0);
        res.setHeader('x-oss-request-id', `5C3D8D2A0ACA5D0D1E3F8C${String(captured.length).padStart(2, '0')}`);
        res.setHeader('ETag', '"0CC175B9C0F1B6A831C399E269772661"');
        res.setHeader('Last-Modified', new Date().toUTCString());
        if (req.method === 'HEAD') {
          res.setHeader('x-oss-object-type', 'Appendable');
          res.setHeader('x-oss-next-append-position', '3');
          res.setHeader('x-oss-hash-crc64ecma', '0');
          res.setHeader('Content-Length', '3');
        } else {
          res.setHeader('x-oss-next-append-position', String(position + body.length));
          res.setHeader('x-oss-hash-crc64ecma', '0');
          res.setHeader('Content-Length', '0');
        }
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** Recover bucket and decoded key as the local server will: path style when sldEnable, else the Host label. */
  function locate(c: Captured, sld: boolean): { bucket: string; key: string } {
    const path = c.url.split('?')[0]!;
    if (sld) {
      const [, bucket = '', ...rest] = path.split('/');
      return { bucket, key: decodeURIComponent(rest.join('/')) };
    }
    return { bucket: (c.headers.host ?? '').split('.')[0]!, key: decodeURIComponent(path.slice(1)) };
  }

  async function capture(run: () => Promise<unknown>): Promise<Captured> {
    const before = captured.length;
    await run();
    expect(captured.length).toBe(before + 1);
    return captured[captured.length - 1]!;
  }

  function expectVerifies(received: ReceivedRequest, version: 'v1' | 'v4', when: Date): void {
    const lookup = (id: string): { secret: string } | undefined => (id === AK ? { secret: SK } : undefined);
    expect(verifyRequest(received, { lookup, now: when })).toEqual({ ok: true, accessKeyId: AK, version });

    const wrong = verifyRequest(received, { lookup: () => ({ secret: 'another-secret' }), now: when });
    expect(wrong).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    expect(JSON.stringify(wrong)).not.toContain(SK);
    expect(JSON.stringify(wrong)).not.toContain('another-secret');

    const late = verifyRequest(received, { lookup, now: new Date(when.getTime() + 20 * 60_000) });
    expect(late).toMatchObject({ ok: false, code: 'RequestTimeTooSkewed', serverTime: new Date(when.getTime() + 20 * 60_000).toISOString() });
    const early = verifyRequest(received, { lookup, now: new Date(when.getTime() - 20 * 60_000) });
    expect(early).toMatchObject({ ok: false, code: 'RequestTimeTooSkewed' });
  }

  const matrix: Array<{ v4: boolean; sld: boolean; token?: string }> = [
    { v4: false, sld: true },
    { v4: false, sld: false, token: TOKEN },
    { v4: true, sld: true, token: TOKEN },
    { v4: true, sld: false },
  ];

  for (const { v4, sld, token } of matrix) {
    const label = `${v4 ? 'V4' : 'V1'}, ${sld ? 'path style' : 'IP endpoint + Host'}${token ? ', STS token' : ''}`;
    describe(label, () => {
      let client: AliOssClient;
      beforeAll(() => {
        client = new OSS({
          accessKeyId: AK,
          accessKeySecret: SK,
          ...(token ? { stsToken: token } : {}),
          bucket: 'examplebucket',
          region: 'oss-cn-hangzhou',
          endpoint: `http://127.0.0.1:${port}`,
          ...(sld ? { sldEnable: true } : {}),
          ...(v4 ? { authorizationV4: true } : {}),
          timeout: 10_000,
        });
      });

      /** Re-sign the captured request with our signer and compare the Authorization header byte for byte. */
      function resignAndCompare(c: Captured, additional: string[] = []): ReceivedRequest {
        const { bucket, key } = locate(c, sld);
        expect(bucket).toBe('examplebucket');
        const entries = parseRawQuery(c.url.includes('?') ? c.url.slice(c.url.indexOf('?') + 1) : '');
        expect(entries).toBeDefined();
        const query = Object.fromEntries(entries!);
        const { 'x-oss-date': xOssDate, authorization, 'x-oss-security-token': sentToken, ...rest } = c.headers;
        expect(typeof xOssDate).toBe('string');
        expect(sentToken).toBe(token);
        const date = v4 ? parseV4Date(xOssDate as string) : parseV1Date(xOssDate as string);
        expect(date).toBeDefined();
        const req: SignableRequest = { method: c.method, bucket, key, query, headers: rest };
        const ours = v4 ? signV4(req, creds(token), date!, 'oss-cn-hangzhou', additional) : signV1(req, creds(token), date!);
        expect(ours.headers['x-oss-date']).toBe(xOssDate);
        expect(ours.headers['authorization']).toBe(authorization);
        const received: ReceivedRequest = { method: c.method, url: c.url, bucket, key, headers: c.headers };
        expectVerifies(received, v4 ? 'v4' : 'v1', date!);
        return received;
      }

      it.each(KEYS)('append (position 0 and 1717) with metadata, content-type and Content-MD5: %j', async (key) => {
        const headers = { 'x-oss-meta-camera': 'cam 1', 'x-oss-meta-Site': '  north gate  ', 'Cache-Control': 'no-cache' };
        const additional = v4 ? ['cache-control'] : [];
        const first = await capture(() =>
          client.append(key, Buffer.from('abc'), { position: 0, headers, mime: 'video/mp4', additionalHeaders: additional }),
        );
        expect(first.method).toBe('POST');
        expect(first.url).toMatch(/\?append=&position=0$/); // on the wire `append=`, signed as bare `append`
        expect(first.headers['content-md5']).toBe('kAFQmDzST7DWlj99KOF/cg==');
        expect(first.headers['content-type']).toBe('video/mp4');
        const received = resignAndCompare(first, additional);
        if (v4) expect(first.headers.authorization).toContain(',AdditionalHeaders=cache-control,');

        const next = await capture(() => client.append(key, Buffer.from('defg'), { position: 1717 }));
        expect(next.url).toMatch(/\?append=&position=1717$/);
        resignAndCompare(next);

        // The server accepts every spelling of the sub-resources, in any order.
        const path = received.url.split('?')[0]!;
        const lookup = (): { secret: string } => ({ secret: SK });
        const now = v4 ? parseV4Date(first.headers['x-oss-date'] as string)! : parseV1Date(first.headers['x-oss-date'] as string)!;
        for (const q of ['append&position=0', 'position=0&append', 'position=0&append=']) {
          expect(verifyRequest({ ...received, url: `${path}?${q}` }, { lookup, now }).ok).toBe(true);
        }
        // ...but a different position or key is a different request.
        expect(verifyRequest({ ...received, url: `${path}?append&position=1` }, { lookup, now })).toMatchObject({ code: 'SignatureDoesNotMatch' });
        expect(verifyRequest({ ...received, key: `${received.key}x` }, { lookup, now })).toMatchObject({ code: 'SignatureDoesNotMatch' });
      });

      it('put with x-oss-meta-*, explicit Content-Type and Content-MD5', async () => {
        const c = await capture(() =>
          client.put('a/b/c/segment 1.m4s', Buffer.from('hello'), {
            headers: { 'Content-Type': 'video/iso.segment', 'x-oss-meta-author': 'alice', 'x-oss-object-acl': 'private' },
          }),
        );
        expect(c.method).toBe('PUT');
        expect(c.headers['content-type']).toBe('video/iso.segment');
        resignAndCompare(c);
      });

      it('head and getObjectMeta (?objectMeta)', async () => {
        const h = await capture(() => client.head('dir/ünïcødé-视频-🎥.m4s'));
        expect(h.method).toBe('HEAD');
        resignAndCompare(h);
        const m = await capture(() => client.getObjectMeta("tilde~star*quote'paren(bang)!.ts"));
        expect(m.url).toMatch(/\?objectMeta=?$/);
        resignAndCompare(m);
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// 4. Server-side verification edge cases
// ---------------------------------------------------------------------------------------------
describe('verifyRequest', () => {
  const lookup = (id: string): { secret: string } | undefined => (id === 'ak' ? { secret: 'sk' } : undefined);
  const now = appendDate;
  const url = '/examplebucket/live/cam1.ts?append=&position=1717';
  const received = (headers: Record<string, string>, over: Partial<ReceivedRequest> = {}): ReceivedRequest => ({
    method: 'POST', url, bucket: 'examplebucket', key: 'live/cam1.ts', headers, ...over,
  });
  const v1 = signV1(appendReq, akSk(), appendDate).headers;
  const v4 = signV4(appendReq, akSk('token'), appendDate, 'cn-hangzhou').headers;
  const code = (r: VerifyResult): string => (r.ok ? 'ok' : r.code);

  it('accepts V1 and V4 signatures (with token)', () => {
    expect(verifyRequest(received(v1), { lookup, now })).toEqual({ ok: true, accessKeyId: 'ak', version: 'v1' });
    expect(verifyRequest(received(v4), { lookup, now })).toEqual({ ok: true, accessKeyId: 'ak', version: 'v4' });
  });

  it('accepts optional spaces after the commas of a V4 header, and the additional headers it names', () => {
    const spaced = v4['authorization']!.replace(/,/g, ', ');
    expect(code(verifyRequest(received({ ...v4, authorization: spaced }), { lookup, now }))).toBe('ok');
    const withHost = signV4({ ...appendReq, headers: { ...appendReq.headers, host: 'examplebucket.oss-cn-hangzhou.aliyuncs.com' } }, akSk(), appendDate, 'cn-hangzhou', ['host']).headers;
    expect(withHost['authorization']).toContain(',AdditionalHeaders=host,');
    expect(code(verifyRequest(received(withHost), { lookup, now }))).toBe('ok');
    expect(code(verifyRequest(received({ ...withHost, host: 'evil.example' }), { lookup, now }))).toBe('SignatureDoesNotMatch');
    const { host: _drop, ...noHost } = withHost;
    expect(code(verifyRequest(received(noHost), { lookup, now }))).toBe('InvalidArgument');
  });

  it('rejects unsigned, unknown-key, tampered and badly dated requests with the OSS codes', () => {
    const { authorization: _a, ...unsigned } = v1;
    expect(code(verifyRequest(received(unsigned), { lookup, now }))).toBe('AccessDenied');
    expect(code(verifyRequest(received({ ...v1, authorization: v1['authorization']!.replace('OSS ak:', 'OSS nobody:') }), { lookup, now }))).toBe('InvalidAccessKeyId');
    expect(code(verifyRequest(received({ ...v1, 'x-oss-meta-added': 'x' }), { lookup, now }))).toBe('SignatureDoesNotMatch');
    expect(code(verifyRequest(received({ ...v4, 'content-type': 'text/plain' }), { lookup, now }))).toBe('SignatureDoesNotMatch');
    expect(code(verifyRequest(received(v4, { method: 'PUT' }), { lookup, now }))).toBe('SignatureDoesNotMatch');
    expect(code(verifyRequest(received(v4, { bucket: 'other' }), { lookup, now }))).toBe('SignatureDoesNotMatch');
    const { 'x-oss-date': _d, ...undated } = v1;
    expect(code(verifyRequest(received(undated), { lookup, now }))).toBe('AccessDenied');
    expect(code(verifyRequest(received({ ...v1, 'x-oss-date': 'yesterday' }), { lookup, now }))).toBe('AccessDenied');
    // V1 falls back to Date when there is no x-oss-date (still signed over that value).
    const viaDate = stringToSignV1('POST', 'examplebucket', 'live/cam1.ts', appendReq.query, { ...appendReq.headers as Record<string, string>, date: 'Wed, 08 Jul 2015 06:57:01 GMT' });
    const dateHeaders = { ...appendReq.headers as Record<string, string>, date: 'Wed, 08 Jul 2015 06:57:01 GMT', authorization: `OSS ak:${signatureV1('sk', viaDate)}` };
    expect(code(verifyRequest(received(dateHeaders), { lookup, now }))).toBe('ok');
    expect(code(verifyRequest(received(dateHeaders), { lookup, now: new Date(now.getTime() + 15 * 60_000 + 1000) }))).toBe('RequestTimeTooSkewed');
    expect(code(verifyRequest(received(dateHeaders), { lookup, now: new Date(now.getTime() + 14 * 60_000) }))).toBe('ok');
  });

  it.each([
    'Basic YWs6c2s=',
    'OSS ak',
    'OSS ak:sig extra',
    'OSS4-HMAC-SHA256 Signature=00',
    'OSS4-HMAC-SHA256 Credential=ak/20150708/cn-hangzhou/oss/aliyun_v4_request,Signature=XYZ',
    'OSS4-HMAC-SHA256 Credential=ak/20150708/cn-hangzhou/s3/aliyun_v4_request,Signature=' + '0'.repeat(64),
    'OSS4-HMAC-SHA256 Credential=ak/20150708/cn-hangzhou/oss/aliyun_v4_request,AdditionalHeaders=,Signature=' + '0'.repeat(64),
    'OSS4-HMAC-SHA256 Credential=ak/20150708/cn-hangzhou/oss/aliyun_v4_request,AdditionalHeaders=host;,Signature=' + '0'.repeat(64),
    'OSS4-HMAC-SHA256 Credential=ak/20150708/cn-hangzhou/oss/aliyun_v4_request,Bogus=1,Signature=' + '0'.repeat(64),
    'OSS4-HMAC-SHA256 Credential=ak/20150709/cn-hangzhou/oss/aliyun_v4_request,Signature=' + '0'.repeat(64), // scope date != x-oss-date
  ])('rejects a malformed Authorization %j with InvalidArgument', (authorization) => {
    const r = verifyRequest(received({ ...v4, authorization }), { lookup, now });
    expect(code(r)).toBe('InvalidArgument');
  });

  it('rejects malformed query strings, repeated parameters and a non-UNSIGNED payload hash', () => {
    expect(code(verifyRequest(received(v4, { url: '/examplebucket/live/cam1.ts?append&position=%ZZ' }), { lookup, now }))).toBe('InvalidArgument');
    expect(code(verifyRequest(received(v4, { url: `${url}&position=1717` }), { lookup, now }))).toBe('InvalidArgument');
    expect(code(verifyRequest(received({ ...v4, 'x-oss-content-sha256': 'abc' }), { lookup, now }))).toBe('InvalidArgument');
  });

  it('never puts a secret in an error result', () => {
    const secret = 'tOpSeCrEt-value-123';
    const failures = [
      verifyRequest(received(v1), { lookup: () => ({ secret }), now }),
      verifyRequest(received(v4), { lookup: () => ({ secret }), now }),
      verifyRequest(received(v4), { lookup: () => ({ secret }), now: new Date(0) }),
      verifyRequest(received({ ...v4, authorization: 'OSS x' }), { lookup: () => ({ secret }), now }),
    ];
    for (const f of failures) {
      expect(f.ok).toBe(false);
      expect(JSON.stringify(f)).not.toContain(secret);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 5. Credentials: resolution and redaction
// ---------------------------------------------------------------------------------------------
describe('credentials', () => {
  const SECRET = 'very-secret-key-material';
  const STS = 'very-secret-sts-token';

  it('never reveals the secret or the token through JSON, inspect, format or String()', () => {
    const c = new OssCredentials('AKID1', SECRET, STS);
    expect(c.accessKeySecret).toBe(SECRET);
    expect(c.securityToken).toBe(STS);
    const renderings = [
      JSON.stringify(c),
      JSON.stringify({ store: { credentials: c } }),
      inspect(c),
      inspect(c, { showHidden: true, depth: 10 }),
      inspect({ nested: [c] }),
      format('%o %O %j %s', c, c, c, c),
      String(c),
      `${c}`,
      JSON.stringify(Object.entries(c)),
      JSON.stringify({ ...c }),
    ];
    for (const r of renderings) {
      expect(r).not.toContain(SECRET);
      expect(r).not.toContain(STS);
    }
    expect(JSON.parse(JSON.stringify(c))).toEqual({ accessKeyId: 'AKID1', accessKeySecret: '[REDACTED]', securityToken: '[REDACTED]' });
    expect(inspect(c)).toContain('AKID1');
  });

  it('resolves from explicit config first, else from OSS_* environment variables', () => {
    const env = { OSS_ACCESS_KEY_ID: 'ENVID', OSS_ACCESS_KEY_SECRET: 'envsecret', OSS_SESSION_TOKEN: 'envtoken' };
    const fromConfig = resolveOssCredentials({ accessKeyId: 'CFGID', accessKeySecret: 'cfgsecret' }, env);
    expect([fromConfig.accessKeyId, fromConfig.accessKeySecret, fromConfig.securityToken]).toEqual(['CFGID', 'cfgsecret', undefined]);
    const fromEnv = resolveOssCredentials({}, env);
    expect([fromEnv.accessKeyId, fromEnv.accessKeySecret, fromEnv.securityToken]).toEqual(['ENVID', 'envsecret', 'envtoken']);
    const noToken = resolveOssCredentials(undefined, { OSS_ACCESS_KEY_ID: 'ENVID', OSS_ACCESS_KEY_SECRET: 'envsecret', OSS_SESSION_TOKEN: '' });
    expect(noToken.securityToken).toBeUndefined();
  });

  it('fails with a typed error, without echoing secrets, when credentials are missing or half given', () => {
    const attempts = [
      () => resolveOssCredentials({}, {}),
      () => resolveOssCredentials({ accessKeySecret: SECRET }, { OSS_ACCESS_KEY_ID: 'ENVID', OSS_ACCESS_KEY_SECRET: 'x' }),
      () => resolveOssCredentials({}, { OSS_ACCESS_KEY_ID: 'ENVID' }),
      () => new OssCredentials('bad:id', SECRET),
      () => new OssCredentials('AKID', ''),
    ];
    for (const attempt of attempts) {
      let caught: unknown;
      try {
        attempt();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(OssCredentialsError);
      expect((caught as OssCredentialsError).code).toBe(ErrorCode.CredentialsMissing);
      expect((caught as Error).message).not.toContain(SECRET);
    }
  });

  it('works as signing credentials', () => {
    const c = new OssCredentials('ak', 'sk', 'token');
    expect(signV1(appendReq, c, appendDate).headers['authorization']).toBe('OSS ak:cDo4b2HJ5dqRHNDkr4WU1NtqSCs=');
  });
});
