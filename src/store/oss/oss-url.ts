/**
 * Where OSS requests go: the origin (one keep-alive pool each) and the request target for a key.
 * Keys are percent-encoded per segment with `/` kept, the exact encoding the V4 signer's CanonicalURI
 * uses, and queries are written in their canonical form, so what is sent is what is signed.
 */
import { isIP } from 'node:net';
import { AppendcastError, ErrorCode } from '../../errors.js';
import type { QueryParams } from './canonical.js';
import { canonicalQueryV4, uriEncode } from './canonical.js';

export interface OssAddressing {
  /** `scheme://host[:port]`, no trailing slash. */
  origin: string;
  bucket: string;
  /** Whether the bucket is the first path segment (else it is in the host name). */
  pathStyle: boolean;
}

/**
 * Virtual-hosted (`https://<bucket>.<endpoint-host>/<key>`, what real OSS requires) unless `pathStyle`
 * (`http://host:port/<bucket>/<key>`, for local servers). An IP-literal endpoint cannot carry the bucket
 * in its host name, so it is always path-style (the Go SDK does the same).
 */
export function resolveAddressing(endpoint: string, bucket: string, pathStyle: boolean): OssAddressing {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`);
  } catch {
    throw new AppendcastError(ErrorCode.ConfigInvalid, `OSS endpoint is not a URL: ${endpoint}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AppendcastError(ErrorCode.ConfigInvalid, `OSS endpoint must be http(s): ${endpoint}`);
  }
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.username !== '') {
    throw new AppendcastError(ErrorCode.ConfigInvalid, `OSS endpoint must be a bare origin, without path, query or user: ${endpoint}`);
  }
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const forcePath = isIP(hostname) !== 0;
  if (pathStyle || forcePath) return { origin: url.origin, bucket, pathStyle: true };
  return { origin: `${url.protocol}//${bucket}.${url.host}`, bucket, pathStyle: false };
}

/** The key URI-encoded byte-wise with `/` kept (as in the V4 CanonicalURI). */
export function encodeKeyPath(key: string): string {
  return uriEncode(key).replace(/%2F/g, '/');
}

/** The path for an object (`key` non-empty) or for the bucket itself (`key === ''`). */
export function requestPath(addr: OssAddressing, key: string): string {
  const encoded = encodeKeyPath(key);
  return addr.pathStyle ? `/${addr.bucket}/${encoded}` : `/${encoded}`;
}

/** Path plus canonical query (`?append&position=0`, names and values RFC 3986-encoded, sorted). */
export function requestTarget(addr: OssAddressing, key: string, query: QueryParams = {}): string {
  const q = canonicalQueryV4(query);
  return q === '' ? requestPath(addr, key) : `${requestPath(addr, key)}?${q}`;
}

/** Full URL, for messages and tests. */
export function requestUrl(addr: OssAddressing, key: string, query: QueryParams = {}): string {
  return addr.origin + requestTarget(addr, key, query);
}
