/**
 * Server side of OSS request signing, for the local OSS-compatible server: parse the Authorization
 * header of a received request, recompute its V1 or V4 signature with the same canonicalisation the
 * client uses, and compare in constant time. Header-signed requests and presigned URLs (query-string
 * authentication, V1 and V4; see ./presign.ts) both.
 */
import { constantTimeEqual } from '../../util/constant-time.js';
import type { HeaderMap } from './canonical.js';
import { lowerCaseHeaders, parseRawQuery, parseV1Date, parseV4Date } from './canonical.js';
import { signatureV1, stringToSignV1 } from './sign-v1.js';
import { MAX_PRESIGN_EXPIRES_SECONDS } from './presign.js';
import { UNSIGNED_PAYLOAD, V4_ALGORITHM, canonicalRequestV4, scopeV4, signatureV4, stringToSignV4 } from './sign-v4.js';

export interface ReceivedRequest {
  method: string;
  /** The request target exactly as received: path and raw query, e.g. `/b/a%20b.ts?append=&position=0`. */
  url: string;
  /** The bucket the server resolved (from Host or path). */
  bucket: string;
  /** The decoded object key; `''` for bucket-level requests. */
  key: string;
  /** Lower-cased names, as node's `IncomingMessage.headers`. */
  headers: HeaderMap;
}

export type CredentialLookup = (accessKeyId: string) => { secret: string } | undefined;

export interface VerifyOptions {
  lookup: CredentialLookup;
  now: Date;
  /** Allowed clock difference; OSS allows 15 minutes. */
  maxSkewMs?: number;
}

export type VerifyErrorCode =
  | 'AccessDenied'
  | 'InvalidAccessKeyId'
  | 'SignatureDoesNotMatch'
  | 'RequestTimeTooSkewed'
  | 'InvalidArgument';

export type VerifyResult =
  | { ok: true; accessKeyId: string; version: 'v1' | 'v4' }
  | {
      ok: false;
      code: VerifyErrorCode;
      message: string;
      /** With SignatureDoesNotMatch: what the server signed, for the client to diff against. */
      stringToSign?: string;
      /** With SignatureDoesNotMatch on V4. */
      canonicalRequest?: string;
      /** With RequestTimeTooSkewed and an expired presigned URL: the server's clock, ISO 8601. */
      serverTime?: string;
      /** With an expired presigned URL: when it expired, ISO 8601. */
      expires?: string;
      /** The AccessKeyId and signature a presigned URL carried (the header form's are in the header). */
      accessKeyId?: string;
      signatureProvided?: string;
    };

type Failure = Extract<VerifyResult, { ok: false }>;

export const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000;

const fail = (code: VerifyErrorCode, message: string, extra: Partial<Failure> = {}): Failure => ({
  ok: false,
  code,
  message,
  ...extra,
});

export const EXPIRED_MESSAGE = 'Request has expired.';

const MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your key and signing method.';

interface ParsedV1 {
  version: 'v1';
  accessKeyId: string;
  signature: string;
}
interface ParsedV4 {
  version: 'v4';
  accessKeyId: string;
  day: string;
  region: string;
  additional: string[];
  signature: string;
}

/** Parses an Authorization header value; a string is the reason it is malformed. */
export function parseAuthorization(value: string): ParsedV1 | ParsedV4 | string {
  if (value.startsWith('OSS ')) {
    const m = /^OSS ([^\s:]+):(\S+)$/.exec(value);
    return m ? { version: 'v1', accessKeyId: m[1]!, signature: m[2]! } : 'malformed OSS V1 Authorization header';
  }
  if (value.startsWith(`${V4_ALGORITHM} `)) return parseV4Authorization(value.slice(V4_ALGORITHM.length + 1));
  return 'unsupported Authorization scheme';
}

// Header names as RFC 9110 tokens, lower-case only (clients sign the lower-cased names).
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

