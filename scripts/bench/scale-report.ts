/** bench:scale's result (the .json) and its Markdown (the .md, also printed). */
import type { Stopped } from './procs.js';
import type { DecodeResult } from './decode.js';
import type { HistQ } from './hist-window.js';
import type { MemStats } from './mem-sampler.js';
import type { ProfileTop } from './cpuprof-top.js';
import { profileMarkdown } from './cpuprof-top.js';
import type { CameraCheck, SampleCheck } from './scale-check.js';

export interface ScaleMeta {
  date: string;
  machine: string;
  node: string;
  ffmpeg: string;
  gateway: string;
  source: string;
  cameras: number;
  store: 'fs' | 'oss';
  windowSeconds: number;
  warmupSeconds: number;
  staggerMs: number;
  command: string;
}

export interface GatewayFigures {
  published: number;
  refused: string[];
  publishingAtStart: number;
  publishingAtEnd: number;
  windowSeconds: number;
  cpu: { totalPct: number; perCameraPct: number; processPct: number; mainThreadPct: number; childrenPct: number; childComms: Record<string, number> };
  /** rssMB / pssMB: gateway + children */
  mem: MemStats & { rssMB: number; pssMB: number; perCameraPssMB: number };
  /** appendcast_nodejs_eventloop_lag_*: prom-client resets its histogram at each scrape, so each scrape covers the ~2 s since the one before */
  eventLoop: { intervals: number; p99msMedian: number | null; p99msWorst: number | null; maxms: number | null };
  lag: { samples: number; p50s: number | null; p99s: number | null; maxs: number | null };
  fragmentAck: HistQ | null;
  append: HistQ | null;
  counters: { fragments: number; appends: number; appendErrors: number; droppedBytes: number; rejectedPublishes: number; rtmpProtocolErrors: number; ingestMB: number };
  machineBusyPct: number;
  drain: { seconds: number; timedOut: boolean; pending: { publishing: number; draining: number; unfinished: number } };
  shutdown: Stopped;
  profile?: ProfileTop;
}

export interface PeerFigures {
  cpuPct: number;
  rssMB: number;
  pssMB: number;
}

export interface BareFigures {
  cpuPct: number;
  perCameraPct: number;
  rssMB: number;
  pssMB: number;
  perCameraPssMB: number;
  alive: number;
  decode: DecodeResult[];
  machineBusyPct: number;
  notes: string[];
}

export interface ScaleResult {
  meta: ScaleMeta;
  gateway: GatewayFigures;
  /** serve-oss (--store oss): the stand-in for the remote OSS, not part of the gateway's cost */
  serveOss: PeerFigures | null;
  loadgen: { cpuPct: number | null; eventLoopUtilization: number | null; closedEarly: string[]; stop: Stopped };
  bare: BareFigures | null;
  ratioToBare: { cpuPerCamera: number; pssPerCamera: number } | null;
  stored: { matched: number; cameras: number; perCamera: CameraCheck[] };
  sample: SampleCheck[];
  notes: string[];
  totalSeconds?: number;
}

const dash = (x: number | null | undefined): string => (x === null || x === undefined ? '—' : String(x));
const q = (ms: number | null, atLeast = false): string => (ms === null ? '—' : `${atLeast ? '≥' : ''}${ms}`);

/** A quantile with the histogram bucket it was interpolated in ("250 ∈ (200, 300]"): the bucket is all that is known. */
function inBucket(ms: number | null, h: HistQ, atLeast = false): string {
  if (ms === null || atLeast) return q(ms, atLeast);
  const i = h.buckets.findIndex((b) => b.le * 1000 >= ms - 1e-9);
  if (i < 0) return q(ms);
  const lo = i === 0 ? 0 : h.buckets[i - 1]!.le * 1000;
  return `${ms} ∈ (${round(lo)}, ${round(h.buckets[i]!.le * 1000)}]`;
}
const round = (x: number) => +x.toFixed(1);

