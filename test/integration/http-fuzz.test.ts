/**
 * Bounded, seeded fuzzing of the gateway's HTTP surface (issue 11's routes are network-facing
 * parsers): raw request lines and headers over TCP, so nothing is cleaned up by a client library —
 * mutated targets for every route (playlists, media ranges, clips, recordings, signing, the login
 * form), random and mutated `Range`, `Cookie`, `Authorization` and query strings, and form bodies
 * past their limit. Invariants: no 5xx, the server keeps answering, and nothing outside the
 * token's protection is ever served without it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { Gateway } from '../../src/gateway.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { createLogger } from '../../src/util/logger.js';
import { prng } from '../../src/util/prng.js';

const TOKEN = 'http-fuzz-token-0123456789';
const CASES = 1500;
const BUDGET_MS = 25_000;
type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)] as T;

const SEEDS = [
  '/', '/app.js', '/vendor/hls.min.js', '/login', '/healthz', '/metrics',
  '/live/cam1/index.m3u8', '/vod/cam1/index.m3u8?start=2026-12-06T10:00:00Z&end=2026-12-06T10:01:00Z',
  '/media/cam1/rec.mp4', '/media/cam1/rec.mp4.index.jsonl',
  '/api/v1/streams', '/api/v1/recordings?stream=cam1&start=2026-12-06T00:00:00Z',
  '/api/v1/clip?stream=cam1&start=2026-12-06T10:00:00Z&duration=5', '/api/v1/sign?path=/live/cam1/index.m3u8&ttl=60',
];
const NASTY = ['%', '%00', '%ff', '%2e%2e', '..', '//', '\\', '?', '&', '=', '#', '~', '%c0%af', 'é', '\u202e', 'exp=1', 'sig=', 'start=', 'end=9999-99-99', 'duration=-1', 'duration=1e308', 'ttl=0', 'path=//evil'];
const RANGES = ['bytes=0-0', 'bytes=-1', 'bytes=5-2', 'bytes=0-', 'bytes=99999999999999999999-', 'bytes=0-1,2-3', 'items=0-1', 'bytes=--1', 'bytes= 1 - 2 ', ''];

function mutateTarget(r: Rand): string {
  let t = pick(r, SEEDS);
  for (let i = 0, n = 1 + int(r, 3); i < n; i++) {
    const at = int(r, t.length + 1);
    switch (int(r, 5)) {
      case 0: t = t.slice(0, at) + pick(r, NASTY) + t.slice(at); break;
      case 1: t = t.slice(0, at); break;
      case 2: t = `${t}${t.includes('?') ? '&' : '?'}${pick(r, NASTY)}`; break;
      case 3: t = t.slice(0, at) + String.fromCharCode(33 + int(r, 94)) + t.slice(at); break;
      default: t = t.replace(/cam1/, pick(r, ['cam2', 'CAM1', '', 'a'.repeat(70), '..', 'cam1/../cam1']));
    }
  }
  return t.startsWith('/') || r() < 0.1 ? t : `/${t}`;
}

function headers(r: Rand): string[] {
  const h: string[] = [];
  if (r() < 0.5) h.push(`Range: ${r() < 0.7 ? pick(r, RANGES) : `bytes=${int(r, 5000)}-${int(r, 5000)}`}`);
  if (r() < 0.3) h.push(`Cookie: ${pick(r, ['appendcast_session=', 'appendcast_session=x'.repeat(1 + int(r, 600)), 'a=b; appendcast_session', '=;=;='])}`);
  if (r() < 0.3) h.push(`Authorization: ${pick(r, ['Bearer', 'Bearer ', `Bearer ${TOKEN}x`, `bearer ${TOKEN.slice(1)}`, 'Basic x', `Bearer ${TOKEN}`])}`);
  if (r() < 0.3) h.push(`Accept: ${pick(r, ['text/html', '*/*', 'x'.repeat(200)])}`);
  return h;
}

interface Answer {
  status: number;
  raw: string;
}

/** One request over a fresh TCP connection; the status of the answer (0: the server closed without one). */
function send(port: number, request: string | Buffer): Promise<Answer> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let got = '';
    const done = (): void => {
      sock.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      resolve({ status: m ? Number(m[1]) : 0, raw: got.slice(0, 2000) });
    };
    sock.setTimeout(5000, done);
    sock.on('data', (d) => {
      got += d.toString('latin1');
      if (got.length > 4096) done(); // the head is enough
    });
    sock.on('end', done);
    sock.on('error', done);
    sock.on('connect', () => sock.write(request));
  });
}