function parseV4Authorization(rest: string): ParsedV4 | string {
  const fields = new Map<string, string>();
  // The doc shows `, ` separators, the SDKs send `,`: accept optional whitespace around commas.
  for (const part of rest.trim().split(/\s*,\s*/)) {
    const eq = part.indexOf('=');
    if (eq <= 0) return `malformed ${V4_ALGORITHM} field "${part}"`;
    const name = part.slice(0, eq);
    if (!['Credential', 'AdditionalHeaders', 'Signature'].includes(name)) return `unknown ${V4_ALGORITHM} field ${name}`;
    if (fields.has(name)) return `duplicate ${V4_ALGORITHM} field ${name}`;
    fields.set(name, part.slice(eq + 1));
  }
  const credential = fields.get('Credential');
  const signature = fields.get('Signature');
  if (credential === undefined || signature === undefined) return `${V4_ALGORITHM} needs Credential and Signature`;
  const scope = parseCredentialScope(credential);
  if (typeof scope === 'string') return scope;
  if (!V4_SIGNATURE.test(signature)) return 'Signature must be 64 lower-case hex digits';
  const additional = parseAdditionalHeaders(fields.get('AdditionalHeaders'));
  if (typeof additional === 'string') return additional;
  return { version: 'v4', ...scope, additional, signature };
}

const V4_SIGNATURE = /^[0-9a-f]{64}$/;

/** `<AccessKeyId>/<yyyymmdd>/<region>/oss/aliyun_v4_request`, from a V4 Credential (header or query). */
function parseCredentialScope(credential: string): { accessKeyId: string; day: string; region: string } | string {
  const scope = credential.split('/');
  if (scope.length !== 5) return 'Credential must be <AccessKeyId>/<date>/<region>/oss/aliyun_v4_request';
  const [accessKeyId, day, region, product, terminator] = scope as [string, string, string, string, string];
  if (accessKeyId === '' || !/^\d{8}$/.test(day) || region === '' || product !== 'oss' || terminator !== 'aliyun_v4_request') {
    return 'Credential must be <AccessKeyId>/<yyyymmdd>/<region>/oss/aliyun_v4_request';
  }
  return { accessKeyId, day, region };
}

function parseAdditionalHeaders(raw: string | undefined): string[] | string {
  if (raw === undefined) return [];
  const names = raw.split(';');
  return names.some((n) => !HEADER_NAME.test(n)) ? 'AdditionalHeaders must be ";"-separated lower-case header names' : names;
}


function parseQuery(url: string): Record<string, string> | string {
  const q = url.indexOf('?');
  const entries = parseRawQuery(q === -1 ? '' : url.slice(q + 1));
  if (entries === undefined) return 'malformed percent-encoding in the query string';
  const seen = new Set<string>();
  for (const [name] of entries) {
    if (seen.has(name)) return `query parameter ${name} given more than once`;
    seen.add(name);
  }
  // fromEntries defines own properties, so a `__proto__` parameter stays a plain parameter.
  return Object.fromEntries(entries);
}

/** Whether a request target carries a presigned signature (V1 `Signature` or V4 `x-oss-signature`). */
export function isPresignedUrl(url: string): boolean {
  const q = url.indexOf('?');
  if (q === -1) return false;
  return (parseRawQuery(url.slice(q + 1)) ?? []).some(([name]) => name === 'Signature' || name === 'x-oss-signature' || name === 'x-oss-signature-version');
}

/**
 * Verifies a signed request: by its Authorization header (V1 or V4) when it has one, else by a
 * presigned URL's query parameters. Never throws for malformed input.
 */
