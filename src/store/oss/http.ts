/**
 * One signed OSS request over a keep-alive undici Pool: sign (V4 or V1) exactly the headers that go
 * on the wire, send the chunks without concatenating them, turn transport failures into
 * OssTransportError (with the phase they happened in and whether the request may have been applied),
 * and read error bodies. The only automatic retry is the one re-signed resend after
 * RequestTimeTooSkewed, which OSS rejects before applying anything.
 */
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { OssTimeouts } from '../../config/schema.js';
import type { QueryParams } from './canonical.js';
import type { SigningCredentials } from './credentials.js';
import { signV1 } from './sign-v1.js';
import { signV4 } from './sign-v4.js';
import { requestTarget } from './oss-url.js';
import type { OssAddressing } from './oss-url.js';
import {
  OssTransportError,
  decodeOssErrHeader,
  parseOssErrorXml,
} from './oss-errors.js';
import type { OssErrorBody, TransportPhase } from './oss-errors.js';
import { StoreClosedError } from '../errors.js';
import { errnoCode } from '../../util/fs-durable.js';

/** The subset of a pino logger the store uses. Nothing logged carries a credential. */
export interface OssLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export type OssMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

export interface OssHttpRequest {
  method: OssMethod;
  /** Raw object key; `''` for bucket-level requests. */
  key: string;
  query?: QueryParams;
  /** Lower-cased names; all of them are signed (V4 signs content-type, content-md5 and x-oss-*). */
  headers?: Readonly<Record<string, string>>;
  /** Body chunks, sent in order; Content-Length is their total. */
  body?: readonly Uint8Array[];
}

export type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;
export type ResponseBody = Dispatcher.ResponseData['body'];

export type OssHttpResponse =
  | { ok: true; status: number; headers: ResponseHeaders; body: ResponseBody }
  | { ok: false; status: number; headers: ResponseHeaders; error: OssErrorBody };

export interface OssHttpOptions {
  addressing: OssAddressing;
  region: string;
  signatureVersion: 'v4' | 'v1';
  credentials: SigningCredentials;
  timeouts: OssTimeouts;
  now?: () => Date;
  logger?: OssLogger;
}

/** Error bodies are small; never buffer more than this of one. */
const MAX_ERROR_BODY = 64 * 1024;
const REDACTED = '[REDACTED]';

/** Where a request got to, for telling an ambiguous failure from one where nothing was written. */
interface Progress {
  phase: TransportPhase;
  /** Whether the body is an iterable we can watch (only then is 'connect' vs 'send' knowable). */
  watched: boolean;
}

