/**
 * Encoding and canonicalisation shared by the V1 and V4 signers and by the server-side verifier,
 * so the client and the local server can never drift apart. Every rule here is checked byte for
 * byte against `ali-oss` in test/oss-sign.test.ts.
 */

/** A query value: `''` and `null` are written as the bare name, `undefined` leaves the parameter out. */
export type QueryValue = string | number | null | undefined;
export type QueryParams = Readonly<Record<string, QueryValue>>;

/** Header maps as the signers take them (lower-cased names) and as node's `IncomingHttpHeaders` gives them. */
export type HeaderValue = string | number | readonly string[] | undefined;
export type HeaderMap = Readonly<Record<string, HeaderValue>>;

/** A request to sign, described before it goes on the wire. */
export interface SignableRequest {
  method: string;
  bucket: string;
  /** Raw, unencoded object key; `''` for bucket-level requests. */
  key: string;
  /** `''` or `null` => bare name (`append`), `undefined` => left out. */
  query: QueryParams;
  /** Lower-cased names. Values are signed trimmed; send them as the signer returns them. */
  headers: HeaderMap;
}

/**
 * RFC 3986 percent-encoding of UTF-8 bytes: keeps `A-Z a-z 0-9 - . _ ~`, upper-case hex for the rest
 * (so space is `%20`, never `+`). `encodeURIComponent` leaves `!'()*` alone, hence the extra pass.
 */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The bucket/key path in its raw form: `/bucket/key`, `/bucket/` without a key, `/` without a bucket. */
export function resourcePath(bucket: string, key: string): string {
  if (bucket === '') return key === '' ? '/' : `/${key}`;
  return `/${bucket}/${key}`;
}

/** V4 CanonicalURI: the resource path URI-encoded byte-wise with `/` kept. */
export function canonicalUri(bucket: string, key: string): string {
  return uriEncode(resourcePath(bucket, key)).replace(/%2F/g, '/');
}

/** Query entries that take part in signing, with `undefined` dropped and values as strings (`''` = bare). */
export function queryEntries(query: QueryParams): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) continue;
    out.push([name, value === null ? '' : String(value)]);
  }
  return out;
}

/** Plain code-unit order (byte order for ASCII); never `localeCompare`, which depends on the ICU locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * V4 CanonicalQueryString: every parameter, name and value URI-encoded, sorted by the *encoded* name,
 * `name` alone when the value is empty (what ali-oss, Go and Python sign for `?append=`), else `name=value`.
 */
export function canonicalQueryV4(query: QueryParams): string {
  return queryEntries(query)
    .map(([k, v]) => [uriEncode(k), v === '' ? '' : uriEncode(v)] as const)
    .sort((a, b) => compareStrings(a[0], b[0]) || compareStrings(a[1], b[1]))
    .map(([k, v]) => (v === '' ? k : `${k}=${v}`))
    .join('&');
}

/**
 * Query parameters OSS signs in V1's CanonicalizedResource (Go SDK `requiredSignedParametersMap` plus the
 * V1 doc's list); any parameter whose name starts with `x-oss-` is signed as well.
 */
export const V1_SIGNED_SUBRESOURCES: ReadonlySet<string> = new Set([
  'acl', 'append', 'bucketInfo', 'callback', 'callback-var', 'cloudboxes', 'comp', 'continuation-token', 'cors',
  'delete', 'endTime', 'img', 'lifecycle', 'live', 'location', 'logging', 'objectMeta', 'partNumber', 'position',
  'qos', 'referer', 'regionList', 'resourceGroup', 'response-cache-control', 'response-content-disposition',
  'response-content-encoding', 'response-content-language', 'response-content-type', 'response-expires',
  'restore', 'security-token', 'seal', 'sequential', 'startTime', 'stat', 'status', 'style', 'symlink', 'tagging',
  'uploadId', 'uploads', 'versionId', 'versioning', 'versions', 'vod', 'website',
]);

