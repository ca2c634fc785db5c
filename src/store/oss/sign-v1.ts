import { createHmac } from 'node:crypto';
import type { SigningCredentials } from './credentials.js';
import type { QueryParams, SignableRequest } from './canonical.js';
export type { SignableRequest } from './canonical.js';
import { canonicalOssHeadersV1, canonicalResourceV1, formatV1Date, lowerCaseHeaders } from './canonical.js';

export interface SignedV1 {
  /** The input headers plus x-oss-date, x-oss-security-token (with a token) and authorization. */
  headers: Record<string, string>;
  stringToSign: string;
}

/**
 * V1 StringToSign. `headers` must be lower-cased and already carry the date header (x-oss-date wins over
 * Date). A presigned URL passes `expires` (unix seconds), which takes the date's place. Exported for the
 * verifier, which rebuilds it from a received request.
 */
export function stringToSignV1(
  method: string,
  bucket: string,
  key: string,
  query: QueryParams,
  headers: Readonly<Record<string, string>>,
  expires?: string,
): string {
  return [
    method.toUpperCase(),
    headers['content-md5'] ?? '',
    headers['content-type'] ?? '',
    expires ?? headers['x-oss-date'] ?? headers['date'] ?? '',
    canonicalOssHeadersV1(headers) + canonicalResourceV1(bucket, key, query),
  ].join('\n');
}

/** base64(HMAC-SHA1(secret, UTF-8(stringToSign))). */
export function signatureV1(accessKeySecret: string, stringToSign: string): string {
  return createHmac('sha1', accessKeySecret).update(stringToSign, 'utf8').digest('base64');
}

/** Signs with OSS Signature V1 at `date`: `Authorization: OSS <AccessKeyId>:<Signature>`. */
export function signV1(req: SignableRequest, creds: SigningCredentials, date: Date): SignedV1 {
  const headers = lowerCaseHeaders(req.headers);
  delete headers['authorization'];
  headers['x-oss-date'] = formatV1Date(date);
  if (creds.securityToken) headers['x-oss-security-token'] = creds.securityToken;
  const stringToSign = stringToSignV1(req.method, req.bucket, req.key, req.query, headers);
  headers['authorization'] = `OSS ${creds.accessKeyId}:${signatureV1(creds.accessKeySecret, stringToSign)}`;
  return { headers, stringToSign };
}
