/**
 * Scale benchmark: the gateway as its own process against N real-time cameras, one run, with the
 * cost per camera AND the proof that every camera's bytes arrived:
 *
 *   npm run bench:scale -- --cameras N --seconds S [--store fs|oss] [--warmup W] [--no-bare]
 *                          [--cpu-prof] [--keep] [--stagger-ms MS] [--drain-timeout S] [--sample K]
 *                          [--log-level L] [--dir SCRATCH] [--ffmpeg PATH] [--source-seconds 40]
 *
 * Defaults: 10 cameras, 30 s window, 10 s warm-up, fs store, starts staggered over max(2 s, 20 ms
 * per camera), drain bounded at 120 s, 5 streams decoded. --cpu-prof profiles the gateway (it costs
 * CPU: take the figures from a run without it); --keep keeps the run directory (configs, logs,
 * objects) under os.tmpdir()/appendcast-bench/ (or --dir).
 *
 * - The gateway: `node dist/cli.js run` (src/ compiled by tsc into a cache, ./bench/build.ts) on a
 *   generated config: N streams, native remux, default durability (spool fsync always, fs store
 *   fsync always). --store oss: `serve-oss` (fsync always) as a separate process stands in for OSS,
 *   and is measured apart: it is not the gateway's cost.
 * - The cameras: ONE load generator process (./bench/loadgen.ts) publishing N streams from a cached
 *   720p25 2 Mbit/s FLV in real time, starts staggered. After the warm-up a window of S seconds is
 *   measured: /proc CPU (utime+stime+cutime+cstime of the gateway tree, its main thread, the load
 *   generator, serve-oss), RSS/PSS, and /metrics (lag per stream, fragment ack latency, event-loop
 *   delay).
 * - Then the cameras unpublish, the gateway drains (bounded), gets SIGTERM, and per camera the bytes
 *   in the store (every object, index excluded) must equal what the gateway spooled (API
 *   `spooledBytes`); a sample of streams is decoded (0 error lines) and its stored duration compared
 *   with what the load generator sent.
 * - The bare-ffmpeg baseline in the same run (N × ffmpeg -re -c copy to fragmented MP4), unless
 *   --no-bare: the per-camera ratios.
 *
 * Results: bench/results/scale-<timestamp>.{json,md}; the Markdown is printed too. Every process is
 * tracked and killed by PID on exit or SIGINT; every wait is bounded; the run has a hard deadline.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/net.js';
import { runBare } from './bench/bare.js';
import { buildCheckout } from './bench/build.js';
import { profileTopFile, type ProfileTop } from './bench/cpuprof-top.js';
import { GatewayProcess, pendingOf, type ApiStream } from './bench/gateway-proc.js';
import { gitDirty, gitHead } from './bench/git.js';
import { windowQuantiles } from './bench/hist-window.js';
import { Loadgen } from './bench/loadgen-proc.js';
import { MemSampler } from './bench/mem-sampler.js';
import { mb, nullable, round, sleep, tick } from './bench/num.js';
import { killAll, killAllOnExit, stopProcess } from './bench/procs.js';
import { percentile, perStream, sum, type Sample } from './bench/prom.js';
import { machineCpu, mainThreadCpu, treeCpu, type TreeCpu } from './bench/proc-stats.js';
import { checkSample, compareStoredSpooled, listStored, sampleIds, SentMedia, type SampleCheck } from './bench/scale-check.js';
import { scaleMarkdown, type BareFigures, type GatewayFigures, type PeerFigures, type ScaleResult } from './bench/scale-report.js';
import { startServeOss, type ServeOss } from './bench/serve-oss-proc.js';
import { sourceFlv, type SourceInfo } from './bench/source-flv.js';

const ROOT = new URL('..', import.meta.url).pathname;

// ---------------------------------------------------------------------------------------------
// Options

const { values } = parseArgs({
  options: {
    cameras: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '30' },
    store: { type: 'string', default: 'fs' },
    warmup: { type: 'string', default: '10' },
    'no-bare': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'stagger-ms': { type: 'string' },
    'drain-timeout': { type: 'string', default: '120' },
    sample: { type: 'string', default: '5' },
    'source-seconds': { type: 'string', default: '40' },
    'log-level': { type: 'string', default: 'info' },
    dir: { type: 'string' },
    ffmpeg: { type: 'string', default: process.env['FFMPEG_PATH'] ?? '/usr/bin/ffmpeg' },
  },
});
const N = Number(values.cameras);
const S = Number(values.seconds);
const WARMUP = Number(values.warmup);
const STORE = values.store;
// Real cameras do not all connect in the same second; at large N a 2 s burst of handshakes would
// still be settling in the window. Default: 2 s, or 20 ms per camera when that is longer.
const STAGGER_MS = values['stagger-ms'] !== undefined ? Number(values['stagger-ms']) : Math.max(2000, 20 * N);
const DRAIN_S = Number(values['drain-timeout']);
const SAMPLE = Number(values.sample);
const FFMPEG = values.ffmpeg;
if (!Number.isInteger(N) || N < 1 || N > 1000) throw new Error('--cameras: 1..1000');
if (!(S >= 5 && S <= 3600)) throw new Error('--seconds: 5..3600');
if (!(WARMUP >= 0 && WARMUP <= 300)) throw new Error('--warmup: 0..300');
if (STORE !== 'fs' && STORE !== 'oss') throw new Error('--store: fs | oss');
if (!(STAGGER_MS >= 0 && STAGGER_MS <= 600_000)) throw new Error('--stagger-ms: 0..600000');
if (!(DRAIN_S >= 1 && DRAIN_S <= 1800)) throw new Error('--drain-timeout: 1..1800 (s)');
if (!Number.isInteger(SAMPLE) || SAMPLE < 1 || SAMPLE > 100) throw new Error('--sample: 1..100');

const streamIds = Array.from({ length: N }, (_, i) => `cam${String(i).padStart(3, '0')}`);
const keyOf = (id: string) => `k-${id}`;
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = join(ROOT, 'bench/results');

/** Everything one gateway run may take: each phase's own bound, plus build, decodes and slack. */
const PHASE_S = STAGGER_MS / 1000 + WARMUP + S;
const DEADLINE_S = 300 + PHASE_S + 30 + DRAIN_S + 40 + (values['no-bare'] ? 0 : PHASE_S + 30) + N;

