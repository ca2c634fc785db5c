/**
 * Presigned GET URLs (OSS query-string authentication): the signature travels in the URL, so a viewer
 * can fetch the object straight from OSS with no credentials of its own, until the URL expires.
 *
 * V1: `?OSSAccessKeyId=<AK>&Expires=<unix seconds>&Signature=<base64 HMAC-SHA1>` (+ `security-token`),
 *   the StringToSign being the header form's with `Expires` in place of the date.
 * V4: `?x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-credential=<AK>/<scope>&x-oss-date=…&x-oss-expires=<s>`
 *   (+ `x-oss-security-token`) `&x-oss-signature=<hex>`; every parameter but the signature is in the
 *   canonical query, and the payload is UNSIGNED-PAYLOAD.
 * Both checked byte for byte against ali-oss `signatureUrl` / `signatureUrlV4` in test/integration/oss-presign.test.ts;
 * ./verify.ts checks them on the server side with the same functions.
 */
import type { SigningCredentials } from './credentials.js';
import { canonicalQueryV4, formatV4Date } from './canonical.js';
import type { QueryParams } from './canonical.js';
import { requestPath } from './oss-url.js';
import type { OssAddressing } from './oss-url.js';
import { signatureV1, stringToSignV1 } from './sign-v1.js';
import { V4_ALGORITHM, canonicalRequestV4, scopeV4, signatureV4, standardRegion, stringToSignV4 } from './sign-v4.js';

/** OSS caps a V4 presigned URL's lifetime at 7 days; we hold V1 to the same bound. */
export const MAX_PRESIGN_EXPIRES_SECONDS = 7 * 24 * 3600;

export interface PresignInput {
  addressing: OssAddressing;
  /** Raw object key. */
  key: string;
  method: 'GET' | 'HEAD';
  credentials: SigningCredentials;
  /** When the URL is signed (the server's clock, when known). */
  now: Date;
  /** Lifetime from `now`, 1 … MAX_PRESIGN_EXPIRES_SECONDS. */
  expiresInSeconds: number;
}

export function isValidPresignExpiry(seconds: number): boolean {
  return Number.isSafeInteger(seconds) && seconds >= 1 && seconds <= MAX_PRESIGN_EXPIRES_SECONDS;
}

function urlOf(input: PresignInput, query: QueryParams): string {
  return `${input.addressing.origin}${requestPath(input.addressing, input.key)}?${canonicalQueryV4(query)}`;
}

/** A V1 presigned URL: valid until `floor(now) + expiresInSeconds` (unix seconds). */
export function presignUrlV1(input: PresignInput): string {
  const { credentials: creds } = input;
  const expires = String(Math.floor(input.now.getTime() / 1000) + input.expiresInSeconds);
  // security-token is a V1 sub-resource: it is signed in the CanonicalizedResource.
  const signed: QueryParams = creds.securityToken ? { 'security-token': creds.securityToken } : {};
  const stringToSign = stringToSignV1(input.method, input.addressing.bucket, input.key, signed, {}, expires);
  return urlOf(input, {
    OSSAccessKeyId: creds.accessKeyId,
    Expires: expires,
    Signature: signatureV1(creds.accessKeySecret, stringToSign),
    ...signed,
  });
}

/** A V4 presigned URL for `region` (with or without `oss-`): valid for expiresInSeconds after `now`. */
export function presignUrlV4(input: PresignInput, region: string): string {
  const { credentials: creds } = input;
  const xOssDate = formatV4Date(input.now);
  const day = xOssDate.slice(0, 8);
  const signRegion = standardRegion(region);
  const scope = scopeV4(day, signRegion);
  const query: Record<string, string> = {
    'x-oss-signature-version': V4_ALGORITHM,
    'x-oss-credential': `${creds.accessKeyId}/${scope}`,
    'x-oss-date': xOssDate,
    'x-oss-expires': String(input.expiresInSeconds),
  };
  if (creds.securityToken) query['x-oss-security-token'] = creds.securityToken;
  // No headers are signed: whoever follows the URL (a browser) sends none of ours.
  const canonicalRequest = canonicalRequestV4(input.method, input.addressing.bucket, input.key, query, {}, []);
  const stringToSign = stringToSignV4(xOssDate, scope, canonicalRequest);
  query['x-oss-signature'] = signatureV4(creds.accessKeySecret, day, signRegion, stringToSign);
  return urlOf(input, query);
}

/** The query parameter names that carry a presigned signature (V1 or V4), for telling them from sub-resources. */
export const PRESIGN_QUERY_PARAMS: ReadonlySet<string> = new Set([
  'OSSAccessKeyId', 'Expires', 'Signature', 'security-token',
  'x-oss-signature-version', 'x-oss-credential', 'x-oss-date', 'x-oss-expires', 'x-oss-signature',
  'x-oss-additional-headers', 'x-oss-security-token',
]);
