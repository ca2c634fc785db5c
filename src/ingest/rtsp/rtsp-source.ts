/**
 * One RTSP pull source: a supervised ffmpeg that pulls the camera's stream and writes fragmented MP4
 * on stdout, cut into init segment + fragments by the splitter, restarted with capped exponential
 * backoff and full jitter whenever it ends, for as long as the source is open.
 *
 * Life of one attempt:
 *   1. If the codecs are not known yet: `ffprobe -initial_pause 1 -nofind_stream_info` (DESCRIBE +
 *      SETUP, no PLAY, no media; ~70 ms) learns them from the SDP. The result is kept for the
 *      source's lifetime and checked on every run against ffmpeg's own stream list; a difference
 *      (the camera was reconfigured) ends the run with `codec` and the next attempt uses the new
 *      codecs without another probe.
 *   2. ffmpeg runs with the argv of ffmpeg-rtsp-args.ts. The session begins at its first byte on
 *      stdout, not at spawn: a failed connect (wrong password, host down) makes no session.
 *   3. The run ends: by close() (SIGTERM: ffmpeg flushes the last fragment and exits; SIGTERM again
 *      after half the grace period interrupts a blocked read; SIGKILL after the grace period), or by
 *      itself / the watchdog, and then the reason (classify-exit.ts) is logged with what to do about
 *      it, `down(reason)` and `reconnect(reason, delayMs)` are emitted, and the next attempt waits
 *      `delayMs`.
 *
 * The stall watchdog: ffmpeg reports progress on fd 3 once a second (`-progress pipe:3`); the
 * source is alive while stdout moves or the progress blocks gain media time (credited as of when
 * that media must have arrived, see onProgress). No input for `stallTimeoutMs` while streaming — or
 * for `stallTimeoutMs` + 5 s before the first output (connect, DESCRIBE/SETUP and ffmpeg's stream
 * analysis, up to 5 s for a camera without parameter sets in its SDP) — and ffmpeg is killed:
 * `stall` once the RTSP session was set up, `unreachable` before. ffmpeg's own socket timeout is
 * `stallTimeoutMs` too; it catches dead connects, but mid-stream over TCP ffmpeg 5.1 gives up only
 * after about twice that (measured 4.2 s for 2 s), so the watchdog is what ends a silent stream.
 *
 * Backoff: the n-th consecutive failed attempt waits `backoffDelay(n, baseMs, maxMs)` (uniform in
 * [0, min(maxMs, baseMs·2^n)], never below baseMs/4). A session that lived at least
 * `healthySessionMs` (default max(10 s, 2 × baseMs)) resets n to 0 when it ends, so a camera that
 * drops its link once a day reconnects within baseMs, while one that drops every few seconds backs
 * off to maxMs.
 *
 * Secrets: the URL's credentials never reach a log line, an event, an error or the API; every
 * stderr line and argv is passed through the URL's redactor (rtsp-url.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { ContainerError, Fmp4Splitter, Mpeg2TsSplitter, type ContainerOutput, type ContainerSplitter } from '../../container/index.js';
import { AppendcastError, ErrorCode } from '../../errors.js';
import type { RemuxExit } from '../../remux/remux-stage.js';
import { backoffDelay } from '../../util/backoff.js';
import type { Logger } from '../../util/logger.js';
import { type AttemptPhase, classifyAttemptEnd, describeReason, type RtspDownReason } from './classify-exit.js';
import {
  audioAction,
  InputStreamsReader,
  layoutDiffers,
  parseProbeJson,
  probeArgs,
  type RtspAudioPolicy,
  rtspFfmpegArgs,
  type RtspTransport,
  type SourceLayout,
} from './ffmpeg-rtsp-args.js';
import { makeRedactor, parseRtspUrl, type Redactor } from './rtsp-url.js';

export type { RtspDownReason } from './classify-exit.js';

export interface RtspSourceOptions {
  streamId: string;
  /** rtsp://[user:pass@]host[:port]/path — credentials are redacted everywhere we print. */
  url: string;
  transport: RtspTransport;
  audio: RtspAudioPolicy;
  ffmpegPath: string;
  /** Default: `ffprobe` next to ffmpegPath when ffmpegPath is a path ending in `ffmpeg`, else `ffprobe` on PATH. */
  ffprobePath?: string;
  /** No output for this long → down, restart. Also ffmpeg's socket timeout. */
  stallTimeoutMs: number;
  backoff: { baseMs: number; maxMs: number /* 30 s default */ };
  fragmentDurationMs: number | null;
  /** What ffmpeg writes and the splitter cuts: fragmented MP4 (default) or MPEG-TS. */
  format?: 'fmp4' | 'mpegts';
  logger: Logger;
  /** A session that lived this long resets the backoff when it ends. Default max(10 s, 2 × backoff.baseMs). */
  healthySessionMs?: number;
  /** close(): SIGTERM, again after half of this, SIGKILL after this. Default 3 s. */
  stopGraceMs?: number;
  /** The jitter's random source (tests pin it to measure the backoff). Default Math.random. */
  random?: () => number;
}

