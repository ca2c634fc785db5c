/**
 * The `oss` backend: Alibaba Cloud OSS (AppendObject, HeadObject, GetObject, PutObject, DeleteObject,
 * ListObjectsV2) over undici, signed with V4 (default) or V1, optionally with an STS token.
 *
 * Integrity. Every append response is checked: `x-oss-next-append-position` must be position + length
 * and `x-oss-hash-crc64ecma` the CRC-64 of the whole object, i.e. the CRC before the append extended
 * with the appended bytes. The CRC before comes from a per-key cache of (length, crc) kept from earlier
 * appends and HEADs of this store; when the cache does not know the object at `position` (after a
 * restart, a failed request or a foreign writer) one HEAD fills it first. A mismatch raises
 * OssIntegrityError and is never ignored.
 *
 * Retries. None, except one re-signed resend after RequestTimeTooSkewed (see ./http.ts): an append is
 * not idempotent, and a transport failure says via `ambiguous` whether it may have been applied, for
 * the reliability layer to reconcile with head().
 */
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import { MAX_OBJECT_BYTES } from '../../config/schema.js';
import type { OssStorageConfig } from '../../config/schema.js';
import { crc64Of } from '../crc64.js';
import {
  InvalidRangeError,
  NoSuchKeyError,
  ObjectNotAppendableError,
  ObjectTooLargeError,
  PositionNotEqualToLengthError,
  StoreError,
} from '../errors.js';
import { ErrorCode } from '../../errors.js';
import { validateKey } from '../keys.js';
import type { AppendableStore, AppendResult, ByteRange, CreateOptions, HeadResult, ListEntry, PresignGetOptions } from '../types.js';
import { resolveOssCredentials } from './credentials.js';
import type { SigningCredentials } from './credentials.js';
import { OssHttpClient, headerString } from './http.js';
import type { OssHttpRequest, OssHttpResponse, OssLogger, ResponseBody, ResponseHeaders } from './http.js';
import { parseListObjectsV2 } from './oss-list.js';
import {
  OssIntegrityError,
  OssProtocolError,
  OssServiceError,
  OssTransportError,
  withResponseInfo,
} from './oss-errors.js';
import { resolveAddressing } from './oss-url.js';
import { MAX_PRESIGN_EXPIRES_SECONDS, isValidPresignExpiry, presignUrlV1, presignUrlV4 } from './presign.js';

export interface OssStoreOptions {
  /** Where OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET / OSS_SESSION_TOKEN are read when the config has no keys. */
  env?: NodeJS.ProcessEnv;
  /** Clock used for signing (tests). */
  now?: () => Date;
  logger?: OssLogger;
}

type Failed = Extract<OssHttpResponse, { ok: false }>;

/** Bounds list(): 10,000 pages of 1,000 keys. */
const MAX_LIST_PAGES = 10_000;
const LIST_PAGE_SIZE = 1000;

interface Known {
  length: number;
  crc: bigint;
}

export class OssStore implements AppendableStore {
  readonly kind = 'oss';
  readonly #http: OssHttpClient;
  readonly #logger: OssLogger | undefined;
  readonly #credentials: SigningCredentials;
  readonly #region: string;
  readonly #signatureVersion: 'v4' | 'v1';
  readonly #now: () => Date;
  /** Length and whole-object CRC-64 of appendable objects as this store last saw them. */
  readonly #known = new Map<string, Known>();