export function isV1SignedSubresource(name: string): boolean {
  return V1_SIGNED_SUBRESOURCES.has(name) || name.startsWith('x-oss-');
}

/**
 * V1 CanonicalizedResource: `/bucket/key` with the key raw (not URL-encoded), then the whitelisted
 * sub-resources sorted by name, `?`/`&`-joined, `name` or `name=value` (value not encoded).
 */
export function canonicalResourceV1(bucket: string, key: string, query: QueryParams): string {
  const subresources = queryEntries(query)
    .filter(([name]) => isV1SignedSubresource(name))
    .sort((a, b) => compareStrings(a[0], b[0]) || compareStrings(a[1], b[1]))
    .map(([k, v]) => (v === '' ? k : `${k}=${v}`));
  const path = resourcePath(bucket, key);
  return subresources.length === 0 ? path : `${path}?${subresources.join('&')}`;
}

/** One header's value as it is signed: repeated values joined with `,`, then trimmed. */
export function headerValue(value: HeaderValue): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return value.trim();
  return value.map((v) => v.trim()).join(',');
}

/** Lower-case every header name (later duplicates win) and drop undefined values. */
export function lowerCaseHeaders(headers: HeaderMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const v = headerValue(value);
    if (v !== undefined) out[name.toLowerCase()] = v;
  }
  return out;
}

/** `name:value\n` lines for the given lower-cased names, sorted by name. */
export function headerLines(headers: Readonly<Record<string, string>>, names: Iterable<string>): string {
  return [...new Set(names)]
    .sort(compareStrings)
    .map((name) => `${name}:${headers[name] ?? ''}\n`)
    .join('');
}

/** V1 CanonicalizedOSSHeaders: every `x-oss-*` header (includes x-oss-date and x-oss-security-token). */
export function canonicalOssHeadersV1(headers: Readonly<Record<string, string>>): string {
  return headerLines(headers, Object.keys(headers).filter((n) => n.startsWith('x-oss-')));
}

/** Whether V4 signs this header by default (so it must not appear in AdditionalHeaders). */
export function isV4DefaultSignedHeader(name: string): boolean {
  return name === 'content-type' || name === 'content-md5' || name.startsWith('x-oss-');
}

/** V1 dates: RFC 1123 / IMF-fixdate, `Wed, 08 Jul 2015 06:57:01 GMT`. */
export function formatV1Date(date: Date): string {
  return date.toUTCString();
}

/** V4 dates: ISO 8601 basic, UTC, whole seconds: `20150708T065701Z`. */
export function formatV4Date(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

const V1_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const V4_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** Parses an IMF-fixdate strictly (OSS rejects `Jun 2` and other lax forms); undefined when invalid. */
export function parseV1Date(s: string): Date | undefined {
  if (!V1_DATE.test(s)) return undefined;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) || formatV1Date(d) !== s ? undefined : d;
}

/** Parses `yyyymmddTHHMMSSZ`; undefined when invalid (including out-of-range fields). */
export function parseV4Date(s: string): Date | undefined {
  const m = V4_DATE.exec(s);
  if (!m) return undefined;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return Number.isNaN(d.getTime()) || formatV4Date(d) !== s ? undefined : d;
}

/**
 * Splits a raw query string (`append=&position=0`) into decoded name/value pairs, form-style (`+` is a
 * space; clients send a literal plus as `%2B`). Returns undefined for malformed percent-encoding.
 */
export function parseRawQuery(raw: string): Array<[string, string]> | undefined {
  const out: Array<[string, string]> = [];
  if (raw === '') return out;
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    const value = eq === -1 ? '' : part.slice(eq + 1);
    try {
      out.push([decodeURIComponent(name.replace(/\+/g, ' ')), decodeURIComponent(value.replace(/\+/g, ' '))]);
    } catch {
      return undefined;
    }
  }
  return out;
}
