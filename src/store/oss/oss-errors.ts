/**
 * OSS error vocabulary: parsing the XML error body (or the base64 `x-oss-err` header HEAD responses
 * carry), and the error classes the oss backend adds to the shared StoreErrors of ../errors.ts.
 * None of these ever holds a credential: messages and fields come from the response, redacted by
 * the HTTP layer, and request headers are never copied into an error.
 */
import { ErrorCode } from '../../errors.js';
import { StoreError } from '../errors.js';
import { xmlText } from './oss-xml.js';
import { errnoCode } from '../../util/fs-durable.js';

/** What an OSS error response says. */
export interface OssErrorBody {
  code: string;
  message: string;
  requestId: string | undefined;
  hostId: string | undefined;
  ec: string | undefined;
  recommendDoc: string | undefined;
  /** RequestTimeTooSkewed: the server's clock (ISO 8601). */
  serverTime: string | undefined;
}

/** Parses `<Error><Code>…</Code>…</Error>`, with or without a namespace; undefined when it is not one. */
export function parseOssErrorXml(xml: string): OssErrorBody | undefined {
  if (!/<(?:[A-Za-z_][\w.-]*:)?Error[\s>/]/.test(xml)) return undefined;
  const code = xmlText(xml, 'Code')?.trim();
  if (code === undefined || code === '') return undefined;
  const opt = (name: string): string | undefined => {
    const v = xmlText(xml, name)?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  return {
    code,
    message: opt('Message') ?? '',
    requestId: opt('RequestId'),
    hostId: opt('HostId'),
    ec: opt('EC'),
    recommendDoc: opt('RecommendDoc'),
    serverTime: opt('ServerTime'),
  };
}

/** Decodes the `x-oss-err` header (base64 of the error XML) that stands in for a HEAD response's body. */
export function decodeOssErrHeader(value: string): OssErrorBody | undefined {
  const trimmed = value.trim();
  if (!/^[A-Za-z0-9+/=_-]+$/.test(trimmed)) return undefined;
  return parseOssErrorXml(Buffer.from(trimmed, 'base64').toString('utf8'));
}

/** Request id, EC and host id of the response an error came from (undefined for client-side errors). */
export interface OssResponseInfo {
  requestId: string | undefined;
  ec: string | undefined;
}

/**
 * The shared StoreError classes have no request id; the oss backend adds `requestId` and `ec` to
 * each one it raises as plain own properties (so `instanceof`, `name` and `code` are unchanged).
 */
export function withResponseInfo<E extends StoreError>(err: E, info: Partial<OssResponseInfo>): E & OssResponseInfo {
  return Object.assign(err, { requestId: info.requestId, ec: info.ec });
}

const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'InternalError',
  'ServiceUnavailable',
  'SlowDown',
  'Throttling',
]);

/** Whether resending the same request may succeed: 5xx, 408, 429 and the transient codes above. */
export function isRetryableOssError(status: number, code: string): boolean {
  return status >= 500 || status === 408 || status === 429 || RETRYABLE_CODES.has(code);
}

/** Any OSS error response that has no dedicated StoreError class (AccessDenied, NoSuchBucket, 5xx, …). */
export class OssServiceError extends StoreError {
  readonly ossMessage: string;
  readonly requestId: string | undefined;
  readonly ec: string | undefined;
  readonly hostId: string | undefined;
  readonly recommendDoc: string | undefined;
  readonly method: string;
  constructor(method: string, key: string, status: number, body: OssErrorBody) {
    const where = key === '' ? 'the bucket' : key;
    const rid = body.requestId === undefined ? '' : ` (request id ${body.requestId}${body.ec === undefined ? '' : `, EC ${body.ec}`})`;
    // A retryable answer (5xx, 408, 429…) may come after the body was committed: ambiguous too.
    const retryable = isRetryableOssError(status, body.code);
    super(ErrorCode.StoreService, body.code, status, key,
      `OSS ${method} ${where} failed: HTTP ${status} ${body.code}${body.message === '' ? '' : `: ${body.message}`}${rid}`,
      { traits: { retryable, ambiguous: retryable } });
    this.ossMessage = body.message;
    this.requestId = body.requestId;
    this.ec = body.ec;
    this.hostId = body.hostId;
    this.recommendDoc = body.recommendDoc;
    this.method = method;
  }
}

