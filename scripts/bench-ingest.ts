/**
 * Ingest benchmark: CPU, memory and latency per camera of the gateway, scenario after scenario in
 * one run with the same N cameras and S seconds, against a bare `ffmpeg -c copy` remux:
 *
 *   native  the gateway (from source: node --import tsx src/cli.ts run), fs store, default
 *           durability (spool fsync always, store fsync always), N streams with remux: native
 *   ffmpeg  the same gateway with streamDefaults.remux: ffmpeg (our RTMP server, one
 *           `ffmpeg -c copy` child per camera fed FLV through a pipe: the old remux path)
 *   bare    N × ffmpeg -re -stream_loop -1 -i src.flv -c copy -f mp4 (fragmented) to a file
 *   nms     the previous gateway (node-media-server + one ffmpeg per camera) from another checkout,
 *           only with --baseline-dir (git worktree add DIR 1a2831a && (cd DIR && npm ci))
 *
 * The cameras are ONE child Node process (scripts/bench/loadgen.ts) publishing N streams from a
 * cached 720p25 2 Mbps FLV (scripts/bench/source-flv.ts) in real time. After a warm-up, a window of
 * S seconds is measured from /proc (CPU of the gateway and every descendant, RSS/PSS) and from
 * the gateway's /metrics; then the gateway gets SIGTERM and the objects of 3 streams must decode
 * with 0 errors. Results: bench/results/ingest-<timestamp>.{md,json}.
 *
 *   npm run bench:ingest -- --cameras 10 --seconds 30 [--scenarios native,ffmpeg,bare,nms]
 *                           [--baseline-dir DIR] [--warmup 10] [--cpu-prof] [--from-source]
 *                           [--fsync always|never] [--keep]
 *
 * --cpu-prof runs the gateways with node --cpu-prof and lists the top self-time functions of the
 * window (profiling costs CPU: take the figures from a run without it). --fsync never is a
 * diagnostic (what durability costs), not the default durability the figures are about.
 *
 * Compare ratios within one run: the machine is shared and noisy.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, waitFor } from '../test/helpers/net.js';
import type { LoadgenMessage, LoadgenOptions } from './bench/loadgen.js';
import { BARE_DESCRIPTION, runBare as measureBare } from './bench/bare.js';
import { buildCheckout, filesUnder } from './bench/build.js';
import { profileMarkdown, profileTopFile, type ProfileTop } from './bench/cpuprof-top.js';
import { decodeCheck, type DecodeResult } from './bench/decode.js';
import { gitDirty, gitHead } from './bench/git.js';
import { windowQuantiles, type HistQ } from './bench/hist-window.js';
import { MemSampler, type MemStats } from './bench/mem-sampler.js';
import { mb, nullable, round, sleep, tick } from './bench/num.js';
import { killAll, killAllOnExit, stopProcess, track } from './bench/procs.js';
import { parseProm, percentile, perStream, sum, type Sample } from './bench/prom.js';
import { machineCpu, mainThreadCpu, memOf, treeCpu, type TreeCpu } from './bench/proc-stats.js';
import { sourceFlv, type SourceInfo } from './bench/source-flv.js';

const ROOT = new URL('..', import.meta.url).pathname;
const SCENARIOS = ['native', 'ffmpeg', 'bare', 'nms'] as const;
type Scenario = (typeof SCENARIOS)[number];

const { values } = parseArgs({
  options: {
    cameras: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '10' },
    scenarios: { type: 'string' },
    'baseline-dir': { type: 'string' },
    'source-seconds': { type: 'string', default: '40' },
    'stagger-ms': { type: 'string', default: '2000' },
    'log-level': { type: 'string', default: 'info' },
    'cpu-prof': { type: 'boolean', default: false },
    'from-source': { type: 'boolean', default: false },
    fsync: { type: 'string', default: 'always' },
    keep: { type: 'boolean', default: false },
    dir: { type: 'string' },
    ffmpeg: { type: 'string', default: process.env['FFMPEG_PATH'] ?? '/usr/bin/ffmpeg' },
  },
});
const N = Number(values.cameras);
const S = Number(values.seconds);
const WARMUP = Number(values.warmup);
const STAGGER_MS = Number(values['stagger-ms']);
const FFMPEG = values.ffmpeg;
const BASELINE = values['baseline-dir'];
/** spool.fsync and storage.fsync of the gateways: `always` is the default durability (the figures); `never` only to see what fsync costs. */
const FSYNC = values.fsync;
if (FSYNC !== 'always' && FSYNC !== 'never') throw new Error('--fsync: always | never');
if (!Number.isInteger(N) || N < 1 || N > 500) throw new Error('--cameras: 1..500');
if (!(S >= 5 && S <= 600)) throw new Error('--seconds: 5..600');
if (!(WARMUP >= 0 && WARMUP <= 120)) throw new Error('--warmup: 0..120');
const scenarios = (values.scenarios?.split(',').map((s) => s.trim()).filter(Boolean) ?? ['native', 'ffmpeg', 'bare', ...(BASELINE ? ['nms'] : [])]) as Scenario[];
for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s} (${SCENARIOS.join(', ')})`);
if (scenarios.includes('nms') && !BASELINE) throw new Error('scenario nms needs --baseline-dir (a checkout of 1a2831a with npm ci done)');
/** Hard bound on one scenario, after which everything it started is killed. */
/** The gateway's fixed cost is measured this long before the cameras start. */
const IDLE_SECONDS = 5;
const SCENARIO_DEADLINE_MS = (STAGGER_MS / 1000 + WARMUP + S + 120) * 1000;

const streamIds = Array.from({ length: N }, (_, i) => `cam${String(i).padStart(3, '0')}`);
const keyOf = (id: string) => `k-${id}`;
/** Streams whose objects are decoded after each scenario. */
const checked = [...new Set([0, Math.floor(N / 2), N - 1])].map((i) => streamIds[i]!);

// ---------------------------------------------------------------------------------------------
// Processes we start: every one is tracked (./bench/procs.ts) and stopped by its PID.
killAllOnExit();

// ---------------------------------------------------------------------------------------------
// Results

interface Result {
  scenario: Scenario;
  description: string;
  cameras: number;
  windowSeconds: number;
  published: number;
  refused: string[];
  publishingAtStart: number | null;
  publishingAtEnd: number | null;
  cpu: { gatewayPct: number; gatewayMainThreadPct: number | null; childrenPct: number; totalPct: number; perCameraPct: number; loadgenPct: number | null; machineBusyPct: number; othersPct: number; childComms: Record<string, number> };
  idle: { cpuPct: number; gatewayRssMB: number; gatewayPssMB: number } | null;
  mem: MemStats & { perCameraPssMB: number };
  latency: {
    fragmentAck: HistQ | null;
    /** appendcast_append_duration_seconds, all streams: the store's part (one append request, fsyncs included) */
    append: HistQ | null;
    lag: { samples: number; p50s: number | null; p99s: number | null; maxs: number | null };
  };
  counters: { fragments: number; appends: number; appendErrors: number; droppedBytes: number; ffmpegRestarts: number; rejectedPublishes: number; rtmpProtocolErrors: number; ingestMB: number } | null;
  loadgen: { eventLoopUtilization: number; closedEarly: string[] } | null;
  shutdown: { code: number | null; signal: string | null; seconds: number; killed: boolean } | null;
  decode: DecodeResult[];
  ratioToBare?: { cpuPerCamera: number; pssPerCamera: number };
  profile?: ProfileTop;
  notes: string[];
}

// ---------------------------------------------------------------------------------------------
// Gateway scenarios (native, ffmpeg, nms)

function gatewayYaml(o: { dir: string; rtmp: number; http: number; remux: 'native' | 'ffmpeg' | null; legacy: boolean }): string {
  const lines = [
    `dataDir: ${o.dir}/data`,
    `log:`, `  level: ${values['log-level']}`,
    `server:`,
    `  rtmp:`, `    host: 127.0.0.1`, `    port: ${o.rtmp}`,
  ];
  if (!o.legacy && N > 90) lines.push(`    limits:`, `      maxConnectionsPerAddress: ${N + 10}`, `      maxConnections: ${Math.max(1000, N + 10)}`);
  lines.push(
    `  http:`, `    host: 127.0.0.1`, `    port: ${o.http}`,
    `ffmpeg:`, `  path: ${FFMPEG}`,
    `storage:`, `  kind: fs`, `  root: ${o.dir}/objects`,
  );
  if (FSYNC !== 'always') lines.push(`  fsync: ${FSYNC}`, `spool:`, `  fsync: ${FSYNC}`);
  if (o.remux !== null) lines.push(`streamDefaults:`, `  remux: ${o.remux}`);
  lines.push(`streams:`);
  for (const id of streamIds) lines.push(`  - id: ${id}`, `    key: ${keyOf(id)}`);
  return lines.join('\n') + '\n';
}

async function runGateway(scenario: Scenario, checkout: string, src: SourceInfo, base: string): Promise<Result> {
  const legacy = scenario === 'nms';
  const dir = join(base, scenario);
  await mkdir(dir, { recursive: true });
  const notes: string[] = [];
  const [rtmp, http] = [await freePort(), await freePort()];
  const config = join(dir, 'appendcast.yaml');
  await writeFile(config, gatewayYaml({ dir, rtmp, http, remux: scenario === 'ffmpeg' ? 'ffmpeg' : legacy ? null : 'native', legacy }));
  const prof = values['cpu-prof'];
  const logFd = openSync(join(dir, 'gateway.log'), 'a');
  const entry = values['from-source']
    ? ['--import', createRequire(join(checkout, 'package.json')).resolve('tsx'), join(checkout, 'src/cli.ts')]
    : [await buildCheckout(checkout, notes)];
  const args = [...(prof ? ['--cpu-prof', '--cpu-prof-dir', dir] : []), ...entry, 'run', '--config', config];
  const gw = track(spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', logFd, logFd] }));
  closeSync(logFd);
  const baseUrl = `http://127.0.0.1:${http}`;
  const get = async (path: string) => {
    const r = await fetch(baseUrl + path, { signal: AbortSignal.timeout(5000) });
    if (!r.ok) throw new Error(`GET ${path}: ${r.status}`);
    return r.text();
  };
  const metrics = async (): Promise<Sample[]> => parseProm(await get('/metrics'));
  const publishing = async (): Promise<number> => {
    const j = JSON.parse(await get('/api/v1/streams')) as { streams: Array<{ publishing: boolean }> };
    return j.streams.filter((s) => s.publishing).length;
  };
  await waitFor('gateway /healthz', async () => {
    if (gw.exitCode !== null) throw new Error(`gateway exited with ${gw.exitCode}; see ${dir}/gateway.log`);
    try {
      return (await fetch(baseUrl + '/healthz')).status === 200;
    } catch {
      return false;
    }
  }, 30_000, 100);
  const gwPid = gw.pid!;
  // The gateway with no camera: its fixed cost.
  await sleep(2000);
  const i0 = treeCpu(gwPid)!;
  const it0 = performance.now();
  await sleep(IDLE_SECONDS * 1000);
  const i1 = treeCpu(gwPid)!;
  const idleCpuPct = round((100 * (i1.root + i1.children - i0.root - i0.children)) / ((performance.now() - it0) / 1000), 2);
  const idleMem = memOf(gwPid);

  // The cameras.
  const lgOpts: LoadgenOptions = {
    port: rtmp, app: 'live', flv: src.path, streams: streamIds.map((id) => ({ id, key: keyOf(id) })), staggerMs: STAGGER_MS,
    maxSeconds: STAGGER_MS / 1000 + WARMUP + S + 60, chunkSize: 4096,
  };
  const lgLog = openSync(join(dir, 'loadgen.log'), 'a');
  const mainTsx = createRequire(join(ROOT, 'package.json')).resolve('tsx');
  const lg = track(spawn(process.execPath, ['--import', mainTsx, join(ROOT, 'scripts/bench/loadgen.ts'), JSON.stringify(lgOpts)], { cwd: dir, stdio: ['ignore', lgLog, lgLog, 'ipc'] }));
  closeSync(lgLog);
  const msgs: LoadgenMessage[] = [];
  lg.on('message', (m: LoadgenMessage) => msgs.push(m));
  const lgStats = async (): Promise<Extract<LoadgenMessage, { event: 'stats' }> | undefined> => {
    const before = msgs.length;
    if (lg.connected) lg.send('stats');
    for (let i = 0; i < 50 && !msgs.slice(before).some((m) => m.event === 'stats'); i++) await sleep(20);
    return msgs.slice(before).find((m): m is Extract<LoadgenMessage, { event: 'stats' }> => m.event === 'stats');
  };

  const outcome = () => msgs.filter((m) => m.event === 'published' || m.event === 'refused' || m.event === 'error');
  await waitFor('every publish answered', () => outcome().length >= N || lg.exitCode !== null, STAGGER_MS + 30_000, 50).catch(() => undefined);
  const published = msgs.filter((m) => m.event === 'published').length;
  const refused = msgs.filter((m): m is Extract<LoadgenMessage, { event: 'refused' | 'error' }> => m.event === 'refused' || m.event === 'error')
    .map((m) => `${m.stream}: ${m.event === 'refused' ? `${m.code} ${m.description}` : m.message}`);
  const lastPublish = Math.max(0, ...msgs.filter((m) => m.event === 'published').map((m) => m.at));
  await sleep(Math.max(0, lastPublish + WARMUP * 1000 - Date.now()));

  // The window.
  if (lg.connected) lg.send('mark');
  const mem = new MemSampler(gwPid);
  const m0 = await metrics();
  const pub0 = await publishing();
  const c0 = treeCpu(gwPid)!;
  const mt0 = mainThreadCpu(gwPid) ?? 0;
  const l0 = treeCpu(lg.pid!)!;
  const k0 = machineCpu();
  const t0 = performance.now();
  const hr0 = Number(process.hrtime.bigint() / 1000n);
  const lags: number[] = [];
  const childComms = new Map<string, number>();
  while (performance.now() - t0 < S * 1000 - 1000) {
    await Promise.race([tick(), sleep(Math.max(0, S * 1000 - (performance.now() - t0)))]);
    if (performance.now() - t0 >= S * 1000) break;
    mem.sample();
    for (const v of perStream(await metrics(), 'appendcast_lag_seconds').values()) lags.push(v);
  }
  await sleep(Math.max(0, S * 1000 - (performance.now() - t0)));
  const c1: TreeCpu = treeCpu(gwPid)!;
  const mt1 = mainThreadCpu(gwPid) ?? 0;
  const l1 = treeCpu(lg.pid!);
  const k1 = machineCpu();
  const wall = (performance.now() - t0) / 1000;
  const hr1 = Number(process.hrtime.bigint() / 1000n);
  for (const c of c1.childComms) childComms.set(c, (childComms.get(c) ?? 0) + 1);
  const m1 = await metrics();
  const pub1 = await publishing();
  const stats = await lgStats();

  // Stop: the gateway first (SIGTERM, cameras still publishing), then the cameras.
  const shutdown = await stopProcess(gw, 30_000);
  const lgEnd = await stopProcess(lg, 10_000);
  if (lgEnd.killed) notes.push('load generator had to be killed');
  const closedEarly = msgs.filter((m): m is Extract<LoadgenMessage, { event: 'closed' }> => m.event === 'closed' && !m.byUs && m.at < t0 + wall * 1000 + performance.timeOrigin)
    .map((m) => m.stream);

  const cpuPct = (a: number, b: number) => round((100 * (b - a)) / wall, 2);
  const gatewayPct = cpuPct(c0.root, c1.root);
  const childrenPct = cpuPct(c0.children, c1.children);
  const loadgenPct = l1 ? cpuPct(l0.root + l0.children, l1.root + l1.children) : null;
  const machineBusyPct = cpuPct(k0.busy, k1.busy);
  const ms = mem.stats();
  const fragmentAck = windowQuantiles(m0, m1, 'appendcast_fragment_ack_latency_seconds');
  if (!fragmentAck) notes.push('no appendcast_fragment_ack_latency_seconds in this gateway: latency from appendcast_lag_seconds only');
  const append = windowQuantiles(m0, m1, 'appendcast_append_duration_seconds');
  const delta = (name: string) => sum(m1, name) - sum(m0, name);

  // Decode checks of the recorded objects.
  const decode: DecodeResult[] = [];
  const all = await filesUnder(join(dir, 'objects'));
  for (const id of checked) {
    const objs = all.filter((f) => f.startsWith(join(dir, 'objects', id) + '/') && f.endsWith('.mp4'));
    if (objs.length > 1) notes.push(`${id}: ${objs.length} objects`);
    decode.push(await decodeCheck(FFMPEG, id, objs[0] ?? null));
  }
  let profile: ProfileTop | undefined;
  if (prof) {
    const f = (await readdir(dir)).find((x) => x.endsWith('.cpuprofile'));
    if (f) {
      profile = await profileTopFile(join(dir, f), { fromUs: hr0, toUs: hr1, top: 30 });
      await copyFile(join(dir, f), join(outDir, `ingest-${stamp}-${scenario}-N${N}.cpuprofile`));
      notes.push(`CPU profile (top list: window only): bench/results/ingest-${stamp}-${scenario}-N${N}.cpuprofile`);
    } else notes.push('no .cpuprofile written');
  }
  if (!values.keep) await rm(dir, { recursive: true, force: true });

  const totalPct = round(gatewayPct + childrenPct, 2);
  return {
    scenario,
    description: scenario === 'native' ? 'gateway, our RTMP server, native remux (in process)'
      : scenario === 'ffmpeg' ? 'gateway, our RTMP server, remux: ffmpeg (1 ffmpeg -c copy child per camera, FLV on a pipe)'
        : `previous gateway (node-media-server 4.4.3 + 1 ffmpeg child per camera) at ${gitHead(checkout)}`,
    cameras: N, windowSeconds: round(wall, 2),
    published, refused, publishingAtStart: pub0, publishingAtEnd: pub1,
    cpu: { gatewayPct, gatewayMainThreadPct: cpuPct(mt0, mt1), childrenPct, totalPct, perCameraPct: round(totalPct / N, 3), loadgenPct, machineBusyPct, othersPct: round(machineBusyPct - totalPct - (loadgenPct ?? 0), 2), childComms: Object.fromEntries(childComms) },
    idle: { cpuPct: idleCpuPct, gatewayRssMB: mb(idleMem.rssBytes), gatewayPssMB: mb(idleMem.pssBytes) },
    mem: { ...ms, perCameraPssMB: round(ms.totalPssMB / N, 2) },
    latency: {
      fragmentAck, append,
      lag: { samples: lags.length, p50s: nullable(percentile(lags, 50)), p99s: nullable(percentile(lags, 99)), maxs: lags.length ? round(Math.max(...lags), 3) : null },
    },
    counters: {
      fragments: delta('appendcast_fragments_total'), appends: delta('appendcast_appends_total'), appendErrors: delta('appendcast_append_errors_total'),
      droppedBytes: delta('appendcast_dropped_bytes_total'), ffmpegRestarts: delta('appendcast_ffmpeg_restarts_total'),
      rejectedPublishes: sum(m1, 'appendcast_rejected_publishes_total'), rtmpProtocolErrors: sum(m1, 'appendcast_rtmp_protocol_errors_total'),
      ingestMB: mb(delta('appendcast_ingest_bytes_total')),
    },
    loadgen: stats ? { eventLoopUtilization: round(stats.eventLoopUtilization, 3), closedEarly } : null,
    shutdown, decode, ...(profile ? { profile } : {}), notes,
  };
}

