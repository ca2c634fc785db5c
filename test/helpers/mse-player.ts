/**
 * A real-peer MSE player: Debian's Chromium (driven by playwright-core, never a downloaded browser)
 * plays fMP4 through Media Source Extensions, the way a web player would consume our objects.
 *
 * Node cuts the input into init + fragments with the product's own Fmp4Splitter, derives the RFC 6381
 * codecs string from the init segment, and serves a tiny page and the segments from node:http on
 * 127.0.0.1. The page asks `MediaSource.isTypeSupported`, appends the init and then each fragment in
 * order (long-polling for the next one, so a growing/live source works the same way as a file), ends
 * the stream and plays muted. Node polls the page's state and stops at the end, the target time, a
 * media error, a stall or the time budget, whichever comes first; the browser is closed in `finally`.
 */
import { constants as fsConstants } from 'node:fs';
import { access, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { Fmp4Splitter } from '../../src/container/index.js';
import type { InitSegment, MediaFragment, TrackInfo } from '../../src/container/index.js';
import { withTimeout } from './wait.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** The house flags, plus the autoplay policy so a muted <video> plays without a user gesture. */
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

/** True when Debian's Chromium is installed and executable (CI installs it in .ci/run). */
export async function chromiumAvailable(): Promise<boolean> {
  try {
    await access(CHROMIUM_PATH, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// ---------- codecs string from the init segment ----------

export interface InitCodecs {
  /** `video/mp4; codecs="avc1.42c00d,mp4a.40.2"` (audio/mp4 when there is no video track). */
  mime: string;
  /** One RFC 6381 codec per track, in moov order. */
  codecs: string[];
}

interface Box {
  type: string;
  /** Offset of the payload (after the header) and of the end, in the parsed buffer. */
  start: number;
  end: number;
}

function* boxes(b: Buffer, from: number, to: number): Generator<Box> {
  let at = from;
  while (at + 8 <= to) {
    let size = b.readUInt32BE(at);
    const type = b.toString('latin1', at + 4, at + 8);
    let header = 8;
    if (size === 1) {
      if (at + 16 > to) return;
      size = Number(b.readBigUInt64BE(at + 8));
      header = 16;
    } else if (size === 0) {
      size = to - at;
    }
    if (size < header || at + size > to) return;
    yield { type, start: at + header, end: at + size };
    at += size;
  }
}

function child(b: Buffer, parent: Box, type: string): Box | undefined {
  for (const c of boxes(b, parent.start, parent.end)) if (c.type === type) return c;
  return undefined;
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/** avcC → `avc1.PPCCLL` (profile, constraint flags, level), e.g. `avc1.64001e`. */
function avcCodec(entry: string, b: Buffer, avcC: Box): string {
  return `${entry}.${hex2(b[avcC.start + 1]!)}${hex2(b[avcC.start + 2]!)}${hex2(b[avcC.start + 3]!)}`;
}

/**
 * hvcC → ISO/IEC 14496-15 Annex E: `hvc1.[A-C]?profile.compat(bit-reversed hex).{L|H}level.constraints`
 * with trailing zero constraint bytes dropped, e.g. Main@L3.1 `hvc1.1.6.L93.B0`.
 */
function hevcCodec(entry: string, b: Buffer, hvcC: Box): string {
  const p = hvcC.start;
  const byte1 = b[p + 1]!;
  const space = ['', 'A', 'B', 'C'][byte1 >> 6]!;
  const tier = byte1 & 0x20 ? 'H' : 'L';
  const profile = byte1 & 0x1f;
  let compat = b.readUInt32BE(p + 2);
  let reversed = 0;
  for (let i = 0; i < 32; i++) {
    reversed = (reversed << 1) | (compat & 1);
    compat >>>= 1;
  }
  const constraints = [...b.subarray(p + 6, p + 12)];
  while (constraints.length > 0 && constraints[constraints.length - 1] === 0) constraints.pop();
  const level = b[p + 12]!;
  const parts = [entry, `${space}${profile}`, (reversed >>> 0).toString(16), `${tier}${level}`, ...constraints.map((c) => c.toString(16).toUpperCase())];
  return parts.join('.');
}

/** One MPEG-4 descriptor (tag + 7-bit varint size) at `at`. */
function descriptor(b: Buffer, at: number, to: number): { tag: number; start: number; end: number } | undefined {
  if (at + 2 > to) return undefined;
  const tag = b[at]!;
  let size = 0;
  let p = at + 1;
  for (let i = 0; i < 4 && p < to; i++) {
    const c = b[p++]!;
    size = (size << 7) | (c & 0x7f);
    if (!(c & 0x80)) break;
  }
  return p + size <= to ? { tag, start: p, end: p + size } : undefined;
}

/** esds → `mp4a.40.AOT` from the AudioSpecificConfig (AOT 2 = AAC-LC), or `mp4a.OTI` for other audio. */
function mp4aCodec(b: Buffer, esds: Box): string {
  const es = descriptor(b, esds.start + 4, esds.end); // esds is a FullBox: 4 bytes version+flags
  if (!es || es.tag !== 0x03) return 'mp4a.40.2';
  const flags = b[es.start + 2]!;
  let p = es.start + 3;
  if (flags & 0x80) p += 2;
  if (flags & 0x40) p += 1 + b[p]!;
  if (flags & 0x20) p += 2;
  const dc = descriptor(b, p, es.end);
  if (!dc || dc.tag !== 0x04) return 'mp4a.40.2';
  const oti = b[dc.start]!;
  if (oti !== 0x40) return `mp4a.${hex2(oti).toUpperCase()}`;
  const dsi = descriptor(b, dc.start + 13, dc.end);
  if (!dsi || dsi.tag !== 0x05 || dsi.end <= dsi.start) return 'mp4a.40';
  let aot = b[dsi.start]! >> 3;
  if (aot === 31 && dsi.end - dsi.start >= 2) aot = 32 + (((b[dsi.start]! & 0x07) << 3) | (b[dsi.start + 1]! >> 5));
  return `mp4a.40.${aot}`;
}

/** The codec of one stsd sample entry; unknown entries yield their fourcc. */
function sampleEntryCodec(b: Buffer, entry: Box & { type: string }): string {
  const t = entry.type;
  if (t === 'avc1' || t === 'avc3' || t === 'hvc1' || t === 'hev1') {
    // VisualSampleEntry: 6 reserved + 2 data_reference_index + 70 bytes of visual fields.
    const kids = { start: entry.start + 78, end: entry.end, type: t };
    const cfg = child(b, kids, t.startsWith('avc') ? 'avcC' : 'hvcC');
    if (!cfg) return t;
    return t.startsWith('avc') ? avcCodec(t, b, cfg) : hevcCodec(t, b, cfg);
  }
  if (t === 'mp4a') {
    // AudioSampleEntry: 8 + 20 bytes; QuickTime sound versions 1 and 2 carry 16 / 36 more.
    const version = b.readUInt16BE(entry.start + 8);
    const skip = 28 + (version === 1 ? 16 : version === 2 ? 36 : 0);
    const esds = child(b, { start: entry.start + skip, end: entry.end, type: t }, 'esds');
    return esds ? mp4aCodec(b, esds) : 'mp4a.40.2';
  }
  if (t === 'Opus') return 'opus';
  if (t === 'fLaC') return 'flac';
  return t;
}

/** Derives the MSE type from an init segment (ftyp+moov) by reading each track's sample entry. */
export function codecsFromInit(init: Buffer): InitCodecs {
  const codecs: string[] = [];
  let video = false;
  const moov = [...boxes(init, 0, init.length)].find((x) => x.type === 'moov');
  if (!moov) throw new Error('init segment has no moov');
  for (const trak of boxes(init, moov.start, moov.end)) {
    if (trak.type !== 'trak') continue;
    const mdia = child(init, trak, 'mdia');
    const hdlr = mdia && child(init, mdia, 'hdlr');
    const stbl = mdia && child(init, mdia, 'minf');
    const stsd = stbl && child(init, stbl, 'stbl');
    const sd = stsd && child(init, stsd, 'stsd');
    if (!hdlr || !sd) continue;
    const handler = init.toString('latin1', hdlr.start + 8, hdlr.start + 12);
    if (handler !== 'vide' && handler !== 'soun') continue;
    if (handler === 'vide') video = true;
    // stsd is a FullBox (4) with an entry count (4); one entry per track is all ffmpeg writes.
    const first = boxes(init, sd.start + 8, sd.end).next();
    if (!first.done) codecs.push(sampleEntryCodec(init, first.value));
  }
  return { mime: `${video ? 'video' : 'audio'}/mp4; codecs="${codecs.join(',')}"`, codecs };
}

// ---------- the player ----------

export type PlayInput = Buffer | string | AsyncIterable<Uint8Array>;

export interface PlayOptions {
  /** Budget for the whole run, launch to close (default 30 s). */
  timeoutMs?: number;
  /** Stop with reachedTarget once currentTime ≥ this (seconds); default: play to the end. */
  targetTime?: number;
  /** Give up when currentTime has not moved for this long after the last progress or append (default 3 s). */
  stallMs?: number;
  /** Save a PNG of the <video> element (the last frame shown) here. */
  screenshotPath?: string;
  /** Live style: release fragment N to the page no earlier than N × this many ms after the first. */
  appendIntervalMs?: number;
  /** 'zero' (default) plays from 0 as a plain <video> would; 'buffered' seeks to buffered.start(0) first, as hls.js does. */
  startAt?: 'zero' | 'buffered';
  /** Use this MIME type instead of the one derived from the init segment. */
  mime?: string;
}

export interface PlayResult {
  /** The MIME type given to isTypeSupported/addSourceBuffer and its codecs part. */
  mime: string;
  codecs: string;
  isTypeSupported: boolean;
  tracks: TrackInfo[];
  /** Fragments cut from the input, and how many the page appended successfully. */
  fragments: number;
  appended: number;
  /** video.buffered at the end, [start, end] seconds. */
  buffered: Array<[number, number]>;
  /** buffered.start(0) right after the first fragment was appended (null if nothing was buffered). */
  firstBufferedStart: number | null;
  /** video.duration (the MediaSource duration once the stream is ended). */
  duration: number;
  currentTime: number;
  /** The page called endOfStream() after the last fragment. */
  streamEnded: boolean;
  /** The `ended` event fired. */
  ended: boolean;
  /** currentTime reached targetTime (when one was given). */
  reachedTarget: boolean;
  /** Why the run stopped. */
  stopReason: 'ended' | 'target' | 'error' | 'unsupported' | 'stalled' | 'timeout';
  videoWidth: number;
  videoHeight: number;
  /** Every `error` event and failure seen (video, SourceBuffer, MediaSource, appendBuffer, play(), page). */
  errors: string[];
  /** video.error at the end: MediaError code (1 aborted, 2 network, 3 decode, 4 src not supported) and message. */
  videoError: { code: number; message: string } | null;
  /** `error` events of the SourceBuffer (append parse failures land here). */
  sourceBufferErrors: string[];
  /** Timestamped media events (playing, waiting, seeked…), for diagnostics. */
  events: string[];
  /** The page's console error/warning lines. */
  console: string[];
  screenshotPath: string | null;
  elapsedMs: number;
}

/** What the page keeps in window.__mse (see PAGE_SCRIPT); read back with page.evaluate. */
interface PageState {
  phase: string;
  isTypeSupported: boolean | null;
  appended: number;
  streamEnded: boolean;
  ended: boolean;
  errors: string[];
  sbErrors: string[];
  events: string[];
  videoError: { code: number; message: string } | null;
  firstBufferedStart: number | null;
  currentTime: number;
  duration: number;
  buffered: Array<[number, number]>;
  videoWidth: number;
  videoHeight: number;
}

const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>mse</title>
<style>html,body{margin:0;background:#000}video{display:block}</style></head>
<body><video id="v" muted playsinline></video><script src="/player.js"></script></body></html>`;

// Plain JS run in the page (the repo's TS has no DOM lib); every await is bounded by Node's budget.
const PAGE_SCRIPT = `
(async () => {
  const S = window.__mse = { phase: 'start', isTypeSupported: null, appended: 0, streamEnded: false, ended: false,
    errors: [], sbErrors: [], events: [], videoError: null, firstBufferedStart: null };
  const t0 = performance.now();
  const note = (m) => { if (S.events.length < 300) S.events.push((performance.now() - t0).toFixed(0) + 'ms ' + m); };
  const fail = (m) => { if (S.errors.length < 100) S.errors.push(m); note('error ' + m); };
  const video = document.getElementById('v');
  const ranges = (r) => { const a = []; for (let i = 0; i < r.length; i++) a.push([r.start(i), r.end(i)]); return a; };
  window.__snapshot = () => Object.assign({}, S, { currentTime: video.currentTime, duration: video.duration,
    buffered: ranges(video.buffered), videoWidth: video.videoWidth, videoHeight: video.videoHeight,
    videoError: video.error ? { code: video.error.code, message: video.error.message } : null });
  video.addEventListener('error', () => fail('video error ' + (video.error ? video.error.code + ' ' + video.error.message : '?')));
  video.addEventListener('ended', () => { S.ended = true; note('ended at ' + video.currentTime); });
  for (const e of ['loadedmetadata', 'canplay', 'playing', 'waiting', 'stalled', 'seeking', 'seeked', 'pause'])
    video.addEventListener(e, () => note(e + ' t=' + video.currentTime.toFixed(3)));
  try {
    const mr = await fetch('/meta');
    if (!mr.ok) throw new Error('GET /meta: ' + mr.status + ' ' + await mr.text());
    const meta = await mr.json();
    S.isTypeSupported = MediaSource.isTypeSupported(meta.mime);
    if (!S.isTypeSupported) { S.phase = 'unsupported'; return; }
    const ms = new MediaSource();
    ms.addEventListener('sourceended', () => note('sourceended'));
    ms.addEventListener('sourceclose', () => note('sourceclose'));
    video.src = URL.createObjectURL(ms);
    await new Promise((res) => ms.addEventListener('sourceopen', res, { once: true }));
    const sb = ms.addSourceBuffer(meta.mime);
    sb.addEventListener('error', () => { S.sbErrors.push('SourceBuffer error after ' + S.appended + ' fragments'); fail('SourceBuffer error'); });
    sb.addEventListener('abort', () => fail('SourceBuffer abort'));
    const append = (bytes) => new Promise((res, rej) => {
      const done = () => { sb.removeEventListener('error', bad); res(); };
      const bad = () => { sb.removeEventListener('updateend', done); rej(new Error('append failed')); };
      sb.addEventListener('updateend', done, { once: true });
      sb.addEventListener('error', bad, { once: true });
      sb.appendBuffer(bytes);
    });
    S.phase = 'init';
    await append(await (await fetch('/init')).arrayBuffer());
    S.phase = 'media';
    for (let i = 0; ; i++) {
      const r = await fetch('/seg/' + i);
      if (r.status === 204) break;
      if (!r.ok) throw new Error('GET /seg/' + i + ': ' + r.status);
      await append(await r.arrayBuffer());
      S.appended++;
      note('appended ' + i + ' buffered=' + JSON.stringify(ranges(video.buffered).map((r) => r.map((x) => +x.toFixed(3)))));
      if (i === 0) {
        S.firstBufferedStart = video.buffered.length ? video.buffered.start(0) : null;
        if (meta.startAt === 'buffered' && video.buffered.length) video.currentTime = video.buffered.start(0);
        video.play().catch((e) => fail('play(): ' + e));
      }
    }
    if (ms.readyState === 'open') { ms.endOfStream(); S.streamEnded = true; }
    S.phase = 'done';
  } catch (e) {
    fail(String(e && e.message || e));
    S.phase = 'failed';
  }
})();
`;

/** Feeds the splitter from the input; `waiters` are woken whenever a fragment or the end arrives. */
class SegmentFeed {
  init: InitSegment | null = null;
  readonly fragments: MediaFragment[] = [];
  done = false;
  error: Error | null = null;
  private closed = false;
  private waiters: Array<() => void> = [];

  constructor(input: PlayInput) {
    void this.run(input);
  }

  private async run(input: PlayInput): Promise<void> {
    const splitter = new Fmp4Splitter();
    try {
      const source: AsyncIterable<Uint8Array> | Uint8Array[] =
        typeof input === 'string' ? [await readFile(input)] : Buffer.isBuffer(input) ? [input] : input;
      for await (const chunk of source) {
        // Stop pulling from a live source once the player is done (break ends the iterator).
        if (this.closed) break;
        this.take(splitter.push(chunk));
      }
      if (!this.closed) this.take(splitter.flush());
    } catch (err) {
      this.error = err instanceof Error ? err : new Error(String(err));
    }
    this.done = true;
    this.wake();
  }

  private take(outs: ReturnType<Fmp4Splitter['push']>): void {
    for (const o of outs) {
      if (o.type === 'init') this.init ??= o;
      else if (o.type === 'fragment') this.fragments.push(o);
    }
    if (outs.length > 0) this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  close(): void {
    this.closed = true;
    this.wake();
  }

  /** Resolves when something changed or after `ms`, whichever is first. */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => { clearTimeout(t); resolve(); });
    });
  }
}

/** Starts the page server; it answers until `close`. Segment requests wait for the feed (bounded by `deadline`). */
async function servePage(feed: SegmentFeed, o: PlayOptions, deadline: number, meta: () => { mime: string }): Promise<Server> {
  const t0 = Date.now();
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    const send = (status: number, type: string, body?: Buffer | string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (url === '/') return send(200, 'text/html', PAGE_HTML);
    if (url === '/player.js') return send(200, 'text/javascript', PAGE_SCRIPT);
    if (url === '/favicon.ico') return send(204, 'image/x-icon');
    if (url === '/meta' || url === '/init') {
      while (!feed.init && !feed.done && Date.now() < deadline) await feed.changed(deadline - Date.now());
      if (!feed.init) return send(503, 'text/plain', `no init segment${feed.error ? ': ' + feed.error.message : ''}`);
      if (url === '/init') return send(200, 'application/octet-stream', feed.init.bytes);
      return send(200, 'application/json', JSON.stringify({ mime: meta().mime, startAt: o.startAt ?? 'zero' }));
    }
    const m = /^\/seg\/(\d+)$/.exec(url);
    if (m) {
      const n = Number(m[1]);
      if (o.appendIntervalMs) {
        const due = t0 + n * o.appendIntervalMs;
        if (due > Date.now()) await delay(Math.min(due - Date.now(), Math.max(0, deadline - Date.now()))); // pacing: appendIntervalMs
      }
      while (feed.fragments.length <= n && !feed.done && Date.now() < deadline) await feed.changed(deadline - Date.now());
      const f = feed.fragments[n];
      return f ? send(200, 'application/octet-stream', f.bytes) : send(204, 'text/plain');
    }
    send(404, 'text/plain', 'not found');
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => { if (!res.headersSent) res.writeHead(500); res.end(String(err)); });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return server;
}

/** PIDs whose command line names `marker` (our unique profile dir): Chromium's helpers, if any outlived close(). */
async function pidsMentioning(marker: string): Promise<number[]> {
  const out: number[] = [];
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if ((await readFile(`/proc/${p}/cmdline`, 'latin1')).includes(marker)) out.push(Number(p));
    } catch {
      // gone already
    }
  }
  return out;
}

/** Plays fMP4 (bytes, a file path, or a growing byte stream) in Chromium via MSE and reports what happened. */
export async function playInChromium(input: PlayInput, opts: PlayOptions = {}): Promise<PlayResult> {
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = started + timeoutMs;
  const stallMs = opts.stallMs ?? 3_000;
  const feed = new SegmentFeed(input);
  let mimeCache: InitCodecs | null = null;
  // Only called once the feed has an init segment; a moov we cannot read throws (the page gets a 500).
  const meta = (): InitCodecs => (mimeCache ??= opts.mime
    ? { mime: opts.mime, codecs: [] }
    : codecsFromInit(feed.init!.bytes));

  const profile = await mkdtemp(join(tmpdir(), 'appendcast-chromium-'));
  const consoleLines: string[] = [];
  let server: Server | null = null;
  let context: BrowserContext | null = null;
  let state: PageState | null = null;
  let stopReason: PlayResult['stopReason'] = 'timeout';
  let reachedTarget = false;
  let screenshotPath: string | null = null;
  const errors: string[] = [];
  try {
    server = await servePage(feed, opts, deadline, meta);
    const port = (server.address() as AddressInfo).port;
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: Math.max(1_000, Math.min(20_000, deadline - Date.now())),
      viewport: { width: 640, height: 480 },
    });
    const page: Page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if ((m.type() === 'error' || m.type() === 'warning') && consoleLines.length < 100) consoleLines.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('crash', () => errors.push('renderer crashed'));
    await page.goto(`http://127.0.0.1:${port}/`, { timeout: Math.max(1_000, deadline - Date.now()) });

    // Bounded polling: at most timeoutMs / 100 rounds.
    let lastTime = -1;
    let lastMove = Date.now();
    let lastAppended = 0;
    for (let round = 0; round < Math.ceil(timeoutMs / 100) + 1 && Date.now() < deadline; round++) {
      state = await withTimeout(page.evaluate('window.__snapshot ? window.__snapshot() : null') as Promise<PageState | null>, 5_000, 'page state');
      if (state) {
        if (state.currentTime !== lastTime || state.appended !== lastAppended) {
          lastTime = state.currentTime;
          lastAppended = state.appended;
          lastMove = Date.now();
        }
        if (state.phase === 'unsupported') { stopReason = 'unsupported'; break; }
        if (state.videoError || state.phase === 'failed' || state.sbErrors.length > 0) { stopReason = 'error'; break; }
        if (opts.targetTime !== undefined && state.currentTime >= opts.targetTime) { reachedTarget = true; stopReason = 'target'; break; }
        if (state.ended) { stopReason = 'ended'; break; }
        if (Date.now() - lastMove > stallMs) { stopReason = 'stalled'; break; }
      }
      await delay(100); // the page's state is sampled every 100 ms (a stall is no movement for stallMs)
    }
    // Read once more so the result shows the state at the stop, errors included.
    state = (await withTimeout(page.evaluate('window.__snapshot ? window.__snapshot() : null') as Promise<PageState | null>, 5_000, 'page state')) ?? state;
    if (opts.screenshotPath) {
      try {
        await withTimeout(page.locator('video').screenshot({ path: opts.screenshotPath, timeout: 5_000 }), 6_000, 'screenshot');
        screenshotPath = opts.screenshotPath;
      } catch (err) {
        errors.push(`screenshot: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  } catch (err) {
    errors.push(`harness: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    feed.close();
    if (context) await withTimeout(context.close(), 10_000, 'browser close').catch((err: unknown) => errors.push(String(err)));
    // Safety net: playwright kills its process group on close; anything still naming our profile is ours.
    for (const pid of await pidsMentioning(profile)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server!.close(() => resolve()));
    }
    await rm(profile, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
  }
  if (feed.error) errors.push(`splitter: ${feed.error.message}`);
  let m: InitCodecs = { mime: opts.mime ?? '', codecs: [] };
  try {
    if (feed.init) m = meta();
  } catch (err) {
    errors.push(`codecs: ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    mime: m.mime,
    codecs: /codecs="([^"]*)"/.exec(m.mime)?.[1] ?? '',
    isTypeSupported: state?.isTypeSupported ?? false,
    tracks: feed.init?.tracks ?? [],
    fragments: feed.fragments.length,
    appended: state?.appended ?? 0,
    buffered: state?.buffered ?? [],
    firstBufferedStart: state?.firstBufferedStart ?? null,
    duration: state?.duration ?? Number.NaN,
    currentTime: state?.currentTime ?? 0,
    streamEnded: state?.streamEnded ?? false,
    ended: state?.ended ?? false,
    reachedTarget,
    stopReason,
    videoWidth: state?.videoWidth ?? 0,
    videoHeight: state?.videoHeight ?? 0,
    errors: [...(state?.errors ?? []), ...errors],
    videoError: state?.videoError ?? null,
    sourceBufferErrors: state?.sbErrors ?? [],
    events: state?.events ?? [],
    console: consoleLines,
    screenshotPath,
    elapsedMs: Date.now() - started,
  };
}

/** Asks one Chromium, with no media loaded, which MIME types MSE accepts. */
export async function mseTypeSupport(types: readonly string[], timeoutMs = 20_000): Promise<Record<string, boolean>> {
  const profile = await mkdtemp(join(tmpdir(), 'appendcast-chromium-'));
  let context: BrowserContext | null = null;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: timeoutMs });
    const page = context.pages()[0] ?? (await context.newPage());
    const answers = await withTimeout(
      page.evaluate(`(${JSON.stringify(types)}).map((t) => MediaSource.isTypeSupported(t))`) as Promise<boolean[]>,
      timeoutMs, 'isTypeSupported',
    );
    return Object.fromEntries(types.map((t, i) => [t, answers[i] === true]));
  } finally {
    if (context) await withTimeout(context.close(), 10_000, 'browser close').catch(() => undefined);
    for (const pid of await pidsMentioning(profile)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    await rm(profile, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
  }
}