export interface RtspSessionSink {
  /** Every byte ffmpeg wrote, in order (for the session's hash and byte counts). */
  bytes(chunk: Buffer): void;
  /** Whole init segments and fragments, in order. */
  outputs(o: ContainerOutput[]): void;
  /** The session is over; nothing more comes. `lost` says why when it was not close(). */
  end(exit: RemuxExit): void;
}

export interface RtspSessionInfo {
  /** Sortable by time and unique across restarts: `<ms since epoch, base 36, 9 chars>-<8 hex>`. */
  id: string;
  /** Wall-clock ms of the session's first output byte. */
  startedAt: number;
}

export interface RtspSourceEvents {
  /** A session began (ffmpeg's first output). */
  up: [];
  /** An attempt ended without close(): a session that was up, or a connect that failed. */
  down: [reason: RtspDownReason];
  /** The next attempt starts in delayMs (always right after `down`). */
  reconnect: [reason: RtspDownReason, delayMs: number];
}

export interface RtspSourceStats {
  /** ffprobe runs started. */
  probes: number;
  /** ffmpeg runs started. */
  spawns: number;
  /** Sessions begun (runs that produced output). */
  sessions: number;
  /** Failed attempts since the last healthy session (the backoff exponent). */
  consecutiveFailures: number;
  /** The codecs last seen (probe or ffmpeg), if any. */
  layout: SourceLayout | undefined;
}

interface Session {
  id: string;
  startedAt: number;
  sink: RtspSessionSink;
}

interface Attempt {
  kind: 'probe' | 'ffmpeg';
  child: ChildProcess;
  spawnedAt: number;
  lastLiveAt: number;
  phase: AttemptPhase;
  /** The layout this run's argv was built for (ffmpeg runs). */
  planned: SourceLayout | undefined;
  /** Raw stderr lines (bounded tail): for classification only; redact before showing. */
  tail: string[];
  loggedLines: number;
  watchdog: boolean;
  stopping: boolean;
  hardKilled: boolean;
  forced: RtspDownReason | undefined;
  session: Session | undefined;
  splitter: ContainerSplitter;
  splitFailed: boolean;
  reader: InputStreamsReader;
  /** The last progress block: when it came, its output media time, and its counters. */
  progress: { at: number; outUs: number | undefined; sig: string } | undefined;
  /** ffprobe's stdout (probe runs). */
  probeOut: string;
  timers: NodeJS.Timeout[];
  done: Promise<void>;
}

const TAIL_LINES = 40;
/** stderr lines per attempt logged at warn; the rest go to debug (a lossy UDP link can print one per packet). */
const WARN_LINES_PER_ATTEMPT = 30;
const PRE_OUTPUT_ALLOWANCE_MS = 5000;
/** Timing slack when crediting a progress block's media-time gain (see onProgress). */
const PROGRESS_SLACK_MS = 250;