describe('HTTP surface under hostile requests', () => {
  let dir: string;
  let gateway: Gateway;
  let port: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-http-fuzz-'));
    // One recorded object with an index, so media ranges, playlists and clips have something to read.
    const store = new FsStore({ root: join(dir, 'objects') });
    await store.append('cam1/rec.mp4', 0, [Buffer.alloc(5000, 7)], { metadata: { 'appendcast-stream': 'cam1', 'appendcast-session': 's1', 'appendcast-object-seq': '0' } });
    const w = Date.parse('2026-12-06T10:00:01Z');
    const lines = [
      { type: 'init', offset: 0, length: 600, w },
      ...Array.from({ length: 4 }, (_, i) => ({ seq: i + 1, type: 'fragment', offset: 600 + i * 1100, length: 1100, t: i, d: 1, w: w + (i + 1) * 1000, k: true })),
    ];
    await store.append('cam1/rec.mp4.index.jsonl', 0, [Buffer.from(lines.map((l) => JSON.stringify(l)).join('\n') + '\n{"broken')]);
    await store.close();
    gateway = new Gateway(parseConfig(`
dataDir: ${join(dir, 'data')}
server: { rtmp: { host: 127.0.0.1, port: 0 }, http: { host: 127.0.0.1, port: 0, apiToken: ${TOKEN} } }
storage: { kind: fs, root: ${join(dir, 'objects')} }
streams: [{ id: cam1, key: k1 }, { id: cam2, key: k2 }]
`, 'fuzz.yaml', {}), createLogger('silent'));
    port = (await gateway.start()).http.port;
  });
  afterAll(async () => {
    await gateway?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers every mutated request with a status below 500, and serves nothing guarded without the token', async () => {
    const r = prng(0x11f);
    const statuses = new Map<number, number>();
    const started = Date.now();
    let n = 0;
    for (; n < CASES && Date.now() - started < BUDGET_MS; n++) {
      const target = mutateTarget(r);
      const h = headers(r);
      const authorized = h.some((l) => l === `Authorization: Bearer ${TOKEN}`);
      const a = await send(port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${h.map((l) => `${l}\r\n`).join('')}Connection: close\r\n\r\n`);
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      expect(a.status, `GET ${JSON.stringify(target)} ${JSON.stringify(h)}`).toBeGreaterThan(0);
      expect(a.status, `GET ${JSON.stringify(target)} ${JSON.stringify(h)}\n${a.raw}`).toBeLessThan(500);
      // Without the token, only the open paths (and refusals, redirects) come back.
      if (!authorized && a.status >= 200 && a.status < 300) {
        const path = new URL(target.replace(/^([^/])/, '/$1'), 'http://x').pathname;
        expect(['/healthz', '/metrics', '/login'], `${target} served without the token`).toContain(path);
      }
    }
    // Login forms: random, huge and the real token.
    for (let i = 0; i < 50; i++) {
      const body = i === 0 ? 'x'.repeat(10_000) : i === 1 ? `token=${TOKEN}` : `token=${encodeURIComponent(String.fromCharCode(...Array.from({ length: int(r, 60) }, () => int(r, 0x3000))))}`;
      const a = await send(port, `POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      expect(a.status).toBe(i === 0 ? 413 : i === 1 ? 303 : 401);
      if (i === 1) expect(a.raw).toMatch(/set-cookie: appendcast_session=[\w-]+; HttpOnly; SameSite=Strict/i);
    }
    // Raw garbage: the HTTP parser refuses it, the server stays up.
    for (let i = 0; i < 30; i++) {
      const junk = Buffer.from(Array.from({ length: 1 + int(r, 3000) }, () => int(r, 256)));
      const a = await send(port, junk);
      expect(a.status === 0 || (a.status >= 400 && a.status < 500)).toBe(true);
    }
    expect((await send(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status).toBe(200);
    const ok = await send(port, `GET /media/cam1/rec.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=600-1699\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
    expect(ok.status).toBe(206);
    expect(ok.raw).toMatch(/content-range: bytes 600-1699\/5000/i);
    console.log(`http fuzz: ${n} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
    expect(n).toBeGreaterThan(200);
  }, 60_000);
});