// ---------------------------------------------------------------------------------------------
// bare: N × ffmpeg -re -stream_loop -1 -i src.flv -c copy -f mp4 (fragmented) <file>

async function runBare(src: SourceInfo, base: string): Promise<Result> {
  const dir = join(base, 'bare');
  const b = await measureBare({ ffmpeg: FFMPEG, flv: src.path, ids: streamIds, staggerMs: STAGGER_MS, warmupSeconds: WARMUP, windowSeconds: S, dir, decodeIds: checked });
  if (!values.keep) await rm(dir, { recursive: true, force: true });
  const totalPct = b.cpuPct;
  const ms = b.mem;
  return {
    scenario: 'bare', description: BARE_DESCRIPTION,
    cameras: N, windowSeconds: round(b.wallSeconds, 2), published: b.alive, refused: [], publishingAtStart: null, publishingAtEnd: null,
    cpu: { gatewayPct: 0, gatewayMainThreadPct: null, childrenPct: totalPct, totalPct, perCameraPct: round(totalPct / N, 3), loadgenPct: null, machineBusyPct: b.machineBusyPct, othersPct: round(b.machineBusyPct - totalPct, 2), childComms: { ffmpeg: N } },
    idle: null,
    mem: { ...ms, perCameraPssMB: round(ms.totalPssMB / N, 2) },
    latency: { fragmentAck: null, append: null, lag: { samples: 0, p50s: null, p99s: null, maxs: null } },
    counters: null, loadgen: null, shutdown: null, decode: b.decode, notes: b.notes,
  };
}