function sessionId(now: number): string {
  return `${now.toString(36).padStart(9, '0')}-${randomBytes(4).toString('hex')}`;
}

function defaultFfprobe(ffmpegPath: string): string {
  const b = basename(ffmpegPath);
  if (b === 'ffmpeg' && ffmpegPath.includes('/')) return join(dirname(ffmpegPath), 'ffprobe');
  return 'ffprobe';
}

function lines(stream: Readable, onLine: (line: string) => void): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (s: string) => {
    pending += s;
    let nl: number;
    while ((nl = pending.search(/[\r\n]/)) >= 0) {
      const line = pending.slice(0, nl).trimEnd();
      pending = pending.slice(nl + 1);
      if (line) onLine(line);
    }
    if (pending.length > 64 * 1024) pending = pending.slice(-4096); // a runaway line must not grow forever
  });
  stream.on('end', () => {
    if (pending.trim()) onLine(pending.trimEnd());
    pending = '';
  });
}

export class RtspSource extends EventEmitter<RtspSourceEvents> {
  private readonly o: RtspSourceOptions;
  private readonly onSession: (s: RtspSessionInfo) => RtspSessionSink;
  private readonly log: Logger;
  private readonly redact: Redactor;
  private readonly redactedUrl: string;
  private readonly ffprobePath: string;
  private readonly healthyMs: number;
  private readonly graceMs: number;
  private layout: SourceLayout | undefined;
  private current: Attempt | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private failures = 0;
  private isUp = false;
  private counts = { probes: 0, spawns: 0, sessions: 0 };

  /** Validates the options (throws APC_ERR_CONFIG_INVALID, URL redacted); no I/O, no timers. */
  constructor(o: RtspSourceOptions, onSession: (s: RtspSessionInfo) => RtspSessionSink) {
    super();
    const parsed = parseRtspUrl(o.url);
    const invalid = (why: string): never => {
      throw new AppendcastError(ErrorCode.ConfigInvalid, `RTSP source ${o.streamId} (${parsed.redacted}): ${why}`);
    };
    if (!['tcp', 'udp', 'auto'].includes(o.transport)) invalid(`transport must be tcp, udp or auto`);
    if (!['auto', 'copy', 'aac', 'drop'].includes(o.audio)) invalid(`audio must be auto, copy, aac or drop`);
    if (!(o.stallTimeoutMs >= 500)) invalid('stallTimeoutMs must be at least 500');
    if (!(o.backoff.baseMs > 0) || !(o.backoff.maxMs >= o.backoff.baseMs)) invalid('backoff needs 0 < baseMs <= maxMs');
    if (o.fragmentDurationMs !== null && !(o.fragmentDurationMs > 0)) invalid('fragmentDurationMs must be positive or null');
    this.o = o;
    this.onSession = onSession;
    this.redact = makeRedactor(o.url);
    this.redactedUrl = parsed.redacted;
    this.ffprobePath = o.ffprobePath ?? defaultFfprobe(o.ffmpegPath);
    this.healthyMs = o.healthySessionMs ?? Math.max(10_000, 2 * o.backoff.baseMs);
    this.graceMs = o.stopGraceMs ?? 3000;
    this.log = o.logger.child({ stream: o.streamId, source: parsed.redacted });
  }

  /** True while a session is producing output. */
  get up(): boolean {
    return this.isUp;
  }

  /** The running child (ffprobe while probing, else ffmpeg), if any. */
  get pid(): number | undefined {
    return this.current?.child.pid;
  }

  /** The URL as it may be shown (credentials redacted). */
  get displayUrl(): string {
    return this.redactedUrl;
  }

  get stats(): RtspSourceStats {
    return { ...this.counts, consecutiveFailures: this.failures, layout: this.layout ? { ...this.layout } : undefined };
  }

