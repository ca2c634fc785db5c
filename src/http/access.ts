import { createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { constantTimeEqual } from '../util/constant-time.js';

/** The session cookie the web page's login sets (its value is derived from the token, never the token). */
export const SESSION_COOKIE = 'appendcast_session';
/** Signed URLs live at most this long. */
export const MAX_SIGNED_TTL_SECONDS = 7 * 24 * 3600;
/** Paths anyone may read: monitoring must not need the token. */
const OPEN_PATHS = new Set(['/metrics', '/healthz', '/login']);

/**
 * Who may use the HTTP port, when `server.http.apiToken` is set: a request presents the token as
 * `Authorization: Bearer <token>`, or the session cookie the login form sets, or a signed expiring
 * URL (`?exp=<unix s>&sig=<HMAC-SHA256 of path, query and exp>`) for players that cannot set
 * headers. Comparisons are constant-time; without a token everything is open.
 */
export class AccessControl {
  private readonly token: Buffer | null;
  private readonly cookieValue: string | null;
  private readonly now: () => number;

  constructor(token: string | null, now: () => number = Date.now) {
    this.token = token === null ? null : Buffer.from(token, 'utf8');
    this.cookieValue = token === null ? null : hmac(this.token!, 'appendcast-session-v1');
    this.now = now;
  }

  get enabled(): boolean {
    return this.token !== null;
  }

  isOpen(path: string): boolean {
    return this.token === null || OPEN_PATHS.has(path);
  }

  /** Whether the request may go on. */
  allows(req: IncomingMessage, url: URL): boolean {
    if (this.isOpen(url.pathname)) return true;
    const auth = req.headers.authorization;
    if (typeof auth === 'string' && /^Bearer\s+/i.test(auth) && this.isToken(auth.replace(/^Bearer\s+/i, '').trim())) return true;
    const cookie = cookieOf(req, SESSION_COOKIE);
    if (cookie !== undefined && constantTimeEqual(cookie, this.cookieValue!)) return true;
    return this.validSignature(url);
  }

  /** Whether `candidate` is the token (the login form). */
  isToken(candidate: string): boolean {
    return this.token !== null && constantTimeEqual(candidate, this.token.toString('utf8'));
  }

  /** The Set-Cookie header for a logged-in browser. */
  sessionCookie(): string {
    return `${SESSION_COOKIE}=${this.cookieValue}; HttpOnly; SameSite=Strict; Path=/`;
  }

  /**
   * `pathAndQuery` signed until `expiresAt` (ms): the same with `exp` and `sig` added. Without a
   * token it is returned as it is.
   */
  sign(pathAndQuery: string, expiresAt: number): string {
    if (this.token === null) return pathAndQuery;
    const url = new URL(pathAndQuery, 'http://x');
    url.searchParams.delete('exp');
    url.searchParams.delete('sig');
    const exp = Math.ceil(expiresAt / 1000);
    const sig = hmac(this.token, signedText(url.pathname, url.searchParams, exp));
    url.searchParams.set('exp', String(exp));
    url.searchParams.set('sig', sig);
    return `${url.pathname}?${url.searchParams.toString()}`;
  }

  /** When the request's signature expires (ms), if it came signed: URLs it hands out should not outlive it. */
  signedUntil(url: URL): number | undefined {
    const exp = Number(url.searchParams.get('exp'));
    return url.searchParams.has('sig') && Number.isSafeInteger(exp) ? exp * 1000 : undefined;
  }

  private validSignature(url: URL): boolean {
    const sig = url.searchParams.get('sig');
    const expText = url.searchParams.get('exp');
    if (sig === null || expText === null || !/^\d{1,12}$/.test(expText)) return false;
    const exp = Number(expText);
    const now = this.now() / 1000;
    if (exp < now || exp > now + MAX_SIGNED_TTL_SECONDS + 60) return false;
    const rest = new URLSearchParams(url.searchParams);
    rest.delete('exp');
    rest.delete('sig');
    return constantTimeEqual(sig, hmac(this.token!, signedText(url.pathname, rest, exp)));
  }
}

/** What a signature covers: the path, every other query parameter in order, and the expiry. */
function signedText(path: string, query: URLSearchParams, exp: number): string {
  return `${path}\n${query.toString()}\n${exp}`;
}

function hmac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text, 'utf8').digest('base64url');
}


function cookieOf(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string' || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