  constructor(cfg: OssStorageConfig, opts: OssStoreOptions = {}) {
    const credentials = resolveOssCredentials(
      { accessKeyId: cfg.accessKeyId, accessKeySecret: cfg.accessKeySecret, securityToken: cfg.securityToken },
      opts.env ?? process.env,
    );
    this.#logger = opts.logger;
    this.#credentials = credentials;
    this.#region = cfg.region;
    this.#signatureVersion = cfg.signatureVersion;
    this.#now = opts.now ?? (() => new Date());
    this.#http = new OssHttpClient({
      addressing: resolveAddressing(cfg.endpoint, cfg.bucket, cfg.pathStyle),
      region: cfg.region,
      signatureVersion: cfg.signatureVersion,
      credentials,
      timeouts: cfg.timeouts,
      ...(opts.now !== undefined ? { now: opts.now } : {}),
      ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
    });
  }

  /** Origin requests go to (virtual-hosted or path-style), for logs. */
  get origin(): string {
    return this.#http.addressing.origin;
  }

  async append(key: string, position: number, chunks: readonly Uint8Array[], opts?: CreateOptions): Promise<AppendResult> {
    validateKey(key);
    if (!Number.isSafeInteger(position) || position < 0) {
      throw new StoreError(ErrorCode.StoreService, 'InvalidArgument', 400, key, `append position must be a non-negative integer, got ${position}`);
    }
    const length = chunks.reduce((n, c) => n + c.byteLength, 0);
    // OSS caps appendable objects at 5 GiB with an undocumented error; refuse before sending.
    if (position + length > MAX_OBJECT_BYTES) {
      throw withResponseInfo(new ObjectTooLargeError(key, position + length, MAX_OBJECT_BYTES), {});
    }
    const crcBefore = position === 0 ? 0n : await this.#crcAt(key, position);

    const md5 = createHash('md5');
    for (const c of chunks) md5.update(c);
    // Creation headers only on the append that may create the object (OSS rejects or ignores them later).
    const headers = { 'content-md5': md5.digest('base64'), ...(position === 0 ? creationHeaders(opts) : {}) };
    const req: OssHttpRequest = { method: 'POST', key, query: { append: '', position }, headers, body: chunks };

    let res: OssHttpResponse;
    try {
      res = await this.#http.send(req);
    } catch (err) {
      this.#known.delete(key); // the object's state is unknown until someone HEADs it
      throw err;
    }
    if (!res.ok) {
      this.#known.delete(key);
      throw await this.#toStoreError(req, res, { position, length });
    }
    await discard(res.body);

    const requestId = headerString(res.headers, 'x-oss-request-id');
    const actualNextPosition = parseLength(headerString(res.headers, 'x-oss-next-append-position'));
    const actualCrc64 = parseCrc64(headerString(res.headers, 'x-oss-hash-crc64ecma'));
    const expectedNextPosition = position + length;
    const expectedCrc64 = crc64Of(chunks, crcBefore);
    if (actualNextPosition !== expectedNextPosition || actualCrc64 !== expectedCrc64) {
      this.#known.delete(key);
      throw new OssIntegrityError(key, res.status, {
        position, length, expectedNextPosition, actualNextPosition, expectedCrc64, actualCrc64, requestId,
      });
    }
    this.#known.set(key, { length: expectedNextPosition, crc: expectedCrc64 });
    return { nextPosition: expectedNextPosition, crc64: expectedCrc64 };
  }

  async head(key: string): Promise<HeadResult | null> {
    validateKey(key);
    const req: OssHttpRequest = { method: 'HEAD', key };
    const res = await this.#http.send(req);
    if (!res.ok) {
      if (res.status === 404 && res.error.code === 'NoSuchKey') {
        this.#known.delete(key);
        return null;
      }
      throw await this.#toStoreError(req, res, {});
    }
    await discard(res.body);
    const requestId = headerString(res.headers, 'x-oss-request-id');
    const size = parseLength(headerString(res.headers, 'content-length'));
    if (size === undefined) throw new OssProtocolError('HEAD', key, res.status, requestId, 'response has no valid Content-Length');
    const appendable = headerString(res.headers, 'x-oss-object-type') === 'Appendable';
    const crc64 = parseCrc64(headerString(res.headers, 'x-oss-hash-crc64ecma'));
    const nextPosition = appendable ? (parseLength(headerString(res.headers, 'x-oss-next-append-position')) ?? size) : undefined;
    if (appendable && crc64 !== undefined) this.#known.set(key, { length: size, crc: crc64 });
    else this.#known.delete(key);
    return {
      size,
      appendable,
      nextPosition,
      crc64,
      lastModified: parseHttpDate(headerString(res.headers, 'last-modified')),
      contentType: headerString(res.headers, 'content-type'),
      metadata: userMetadata(res.headers),
    };
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    validateKey(key);
    // Without this header OSS answers an unsatisfiable range with 200 and the whole object.
    const headers: Record<string, string> = { 'x-oss-range-behavior': 'standard' };
    if (range !== undefined) {
      const { start, end } = range;
      if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
        throw new StoreError(ErrorCode.InvalidRange, 'InvalidRange', 416, key, `invalid range ${start}-${end ?? ''} for ${key}`);
      }
      headers['range'] = `bytes=${start}-${end ?? ''}`;
    }
    const req: OssHttpRequest = { method: 'GET', key, headers };
    const res = await this.#http.send(req);
    if (!res.ok) throw await this.#toStoreError(req, res, { rangeStart: range?.start ?? 0 });
    const expected = range === undefined ? 200 : 206;
    if (res.status !== expected) {
      await discard(res.body);
      throw new OssProtocolError('GET', key, res.status, headerString(res.headers, 'x-oss-request-id'),
        range === undefined ? `expected 200, got ${res.status}` : `a ranged GET must answer 206, got ${res.status} (the range was ignored)`);
    }
    return bodyStream(res.body, key);
  }

  async put(key: string, data: Uint8Array, opts?: CreateOptions): Promise<{ crc64: bigint }> {
    validateKey(key);
    const headers = { 'content-md5': createHash('md5').update(data).digest('base64'), ...creationHeaders(opts) };
    const req: OssHttpRequest = { method: 'PUT', key, headers, body: [data] };
    this.#known.delete(key); // whatever happens, the key no longer holds the appendable object we knew
    const res = await this.#http.send(req);
    if (!res.ok) throw await this.#toStoreError(req, res, { position: 0, length: data.byteLength });
    await discard(res.body);
    const expected = crc64Of([data]);
    const header = headerString(res.headers, 'x-oss-hash-crc64ecma');
    // PutObject's CRC header is checked when present; a server that sends none gets our own value.
    if (header !== undefined && parseCrc64(header) !== expected) {
      throw new OssIntegrityError(key, res.status, {
        position: 0, length: data.byteLength, expectedNextPosition: data.byteLength, actualNextPosition: data.byteLength,
        expectedCrc64: expected, actualCrc64: parseCrc64(header), requestId: headerString(res.headers, 'x-oss-request-id'),
      }, `put ${key}: OSS reports crc64 ${header}, expected ${expected}`);
    }
    return { crc64: expected };
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    this.#known.delete(key);
    const req: OssHttpRequest = { method: 'DELETE', key };
    const res = await this.#http.send(req);
    if (!res.ok) {
      if (res.status === 404 && res.error.code === 'NoSuchKey') return;
      throw await this.#toStoreError(req, res, {});
    }
    await discard(res.body);
  }

  async list(prefix: string): Promise<ListEntry[]> {
    const out: ListEntry[] = [];
    let token: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const req: OssHttpRequest = {
        method: 'GET',
        key: '',
        query: {
          'list-type': '2',
          'max-keys': LIST_PAGE_SIZE,
          prefix: prefix === '' ? undefined : prefix,
          'continuation-token': token,
        },
      };
      const res = await this.#http.send(req);
      if (!res.ok) throw await this.#toStoreError(req, res, {});
      const requestId = headerString(res.headers, 'x-oss-request-id');
      const xml = await readText(res.body, req);
      const parsed = parseListObjectsV2(xml);
      if (typeof parsed === 'string') throw new OssProtocolError('GET', '', res.status, requestId, `ListObjectsV2: ${parsed}`);
      out.push(...parsed.entries);
      if (!parsed.truncated) return out;
      if (parsed.nextContinuationToken === undefined || parsed.nextContinuationToken === token) {
        throw new OssProtocolError('GET', '', res.status, requestId, 'ListObjectsV2 is truncated but gives no new continuation token');
      }
      token = parsed.nextContinuationToken;
    }
    throw new OssProtocolError('GET', '', 200, undefined, `ListObjectsV2 of ${JSON.stringify(prefix)} did not end within ${MAX_LIST_PAGES} pages`);
  }

  /**
   * A presigned GET URL for `key` (query-string authentication, the store's signature version), valid
   * for `expiresInSeconds` (at most 7 days; with STS credentials also no longer than the token). No
   * request is made. The clock is the server's when a RequestTimeTooSkewed answer has taught us its
   * offset, so the URL lives as long as asked on the server's clock. Async so that credentials from a
   * refreshing (STS) provider can be fetched first; the credentials are read at each call.
   */
  async presignGet(key: string, opts: PresignGetOptions): Promise<string> {
    validateKey(key);
    if (!isValidPresignExpiry(opts.expiresInSeconds)) {
      throw new StoreError(ErrorCode.StoreService, 'InvalidArgument', 400, key,
        `presigned URL lifetime must be an integer from 1 to ${MAX_PRESIGN_EXPIRES_SECONDS} seconds, got ${opts.expiresInSeconds}`);
    }
    const now = opts.now ?? new Date(this.#now().getTime() + this.#http.clockOffsetMs);
    const input = {
      addressing: this.#http.addressing,
      key,
      method: 'GET' as const,
      credentials: this.#credentials,
      now,
      expiresInSeconds: opts.expiresInSeconds,
    };
    return this.#signatureVersion === 'v4' ? presignUrlV4(input, this.#region) : presignUrlV1(input);
  }

  async close(): Promise<void> {
    this.#known.clear();
    await this.#http.close();
  }

  /** The CRC-64 of the object's first `position` bytes, which must be the whole appendable object. */
  async #crcAt(key: string, position: number): Promise<bigint> {
    const known = this.#known.get(key);
    if (known !== undefined && known.length === position) return known.crc;
    this.#logger?.debug({ key, position, knownLength: known?.length }, 'OSS append: learning the object CRC by HEAD');
    const head = await this.head(key);
    // What OSS would answer to this append, without sending its body.
    if (head === null) throw withResponseInfo(new PositionNotEqualToLengthError(key, position, 0), {});
    if (!head.appendable) throw withResponseInfo(new ObjectNotAppendableError(key), {});
    if (head.size !== position) throw withResponseInfo(new PositionNotEqualToLengthError(key, position, head.size), {});
    if (head.crc64 === undefined) {
      throw new OssIntegrityError(key, 200, {
        position, length: 0, expectedNextPosition: position, actualNextPosition: head.size, expectedCrc64: 0n,
        actualCrc64: undefined, requestId: undefined,
      }, `appendable object ${key} has no x-oss-hash-crc64ecma, so appends to it cannot be verified`);
    }
    return head.crc64;
  }

  async #toStoreError(
    req: OssHttpRequest,
    res: Failed,
    ctx: { position?: number; length?: number; rangeStart?: number },
  ): Promise<StoreError> {
    const { error, status, headers } = res;
    const info = { requestId: error.requestId, ec: error.ec };
    const key = req.key;
    switch (error.code) {
      case 'PositionNotEqualToLength': {
        let current = parseLength(headerString(headers, 'x-oss-next-append-position'));
        if (current === undefined) {
          // OSS documents the current length in the 409's x-oss-next-append-position. A server that
          // omits it costs one HEAD (an absent object has length 0).
          const head = await this.head(key);
          current = head?.size ?? 0;
        }
        return withResponseInfo(new PositionNotEqualToLengthError(key, ctx.position ?? 0, current), info);
      }
      case 'ObjectNotAppendable':
        return withResponseInfo(new ObjectNotAppendableError(key), info);
      case 'NoSuchKey':
        return withResponseInfo(new NoSuchKeyError(key), info);
      case 'InvalidRange': {
        // `Content-Range: bytes */<size>` when the server says; else the size is only known to be ≤ start.
        const size = /^bytes \*\/(\d+)$/.exec(headerString(headers, 'content-range')?.trim() ?? '')?.[1];
        const start = ctx.rangeStart ?? 0;
        return withResponseInfo(new InvalidRangeError(key, start, size === undefined ? start : Number(size)), info);
      }
      case 'ObjectTooLarge': // our servers' code
      case 'EntityTooLarge': // OSS's size vocabulary
        return withResponseInfo(new ObjectTooLargeError(key, (ctx.position ?? 0) + (ctx.length ?? 0), MAX_OBJECT_BYTES), info);
      default:
        return new OssServiceError(req.method, key, status, error);
    }
  }
}