// ---------------------------------------------------------------------------------------------
// Processes we start are killed by PID however we end; the scratch directory goes too (unless --keep).

let scratch: string | undefined;
const removeScratch = () => {
  if (scratch && !values.keep) rmSync(scratch, { recursive: true, force: true });
};
killAllOnExit(removeScratch);

// ---------------------------------------------------------------------------------------------
// The store and the gateway's config

interface StoreSetup {
  /** the `storage:` block of the config */
  yaml: string[];
  /** environment of the gateway (and of our listing client): the OSS credentials */
  env: Record<string, string | undefined>;
  /** where the objects' bytes are on disk (key = path under it), for the decoder */
  dataDir: string;
  serveOss: ServeOss | null;
}

async function setupStore(cli: string, dir: string): Promise<StoreSetup> {
  if (STORE === 'fs') {
    // kind fs with its defaults: fsync always.
    return { yaml: ['storage:', '  kind: fs', `  root: ${dir}/objects`], env: {}, dataDir: join(dir, 'objects'), serveOss: null };
  }
  const bucket = 'bench';
  const creds = { OSS_ACCESS_KEY_ID: `bench-${randomBytes(4).toString('hex')}`, OSS_ACCESS_KEY_SECRET: randomBytes(16).toString('hex') };
  const root = join(dir, 'oss');
  const serveOss = await startServeOss({ cli, root, bucket, accessKeyId: creds.OSS_ACCESS_KEY_ID, accessKeySecret: creds.OSS_ACCESS_KEY_SECRET, logFile: join(dir, 'serve-oss.log'), timeoutMs: 30_000 });
  return {
    yaml: ['storage:', '  kind: oss', `  endpoint: ${serveOss.url}`, `  bucket: ${bucket}`, '  region: cn-hangzhou', '  pathStyle: true'],
    // An STS token from our own environment would be sent along and fail the signature: not ours.
    env: { ...creds, OSS_SESSION_TOKEN: undefined },
    dataDir: join(root, bucket),
    serveOss,
  };
}