export function verifyRequest(req: ReceivedRequest, opts: VerifyOptions): VerifyResult {
  const headers = lowerCaseHeaders(req.headers);
  const authorization = headers['authorization'];
  if (authorization === undefined || authorization === '') {
    if (isPresignedUrl(req.url)) return verifyPresigned(req, headers, opts);
    return fail('AccessDenied', 'The request is not signed: no Authorization header.');
  }
  const auth = parseAuthorization(authorization);
  if (typeof auth === 'string') return fail('InvalidArgument', `Authorization header is invalid: ${auth}.`);
  const query = parseQuery(req.url);
  if (typeof query === 'string') return fail('InvalidArgument', `${query}.`);

  const cred = opts.lookup(auth.accessKeyId);
  if (cred === undefined) {
    return fail('InvalidAccessKeyId', `The OSS Access Key Id you provided does not exist in our records: ${auth.accessKeyId}.`);
  }

  // Date: x-oss-date wins over Date in V1; V4 requires x-oss-date in its own format.
  let requestTime: Date | undefined;
  if (auth.version === 'v1') {
    const dateHeader = headers['x-oss-date'] ?? headers['date'];
    requestTime = dateHeader === undefined ? undefined : parseV1Date(dateHeader);
    if (requestTime === undefined) return fail('AccessDenied', 'OSS authentication requires a valid Date or x-oss-date header.');
  } else {
    const xOssDate = headers['x-oss-date'];
    requestTime = xOssDate === undefined ? undefined : parseV4Date(xOssDate);
    if (requestTime === undefined) {
      return fail('AccessDenied', 'OSS V4 authentication requires a valid x-oss-date header (yyyymmddTHHMMSSZ).');
    }
    if (xOssDate!.slice(0, 8) !== auth.day) {
      return fail('InvalidArgument', 'The date in the Credential scope does not match x-oss-date.');
    }
  }
  const maxSkew = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  if (Math.abs(opts.now.getTime() - requestTime.getTime()) > maxSkew) {
    return fail('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', {
      serverTime: opts.now.toISOString(),
    });
  }

  if (auth.version === 'v1') {
    const stringToSign = stringToSignV1(req.method, req.bucket, req.key, query, headers);
    if (!constantTimeEqual(signatureV1(cred.secret, stringToSign), auth.signature)) {
      return fail('SignatureDoesNotMatch', MISMATCH, { stringToSign });
    }
    return { ok: true, accessKeyId: auth.accessKeyId, version: 'v1' };
  }

  const sha = headers['x-oss-content-sha256'];
  if (sha !== undefined && sha !== UNSIGNED_PAYLOAD) {
    return fail('InvalidArgument', `Set the x-oss-content-sha256 header to ${UNSIGNED_PAYLOAD}.`);
  }
  const missing = auth.additional.find((n) => headers[n] === undefined);
  if (missing !== undefined) return fail('InvalidArgument', `AdditionalHeaders names ${missing}, which the request lacks.`);
  const canonicalRequest = canonicalRequestV4(req.method, req.bucket, req.key, query, headers, auth.additional);
  const stringToSign = stringToSignV4(headers['x-oss-date']!, scopeV4(auth.day, auth.region), canonicalRequest);
  if (!constantTimeEqual(signatureV4(cred.secret, auth.day, auth.region, stringToSign), auth.signature)) {
    return fail('SignatureDoesNotMatch', MISMATCH, { stringToSign, canonicalRequest });
  }
  return { ok: true, accessKeyId: auth.accessKeyId, version: 'v4' };
}

/** Presigned URL (query-string authentication), V1 or V4 by the parameters it carries. */
function verifyPresigned(req: ReceivedRequest, headers: Readonly<Record<string, string>>, opts: VerifyOptions): VerifyResult {
  const query = parseQuery(req.url);
  if (typeof query === 'string') return fail('InvalidArgument', `${query}.`);
  const lookup = (accessKeyId: string): { secret: string } | Failure =>
    opts.lookup(accessKeyId) ??
    fail('InvalidAccessKeyId', `The OSS Access Key Id you provided does not exist in our records: ${accessKeyId}.`, { accessKeyId });
  const expired = (at: Date, accessKeyId: string): Failure =>
    fail('AccessDenied', EXPIRED_MESSAGE, { expires: at.toISOString(), serverTime: opts.now.toISOString(), accessKeyId });

  if (query['x-oss-signature-version'] !== undefined || query['x-oss-signature'] !== undefined) {
    return verifyPresignedV4(req, headers, query, opts, lookup, expired);
  }

  const accessKeyId = query['OSSAccessKeyId'];
  const expiresRaw = query['Expires'];
  const signature = query['Signature'];
  if (accessKeyId === undefined || expiresRaw === undefined || signature === undefined) {
    return fail('AccessDenied', 'A presigned URL needs OSSAccessKeyId, Expires and Signature.');
  }
  if (!/^\d{1,12}$/.test(expiresRaw)) return fail('InvalidArgument', 'Expires must be a time in unix seconds.');
  const cred = lookup(accessKeyId);
  if ('ok' in cred) return cred;
  const expiresAt = new Date(Number(expiresRaw) * 1000);
  if (opts.now.getTime() > expiresAt.getTime()) return expired(expiresAt, accessKeyId);
  // OSSAccessKeyId, Expires and Signature are no sub-resources, so canonicalResourceV1 leaves them out.
  // A security-token is signed (it is one) but not checked against an STS session: we have none.
  const stringToSign = stringToSignV1(req.method, req.bucket, req.key, query, headers, expiresRaw);
  if (!constantTimeEqual(signatureV1(cred.secret, stringToSign), signature)) {
    return fail('SignatureDoesNotMatch', MISMATCH, { stringToSign, accessKeyId, signatureProvided: signature });
  }
  return { ok: true, accessKeyId, version: 'v1' };
}