/** Headers honoured only when an object is created (first append, or put). */
function creationHeaders(opts: CreateOptions | undefined): Record<string, string> {
  const h: Record<string, string> = {};
  if (opts === undefined) return h;
  if (opts.contentType !== undefined) h['content-type'] = opts.contentType;
  if (opts.acl !== undefined) h['x-oss-object-acl'] = opts.acl;
  if (opts.storageClass !== undefined) h['x-oss-storage-class'] = opts.storageClass;
  for (const [name, value] of Object.entries(opts.metadata ?? {})) h[`x-oss-meta-${name.toLowerCase()}`] = value;
  return h;
}

function userMetadata(headers: ResponseHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(headers)) {
    const value = headerString(headers, name);
    if (name.startsWith('x-oss-meta-') && value !== undefined) out[name.slice('x-oss-meta-'.length)] = value;
  }
  return out;
}

function parseLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  const n = Number(value.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

/** An unsigned 64-bit decimal, as OSS writes CRCs: BigInt, never Number. */
function parseCrc64(value: string | undefined): bigint | undefined {
  if (value === undefined || !/^\d{1,20}$/.test(value.trim())) return undefined;
  const n = BigInt(value.trim());
  return n < 1n << 64n ? n : undefined;
}

function parseHttpDate(value: string | undefined): Date {
  const ms = value === undefined ? Number.NaN : Date.parse(value);
  return new Date(Number.isFinite(ms) ? ms : 0);
}

/** Drains a response body we do not need, so the connection can be reused. */
async function discard(body: ResponseBody): Promise<void> {
  try {
    await body.dump();
  } catch {
    // The status and headers are what counted; a broken empty body only costs the connection.
  }
}

async function readText(body: ResponseBody, req: OssHttpRequest): Promise<string> {
  try {
    return await body.text();
  } catch (err) {
    throw new OssTransportError(req.method, req.key, 'body', true, err);
  }
}

/** The response body as a plain Readable whose errors are OssTransportErrors (phase 'body'). */
function bodyStream(body: ResponseBody, key: string): Readable {
  const out = new PassThrough();
  body.on('error', (err) => out.destroy(new OssTransportError('GET', key, 'body', true, err)));
  // A consumer that stops early must not leave the socket busy.
  out.on('close', () => {
    if (!body.destroyed) body.destroy();
  });
  body.pipe(out);
  return out;
}
