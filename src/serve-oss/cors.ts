/**
 * CORS for serve-oss, so a page on another origin (the gateway's player) can fetch presigned URLs with
 * XHR/fetch and a `Range` header. It plays the part of one OSS bucket CORS rule, the rule a user of
 * real OSS must set on the bucket (PutBucketCors; console: Bucket > Content Security > CORS):
 *
 *   <CORSConfiguration><CORSRule>
 *     <AllowedOrigin>http://127.0.0.1:8080</AllowedOrigin>   (the gateway's origin, or *)
 *     <AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>
 *     <AllowedHeader>*</AllowedHeader>
 *     <ExposeHeader>content-range</ExposeHeader><ExposeHeader>content-length</ExposeHeader>
 *     <ExposeHeader>etag</ExposeHeader><ExposeHeader>x-oss-next-append-position</ExposeHeader>
 *     <ExposeHeader>x-oss-request-id</ExposeHeader>
 *     <MaxAgeSeconds>600</MaxAgeSeconds>
 *   </CORSRule></CORSConfiguration>
 *
 * Off unless origins are configured; then OPTIONS is answered with 403 as OSS does without a rule.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { OssHttpError } from './oss-http-error.js';

export const CORS_ALLOWED_METHODS = ['GET', 'HEAD'] as const;
export const CORS_EXPOSE_HEADERS = ['content-range', 'content-length', 'etag', 'x-oss-next-append-position', 'x-oss-request-id'];
export const CORS_MAX_AGE_SECONDS = 600;

/** Response headers a CORS-enabled server sets; kept when an error reply replaces the handler's headers. */
export const CORS_RESPONSE_HEADERS = ['access-control-allow-origin', 'access-control-expose-headers', 'vary'];

/** `*`, or origins (`scheme://host[:port]`) allowed to read responses. */
export type CorsOrigins = readonly string[];

// RFC 9110 token, the syntax of a header name in Access-Control-Request-Headers.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Bounds the preflight echo of requested header names. */
const MAX_REQUEST_HEADERS = 64;

/**
 * Checks one configured origin: `*` or a bare http(s) origin as browsers send it in `Origin`
 * (no path, no trailing slash). Returns it normalised, or throws a RangeError saying what is wrong.
 */
export function parseCorsOrigin(raw: string): string {
  if (raw === '*') return raw;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new RangeError(`CORS origin ${JSON.stringify(raw)} is not * or an origin such as http://127.0.0.1:8080`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== raw.replace(/\/$/, '').toLowerCase()) {
    throw new RangeError(`CORS origin ${JSON.stringify(raw)} must be * or scheme://host[:port] (http or https, no path)`);
  }
  return url.origin;
}

/** The Access-Control-Allow-Origin value for a request's Origin, or undefined when it is not allowed. */
function allowedOrigin(origins: CorsOrigins, origin: string | undefined): string | undefined {
  if (origin === undefined || origin === '') return undefined;
  if (origins.includes('*')) return '*';
  return origins.includes(origin) ? origin : undefined;
}

/** Headers for an actual GET/HEAD request from an allowed origin (none otherwise). */
export function corsHeaders(origins: CorsOrigins, req: IncomingMessage): Record<string, string> {
  const method = req.method ?? '';
  if (!(CORS_ALLOWED_METHODS as readonly string[]).includes(method)) return {};
  // The answer depends on Origin unless every origin is allowed: caches must key on it.
  const h: Record<string, string> = origins.includes('*') ? {} : { vary: 'Origin' };
  const allow = allowedOrigin(origins, req.headers.origin);
  if (allow === undefined) return h;
  h['access-control-allow-origin'] = allow;
  h['access-control-expose-headers'] = CORS_EXPOSE_HEADERS.join(', ');
  return h;
}

function forbidden(message: string): OssHttpError {
  return new OssHttpError(403, 'AccessForbidden', `CORSResponse: ${message}`);
}

/**
 * Answers an OPTIONS preflight: 200 with the Access-Control-* headers when origin, method and headers
 * pass, else throws a 403 AccessForbidden (OSS's answer to a preflight no rule matches). Every header
 * a browser asks for is allowed (as `<AllowedHeader>*</AllowedHeader>`), `range` above all.
 */
export function answerPreflight(origins: CorsOrigins | undefined, req: IncomingMessage, res: ServerResponse): void {
  if (origins === undefined || origins.length === 0) throw forbidden('CORS is not enabled for this bucket.');
  const origin = req.headers.origin;
  const method = req.headers['access-control-request-method'];
  if (origin === undefined || origin === '' || method === undefined) {
    throw new OssHttpError(400, 'InvalidArgument', 'A CORS preflight needs Origin and Access-Control-Request-Method headers.');
  }
  const allow = allowedOrigin(origins, origin);
  if (allow === undefined) throw forbidden('This CORS request is not allowed: the origin is not allowed.');
  if (!(CORS_ALLOWED_METHODS as readonly string[]).includes(method)) {
    throw forbidden(`This CORS request is not allowed: method ${method} is not allowed.`);
  }
  const asked = (req.headers['access-control-request-headers'] ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  if (asked.length > MAX_REQUEST_HEADERS || asked.some((h) => !TOKEN.test(h))) {
    throw forbidden('This CORS request is not allowed: Access-Control-Request-Headers is malformed.');
  }
  const h: Record<string, string> = {
    'access-control-allow-origin': allow,
    'access-control-allow-methods': CORS_ALLOWED_METHODS.join(', '),
    'access-control-allow-headers': [...new Set(['range', ...asked])].join(', '),
    'access-control-expose-headers': CORS_EXPOSE_HEADERS.join(', '),
    'access-control-max-age': String(CORS_MAX_AGE_SECONDS),
    vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    'content-length': '0',
  };
  res.writeHead(200, h);
  res.end();
}