/** "5/5 clean, stored − sent −0.04…+0.02 s" for the decode sample. */
export function sampleSummary(sample: readonly SampleCheck[]): string {
  const clean = sample.filter((s) => s.errorLines === 0 && s.objects.length > 0).length;
  const diffs = sample.map((s) => s.diffSeconds).filter((d): d is number => d !== null);
  const range = diffs.length ? `, stored − sent ${Math.min(...diffs)}…${Math.max(...diffs)} s` : '';
  return `${clean}/${sample.length} clean${range}`;
}

function mainTable(r: ScaleResult): string[] {
  const g = r.gateway;
  const a = g.fragmentAck;
  return [
    '| cameras | store | published | CPU total % | **CPU / camera %** | × bare | main thread % | RSS / PSS MB | **PSS / camera MB** | × bare | lag p50 / p99 / max s | ack p50 / p99 ms | event-loop delay p99 ms (median / worst interval) | stored == spooled | decode sample | load gen CPU % | serve-oss CPU % / PSS MB |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    `| ${r.meta.cameras} | ${r.meta.store} | ${g.published}/${r.meta.cameras} | ${g.cpu.totalPct} | **${g.cpu.perCameraPct}** | ${dash(r.ratioToBare?.cpuPerCamera)} | ${g.cpu.mainThreadPct} | ${g.mem.rssMB} / ${g.mem.pssMB} | **${g.mem.perCameraPssMB}** | ${dash(r.ratioToBare?.pssPerCamera)} | ` +
      `${g.lag.samples ? `${dash(g.lag.p50s)} / ${dash(g.lag.p99s)} / ${dash(g.lag.maxs)}` : '—'} | ${a ? `${inBucket(a.p50ms, a)} / ${inBucket(a.p99ms, a, a.p99AtLeast)}` : '—'} | ` +
      `${dash(g.eventLoop.p99msMedian)} / ${dash(g.eventLoop.p99msWorst)} | ${r.stored.matched}/${r.stored.cameras} | ${sampleSummary(r.sample)} | ${dash(r.loadgen.cpuPct)} | ${r.serveOss ? `${r.serveOss.cpuPct} / ${r.serveOss.pssMB}` : '—'} |`,
  ];
}

function detailTable(r: ScaleResult): string[] {
  const g = r.gateway;
  const c = g.counters;
  const ap = g.append;
  return [
    '| gateway process % / children % | append p50 / p99 ms | fragments in window (≈ N·S) | appends | append errors | dropped B | rejected / protocol errors | ingest MB | drain s | shutdown s (code) | machine busy, % of one core |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    `| ${g.cpu.processPct} / ${g.cpu.childrenPct} | ${ap ? `${q(ap.p50ms)} / ${q(ap.p99ms, ap.p99AtLeast)}` : '—'} | ${c.fragments} (${r.meta.cameras * r.meta.windowSeconds}) | ${c.appends} | ${c.appendErrors} | ${c.droppedBytes} | ${c.rejectedPublishes} / ${c.rtmpProtocolErrors} | ${c.ingestMB} | ` +
      `${g.drain.seconds}${g.drain.timedOut ? ' (timed out)' : ''} | ${g.shutdown.seconds} (${g.shutdown.code ?? g.shutdown.signal}${g.shutdown.killed ? ', killed' : ''}) | ${g.machineBusyPct} |`,
  ];
}

function bareTable(b: BareFigures, n: number): string[] {
  return [
    '| baseline | running at the end | CPU total % | CPU / camera % | RSS / PSS MB | PSS / camera MB | decode errors (duration s) | machine busy % |',
    '|---|---|---|---|---|---|---|---|',
    `| bare ffmpeg -c copy | ${b.alive}/${n} | ${b.cpuPct} | ${b.perCameraPct} | ${b.rssMB} / ${b.pssMB} | ${b.perCameraPssMB} | ${b.decode.map((d) => `${d.stream}: ${d.errorLines} (${dash(d.durationSeconds)})`).join('; ')} | ${b.machineBusyPct} |`,
  ];
}

