import { EventEmitter } from 'node:events';
import type { StreamConfig } from '../config/index.js';
import type { PublishInfo } from '../ingest/types.js';
import type { MediaPacket } from '../media/types.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import { FfmpegRemuxStage } from '../remux/ffmpeg-remux-stage.js';
import { NativeRemuxStage } from '../remux/native-remux-stage.js';
import type { RemuxExit, RemuxKind, RemuxStage } from '../remux/remux-stage.js';
import type { SessionSpool } from '../spool/session-spool.js';
import type { Logger } from '../util/logger.js';
import { TimelineShift } from '../container/fmp4/timeline-shift.js';
import { CodecProbe } from './codec-probe.js';
import { chooseRemux, type RemuxChoice } from './remux-choice.js';
import { SessionRecorder, type SessionSummary } from './session-recorder.js';

export type { SessionSummary };

export interface PublishSessionOptions {
  info: PublishInfo;
  /** This remuxer session's id (the spool session's). */
  sessionId: string;
  stream: StreamConfig;
  /**
   * Takes entries at once, also while its directory is still being created (they queue in its
   * writer, within spool.memoryBytesPerStream; past that they are dropped and counted as
   * 'write-backlog'): nothing is buffered here. If it cannot start, the publish fails.
   */
  spool: SessionSpool;
  metrics: GatewayMetrics;
  logger: Logger;
  ffmpegPath: string;
  /** An ffmpeg remuxer that takes input but writes nothing for this long is killed (and replaced by the gateway). */
  stallTimeoutMs: number;
  /** Known already (a replacement session): skip the codec probe. */
  choice?: RemuxChoice;
  /** SHA-256 of the spooled bytes in the summary (spool.sessionSha256). */
  sha256?: boolean;
  /** How long the first packets wait for the codecs to be known. */
  probeMs?: number;
  /**
   * A continued recording (the camera reconnected within the grace): the media time (s) this
   * session's output starts at — the previous session's last fragment end plus the real gap.
   * Resolves once the previous session has flushed; null: start at 0 (no continuation).
   */
  timelineBase?: Promise<number | null>;
}

/** How long a reconnecting publish waits for its predecessor to flush before starting at 0 instead. */
const BASE_WAIT_MS = 5000;

export interface PublishSessionEvents {
  finished: [summary: SessionSummary];
  /** The ffmpeg remuxer died or stalled while the camera was still publishing: the gateway replaces it. */
  remuxerLost: [reason: string, choice: RemuxChoice];
  /** The camera's media cannot be remuxed (a MediaError): the publish should be ended. */
  failed: [err: unknown];
}

const PROBE_MAX_BYTES = 8 * 1024 * 1024;

/**
 * The ingest half of one remuxer session: packets → (codec probe) → remux stage (native or ffmpeg)
 * → spool. It never waits on the store: the spool takes every entry synchronously, and a
 * SessionAppender drains it.
 */
export class PublishSession extends EventEmitter<PublishSessionEvents> {
  private readonly o: PublishSessionOptions;
  private readonly log: Logger;
  private readonly probe: CodecProbe;
  private stage: RemuxStage | undefined;
  private choice: RemuxChoice | undefined;
  private readonly recorder: SessionRecorder;
  private inputEnded = false;
  private failed = false;
  /** Packets that arrived while the stage waits for its timeline base. */
  private waiting: Array<{ p: MediaPacket; at: number }> | undefined;
  private resolveBase!: (base: number | null) => void;
  /** The timeline base the remuxer started with (null: 0, not a continuation); never resolves without media. */
  readonly timelineBase = new Promise<number | null>((r) => { this.resolveBase = r; });
  private resolveFinished!: (s: SessionSummary) => void;
  private readonly finishedPromise = new Promise<SessionSummary>((r) => { this.resolveFinished = r; });

  constructor(o: PublishSessionOptions) {
    super();
    this.o = o;
    const stream = o.stream.id;
    this.log = o.logger.child({ stream, session: o.sessionId, publish: o.info.id });
    this.probe = new CodecProbe({ probeMs: o.probeMs ?? 1000, maxBytes: PROBE_MAX_BYTES });
    this.recorder = new SessionRecorder({
      sessionId: o.sessionId, publishId: o.info.id, stream, startedAt: o.info.startedAt, spool: o.spool, metrics: o.metrics, logger: this.log,
      sha256: o.sha256 ?? false,
    });
  }

  /** Starts the remuxer when it is known already (a replacement session), and watches the spool start. */
  start(): void {
    this.o.metrics.streamUp.set({ stream: this.o.stream.id }, 1);
    this.o.spool.start().catch((err: unknown) => {
      this.log.error({ err }, 'cannot open the spool for this publish; stopping it');
      this.fail(err);
    });
    if (this.o.choice) this.startStage(this.o.choice, null);
  }