function verifyPresignedV4(
  req: ReceivedRequest,
  headers: Readonly<Record<string, string>>,
  query: Readonly<Record<string, string>>,
  opts: VerifyOptions,
  lookup: (accessKeyId: string) => { secret: string } | Failure,
  expired: (at: Date, accessKeyId: string) => Failure,
): VerifyResult {
  const version = query['x-oss-signature-version'];
  const credential = query['x-oss-credential'];
  const xOssDate = query['x-oss-date'];
  const expiresRaw = query['x-oss-expires'];
  const signature = query['x-oss-signature'];
  if (version !== V4_ALGORITHM) return fail('InvalidArgument', `x-oss-signature-version must be ${V4_ALGORITHM}.`);
  if (credential === undefined || xOssDate === undefined || expiresRaw === undefined || signature === undefined) {
    return fail('AccessDenied', 'A V4 presigned URL needs x-oss-credential, x-oss-date, x-oss-expires and x-oss-signature.');
  }
  const scope = parseCredentialScope(credential);
  if (typeof scope === 'string') return fail('InvalidArgument', `x-oss-credential is invalid: ${scope}.`);
  const requestTime = parseV4Date(xOssDate);
  if (requestTime === undefined) return fail('InvalidArgument', 'x-oss-date must be yyyymmddTHHMMSSZ.');
  if (xOssDate.slice(0, 8) !== scope.day) return fail('InvalidArgument', 'The date in x-oss-credential does not match x-oss-date.');
  const expiresSeconds = /^\d{1,7}$/.test(expiresRaw) ? Number(expiresRaw) : NaN;
  if (!(expiresSeconds >= 1 && expiresSeconds <= MAX_PRESIGN_EXPIRES_SECONDS)) {
    return fail('InvalidArgument', `x-oss-expires must be 1 to ${MAX_PRESIGN_EXPIRES_SECONDS} seconds.`);
  }
  if (!V4_SIGNATURE.test(signature)) return fail('InvalidArgument', 'x-oss-signature must be 64 lower-case hex digits.');
  const additional = parseAdditionalHeaders(query['x-oss-additional-headers']);
  if (typeof additional === 'string') return fail('InvalidArgument', `x-oss-additional-headers is invalid: ${additional}.`);
  const missing = additional.find((n) => headers[n] === undefined);
  if (missing !== undefined) return fail('InvalidArgument', `x-oss-additional-headers names ${missing}, which the request lacks.`);

  const cred = lookup(scope.accessKeyId);
  if ('ok' in cred) return cred;
  // A URL dated in the future would outlive its x-oss-expires: hold it to the header form's skew.
  const maxSkew = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  if (requestTime.getTime() - opts.now.getTime() > maxSkew) {
    return fail('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', {
      serverTime: opts.now.toISOString(),
    });
  }
  const expiresAt = new Date(requestTime.getTime() + expiresSeconds * 1000);
  if (opts.now.getTime() > expiresAt.getTime()) return expired(expiresAt, scope.accessKeyId);

  // Every parameter but the signature is canonical query; the payload of a presigned URL is never hashed.
  const signedQuery = Object.fromEntries(Object.entries(query).filter(([name]) => name !== 'x-oss-signature'));
  const canonicalRequest = canonicalRequestV4(req.method, req.bucket, req.key, signedQuery, headers, additional);
  const stringToSign = stringToSignV4(xOssDate, scopeV4(scope.day, scope.region), canonicalRequest);
  if (!constantTimeEqual(signatureV4(cred.secret, scope.day, scope.region, stringToSign), signature)) {
    return fail('SignatureDoesNotMatch', MISMATCH, {
      stringToSign, canonicalRequest, accessKeyId: scope.accessKeyId, signatureProvided: signature,
    });
  }
  return { ok: true, accessKeyId: scope.accessKeyId, version: 'v4' };
}
