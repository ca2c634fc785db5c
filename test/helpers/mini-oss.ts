/**
 * A minimal in-memory OSS-compatible server for the oss store's tests (not the product's serve-oss
 * server): path-style addressing, V1/V4 signature verification with src/store/oss/verify.ts, and just
 * enough of AppendObject / PutObject / HeadObject / GetObject / DeleteObject / ListObjectsV2. Tests can
 * answer a request themselves (`intercept`) or alter a success response's headers (`tamper`).
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc64 } from '../../src/store/crc64.js';
import { parseRawQuery } from '../../src/store/oss/canonical.js';
import { verifyRequest } from '../../src/store/oss/verify.js';

export interface MiniObject {
  data: Buffer;
  appendable: boolean;
  crc: bigint;
  contentType: string;
  metadata: Record<string, string>;
  lastModified: Date;
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Signature version that verified, or the failure code. */
  auth: 'v1' | 'v4' | string;
}

export interface RequestContext {
  bucket: string;
  key: string;
  query: Map<string, string>;
  body: Buffer;
  recorded: RecordedRequest;
}

export interface MiniOssOptions {
  bucket?: string;
  accessKeyId?: string;
  accessKeySecret?: string;
  now?: () => Date;
  maxObjectBytes?: number;
  /** Server-side cap on max-keys, to exercise pagination. */
  listPageSize?: number;
}