  /** Where a session continuing this one after `gapSeconds` starts on the media timeline (null: nothing recorded). */
  continueAt(gapSeconds: number): { base: number; gap: number } | null {
    return this.recorder.continueAt(gapSeconds);
  }

  get id(): string {
    return this.o.sessionId;
  }

  get pid(): number | undefined {
    return this.stage?.pid;
  }

  get remuxKind(): RemuxKind | undefined {
    return this.stage?.kind;
  }

  /** One packet of the publish. Never throws. */
  packet(p: MediaPacket, at: number): void {
    if (this.inputEnded || this.failed) return;
    if (p.kind !== 'metadata') this.recorder.ingested(p.tag.body.length);
    if (this.stage) {
      this.feed(p, at);
      return;
    }
    if (this.waiting) {
      this.waiting.push({ p, at });
      return;
    }
    if (this.probe.push(p, at)) this.startProbed();
  }

  /** The codecs are known: start the remuxer now, or once the timeline base of a continuation is known. */
  private startProbed(): void {
    const held = this.probe.take();
    if (held.length === 0) return;
    const choice = chooseRemux(this.o.stream, this.probe.codecs);
    const base = this.o.timelineBase;
    if (!base) {
      this.begin(choice, null, held);
      return;
    }
    this.waiting = held;
    const timeout = new Promise<null>((r) => setTimeout(() => r(null), BASE_WAIT_MS).unref());
    void Promise.race([base.catch(() => null), timeout]).then((b) => {
      const waited = this.waiting ?? [];
      this.waiting = undefined;
      if (b === null) this.log.info('the previous session did not flush in time: this one starts its own timeline');
      this.begin(choice, b, waited);
      if (this.inputEnded) void this.stage?.end();
    });
  }

  private begin(choice: RemuxChoice, base: number | null, held: Array<{ p: MediaPacket; at: number }>): void {
    this.startStage(choice, base);
    for (const { p, at } of held) this.feed(p, at);
  }

  private startStage(choice: RemuxChoice, base: number | null): void {
    this.choice = choice;
    this.resolveBase(base);
    const events = this.recorder.events;
    const codecs = choice.codecs;
    const ts = choice.kind === 'ffmpeg' && choice.format === 'mpegts';
    // fMP4 is moved on the timeline by rewriting tfdt; ffmpeg writes MPEG-TS at an offset itself.
    if (base !== null && base > 0 && !ts) this.recorder.shiftBy(new TimelineShift(base));
    this.stage = choice.kind === 'native'
      ? new NativeRemuxStage({ fragmentDurationMs: this.o.stream.fragmentDurationMs }, events)
      : new FfmpegRemuxStage({
        ffmpegPath: this.o.ffmpegPath, input: choice.input, format: choice.format, audio: choice.audio,
        hasAudio: codecs.audio !== undefined && !choice.dropAudio, hasVideo: codecs.video !== undefined,
        fragmentDurationMs: this.o.stream.fragmentDurationMs, stallTimeoutMs: this.o.stallTimeoutMs, logger: this.log,
        ...(ts && base ? { tsOffsetSeconds: base } : {}),
      }, events);
    this.recorder.summary.remux = choice.kind;
    this.log.info({ remux: choice.kind, audio: choice.audio, dropAudio: choice.dropAudio, codecs, why: choice.why, pid: this.stage.pid, timelineBase: base }, 'remuxer started');
    void this.stage.done().then((exit) => this.finish(exit));
  }

  private feed(p: MediaPacket, at: number): void {
    if (p.kind === 'audio' && this.choice?.dropAudio) return;
    try {
      this.stage!.push(p, at);
    } catch (err) {
      this.log.error({ err }, 'cannot remux this camera\'s media; ending the publish');
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.emit('failed', err);
    void this.end();
  }

  /** The publisher left (or is cut off): flush what the remuxer holds into the spool. */
  end(): Promise<SessionSummary> {
    if (!this.inputEnded) {
      this.inputEnded = true;
      if (!this.stage && !this.waiting) this.startProbed();
      if (this.stage) void this.stage.end();
      else if (!this.waiting) {
        this.resolveBase(null);
        void this.finish(null);
      }
      // else: ends once the stage starts (startProbed)
    }
    return this.finishedPromise;
  }

  finished(): Promise<SessionSummary> {
    return this.finishedPromise;
  }

  private async finish(exit: RemuxExit | null): Promise<void> {
    const stream = this.o.stream.id;
    const summary = await this.recorder.finish(exit);
    const lost = exit?.lost;
    if (lost) this.o.metrics.remuxerRestarted(stream, lost);
    else if (exit && !exit.clean) this.log.warn({ remux: exit }, 'remuxer did not end cleanly at the end of the publish');
    if (!lost) this.o.metrics.streamUp.set({ stream }, 0);
    this.emit('finished', summary);
    if (lost && this.choice) this.emit('remuxerLost', lost, this.choice);
    this.resolveFinished(summary);
  }
}
