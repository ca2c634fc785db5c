/**
 * RTSP source URLs: validation, and keeping their credentials out of everything we print.
 *
 * Cameras want `rtsp://user:pass@host:554/path`. The URL goes to ffmpeg as written (ffmpeg splits the
 * user info at the LAST `@` before the path and percent-decodes user and password itself, both
 * measured with ffmpeg 5.1: `p%40ss` and a raw `p@ss` both authenticate as `p@ss`). Everything that
 * leaves this module for logs, errors, the API or metrics goes through `redactUrl` or a `Redactor`:
 * the user info becomes `***`, and so do query parameters that look like secrets
 * (`?password=…`, `&token=…`), which some cameras take instead of user info.
 *
 * `${ENV}` references in the config are substituted by the config loader before a URL gets here.
 *
 * What this cannot hide: ffmpeg's argv, and so the password, is readable in /proc by the local users
 * allowed to see the gateway's processes (ffmpeg's RTSP client takes credentials only in the URL).
 * Mount /proc with hidepid=2 or run the gateway in its own container where that matters.
 */
import { AppendcastError, ErrorCode } from '../../errors.js';

export interface RtspUrl {
  /** The URL as given (credentials included): for ffmpeg only. */
  url: string;
  host: string;
  /** 554 when the URL gives none. */
  port: number;
  /** Path and query, e.g. `/Streaming/Channels/101?transportmode=unicast` (secret-looking parameters redacted). */
  path: string;
  /** Percent-decoded user name, when the URL has one. */
  username: string | undefined;
  /** Percent-decoded password, when the URL has one. Never log it. */
  password: string | undefined;
  /** The URL with credentials replaced by `***`: what logs, errors, the API and metrics may show. */
  redacted: string;
}

const SECRET_PARAM = /pass|pwd|token|secret|auth|sig|key|credential/i;
/** scheme://userinfo@ — greedy up to the last `@` before the path, as ffmpeg reads it. */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i;

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function redactQuery(query: string): string {
  if (!query) return query;
  return (
    '?' +
    query
      .slice(1)
      .split('&')
      .map((kv) => {
        const eq = kv.indexOf('=');
        if (eq < 0) return kv;
        const name = safeDecode(kv.slice(0, eq));
        return SECRET_PARAM.test(name) ? `${kv.slice(0, eq)}=***` : kv;
      })
      .join('&')
  );
}

/**
 * `rtsp://***@host:port/path?…`: credentials (user info, and secret-looking query parameters) replaced.
 * Works on any string; text that is not a URL is returned with only the user-info rule applied.
 */
export function redactUrl(url: string): string {
  let out = url.replace(USERINFO, '$1***@');
  const q = out.indexOf('?');
  if (q >= 0) {
    const hash = out.indexOf('#', q);
    const query = hash >= 0 ? out.slice(q, hash) : out.slice(q);
    out = out.slice(0, q) + redactQuery(query) + (hash >= 0 ? out.slice(hash) : '');
  }
  return out;
}

/** Validates an RTSP source URL. Throws APC_ERR_CONFIG_INVALID with the URL redacted. */
export function parseRtspUrl(url: string): RtspUrl {
  const redacted = redactUrl(url);
  const bad = (why: string): never => {
    throw new AppendcastError(ErrorCode.ConfigInvalid, `invalid RTSP source URL ${JSON.stringify(redacted)}: ${why}`);
  };
  if (typeof url !== 'string' || url.length === 0) bad('empty');
  if (url.length > 4096) bad('longer than 4096 characters');
  // Control characters (CR/LF would end up in RTSP request lines).
  if (/[\u0000-\u001f\u007f]/.test(url)) bad('contains control characters');
  const m = USERINFO.exec(url);
  const userinfo = m ? m[2]! : undefined;
  // WHATWG URL rejects a raw `@` or space in user info, which ffmpeg takes: validate the rest without it.
  let u: URL;
  try {
    u = new URL(m ? url.replace(USERINFO, '$1') : url);
  } catch {
    return bad('not a URL (expected rtsp://[user:pass@]host[:port]/path)');
  }
  if (u.protocol !== 'rtsp:') bad(`scheme ${JSON.stringify(u.protocol.replace(/:$/, ''))} is not rtsp`);
  const host = u.hostname;
  if (!host) bad('no host');
  let port = 554;
  if (u.port !== '') {
    port = Number(u.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) bad('port out of range');
  }
  let username: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    username = safeDecode(colon >= 0 ? userinfo.slice(0, colon) : userinfo);
    password = colon >= 0 ? safeDecode(userinfo.slice(colon + 1)) : undefined;
  }
  return { url, host, port, path: redactUrl(`${u.pathname}${u.search}`), username, password, redacted };
}

const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s'"]*/gi;

/**
 * Puts credentials into an RTSP URL that has none, percent-encoded, so any character works (ffmpeg
 * decodes them; measured with `@ : / % ! space`). For configs that keep user and password apart,
 * e.g. `password: ${CAM1_PASS}` with a password containing `@` or `/`. Throws when the URL
 * already has user info.
 */
export function withCredentials(url: string, user: string, password?: string): string {
  const u = parseRtspUrl(url);
  if (u.username !== undefined) throw new AppendcastError(ErrorCode.ConfigInvalid, `RTSP source URL ${JSON.stringify(u.redacted)} already has credentials`);
  const info = encodeURIComponent(user) + (password !== undefined ? `:${encodeURIComponent(password)}` : '');
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)/i, `$1${info}@`);
}

/** Replaces every credential of one URL in free text (ffmpeg's stderr, error messages). */
export type Redactor = (text: string) => string;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A redactor for one source URL: any `scheme://userinfo@` becomes `scheme://***@`, secret query
 * parameters become `***`, and the password itself — as written, percent-decoded and
 * percent-encoded — is replaced wherever it appears, in case a tool prints it on its own.
 */
export function makeRedactor(url: string): Redactor {
  const secrets = new Set<string>();
  const m = USERINFO.exec(url);
  if (m) {
    const userinfo = m[2]!;
    const colon = userinfo.indexOf(':');
    if (colon >= 0) {
      const raw = userinfo.slice(colon + 1);
      for (const s of [raw, safeDecode(raw), encodeURIComponent(safeDecode(raw))]) if (s) secrets.add(s);
    }
  }
  const q = url.indexOf('?');
  if (q >= 0) {
    for (const kv of url.slice(q + 1).split(/[&#]/)) {
      const eq = kv.indexOf('=');
      if (eq > 0 && SECRET_PARAM.test(safeDecode(kv.slice(0, eq)))) {
        const v = kv.slice(eq + 1);
        for (const s of [v, safeDecode(v)]) if (s) secrets.add(s);
      }
    }
  }
  // Longest first, so a password that contains another secret is replaced whole.
  const pattern = secrets.size > 0 ? new RegExp([...secrets].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'g') : undefined;
  return (text: string): string => {
    let out = text.replace(URL_IN_TEXT, (u) => redactUrl(u));
    if (pattern) out = out.replace(pattern, '***');
    return out;
  };
}