// ---------------------------------------------------------------------------------------------

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = join(ROOT, 'bench/results');

function fmtQ(ms: number | null, atLeast = false): string {
  return ms === null ? '—' : `${atLeast ? '≥' : ''}${ms}`;
}

function markdown(meta: Record<string, unknown>, rows: Result[]): string {
  const bare = rows.find((r) => r.scenario === 'bare');
  const L: string[] = [
    `# ingest benchmark ${String(meta['date'])}`, '',
    `Machine: ${String(meta['nproc'])} cores (${String(meta['cpuModel'])}), ${String(meta['memGB'])} GB, Linux ${String(meta['kernel'])}; Node ${String(meta['node'])}; ${String(meta['ffmpeg'])}.`,
    `Gateway: ${String(meta['gateway'])}.`,
    `**N = ${N} cameras, window S = ${S} s** after a ${WARMUP} s warm-up (starts staggered over ${STAGGER_MS} ms). Source: ${String(meta['sourceText'])}.`,
    '',
    '## CPU and memory',
    '',
    'CPU: % of ONE core over the window, utime+stime from /proc: the gateway process with all its threads (its main thread alone in parentheses; the others are libuv\'s pool doing the fs writes and fsyncs, and V8\'s GC helpers), and "children" = every descendant, living or reaped (cutime/cstime). On loopback, much of the kernel\'s TCP receive work for the cameras\' bytes runs in the sender\'s system calls, so it shows in the load generator\'s CPU rather than the gateway\'s (equally for native, ffmpeg and nms; bare reads a file). Memory: mean of samples taken every 1.5–2.5 s; PSS total = gateway PSS + children PSS (ffmpeg children share their libraries, which PSS divides among them).',
    '',
    '| scenario | published | CPU total % | gateway % (main thread) | children % | **CPU / camera %** | × bare | gateway RSS MB | gateway PSS MB | children PSS MB (n) | PSS total MB | **PSS / camera MB** | × bare | idle gateway CPU % / PSS MB | load gen CPU % |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    L.push(`| ${r.scenario} | ${r.published}/${N}${r.publishingAtEnd !== null ? ` (${r.publishingAtStart}→${r.publishingAtEnd} publishing)` : ''} | ${r.cpu.totalPct} | ${r.cpu.gatewayPct}${r.cpu.gatewayMainThreadPct !== null ? ` (${r.cpu.gatewayMainThreadPct})` : ''} | ${r.cpu.childrenPct} | **${r.cpu.perCameraPct}** | ${r.ratioToBare?.cpuPerCamera ?? '—'} | ${r.mem.gatewayRssMB || '—'} | ${r.mem.gatewayPssMB || '—'} | ${r.mem.childrenPssMB} (${r.mem.children}) | ${r.mem.totalPssMB} | **${r.mem.perCameraPssMB}** | ${r.ratioToBare?.pssPerCamera ?? '—'} | ${r.idle ? `${r.idle.cpuPct} / ${r.idle.gatewayPssMB}` : '—'} | ${r.cpu.loadgenPct ?? '—'} |`);
  }
  L.push('', '## Latency, counts and checks', '',
    'fragment ack = `appendcast_fragment_ack_latency_seconds` (fragment complete in the spool → store acknowledged; includes the batching wait, flush.maxDelayMs = 200 ms by default); append = `appendcast_append_duration_seconds` summed over streams (one append request to the fs store, its fsyncs included). Both: bucket counts at the window\'s end minus its start, quantile interpolated linearly inside its bucket like PromQL histogram_quantile (ack buckets 10/25/50/100/250/500 ms, 1 s…, so a p50 between 100 and 250 ms is only known to be in that bucket). lag = `appendcast_lag_seconds` of every stream, scraped every 1.5–2.5 s; p50/p99/max over all (stream, scrape) samples (now − arrival of the newest acknowledged fragment: with 1 s fragments it saw-tooths between the ack latency and ≈1 s more).',
    '',
    '| scenario | fragment ack p50 / p99 ms (n) | append p50 / p99 ms | lag p50 / p99 / max s (samples) | fragments in window (expect ≈ N·S) | appends | append errors | dropped B | ffmpeg restarts | rejected / protocol errors | ingest MB | shutdown s (code) | decode: errors (duration s) | machine busy % (others, incl. this script %) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const a = r.latency.fragmentAck;
    const c = r.counters;
    const ap = r.latency.append;
    L.push(`| ${r.scenario} | ${a ? `${fmtQ(a.p50ms)} / ${fmtQ(a.p99ms, a.p99AtLeast)} (${a.observations})` : '—'} | ${ap ? `${fmtQ(ap.p50ms)} / ${fmtQ(ap.p99ms, ap.p99AtLeast)}` : '—'} | ${r.latency.lag.samples ? `${r.latency.lag.p50s} / ${r.latency.lag.p99s} / ${r.latency.lag.maxs} (${r.latency.lag.samples})` : '—'} | ${c ? `${c.fragments} (${N * S})` : '—'} | ${c?.appends ?? '—'} | ${c?.appendErrors ?? '—'} | ${c?.droppedBytes ?? '—'} | ${c?.ffmpegRestarts ?? '—'} | ${c ? `${c.rejectedPublishes} / ${c.rtmpProtocolErrors}` : '—'} | ${c?.ingestMB ?? '—'} | ${r.shutdown ? `${r.shutdown.seconds} (${r.shutdown.code ?? r.shutdown.signal}${r.shutdown.killed ? ', killed' : ''})` : '—'} | ${r.decode.map((d) => `${d.stream}: ${d.errorLines} (${d.durationSeconds ?? '?'})`).join('; ')} | ${r.cpu.machineBusyPct} (${r.cpu.othersPct}) |`);
  }
  const notes = rows.flatMap((r) => [...r.refused.map((x) => `${r.scenario}: refused ${x}`), ...r.notes.map((n) => `${r.scenario}: ${n}`),
    ...(r.loadgen?.closedEarly.length ? [`${r.scenario}: connections closed by the gateway during the run: ${r.loadgen.closedEarly.join(', ')}`] : []),
    ...r.decode.filter((d) => d.errorLines !== 0).map((d) => `${r.scenario}: ${d.stream} decode: ${d.firstError ?? ''}`)]);
  const lgRows = rows.filter((r) => r.loadgen);
  if (lgRows.length) notes.push(`load generator event-loop utilization in the window (1 = saturated, pacing would slip): ${lgRows.map((r) => `${r.scenario} ${r.loadgen!.eventLoopUtilization}`).join(', ')}`);
  if (bare) notes.push('× bare: the scenario\'s per-camera figure divided by bare\'s (same N, same run).');
  if (notes.length) L.push('', '## Notes', '', ...notes.map((n) => `- ${n}`));
  for (const r of rows) if (r.profile) L.push('', `## Where the ${r.scenario} gateway's main thread spends its time (--cpu-prof, window only)`, '', profileMarkdown(r.profile));
  return L.join('\n') + '\n';
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const parent = values.dir ?? join(tmpdir(), 'appendcast-bench');
  await mkdir(parent, { recursive: true });
  const base = await mkdtemp(join(parent, `ingest-${stamp}-`));
  await mkdir(outDir, { recursive: true });
  const ffver = execFileSync(FFMPEG, ['-hide_banner', '-version'], { encoding: 'utf8' }).split('\n')[0]!;
  const src = await sourceFlv(FFMPEG, Number(values['source-seconds']));
  const sourceText = `${src.path} (${src.seconds} s, ${round(src.bitsPerSecond / 1e6, 2)} Mbit/s, 720p25 H.264 High veryfast 1 s GOP + AAC 128k 48 kHz stereo; encoded in ${src.encodeSeconds} s${src.cached ? ', cached' : ''})`;
  console.log(`source: ${sourceText}`);
  const dirty = gitDirty(ROOT);
  const meta = {
    date: new Date().toISOString(), nproc: availableParallelism(), cpuModel: cpus()[0]?.model ?? '?', memGB: round(totalmem() / 2 ** 30, 1), kernel: release(),
    node: process.version, ffmpeg: ffver, cameras: N, seconds: S, warmupSeconds: WARMUP, staggerMs: STAGGER_MS, scenarios,
    gateway: `${values['from-source'] ? 'from source, node --import tsx src/cli.ts run' : 'node dist/cli.js run, src/ compiled by tsc (tsconfig.build.json) into a cache under os.tmpdir()'} (main at ${gitHead(ROOT)}${dirty.length ? `, working tree with ${dirty.length} uncommitted change(s) under src/` : ''})${BASELINE ? `; nms: ${BASELINE} at ${gitHead(BASELINE)}` : ''}; log level ${values['log-level']}; fs store; spool and store fsync ${FSYNC}${FSYNC === 'always' ? ' (default durability)' : ' (NOT the default durability)'}${values['cpu-prof'] ? '; gateways run with --cpu-prof (profiling costs CPU: not for the figures)' : ''}`,
    dirtySrc: dirty, source: src, sourceText,
    loadgen: 'one Node process (tsx), RtmpTestPublisher, chunk size 4096, sendTags realtime, file looped with offset timestamps',
  };
  const rows: Result[] = [];
  for (const s of scenarios) {
    console.log(`\n== ${s}: ${N} cameras, warm-up ${WARMUP} s, window ${S} s`);
    const deadline = setTimeout(() => {
      console.error(`scenario ${s} passed its deadline (${SCENARIO_DEADLINE_MS / 1000} s): killing what it started`);
      killAll();
    }, SCENARIO_DEADLINE_MS);
    try {
      const r = s === 'bare' ? await runBare(src, base) : await runGateway(s, s === 'nms' ? BASELINE! : ROOT, src, base);
      rows.push(r);
      console.log(`   CPU ${r.cpu.totalPct} % of a core (${r.cpu.perCameraPct} %/camera), PSS ${r.mem.totalPssMB} MB (${r.mem.perCameraPssMB} MB/camera), published ${r.published}/${N}, ` +
        `ack p50/p99 ${r.latency.fragmentAck ? `${r.latency.fragmentAck.p50ms}/${r.latency.fragmentAck.p99ms} ms` : '—'}, lag p50/p99 ${r.latency.lag.p50s}/${r.latency.lag.p99s} s, ` +
        `decode errors ${r.decode.map((d) => d.errorLines).join(',')}, load gen ${r.cpu.loadgenPct ?? '—'} %`);
    } catch (err) {
      console.error(`scenario ${s} failed:`, err);
      killAll();
      rows.push({
        scenario: s, description: 'FAILED', cameras: N, windowSeconds: 0, published: 0, refused: [String(err)], publishingAtStart: null, publishingAtEnd: null,
        cpu: { gatewayPct: 0, gatewayMainThreadPct: null, childrenPct: 0, totalPct: 0, perCameraPct: 0, loadgenPct: null, machineBusyPct: 0, othersPct: 0, childComms: {} }, idle: null,
        mem: { samples: 0, gatewayRssMB: 0, gatewayPssMB: 0, childrenPssMB: 0, childrenRssMB: 0, totalPssMB: 0, maxTotalPssMB: 0, children: 0, perCameraPssMB: 0 },
        latency: { fragmentAck: null, append: null, lag: { samples: 0, p50s: null, p99s: null, maxs: null } }, counters: null, loadgen: null, shutdown: null, decode: [], notes: ['scenario failed'],
      });
    } finally {
      clearTimeout(deadline);
    }
  }
  const bare = rows.find((r) => r.scenario === 'bare' && r.cpu.perCameraPct > 0);
  if (bare) for (const r of rows) r.ratioToBare = { cpuPerCamera: round(r.cpu.perCameraPct / bare.cpu.perCameraPct, 2), pssPerCamera: round(r.mem.perCameraPssMB / bare.mem.perCameraPssMB, 2) };
  if (!values.keep) await rm(base, { recursive: true, force: true });
  const md = markdown(meta, rows);
  const name = `ingest-${stamp}`;
  await writeFile(join(outDir, `${name}.json`), JSON.stringify({ ...meta, totalSeconds: round((performance.now() - t0) / 1000, 1), rows }, null, 2));
  await writeFile(join(outDir, `${name}.md`), md);
  console.log('\n' + md);
  console.log(`written to bench/results/${name}.{json,md} in ${round((performance.now() - t0) / 1000, 1)} s`);
}

await main();