/** The server answered in a way the protocol does not allow (e.g. a 200 to a ranged GET). */
export class OssProtocolError extends StoreError {
  readonly requestId: string | undefined;
  readonly method: string;
  constructor(method: string, key: string, status: number, requestId: string | undefined, message: string) {
    // The server answered outside the protocol: what became of the request is unknown (an append
    // is reconciled by HEAD), and sending it again is not known to help.
    super(ErrorCode.StoreService, 'ProtocolViolation', status, key,
      `OSS ${method} ${key === '' ? 'the bucket' : key}: ${message}${requestId === undefined ? '' : ` (request id ${requestId})`}`,
      { traits: { retryable: false, ambiguous: true } });
    this.requestId = requestId;
    this.method = method;
  }
}

export interface IntegrityDetails {
  position: number;
  length: number;
  expectedNextPosition: number;
  /** undefined: the response lacked a valid `x-oss-next-append-position`. */
  actualNextPosition: number | undefined;
  expectedCrc64: bigint;
  /** undefined: the response lacked a valid `x-oss-hash-crc64ecma`. */
  actualCrc64: bigint | undefined;
  requestId: string | undefined;
}

/**
 * An append was acknowledged but the response does not describe the object we expect (length or
 * whole-object CRC-64 differ, or are missing): bytes may be lost, doubled or corrupted. Never ignored.
 */
export class OssIntegrityError extends StoreError {
  readonly position: number;
  readonly length: number;
  readonly expectedNextPosition: number;
  readonly actualNextPosition: number | undefined;
  readonly expectedCrc64: bigint;
  readonly actualCrc64: bigint | undefined;
  readonly requestId: string | undefined;
  constructor(key: string, status: number, d: IntegrityDetails, message?: string) {
    super(ErrorCode.StoreIntegrity, 'IntegrityCheckFailed', status, key, message ??
      `append to ${key} at ${d.position} (+${d.length} bytes) acknowledged, but OSS reports next position ` +
      `${d.actualNextPosition ?? 'none'} / crc64 ${d.actualCrc64 ?? 'none'} where ${d.expectedNextPosition} / ` +
      `${d.expectedCrc64} was expected${d.requestId === undefined ? '' : ` (request id ${d.requestId})`}`,
      { traits: { retryable: false, ambiguous: true } });
    this.position = d.position;
    this.length = d.length;
    this.expectedNextPosition = d.expectedNextPosition;
    this.actualNextPosition = d.actualNextPosition;
    this.expectedCrc64 = d.expectedCrc64;
    this.actualCrc64 = d.actualCrc64;
    this.requestId = d.requestId;
  }

  /** BigInts do not survive JSON.stringify; write the CRCs as decimal strings, as OSS does. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name, code: this.code, ossCode: this.ossCode, status: this.status, key: this.key, message: this.message,
      position: this.position, length: this.length,
      expectedNextPosition: this.expectedNextPosition, actualNextPosition: this.actualNextPosition,
      expectedCrc64: this.expectedCrc64.toString(), actualCrc64: this.actualCrc64?.toString(),
      requestId: this.requestId,
    };
  }
}

export type TransportPhase = 'connect' | 'send' | 'headers' | 'body';

/**
 * The request failed without an HTTP answer (refused, reset, timed out). `ambiguous`: the request may
 * have reached the server and been applied (writing had started), so an append's outcome is unknown
 * until reconciled by HEAD; false only when nothing was written (connect/DNS/TLS failures).
 */
export class OssTransportError extends StoreError {
  readonly phase: TransportPhase;
  readonly method: string;
  /** The underlying error's code (`ECONNREFUSED`, `UND_ERR_HEADERS_TIMEOUT`, …). */
  readonly causeCode: string | undefined;
  constructor(method: string, key: string, phase: TransportPhase, ambiguous: boolean, cause: unknown) {
    const causeCode = errnoCode(cause);
    const why = cause instanceof Error ? cause.message : String(cause);
    super(ErrorCode.StoreTransport, 'TransportError', 0, key,
      `OSS ${method} ${key === '' ? 'the bucket' : key}: transport failure during ${phase}` +
      `${ambiguous ? ' (the request may have been applied)' : ''}: ${causeCode === undefined ? '' : `${causeCode} `}${why}`,
      { cause, traits: { retryable: true, ambiguous } });
    this.phase = phase;
    this.method = method;
    this.causeCode = causeCode;
  }
}