function gatewayYaml(o: { dir: string; rtmp: number; http: number; storage: string[] }): string {
  const lines = [
    `dataDir: ${o.dir}/data`,
    'log:', `  level: ${values['log-level']}`,
    'server:',
    '  rtmp:', '    host: 127.0.0.1', `    port: ${o.rtmp}`,
  ];
  // Every camera comes from 127.0.0.1: lift the per-address limit (default 100) above N.
  if (N > 90) lines.push('    limits:', `      maxConnectionsPerAddress: ${N + 10}`, `      maxConnections: ${Math.max(1000, N + 10)}`);
  lines.push('  http:', '    host: 127.0.0.1', `    port: ${o.http}`, 'ffmpeg:', `  path: ${FFMPEG}`, ...o.storage, 'streamDefaults:', '  remux: native', 'streams:');
  for (const id of streamIds) lines.push(`  - id: ${id}`, `    key: ${keyOf(id)}`);
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// The window

interface Reading {
  gw: TreeCpu;
  main: number;
  lg: TreeCpu | undefined;
  peer: TreeCpu | undefined;
  machineBusy: number;
  t: number;
  /** process.hrtime in µs: the clock of V8's CPU profiles */
  hrUs: number;
}

function read(gwPid: number, lgPid: number, peerPid: number | null): Reading {
  const gw = treeCpu(gwPid);
  if (!gw) throw new Error('the gateway is gone (see gateway.log)');
  return {
    gw, main: mainThreadCpu(gwPid) ?? 0, lg: treeCpu(lgPid), peer: peerPid === null ? undefined : treeCpu(peerPid),
    machineBusy: machineCpu().busy, t: performance.now(), hrUs: Number(process.hrtime.bigint() / 1000n),
  };
}

const cpuOf = (t: TreeCpu | undefined) => (t ? t.root + t.children : undefined);

/** One scrape interval's event-loop delay, if the gateway exports it (prom-client default metrics). */
function eventLoopOf(m: readonly Sample[]): { p99: number; max: number } | undefined {
  if (!m.some((x) => x.name === 'appendcast_nodejs_eventloop_lag_p99_seconds')) return undefined;
  return { p99: sum(m, 'appendcast_nodejs_eventloop_lag_p99_seconds'), max: sum(m, 'appendcast_nodejs_eventloop_lag_max_seconds') };
}

interface WindowData {
  r0: Reading;
  r1: Reading;
  m0: Sample[];
  m1: Sample[];
  pub0: number;
  pub1: number;
  lags: number[];
  eventLoop: Array<{ p99: number; max: number }>;
  mem: MemSampler;
  peerMem: MemSampler | null;
  loadgenElu: number | null;
}

const publishingOf = (api: readonly ApiStream[]) => api.filter((s) => s.publishing).length;

/** S seconds: CPU at both ends, memory and /metrics every 1.5–2.5 s (jittered against the 1 s fragment cadence). */
async function measureWindow(gw: GatewayProcess, lg: Loadgen, peerPid: number | null): Promise<WindowData> {
  lg.mark();
  const mem = new MemSampler(gw.pid);
  const peerMem = peerPid === null ? null : new MemSampler(peerPid);
  // This scrape also resets the event-loop histogram: the intervals below are the window's own.
  const m0 = await gw.metrics();
  const pub0 = publishingOf(await gw.streams());
  const r0 = read(gw.pid, lg.pid, peerPid);
  const lags: number[] = [];
  const eventLoop: WindowData['eventLoop'] = [];
  const scrape = async () => {
    const m = await gw.metrics();
    for (const v of perStream(m, 'appendcast_lag_seconds').values()) lags.push(v);
    const el = eventLoopOf(m);
    if (el) eventLoop.push(el);
    return m;
  };
  const left = () => S * 1000 - (performance.now() - r0.t);
  while (left() > 1000) {
    await Promise.race([tick(), sleep(Math.max(0, left()))]);
    if (left() <= 0) break;
    mem.sample();
    peerMem?.sample();
    await scrape();
  }
  await sleep(Math.max(0, left()));
  const r1 = read(gw.pid, lg.pid, peerPid);
  const m1 = await scrape();
  const pub1 = publishingOf(await gw.streams());
  const stats = await lg.stats();
  return { r0, r1, m0, m1, pub0, pub1, lags, eventLoop, mem, peerMem, loadgenElu: stats ? round(stats.eventLoopUtilization, 3) : null };
}

function windowFigures(w: WindowData): Omit<GatewayFigures, 'published' | 'refused' | 'drain' | 'shutdown' | 'profile'> {
  const wall = (w.r1.t - w.r0.t) / 1000;
  const pct = (a: number, b: number) => round((100 * (b - a)) / wall, 2);
  const processPct = pct(w.r0.gw.root, w.r1.gw.root);
  const childrenPct = pct(w.r0.gw.children, w.r1.gw.children);
  const totalPct = round(processPct + childrenPct, 2);
  const childComms: Record<string, number> = {};
  for (const c of w.r1.gw.childComms) childComms[c] = (childComms[c] ?? 0) + 1;
  const ms = w.mem.stats();
  const p99s = w.eventLoop.map((e) => e.p99 * 1000);
  const delta = (name: string) => sum(w.m1, name) - sum(w.m0, name);
  return {
    publishingAtStart: w.pub0, publishingAtEnd: w.pub1, windowSeconds: round(wall, 2),
    cpu: { totalPct, perCameraPct: round(totalPct / N, 3), processPct, mainThreadPct: pct(w.r0.main, w.r1.main), childrenPct, childComms },
    mem: { ...ms, rssMB: round(ms.gatewayRssMB + ms.childrenRssMB, 1), pssMB: ms.totalPssMB, perCameraPssMB: round(ms.totalPssMB / N, 2) },
    eventLoop: {
      intervals: p99s.length, p99msMedian: nullable(percentile(p99s, 50), 1), p99msWorst: p99s.length ? round(Math.max(...p99s), 1) : null,
      maxms: w.eventLoop.length ? round(Math.max(...w.eventLoop.map((e) => e.max * 1000)), 1) : null,
    },
    lag: { samples: w.lags.length, p50s: nullable(percentile(w.lags, 50)), p99s: nullable(percentile(w.lags, 99)), maxs: w.lags.length ? round(Math.max(...w.lags), 3) : null },
    fragmentAck: windowQuantiles(w.m0, w.m1, 'appendcast_fragment_ack_latency_seconds'),
    append: windowQuantiles(w.m0, w.m1, 'appendcast_append_duration_seconds'),
    counters: {
      fragments: delta('appendcast_fragments_total'), appends: delta('appendcast_appends_total'), appendErrors: delta('appendcast_append_errors_total'),
      droppedBytes: delta('appendcast_dropped_bytes_total'), rejectedPublishes: sum(w.m1, 'appendcast_rejected_publishes_total'),
      rtmpProtocolErrors: sum(w.m1, 'appendcast_rtmp_protocol_errors_total'), ingestMB: mb(delta('appendcast_ingest_bytes_total')),
    },
    machineBusyPct: pct(w.r0.machineBusy, w.r1.machineBusy),
  };
}

function peerFigures(w: WindowData): PeerFigures | null {
  if (!w.peerMem) return null;
  const wall = (w.r1.t - w.r0.t) / 1000;
  const a = cpuOf(w.r0.peer);
  const b = cpuOf(w.r1.peer);
  const m = w.peerMem.stats();
  return { cpuPct: a !== undefined && b !== undefined ? round((100 * (b - a)) / wall, 2) : -1, rssMB: round(m.gatewayRssMB + m.childrenRssMB, 1), pssMB: m.totalPssMB };
}

function loadgenPct(w: WindowData): number | null {
  const a = cpuOf(w.r0.lg);
  const b = cpuOf(w.r1.lg);
  return a !== undefined && b !== undefined ? round((100 * (b - a)) / ((w.r1.t - w.r0.t) / 1000), 2) : null;
}

// ---------------------------------------------------------------------------------------------
// After the window: unpublish, drain, stop, check

/** Polls the API until nothing publishes and no session is draining or unfinished, at most DRAIN_S. */
async function drain(gw: GatewayProcess): Promise<{ api: ApiStream[]; fig: GatewayFigures['drain'] }> {
  const t0 = performance.now();
  for (;;) {
    const api = await gw.streams();
    const pending = pendingOf(api);
    const done = pending.publishing === 0 && pending.draining === 0 && pending.unfinished === 0;
    const seconds = round((performance.now() - t0) / 1000, 2);
    if (done || seconds > DRAIN_S) return { api, fig: { seconds, timedOut: !done, pending } };
    await sleep(250);
  }
}

async function cpuProfile(dir: string, r0: Reading, r1: Reading, notes: string[]): Promise<ProfileTop | undefined> {
  const f = (await readdir(dir)).find((x) => x.endsWith('.cpuprofile'));
  if (!f) {
    notes.push('no .cpuprofile written');
    return undefined;
  }
  const name = `scale-${stamp}-N${N}-${STORE}.cpuprofile`;
  await copyFile(join(dir, f), join(outDir, name));
  notes.push(`CPU profile (top list: window only): bench/results/${name}`);
  return profileTopFile(join(dir, f), { fromUs: r0.hrUs, toUs: r1.hrUs, top: 30 });
}

/** Expected (sent) media per sampled stream and the decode of what is stored. */
async function checkSamples(o: { src: SourceInfo; accepted: Map<string, number>; stopAt: number | undefined; dataDir: string; checks: ReturnType<typeof compareStoredSpooled>; listed: Awaited<ReturnType<typeof listStored>> }): Promise<SampleCheck[]> {
  const sent = new SentMedia(o.src.path);
  const out: SampleCheck[] = [];
  for (const id of sampleIds(streamIds, SAMPLE)) {
    const at = o.accepted.get(id);
    const sentSeconds = at !== undefined && o.stopAt !== undefined ? sent.secondsAt(o.stopAt - at) : null;
    out.push(await checkSample({ ffmpeg: FFMPEG, stream: id, check: o.checks.find((c) => c.stream === id)!, listed: o.listed, dataDir: o.dataDir, sentSeconds }));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The run

type GatewayRun = Pick<ScaleResult, 'gateway' | 'serveOss' | 'loadgen' | 'stored' | 'sample' | 'notes'>;

async function runGateway(src: SourceInfo, cli: string, dir: string): Promise<GatewayRun> {
  const notes: string[] = [];
  await mkdir(dir, { recursive: true });
  const store = await setupStore(cli, dir);
  const [rtmp, http] = [await freePort(), await freePort()];
  const config = join(dir, 'appendcast.yaml');
  await writeFile(config, gatewayYaml({ dir, rtmp, http, storage: store.yaml }));
  const logFile = join(dir, 'gateway.log');
  const gw = new GatewayProcess({ cli, config, cwd: dir, httpPort: http, logFile, env: store.env, ...(values['cpu-prof'] ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir] } : {}) });
  await gw.ready(30_000, logFile);

  const lg = new Loadgen({
    port: rtmp, app: 'live', flv: src.path, streams: streamIds.map((id) => ({ id, key: keyOf(id) })), staggerMs: STAGGER_MS,
    maxSeconds: PHASE_S + 60, chunkSize: 4096,
  }, { cwd: dir, logFile: join(dir, 'loadgen.log') });
  const { accepted, refused } = await lg.published(N, STAGGER_MS + 30_000);
  console.log(`   ${accepted.size}/${N} publishing; warm-up ${WARMUP} s, then the ${S} s window`);
  await sleep(Math.max(0, Math.max(0, ...accepted.values()) + WARMUP * 1000 - Date.now()));

  const w = await measureWindow(gw, lg, store.serveOss?.proc.pid ?? null);
  console.log('   window done: unpublishing, draining');
  const lgEnd = await lg.stop(15_000);
  if (lgEnd.ended.killed) notes.push('load generator had to be killed');
  if (!lgEnd.atStop) notes.push('load generator sent no stats when it stopped: sent media unknown');
  const { api, fig: drained } = await drain(gw);
  if (drained.timedOut) notes.push(`drain did not finish within ${DRAIN_S} s: ${JSON.stringify(drained.pending)}`);
  const shutdown = await stopProcess(gw.proc, 30_000);
  if (shutdown.code !== 0) notes.push(`gateway exit: ${shutdown.code ?? shutdown.signal}${shutdown.killed ? ' (killed after 30 s)' : ''}`);

  console.log('   checking stored vs spooled, decoding a sample');
  const listed = await listStored(config, { ...process.env, ...store.env });
  const checks = compareStoredSpooled(streamIds, api, listed);
  const sample = await checkSamples({ src, accepted, stopAt: lgEnd.atStop?.at, dataDir: store.dataDir, checks, listed });
  if (store.serveOss) {
    const end = await stopProcess(store.serveOss.proc, 10_000);
    if (end.code !== 0) notes.push(`serve-oss exit: ${end.code ?? end.signal}`);
  }
  const profile = values['cpu-prof'] ? await cpuProfile(dir, w.r0, w.r1, notes) : undefined;
  return {
    gateway: { ...windowFigures(w), published: accepted.size, refused, drain: drained, shutdown, ...(profile ? { profile } : {}) },
    serveOss: peerFigures(w),
    loadgen: { cpuPct: loadgenPct(w), eventLoopUtilization: w.loadgenElu, closedEarly: lg.closedEarly(), stop: lgEnd.ended },
    stored: { matched: checks.filter((c) => c.match).length, cameras: N, perCamera: checks },
    sample, notes,
  };
}

async function runBaseline(src: SourceInfo, dir: string): Promise<BareFigures> {
  const b = await runBare({ ffmpeg: FFMPEG, flv: src.path, ids: streamIds, staggerMs: STAGGER_MS, warmupSeconds: WARMUP, windowSeconds: S, dir, decodeIds: sampleIds(streamIds, 3) });
  return {
    cpuPct: b.cpuPct, perCameraPct: round(b.cpuPct / N, 3), rssMB: b.mem.childrenRssMB, pssMB: b.mem.totalPssMB, perCameraPssMB: round(b.mem.totalPssMB / N, 2),
    alive: b.alive, decode: b.decode, machineBusyPct: b.machineBusyPct, notes: b.notes,
  };
}

interface Tree {
  date: string;
  head: string;
  /** uncommitted changes under src/ */
  dirty: string[];
}

function meta(src: SourceInfo, buildNotes: string[], { date, head, dirty }: Tree): ScaleResult['meta'] {
  return {
    date,
    machine: `${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), ${round(totalmem() / 2 ** 30, 1)} GB, Linux ${release()}`,
    node: process.version,
    ffmpeg: execFileSync(FFMPEG, ['-hide_banner', '-version'], { encoding: 'utf8' }).split('\n')[0]!,
    gateway: `node dist/cli.js run, src/ compiled by tsc (tsconfig.build.json) into a cache under os.tmpdir() (main at ${head}${dirty.length ? `, working tree with ${dirty.length} uncommitted change(s) under src/` : ''}); native remux; ` +
      `spool and store fsync always (default durability); ${STORE === 'oss' ? 'oss store → serve-oss (separate process, fsync always, path-style, V4 signatures)' : 'fs store'}; log level ${values['log-level']}` +
      `${values['cpu-prof'] ? '; run with --cpu-prof (profiling costs CPU: not for the figures)' : ''}${buildNotes.length ? `; ${buildNotes.join('; ')}` : ''}`,
    source: `${src.seconds} s 720p25 H.264 (1 s GOP) + AAC FLV, ${round(src.bitsPerSecond / 1e6, 2)} Mbit/s, looped`,
    cameras: N, store: STORE as 'fs' | 'oss', windowSeconds: S, warmupSeconds: WARMUP, staggerMs: STAGGER_MS,
    command: `npm run bench:scale -- ${process.argv.slice(2).join(' ')}`.trim(),
  };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  // The tree as it is when the build happens (someone may commit while we run).
  const tree: Tree = { date: new Date().toISOString(), head: gitHead(ROOT), dirty: gitDirty(ROOT) };
  const deadline = setTimeout(() => {
    console.error(`bench:scale passed its deadline (${DEADLINE_S} s): killing what it started`);
    killAll();
    removeScratch();
    process.exit(1);
  }, DEADLINE_S * 1000).unref();
  const parent = values.dir ?? join(tmpdir(), 'appendcast-bench');
  await mkdir(parent, { recursive: true });
  scratch = await mkdtemp(join(parent, `scale-${stamp}-`));
  await mkdir(outDir, { recursive: true });
  const src = await sourceFlv(FFMPEG, Number(values['source-seconds']));
  const buildNotes: string[] = [];
  const cli = await buildCheckout(ROOT, buildNotes);
  console.log(`== gateway: ${N} cameras, store ${STORE}, stagger ${STAGGER_MS} ms, warm-up ${WARMUP} s, window ${S} s (deadline ${Math.round(DEADLINE_S)} s)`);
  const g = await runGateway(src, cli, join(scratch, 'gateway'));
  let bare: BareFigures | null = null;
  if (!values['no-bare']) {
    console.log(`== bare: ${N} × ffmpeg -c copy`);
    bare = await runBaseline(src, join(scratch, 'bare'));
  }
  const result: ScaleResult = {
    meta: meta(src, buildNotes, tree), ...g, bare,
    ratioToBare: bare && bare.perCameraPct > 0 && bare.perCameraPssMB > 0
      ? { cpuPerCamera: round(g.gateway.cpu.perCameraPct / bare.perCameraPct, 2), pssPerCamera: round(g.gateway.mem.perCameraPssMB / bare.perCameraPssMB, 2) }
      : null,
    totalSeconds: round((performance.now() - t0) / 1000, 1),
  };
  const md = scaleMarkdown(result);
  const name = `scale-${stamp}`;
  await writeFile(join(outDir, `${name}.json`), JSON.stringify(result, null, 2));
  await writeFile(join(outDir, `${name}.md`), md);
  console.log('\n' + md);
  console.log(`written to bench/results/${name}.{json,md} in ${result.totalSeconds} s${values.keep ? `; run directory kept: ${scratch}` : ''}`);
  if (!values.keep) await rm(scratch, { recursive: true, force: true });
  clearTimeout(deadline);
}

try {
  await main();
} catch (err) {
  // Keep the run directory: its gateway.log / serve-oss.log / loadgen.log say what went wrong.
  console.error('bench:scale failed:', err);
  killAll();
  if (scratch) console.error(`run directory (logs): ${scratch}`);
  process.exit(1);
}
