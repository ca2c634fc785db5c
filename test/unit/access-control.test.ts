import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { AccessControl, MAX_SIGNED_TTL_SECONDS, SESSION_COOKIE } from '../../src/http/access.js';

const TOKEN = 'a-long-enough-test-token-0123';
const NOW = Date.parse('2026-12-06T10:00:00Z');

function req(headers: Record<string, string> = {}): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}
const url = (s: string): URL => new URL(s, 'http://gw');

describe('AccessControl', () => {
  const ac = new AccessControl(TOKEN, () => NOW);

  it('without a token, everything is open and URLs are not signed', () => {
    const open = new AccessControl(null);
    expect(open.enabled).toBe(false);
    expect(open.allows(req(), url('/api/v1/streams'))).toBe(true);
    expect(open.sign('/live/cam/index.m3u8', NOW + 1000)).toBe('/live/cam/index.m3u8');
  });

  it('leaves /metrics, /healthz and /login open and guards the rest', () => {
    for (const p of ['/metrics', '/healthz', '/login']) expect(ac.allows(req(), url(p))).toBe(true);
    for (const p of ['/', '/app.js', '/api/v1/streams', '/live/cam/index.m3u8', '/vod/cam/index.m3u8', '/media/cam/a.mp4']) {
      expect(ac.allows(req(), url(p)), p).toBe(false);
    }
  });

  it('accepts the bearer token and the session cookie, nothing like them', () => {
    expect(ac.allows(req({ authorization: `Bearer ${TOKEN}` }), url('/api/v1/streams'))).toBe(true);
    expect(ac.allows(req({ authorization: `bearer   ${TOKEN}` }), url('/api/v1/streams'))).toBe(true);
    expect(ac.allows(req({ authorization: `Bearer ${TOKEN}x` }), url('/api/v1/streams'))).toBe(false);
    expect(ac.allows(req({ authorization: `Basic ${TOKEN}` }), url('/api/v1/streams'))).toBe(false);
    const cookie = ac.sessionCookie().split(';')[0]!;
    expect(cookie.startsWith(`${SESSION_COOKIE}=`)).toBe(true);
    expect(cookie).not.toContain(TOKEN); // the cookie is derived from the token, not the token
    expect(ac.sessionCookie()).toMatch(/HttpOnly; SameSite=Strict/);
    expect(ac.allows(req({ cookie: `other=1; ${cookie}` }), url('/'))).toBe(true);
    expect(ac.allows(req({ cookie: `${SESSION_COOKIE}=forged` }), url('/'))).toBe(false);
    // A cookie made from another token does not open this gateway.
    const other = new AccessControl('another-token-of-enough-length').sessionCookie().split(';')[0]!;
    expect(ac.allows(req({ cookie: other }), url('/'))).toBe(false);
  });

  it('accepts a signed URL until it expires, for exactly its path and query', () => {
    const signed = ac.sign('/vod/cam/index.m3u8?start=2026-12-06T09:00:00Z&end=2026-12-06T09:10:00Z', NOW + 60_000);
    expect(signed).toMatch(/[?&]exp=\d+&sig=[\w-]+$/);
    expect(ac.allows(req(), url(signed))).toBe(true);
    expect(ac.signedUntil(url(signed))).toBe(NOW + 60_000);
    // Expired.
    const later = new AccessControl(TOKEN, () => NOW + 61_000);
    expect(later.allows(req(), url(signed))).toBe(false);
    // Another path, another range, a moved expiry, a damaged signature.
    expect(ac.allows(req(), url(signed.replace('/vod/cam/', '/vod/cam2/')))).toBe(false);
    expect(ac.allows(req(), url(signed.replace('09%3A10', '23%3A10')))).toBe(false);
    expect(ac.allows(req(), url(signed.replace(/exp=(\d+)/, (_m, e: string) => `exp=${Number(e) + 3600}`)))).toBe(false);
    expect(ac.allows(req(), url(signed.replace(/sig=./, 'sig=A')))).toBe(false);
    // Signed with another token.
    const foreign = new AccessControl('another-token-of-enough-length', () => NOW).sign('/vod/cam/index.m3u8', NOW + 60_000);
    expect(ac.allows(req(), url(foreign))).toBe(false);
  });

  it('refuses expiries beyond the longest allowed lifetime', () => {
    const far = ac.sign('/live/cam/index.m3u8', NOW + (MAX_SIGNED_TTL_SECONDS + 3600) * 1000);
    expect(ac.allows(req(), url(far))).toBe(false);
    expect(ac.allows(req(), url('/live/cam/index.m3u8?exp=abc&sig=x'))).toBe(false);
  });

  it('checks the login form token', () => {
    expect(ac.isToken(TOKEN)).toBe(true);
    expect(ac.isToken('')).toBe(false);
    expect(ac.isToken(TOKEN.slice(1))).toBe(false);
  });
});