function sampleTable(sample: readonly SampleCheck[]): string[] {
  return [
    '| stream | objects | sent s (video) | stored s (video) | stored − sent s | format duration s | decode error lines |',
    '|---|---|---|---|---|---|---|',
    ...sample.map((s) => `| ${s.stream} | ${s.objects.length} | ${dash(s.sentSeconds)} | ${dash(s.storedSeconds)} | ${dash(s.diffSeconds)} | ${dash(s.formatSeconds)} | ${s.errorLines}${s.objects.find((o) => o.firstError)?.firstError ? ` (${s.objects.find((o) => o.firstError)!.firstError})` : ''} |`),
  ];
}

function notesOf(r: ScaleResult): string[] {
  const notes = [...r.notes];
  for (const x of r.gateway.refused) notes.push(`refused: ${x}`);
  for (const c of r.stored.perCamera) if (c.problems.length) notes.push(`${c.stream}: ${c.problems.join('; ')}`);
  for (const s of r.sample) for (const p of s.problems) notes.push(`${s.stream} (sample): ${p}`);
  if (r.loadgen.closedEarly.length) notes.push(`connections the gateway closed while publishing: ${r.loadgen.closedEarly.join(', ')}`);
  if (r.loadgen.eventLoopUtilization !== null) notes.push(`load generator event-loop utilization in the window: ${r.loadgen.eventLoopUtilization} (1 = saturated: pacing would slip)`);
  if (r.bare) notes.push(...r.bare.notes.map((n) => `bare: ${n}`));
  return notes;
}

export function scaleMarkdown(r: ScaleResult): string {
  const m = r.meta;
  const L: string[] = [
    `# scale benchmark ${m.date}`, '',
    `Machine: ${m.machine}; Node ${m.node}; ${m.ffmpeg}.`,
    `Gateway: ${m.gateway}.`,
    `**N = ${m.cameras} cameras, store ${m.store}, window ${m.windowSeconds} s** after a ${m.warmupSeconds} s warm-up (starts staggered over ${m.staggerMs} ms). Source: ${m.source}.`,
    `Command: \`${m.command}\``,
    '',
    'CPU: % of ONE core over the window (utime+stime+cutime+cstime from /proc: the gateway with every thread and every descendant; main thread = its JS thread alone). RSS / PSS: gateway + children, means of samples every 1.5–2.5 s. lag: `appendcast_lag_seconds` of every stream at every sample (p50/p99/max over all). ack: `appendcast_fragment_ack_latency_seconds` observed in the window (bucket-interpolated). event-loop delay: `appendcast_nodejs_eventloop_lag_p99_seconds` per scrape interval (includes the monitor\'s 10 ms resolution). stored == spooled: cameras whose stored bytes (all objects, `.index.jsonl` excluded) equal what the gateway spooled (API `spooledBytes`), after unpublish and drain. decode sample: `ffmpeg -v error` prints nothing on any of the stream\'s objects; their video duration (ffprobe) vs the video the load generator sent (from its publish to its stop, on the source\'s frame grid). × bare: per camera, ÷ N × `ffmpeg -c copy` in the same run. serve-oss (with --store oss) stands in for the remote OSS: its cost is not the gateway\'s.',
    '',
    ...mainTable(r),
    '',
    ...detailTable(r),
  ];
  if (r.bare) L.push('', ...bareTable(r.bare, m.cameras));
  L.push('', `## Decode sample (${r.sample.length} streams)`, '', ...sampleTable(r.sample));
  const notes = notesOf(r);
  if (notes.length) L.push('', '## Notes', '', ...notes.map((n) => `- ${n}`));
  if (r.gateway.profile) L.push('', "## Where the gateway's main thread spends its time (--cpu-prof, window only)", '', profileMarkdown(r.gateway.profile));
  return L.join('\n') + '\n';
}
