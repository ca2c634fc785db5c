import { createHash, createHmac } from 'node:crypto';
import type { SigningCredentials } from './credentials.js';
import type { QueryParams, SignableRequest } from './canonical.js';
export type { SignableRequest } from './canonical.js';
import {
  canonicalQueryV4,
  canonicalUri,
  compareStrings,
  formatV4Date,
  headerLines,
  isV4DefaultSignedHeader,
  lowerCaseHeaders,
} from './canonical.js';

export const V4_ALGORITHM = 'OSS4-HMAC-SHA256';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const TERMINATOR = 'aliyun_v4_request';
const PRODUCT = 'oss';

export interface SignedV4 {
  /** The input headers plus x-oss-date, x-oss-content-sha256, x-oss-security-token (with a token), authorization. */
  headers: Record<string, string>;
  canonicalRequest: string;
  stringToSign: string;
}

/** The region as V4 signs it: `oss-cn-hangzhou` and `cn-hangzhou` both give `cn-hangzhou`. */
export function standardRegion(region: string): string {
  return region.startsWith('oss-') ? region.slice(4) : region;
}

/**
 * AdditionalHeaders as signed: lower-cased, de-duplicated, sorted; names V4 signs anyway and names absent
 * from the request are dropped (as the Go SDK does), so the list always describes what was signed.
 */
export function normalizeAdditionalHeaders(names: readonly string[], headers: Readonly<Record<string, string>>): string[] {
  return [...new Set(names.map((n) => n.toLowerCase()))]
    .filter((n) => !isV4DefaultSignedHeader(n) && headers[n] !== undefined)
    .sort(compareStrings);
}

/**
 * V4 CanonicalRequest. `headers` lower-cased; `additional` already normalised. Exported for the verifier.
 */
export function canonicalRequestV4(
  method: string,
  bucket: string,
  key: string,
  query: QueryParams,
  headers: Readonly<Record<string, string>>,
  additional: readonly string[],
): string {
  const signed = Object.keys(headers).filter(isV4DefaultSignedHeader).concat(additional);
  return [
    method.toUpperCase(),
    canonicalUri(bucket, key),
    canonicalQueryV4(query),
    headerLines(headers, signed),
    additional.join(';'),
    headers['x-oss-content-sha256'] ?? UNSIGNED_PAYLOAD,
  ].join('\n');
}

/** `<yyyymmdd>/<region>/oss/aliyun_v4_request`. */
export function scopeV4(day: string, region: string): string {
  return `${day}/${region}/${PRODUCT}/${TERMINATOR}`;
}

export function stringToSignV4(xOssDate: string, scope: string, canonicalRequest: string): string {
  return [V4_ALGORITHM, xOssDate, scope, createHash('sha256').update(canonicalRequest, 'utf8').digest('hex')].join('\n');
}

/** hex(HMAC-SHA256(signingKey, stringToSign)), the key derived from `aliyun_v4` + secret, day, region, product. */
export function signatureV4(accessKeySecret: string, day: string, region: string, stringToSign: string): string {
  let key = createHmac('sha256', `aliyun_v4${accessKeySecret}`).update(day, 'utf8').digest();
  for (const part of [region, PRODUCT, TERMINATOR]) key = createHmac('sha256', key).update(part, 'utf8').digest();
  return createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
}

/**
 * Signs with OSS Signature V4 (`OSS4-HMAC-SHA256`) at `date` for `region` (with or without `oss-`).
 * `additionalHeaders` names extra headers (e.g. `host`) to sign beyond content-type, content-md5, x-oss-*.
 */
export function signV4(
  req: SignableRequest,
  creds: SigningCredentials,
  date: Date,
  region: string,
  additionalHeaders: readonly string[] = [],
): SignedV4 {
  const headers = lowerCaseHeaders(req.headers);
  delete headers['authorization'];
  const xOssDate = formatV4Date(date);
  headers['x-oss-date'] = xOssDate;
  headers['x-oss-content-sha256'] = UNSIGNED_PAYLOAD; // the only value OSS accepts in a header signature
  if (creds.securityToken) headers['x-oss-security-token'] = creds.securityToken;

  const signRegion = standardRegion(region);
  const additional = normalizeAdditionalHeaders(additionalHeaders, headers);
  const canonicalRequest = canonicalRequestV4(req.method, req.bucket, req.key, req.query, headers, additional);
  const day = xOssDate.slice(0, 8);
  const scope = scopeV4(day, signRegion);
  const stringToSign = stringToSignV4(xOssDate, scope, canonicalRequest);
  const signature = signatureV4(creds.accessKeySecret, day, signRegion, stringToSign);
  const additionalPart = additional.length > 0 ? `AdditionalHeaders=${additional.join(';')},` : '';
  headers['authorization'] = `${V4_ALGORITHM} Credential=${creds.accessKeyId}/${scope},${additionalPart}Signature=${signature}`;
  return { headers, canonicalRequest, stringToSign };
}