export interface MiniOss {
  url: string;
  port: number;
  bucket: string;
  objects: Map<string, MiniObject>;
  requests: RecordedRequest[];
  /** Runs after the body is read, before auth; return true when it has dealt with the response. */
  intercept: ((req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => boolean | void) | undefined;
  /** Alters the headers of a successful append/put/head before they are sent. */
  tamper: ((headers: Record<string, string>, ctx: RequestContext) => void) | undefined;
  close(): Promise<void>;
}

let requestCounter = 0;

export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

export function errorXml(code: string, message: string, requestId: string, extra = ''): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>${xmlEscape(code)}</Code>\n  <Message>${xmlEscape(message)}</Message>\n` +
    `  <RequestId>${requestId}</RequestId>\n  <HostId>mini-oss</HostId>\n  <EC>0000-00000000</EC>\n${extra}</Error>\n`;
}

export async function startMiniOss(opts: MiniOssOptions = {}): Promise<MiniOss> {
  const bucket = opts.bucket ?? 'test-bucket';
  const accessKeyId = opts.accessKeyId ?? 'test-ak';
  const secret = opts.accessKeySecret ?? 'test-secret';
  const now = opts.now ?? (() => new Date());
  const maxObjectBytes = opts.maxObjectBytes ?? 5 * 1024 ** 3;
  const listPageSize = opts.listPageSize ?? 1000;
  const objects = new Map<string, MiniObject>();
  const requests: RecordedRequest[] = [];

  const mini: MiniOss = {
    url: '',
    port: 0,
    bucket,
    objects,
    requests,
    intercept: undefined,
    tamper: undefined,
    close: async () => {},
  };

  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      try {
        handle(req, res, Buffer.concat(parts));
      } catch (err) {
        res.statusCode = 500;
        res.end(errorXml('InternalError', String(err), 'mini-500'));
      }
    });
  });

  function handle(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const requestId = `MINI${String(++requestCounter).padStart(20, '0')}`;
    res.setHeader('x-oss-request-id', requestId);
    // Responses carry the server's clock, which may be skewed on purpose.
    res.setHeader('Date', now().toUTCString());
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    const query = new Map(parseRawQuery(q === -1 ? '' : url.slice(q + 1)) ?? []);
    const method = req.method ?? 'GET';
    const recorded: RecordedRequest = { method, url, headers: req.headers, body, auth: '' };
    requests.push(recorded);

    const fail = (status: number, code: string, message: string, headers: Record<string, string> = {}, extra = ''): void => {
      const xml = errorXml(code, message, requestId, extra);
      res.statusCode = status;
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      res.setHeader('x-oss-ec', '0000-00000000');
      if (method === 'HEAD') {
        res.setHeader('x-oss-err', Buffer.from(xml).toString('base64'));
        res.end();
      } else {
        res.setHeader('content-type', 'application/xml');
        res.end(xml);
      }
    };

    const prefix = `/${bucket}/`;
    if (!pathname.startsWith(prefix) && pathname !== `/${bucket}`) return fail(404, 'NoSuchBucket', 'The specified bucket does not exist.');
    let key: string;
    try {
      key = decodeURIComponent(pathname.slice(prefix.length));
    } catch {
      return fail(400, 'InvalidURI', 'bad percent-encoding');
    }
    const ctx: RequestContext = { bucket, key, query, body, recorded };
    if (mini.intercept?.(req, res, ctx) === true) return;

    const verdict = verifyRequest(
      { method, url, bucket, key, headers: req.headers },
      { lookup: (id) => (id === accessKeyId ? { secret } : undefined), now: now() },
    );
    if (!verdict.ok) {
      recorded.auth = verdict.code;
      const extra =
        (verdict.stringToSign === undefined ? '' : `  <StringToSign>${xmlEscape(verdict.stringToSign)}</StringToSign>\n`) +
        (verdict.serverTime === undefined ? '' : `  <ServerTime>${verdict.serverTime}</ServerTime>\n`);
      return fail(verdict.code === 'InvalidArgument' ? 400 : 403, verdict.code, verdict.message, {}, extra);
    }
    recorded.auth = verdict.version;

    const success = (status: number, headers: Record<string, string>, payload?: Buffer): void => {
      mini.tamper?.(headers, ctx);
      res.statusCode = status;
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      res.end(payload);
    };
    const md5 = req.headers['content-md5'];
    const md5Ok = (): boolean => md5 === undefined || md5 === createHash('md5').update(body).digest('base64');
    const creation = (appendable: boolean): MiniObject => ({
      data: body,
      appendable,
      crc: crc64(body),
      contentType: String(req.headers['content-type'] ?? 'application/octet-stream'),
      metadata: Object.fromEntries(
        Object.entries(req.headers).filter(([k]) => k.startsWith('x-oss-meta-')).map(([k, v]) => [k.slice(11), String(v)]),
      ),
      lastModified: now(),
    });
    const objectHeaders = (o: MiniObject): Record<string, string> => ({
      'content-type': o.contentType,
      'last-modified': o.lastModified.toUTCString(),
      etag: `"${o.crc.toString(16).toUpperCase()}"`,
      'x-oss-object-type': o.appendable ? 'Appendable' : 'Normal',
      'x-oss-hash-crc64ecma': o.crc.toString(),
      ...(o.appendable ? { 'x-oss-next-append-position': String(o.data.length) } : {}),
      ...Object.fromEntries(Object.entries(o.metadata).map(([k, v]) => [`x-oss-meta-${k}`, v])),
    });

    if (key === '') {
      if (method === 'GET' && query.get('list-type') === '2') return list(res, query, success);
      return fail(400, 'InvalidArgument', 'unsupported bucket operation');
    }
    const obj = objects.get(key);
    switch (method) {
      case 'POST': {
        if (!query.has('append')) return fail(400, 'InvalidArgument', 'POST needs ?append');
        const posText = query.get('position');
        if (posText === undefined || !/^\d+$/.test(posText)) return fail(400, 'MissingArgument', 'position is missing or invalid');
        const position = Number(posText);
        if (obj !== undefined && !obj.appendable) return fail(409, 'ObjectNotAppendable', 'The object is not appendable.');
        const length = obj?.data.length ?? 0;
        if (position !== length) {
          return fail(409, 'PositionNotEqualToLength', 'Position is not equal to file length.', {
            'x-oss-next-append-position': String(length),
          });
        }
        if (!md5Ok()) return fail(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
        if (length + body.length > maxObjectBytes) return fail(400, 'ObjectTooLarge', 'The object would exceed the size cap.');
        let next: MiniObject;
        if (obj === undefined) next = creation(true);
        else next = { ...obj, data: Buffer.concat([obj.data, body]), crc: crc64(body, obj.crc), lastModified: now() };
        objects.set(key, next);
        return success(200, {
          'x-oss-next-append-position': String(next.data.length),
          'x-oss-hash-crc64ecma': next.crc.toString(),
          etag: `"${next.crc.toString(16)}"`,
        });
      }
      case 'PUT': {
        if (!md5Ok()) return fail(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
        if (body.length > maxObjectBytes) return fail(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size.');
        const created = creation(false);
        objects.set(key, created);
        return success(200, { 'x-oss-hash-crc64ecma': created.crc.toString(), etag: `"${created.crc.toString(16)}"` });
      }
      case 'HEAD':
        if (obj === undefined) return fail(404, 'NoSuchKey', 'The specified key does not exist.');
        return success(200, { ...objectHeaders(obj), 'content-length': String(obj.data.length) });
      case 'GET': {
        if (obj === undefined) return fail(404, 'NoSuchKey', 'The specified key does not exist.');
        const size = obj.data.length;
        const m = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers['range'] ?? ''));
        const standard = req.headers['x-oss-range-behavior'] === 'standard';
        if (m !== null) {
          const start = Number(m[1]);
          const end = Math.min(m[2] === '' ? size - 1 : Number(m[2]), size - 1);
          if (start < size && end >= start) {
            return success(206, { ...objectHeaders(obj), 'content-range': `bytes ${start}-${end}/${size}` }, obj.data.subarray(start, end + 1));
          }
          if (standard) return fail(416, 'InvalidRange', 'The requested range cannot be satisfied', { 'content-range': `bytes */${size}` });
        }
        // No range, or an unsatisfiable one with OSS's default behaviour: the whole object.
        return success(200, objectHeaders(obj), obj.data);
      }
      case 'DELETE':
        objects.delete(key);
        return success(204, {});
      default:
        return fail(405, 'MethodNotAllowed', `${method} is not supported`);
    }
  }

  function list(
    res: ServerResponse,
    query: Map<string, string>,
    success: (status: number, headers: Record<string, string>, payload?: Buffer) => void,
  ): void {
    const prefix = query.get('prefix') ?? '';
    const max = Math.min(Number(query.get('max-keys') ?? 1000), listPageSize);
    const after = query.has('continuation-token') ? Buffer.from(query.get('continuation-token') ?? '', 'base64url').toString('utf8') : undefined;
    const keys = [...objects.keys()]
      .filter((k) => k.startsWith(prefix) && (after === undefined || Buffer.compare(Buffer.from(k), Buffer.from(after)) > 0))
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const page = keys.slice(0, max);
    const truncated = keys.length > max;
    const contents = page.map((k) => {
      const o = objects.get(k)!;
      return `<Contents><Key>${xmlEscape(k)}</Key><LastModified>${o.lastModified.toISOString()}</LastModified>` +
        `<ETag>"x"</ETag><Type>${o.appendable ? 'Appendable' : 'Normal'}</Type><Size>${o.data.length}</Size>` +
        `<StorageClass>Standard</StorageClass></Contents>`;
    }).join('');
    const token = truncated ? Buffer.from(page[page.length - 1] ?? '').toString('base64url') : '';
    const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>${bucket}</Name><Prefix>${xmlEscape(prefix)}</Prefix>` +
      `<MaxKeys>${max}</MaxKeys><KeyCount>${page.length}</KeyCount><IsTruncated>${truncated}</IsTruncated>` +
      (truncated ? `<NextContinuationToken>${token}</NextContinuationToken>` : '') + `${contents}</ListBucketResult>`;
    res.setHeader('content-type', 'application/xml');
    success(200, {}, Buffer.from(xml));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  mini.port = port;
  mini.url = `http://127.0.0.1:${port}`;
  mini.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return mini;
}