export function headerString(headers: ResponseHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export class OssHttpClient {
  readonly addressing: OssAddressing;
  readonly #pool: Pool;
  readonly #creds: SigningCredentials;
  readonly #region: string;
  readonly #version: 'v4' | 'v1';
  readonly #now: () => Date;
  readonly #logger: OssLogger | undefined;
  /** Server clock minus ours, learnt from a RequestTimeTooSkewed answer; applied to every signature after. */
  #clockOffsetMs = 0;
  #closed = false;

  constructor(opts: OssHttpOptions) {
    this.addressing = opts.addressing;
    this.#creds = opts.credentials;
    this.#region = opts.region;
    this.#version = opts.signatureVersion;
    this.#now = opts.now ?? (() => new Date());
    this.#logger = opts.logger;
    this.#pool = new Pool(opts.addressing.origin, {
      connect: { timeout: opts.timeouts.connectMs },
      headersTimeout: opts.timeouts.headersMs,
      bodyTimeout: opts.timeouts.bodyMs,
    });
  }

  get clockOffsetMs(): number {
    return this.#clockOffsetMs;
  }

  async send(req: OssHttpRequest): Promise<OssHttpResponse> {
    if (this.#closed) throw new StoreClosedError(req.key, 'oss');
    const first = await this.#sendOnce(req);
    if (first.ok || first.error.code !== 'RequestTimeTooSkewed') return first;
    const serverMs = serverClockMs(first);
    if (serverMs === undefined) return first;
    this.#clockOffsetMs = serverMs - this.#now().getTime();
    this.#logger?.warn(
      { method: req.method, key: req.key, clockOffsetMs: this.#clockOffsetMs, requestId: first.error.requestId },
      'OSS says our clock is skewed; re-signing with the server clock',
    );
    return this.#sendOnce(req);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.close();
  }

  #sign(req: OssHttpRequest, date: Date): Record<string, string> {
    const signable = {
      method: req.method,
      bucket: this.addressing.bucket,
      key: req.key,
      query: req.query ?? {},
      headers: req.headers ?? {},
    };
    return this.#version === 'v4'
      ? signV4(signable, this.#creds, date, this.#region).headers
      : signV1(signable, this.#creds, date).headers;
  }

  async #sendOnce(req: OssHttpRequest): Promise<OssHttpResponse> {
    const chunks = req.body ?? [];
    const length = chunks.reduce((n, c) => n + c.byteLength, 0);
    const headers = this.#sign(req, new Date(this.#now().getTime() + this.#clockOffsetMs));
    const hasPayload = req.method === 'POST' || req.method === 'PUT';
    if (hasPayload) headers['content-length'] = String(length);

    const progress: Progress = { phase: length > 0 ? 'connect' : 'headers', watched: length > 0 };
    const options: Dispatcher.RequestOptions = {
      path: requestTarget(this.addressing, req.key, req.query),
      method: req.method,
      headers,
      // undici documents (async) iterables as bodies, its typings lag behind; an empty body goes as null.
      body: length > 0 ? (watchedBody(chunks, progress) as unknown as Readable) : null,
    };
    // undici closes the connection after every HEAD (for servers that send a body anyway); OSS does not.
    if (req.method === 'HEAD') options.reset = false;

    let data: Dispatcher.ResponseData;
    try {
      data = await this.#pool.request(options);
    } catch (err) {
      throw this.#transportError(req, progress, err);
    }
    progress.phase = 'body';
    const status = data.statusCode;
    const resHeaders = data.headers as ResponseHeaders;
    this.#logger?.debug(
      { method: req.method, key: req.key, status, requestId: headerString(resHeaders, 'x-oss-request-id') },
      'OSS response',
    );
    if (status >= 200 && status < 300) return { ok: true, status, headers: resHeaders, body: data.body };

    let text: string;
    try {
      text = await readBounded(data.body, MAX_ERROR_BODY);
    } catch (err) {
      throw this.#transportError(req, progress, err);
    }
    return { ok: false, status, headers: resHeaders, error: this.#errorBody(req, status, resHeaders, text) };
  }

  #errorBody(req: OssHttpRequest, status: number, headers: ResponseHeaders, text: string): OssErrorBody {
    const errHeader = headerString(headers, 'x-oss-err');
    const parsed = parseOssErrorXml(text) ?? (errHeader === undefined ? undefined : decodeOssErrHeader(errHeader));
    const body: OssErrorBody = parsed ?? {
      code: status === 404 ? (req.key === '' ? 'NoSuchBucket' : 'NoSuchKey') : status === 416 ? 'InvalidRange' : 'UnknownError',
      message: `HTTP ${status} without an OSS error body`,
      requestId: undefined,
      hostId: undefined,
      ec: undefined,
      recommendDoc: undefined,
      serverTime: undefined,
    };
    body.requestId ??= headerString(headers, 'x-oss-request-id');
    body.ec ??= headerString(headers, 'x-oss-ec');
    // A server may echo what it signed (SignatureDoesNotMatch); with STS that includes the token.
    const redact = (s: string | undefined): string | undefined => (s === undefined ? s : this.#redact(s));
    return {
      code: this.#redact(body.code),
      message: this.#redact(body.message),
      requestId: redact(body.requestId),
      hostId: redact(body.hostId),
      ec: redact(body.ec),
      recommendDoc: redact(body.recommendDoc),
      serverTime: redact(body.serverTime),
    };
  }

  #redact(s: string): string {
    let out = s;
    for (const secret of [this.#creds.accessKeySecret, this.#creds.securityToken]) {
      if (secret !== undefined && secret !== '') out = out.split(secret).join(REDACTED);
    }
    return out;
  }

  #transportError(req: OssHttpRequest, progress: Progress, err: unknown): Error {
    const code = errnoCode(err);
    if (code === 'UND_ERR_CLOSED' || code === 'UND_ERR_DESTROYED') return new StoreClosedError(req.key, 'oss');
    // Invalid arguments (e.g. a metadata value that is not a valid header value) are our bug, not the network's.
    if (code === 'UND_ERR_INVALID_ARG' && err instanceof Error) return err;
    let phase: TransportPhase;
    if (isConnectFailure(err)) phase = 'connect';
    else if (code === 'UND_ERR_BODY_TIMEOUT') phase = 'body';
    else if (progress.phase === 'connect') phase = progress.watched ? 'connect' : 'headers';
    else phase = progress.phase;
    return new OssTransportError(req.method, req.key, phase, phase !== 'connect', err);
  }
}

/**
 * The chunks as an async iterable that records how far undici got: it asks for the first chunk only
 * once connected and about to write, and for the next only after the previous one was handed to the
 * socket. Empty chunks are skipped (undici would write nothing for them anyway).
 */
async function* watchedBody(chunks: readonly Uint8Array[], progress: Progress): AsyncGenerator<Uint8Array> {
  progress.phase = 'send';
  for (const chunk of chunks) if (chunk.byteLength > 0) yield chunk;
  progress.phase = 'headers';
}

const CONNECT_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_CONNECT_TIMEOUT', 'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EHOSTUNREACH', 'ENETUNREACH',
  'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL',
]);

/** Failures that happen before a connection exists (so before any byte of the request was written). */
function isConnectFailure(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, syscall, errors } = err as { code?: unknown; syscall?: unknown; errors?: unknown };
  if (syscall === 'connect' || syscall === 'getaddrinfo') return true;
  if (typeof code === 'string') {
    if (CONNECT_CODES.has(code)) return true;
    // TLS handshake failures (certificate problems) also precede the request.
    if (/^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/.test(code)) return true;
  }
  // Node's happy-eyeballs connect reports every address's failure in an AggregateError.
  return Array.isArray(errors) && errors.length > 0 && errors.every(isConnectFailure);
}

function serverClockMs(res: Extract<OssHttpResponse, { ok: false }>): number | undefined {
  for (const candidate of [headerString(res.headers, 'date'), res.error.serverTime]) {
    if (candidate === undefined) continue;
    const ms = Date.parse(candidate);
    if (Number.isFinite(ms)) return ms;
  }
  return undefined;
}

/** Reads up to `limit` bytes as UTF-8, discarding (not buffering) the rest. */
async function readBounded(body: ResponseBody, limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (size >= limit) continue;
    const take = chunk.subarray(0, limit - size);
    parts.push(take);
    size += take.length;
  }
  return Buffer.concat(parts).toString('utf8');
}