  /** Starts the first attempt now. Idempotent; does nothing after close(). */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.log.info({ transport: this.o.transport, audio: this.o.audio }, 'rtsp source starting');
    this.attempt();
  }

  /**
   * Stops for good: cancels a pending reconnect, stops the running child (a session is ended with
   * its last fragment flushed), and resolves once no child of this source is left.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const a = this.current;
    this.closing = (async () => {
      if (a) {
        a.stopping = true;
        if (a.kind === 'probe' || !a.session) {
          // Nothing to flush yet.
          this.kill(a, 'SIGKILL');
        } else {
          this.kill(a, 'SIGTERM');
          a.timers.push(setTimeout(() => this.kill(a, 'SIGTERM'), this.graceMs / 2));
          a.timers.push(
            setTimeout(() => {
              a.hardKilled = true;
              this.kill(a, 'SIGKILL');
            }, this.graceMs),
          );
        }
        await a.done;
      }
      this.isUp = false;
      this.log.info('rtsp source closed');
    })();
    return this.closing;
  }

  private kill(a: Attempt, signal: NodeJS.Signals): void {
    if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill(signal);
  }

  private safeEmit<K extends keyof RtspSourceEvents>(event: K, ...args: RtspSourceEvents[K]): void {
    try {
      (this.emit as (e: K, ...rest: RtspSourceEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ err: this.errText(err), event }, 'rtsp source listener threw');
    }
  }

  private errText(err: unknown): string {
    return this.redact(err instanceof Error ? err.message : String(err));
  }

  private attempt(): void {
    this.retryTimer = undefined;
    if (this.closed) return;
    if (this.layout) this.runFfmpeg(this.layout);
    else this.runProbe();
  }

  private newAttempt(kind: Attempt['kind'], child: ChildProcess, planned: SourceLayout | undefined): Attempt {
    const now = Date.now();
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const a: Attempt = {
      kind, child, spawnedAt: now, lastLiveAt: now, phase: 'connecting', planned, tail: [], loggedLines: 0,
      watchdog: false, stopping: false, hardKilled: false, forced: undefined, session: undefined,
      splitter: this.o.format === 'mpegts' ? new Mpeg2TsSplitter({ fragmentDurationMs: this.o.fragmentDurationMs ?? undefined }) : new Fmp4Splitter(),
      splitFailed: false, reader: new InputStreamsReader(), progress: undefined,
      probeOut: '', timers: [], done,
    };
    this.current = a;
    child.on('error', (err) => {
      // Failed to spawn (ENOENT, EACCES); 'close' follows.
      a.tail.push(`[fatal] could not start ${kind === 'probe' ? 'ffprobe' : 'ffmpeg'}: ${err.message}`);
      this.log.error({ err: this.errText(err), path: kind === 'probe' ? this.ffprobePath : this.o.ffmpegPath }, `${kind === 'probe' ? 'ffprobe' : 'ffmpeg'} failed to start`);
    });
    child.once('close', (code, signal) => {
      for (const t of a.timers) clearTimeout(t);
      try {
        if (kind === 'probe') this.probeClosed(a, code, signal);
        else this.ffmpegClosed(a, code, signal);
      } finally {
        if (this.current === a) this.current = undefined;
        resolveDone();
      }
    });
    return a;
  }

  private onStderr(a: Attempt, line: string): void {
    a.tail.push(line);
    if (a.tail.length > TAIL_LINES) a.tail.shift();
    const level = /^(?:\[[^\]]*\]\s*)*\[(\w+)\]/.exec(line)?.[1] ?? 'info';
    const shown = this.redact(line);
    if (level === 'info' || level === 'verbose' || level === 'debug' || level === 'trace') this.log.debug({ ffmpeg: shown }, 'ffmpeg');
    else if (a.loggedLines < WARN_LINES_PER_ATTEMPT) {
      a.loggedLines++;
      this.log.warn({ ffmpeg: shown, pid: a.child.pid }, a.loggedLines === WARN_LINES_PER_ATTEMPT ? 'ffmpeg (further lines of this run at debug level)' : 'ffmpeg');
    } else this.log.debug({ ffmpeg: shown }, 'ffmpeg');
  }

  // ---- probe -------------------------------------------------------------------------------------

  private runProbe(): void {
    const args = probeArgs({ url: this.o.url, transport: this.o.transport, timeoutMs: this.o.stallTimeoutMs });
    const child = spawn(this.ffprobePath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.counts.probes++;
    const a = this.newAttempt('probe', child, undefined);
    this.log.debug({ pid: child.pid, args: this.redact(args.join(' ')) }, 'rtsp probe');
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (s: string) => {
      if (a.probeOut.length < 256 * 1024) a.probeOut += s;
    });
    lines(child.stderr!, (l) => this.onStderr(a, l));
    // ffprobe's own socket timeout is stallTimeoutMs; this is the backstop (DNS, a server that
    // accepts and never answers in a way the timeout covers).
    a.timers.push(
      setTimeout(() => {
        a.watchdog = true;
        this.kill(a, 'SIGKILL');
      }, this.o.stallTimeoutMs + 2000),
    );
  }

  private probeClosed(a: Attempt, code: number | null, signal: NodeJS.Signals | null): void {
    if (a.stopping || this.closed) return;
    const layout = code === 0 && !a.watchdog ? parseProbeJson(a.probeOut) : undefined;
    if (layout && (layout.video !== undefined || layout.audio !== undefined)) {
      this.layout = layout;
      this.log.info(
        { video: layout.video ?? null, audio: layout.audio ?? null, audioSampleRate: layout.audioSampleRate ?? null, audioAction: audioAction(this.o.audio, layout), ms: Date.now() - a.spawnedAt },
        'rtsp source codecs',
      );
      this.runFfmpeg(layout);
      return;
    }
    if (layout) {
      this.fail(a, 'codec', 'the source has neither video nor audio', undefined);
      return;
    }
    const c = classifyAttemptEnd({ lines: a.tail, code, signal, phase: 'connecting', watchdog: a.watchdog });
    this.fail(a, c.reason, c.evidence, undefined);
  }

  // ---- ffmpeg ------------------------------------------------------------------------------------

  private runFfmpeg(layout: SourceLayout): void {
    const args = rtspFfmpegArgs({
      url: this.o.url, transport: this.o.transport, timeoutMs: this.o.stallTimeoutMs, layout, audio: this.o.audio,
      fragmentDurationMs: this.o.fragmentDurationMs, format: this.o.format ?? 'fmp4',
    });
    // Own process group: a terminal's Ctrl-C goes to the gateway only, which stops ffmpeg itself.
    const child = spawn(this.o.ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], detached: true });
    this.counts.spawns++;
    const a = this.newAttempt('ffmpeg', child, layout);
    this.log.info({ pid: child.pid, args: this.redact(args.join(' ')) }, 'rtsp ffmpeg spawned');
    child.stdout!.on('data', (chunk: Buffer) => this.onOutput(a, chunk));
    lines(child.stderr!, (l) => {
      this.onStderr(a, l);
      const completed = a.reader.push(l);
      if (a.reader.opened && a.phase === 'connecting') {
        a.phase = 'opened';
        a.lastLiveAt = Date.now();
      }
      if (completed) this.checkLayout(a);
    });
    const progress = child.stdio[3] as Readable | null;
    if (progress) {
      const cur: Record<string, string> = {};
      lines(progress, (l) => {
        const eq = l.indexOf('=');
        if (eq < 0) return;
        const k = l.slice(0, eq);
        const v = l.slice(eq + 1);
        if (k !== 'progress') {
          cur[k] = v;
          return;
        }
        this.onProgress(a, cur);
      });
    }
    const every = Math.min(1000, Math.max(50, this.o.stallTimeoutMs / 4));
    const watchdog = setInterval(() => this.checkStall(a), every);
    watchdog.unref();
    a.timers.push(watchdog);
  }

  /**
   * A progress block is evidence of fresh input only as far as its media time moved: ffmpeg 5.1
   * prints blocks from its main loop, so when a read blocks (the source went silent) the next block
   * comes late — at ffmpeg's own read timeout — and still reports the frames read before the
   * silence (measured: a block 2.1 s after SIGSTOP of the server, frame 53 → 79). Crediting the
   * block's arrival time would restart the stall clock; instead the input is taken as alive until
   * the previous block's time plus the media time gained (a real-time source gains ~1 s per second).
   * ffmpeg 7.1 prints blocks on time from its own thread; unchanged values give no credit either.
   */
  private onProgress(a: Attempt, cur: Record<string, string>): void {
    const now = Date.now();
    const sig = `${cur.frame}|${cur.out_time_us}|${cur.total_size}`;
    const outUs = Number(cur.out_time_us);
    const prev = a.progress;
    a.progress = { at: now, outUs: Number.isFinite(outUs) ? outUs : undefined, sig };
    if (prev && sig === prev.sig) return;
    if (prev?.outUs !== undefined && a.progress.outUs !== undefined) {
      const gainedMs = (a.progress.outUs - prev.outUs) / 1000;
      if (gainedMs > 0) a.lastLiveAt = Math.max(a.lastLiveAt, Math.min(now, prev.at + gainedMs + PROGRESS_SLACK_MS));
    } else {
      a.lastLiveAt = Math.max(a.lastLiveAt, now);
    }
  }

  private checkLayout(a: Attempt): void {
    const actual = a.reader.layout;
    if (!actual || !a.planned || !layoutDiffers(a.planned, actual, this.o.audio)) return;
    this.log.warn(
      { was: { video: a.planned.video ?? null, audio: a.planned.audio ?? null }, now: { video: actual.video ?? null, audio: actual.audio ?? null } },
      'rtsp source codecs changed; restarting ffmpeg with arguments for the new codecs',
    );
    this.layout = actual;
    a.forced = 'codec';
    this.kill(a, 'SIGKILL');
  }

  private checkStall(a: Attempt): void {
    if (a.stopping || a.watchdog || a.forced) return;
    const limit = a.phase === 'streaming' ? this.o.stallTimeoutMs : this.o.stallTimeoutMs + PRE_OUTPUT_ALLOWANCE_MS;
    const silent = Date.now() - a.lastLiveAt;
    if (silent <= limit) return;
    a.watchdog = true;
    this.log.warn({ pid: a.child.pid, silentMs: Math.round(silent), phase: a.phase }, 'rtsp source silent for too long; killing ffmpeg');
    this.kill(a, 'SIGKILL');
  }

  private onOutput(a: Attempt, chunk: Buffer): void {
    const now = Date.now();
    a.lastLiveAt = now;
    if (a.forced || a.watchdog) return;
    if (!a.session) {
      if (a.stopping) return;
      const info: RtspSessionInfo = { id: sessionId(now), startedAt: now };
      let sink: RtspSessionSink;
      try {
        sink = this.onSession(info);
      } catch (err) {
        this.log.error({ err: this.errText(err) }, 'rtsp session refused by its sink; stopping ffmpeg');
        a.forced = 'exit';
        this.kill(a, 'SIGKILL');
        return;
      }
      a.session = { ...info, sink };
      a.phase = 'streaming';
      this.counts.sessions++;
      this.isUp = true;
      this.log.info({ session: info.id, pid: a.child.pid, startupMs: now - a.spawnedAt }, 'rtsp session started');
      this.safeEmit('up');
    }
    const sink = a.session.sink;
    try {
      sink.bytes(chunk);
    } catch (err) {
      this.log.error({ err: this.errText(err) }, 'rtsp sink.bytes threw');
    }
    if (a.splitFailed) return;
    let outs: ContainerOutput[];
    try {
      outs = a.splitter.push(chunk, now);
    } catch (err) {
      a.splitFailed = true;
      a.forced = 'exit';
      this.log.error({ err: this.errText(err) }, 'ffmpeg output is not fragmented MP4; stopping it');
      this.kill(a, 'SIGKILL');
      return;
    }
    if (outs.length > 0) this.deliver(a, outs);
  }

  private deliver(a: Attempt, outs: ContainerOutput[]): void {
    try {
      a.session!.sink.outputs(outs);
    } catch (err) {
      this.log.error({ err: this.errText(err) }, 'rtsp sink.outputs threw');
    }
  }

  private ffmpegClosed(a: Attempt, code: number | null, signal: NodeJS.Signals | null): void {
    let droppedBytes = 0;
    let error: unknown;
    if (a.session && !a.splitFailed) {
      try {
        const outs = a.splitter.flush();
        if (outs.length > 0) this.deliver(a, outs);
      } catch (err) {
        droppedBytes = err instanceof ContainerError ? err.droppedBytes : 0;
        error = new AppendcastError(ErrorCode.ContainerInvalid, this.errText(err));
        this.log.warn({ droppedBytes }, 'ffmpeg output ended inside a box; the partial box is not recorded');
      }
    }
    const stoppedByUs = a.stopping;
    const c = stoppedByUs
      ? undefined
      : a.forced
        ? { reason: a.forced, evidence: undefined }
        : classifyAttemptEnd({ lines: a.tail, code, signal, phase: a.phase, watchdog: a.watchdog });
    if (a.session) {
      const sessionMs = Date.now() - a.session.startedAt;
      // close(): ffmpeg exits 255 after SIGTERM ("Exiting normally, received signal 15"), 0 if the input ended at the same time.
      const clean = stoppedByUs && !a.hardKilled && signal === null && (code === 0 || code === 255) && droppedBytes === 0 && !a.splitFailed;
      const exit: RemuxExit = { clean, code, signal, droppedBytes, ...(c ? { lost: c.reason } : {}), ...(error ? { error } : {}) };
      this.log.info({ session: a.session.id, sessionMs, code, signal, clean, reason: c?.reason ?? null }, 'rtsp session ended');
      try {
        a.session.sink.end(exit);
      } catch (err) {
        this.log.error({ err: this.errText(err) }, 'rtsp sink.end threw');
      }
      this.isUp = false;
      if (c && !this.closed) this.fail(a, c.reason, c.evidence, sessionMs);
      return;
    }
    if (c && !this.closed) this.fail(a, c.reason, c.evidence, undefined);
  }

  // ---- failure and backoff -----------------------------------------------------------------------

  private fail(a: Attempt, reason: RtspDownReason, evidence: string | undefined, sessionMs: number | undefined): void {
    this.isUp = false;
    if (sessionMs !== undefined && sessionMs >= this.healthyMs) this.failures = 0;
    const delayMs = Math.round(backoffDelay(this.failures, this.o.backoff.baseMs, this.o.backoff.maxMs, this.o.random));
    this.failures++;
    const fields = {
      reason,
      detail: evidence ? this.redact(evidence.replace(/^(?:\[[^\]]*\]\s*)+/, '')) : undefined,
      attempt: this.failures,
      retryInMs: delayMs,
      ...(sessionMs !== undefined ? { sessionMs } : {}),
      ...(a.kind === 'probe' ? { during: 'probe' } : {}),
    };
    const msg = `rtsp source down: ${describeReason(reason)}; retrying in ${(delayMs / 1000).toFixed(1)} s`;
    // A human must act on auth and not-found; the rest usually heal. Repeats of the same failure go to warn.
    if ((reason === 'auth' || reason === 'not-found') && this.failures <= 1) this.log.error(fields, msg);
    else this.log.warn(fields, msg);
    this.safeEmit('down', reason);
    this.safeEmit('reconnect', reason, delayMs);
    if (this.closed) return;
    this.retryTimer = setTimeout(() => this.attempt(), delayMs);
  }
}
