import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { StreamConfig } from '../config/index.js';
import { Fmp4Splitter, type ContainerOutput } from '../container/index.js';
import type { PublishInfo, PublishSink } from '../ingest/rtmp/rtmp-ingest.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import { Remuxer, type RemuxerExit } from '../remux/remuxer.js';
import type { SessionSpool } from '../spool/session-spool.js';
import type { Logger } from '../util/logger.js';

export interface SessionSummary {
  /** The remuxer session (and spool session) id: the publish id, with `-rN` after a remuxer restart. */
  id: string;
  publishId: string;
  stream: string;
  startedAt: string;
  endedAt: string | null;
  /** SHA-256 and length of everything the remuxer wrote to stdout. */
  remuxSha256: string;
  remuxBytes: number;
  /** Bytes of the remuxer output that reached the spool (whole boxes); equal to remuxBytes unless the output ended mid-box. */
  spooledBytes: number;
  ingestBytes: number;
  fragments: number;
  ffmpegExit: RemuxerExit | null;
}

export interface PublishSessionOptions {
  info: PublishInfo;
  /** This remuxer session's id (the spool session's). */
  sessionId: string;
  /** A remuxer that takes input but writes nothing for this long is killed (and replaced by the gateway). */
  stallTimeoutMs: number;
  stream: StreamConfig;
  /** Opening a session spool is asynchronous; entries wait in memory until it is ready. */
  spool: Promise<SessionSpool>;
  metrics: GatewayMetrics;
  logger: Logger;
  ffmpegPath: string;
}

export interface PublishSessionEvents {
  finished: [summary: SessionSummary];
  /** The remuxer died or stalled while the camera was still publishing. */
  remuxerLost: [reason: string];
}

/**
 * The ingest half of one publish: FLV tap → ffmpeg (-c copy → fMP4) → splitter → spool. It never
 * waits on the store: the spool takes every entry synchronously, and a SessionAppender drains it.
 */
export class PublishSession extends EventEmitter<PublishSessionEvents> {
  private readonly o: PublishSessionOptions;
  private readonly log: Logger;
  private readonly remuxer: Remuxer;
  private readonly splitter = new Fmp4Splitter();
  private readonly remuxSha = createHash('sha256');
  private splitFailed = false;
  private spool: SessionSpool | undefined;
  private early: ContainerOutput[] = [];
  private readonly summary: SessionSummary;
  private readonly finishedPromise: Promise<SessionSummary>;
  /** The publisher left or the gateway is stopping: a remuxer exit now is the normal end. */
  private inputEnded = false;
  private lostReason: string | undefined;
  private readonly startedAt = Date.now();
  private lastInputAt = Date.now();
  private lastOutputAt = 0;
  private readonly watchdog: NodeJS.Timeout;

  constructor(o: PublishSessionOptions) {
    super();
    this.o = o;
    const stream = o.stream.id;
    this.log = o.logger.child({ stream, session: o.sessionId, publish: o.info.id });
    this.summary = {
      id: o.sessionId, publishId: o.info.id, stream, startedAt: new Date(o.info.startedAt).toISOString(), endedAt: null,
      remuxSha256: '', remuxBytes: 0, spooledBytes: 0, ingestBytes: 0, fragments: 0, ffmpegExit: null,
    };
    this.remuxer = new Remuxer({
      ffmpegPath: o.ffmpegPath, inputFormat: 'flv', fragmentDurationMs: o.stream.fragmentDurationMs ?? undefined,
    });
    this.log.info({ remote: o.info.remote, pid: this.remuxer.pid, args: this.remuxer.args.join(' ') }, 'publish started; remuxer spawned');
    o.metrics.streamUp.set({ stream }, 1);
    this.remuxer.on('stderr', (line) => this.log.warn({ ffmpeg: line }, 'ffmpeg'));
    this.remuxer.on('error', (err) => this.log.error({ err }, 'remuxer failed'));
    this.remuxer.on('data', (chunk, at) => this.onRemuxData(chunk, at));
    void o.spool.then((spool) => {
      this.spool = spool;
      const early = this.early;
      this.early = [];
      this.spoolAll(early);
    }, (err: unknown) => {
      this.log.error({ err }, 'cannot open the spool for this publish; stopping it');
      void this.remuxer.stop();
    });
    this.finishedPromise = this.remuxer.done().then((exit) => this.finish(exit));
    this.watchdog = setInterval(() => this.checkStall(), Math.min(1000, Math.max(50, o.stallTimeoutMs / 4)));
    this.watchdog.unref();
  }

  get id(): string {
    return this.o.sessionId;
  }

  get pid(): number | undefined {
    return this.remuxer.pid;
  }

  /** Input flowing, no output for stallTimeoutMs (and past the startup probe): ffmpeg is stuck. */
  private checkStall(): void {
    if (this.inputEnded || this.lostReason) return;
    const now = Date.now();
    const limit = this.o.stallTimeoutMs;
    const since = Math.max(this.lastOutputAt, this.startedAt);
    if (now - since > limit && now - this.lastInputAt < limit) {
      this.lostReason = 'stall';
      this.log.error({ pid: this.remuxer.pid, silentMs: now - since }, 'remuxer stalled: input flows but no output; killing it');
      this.remuxer.kill();
    }
  }

  /** The FLV sink the ingest writes the publish into. */
  sink(): PublishSink {
    return {
      write: (buf) => {
        this.lastInputAt = Date.now();
        this.summary.ingestBytes += buf.length;
        this.o.metrics.ingestBytes.inc({ stream: this.o.stream.id }, buf.length);
        this.remuxer.write(buf);
      },
      end: () => {
        this.inputEnded = true;
        void this.remuxer.stop();
      },
    };
  }

  /** Stop now (gateway shutdown): ends ffmpeg's input so it flushes; the spool gets the rest. */
  async stop(): Promise<SessionSummary> {
    this.inputEnded = true;
    await this.remuxer.stop();
    return this.finishedPromise;
  }

  finished(): Promise<SessionSummary> {
    return this.finishedPromise;
  }

  private onRemuxData(chunk: Buffer, receivedAt: number): void {
    this.lastOutputAt = receivedAt;
    this.remuxSha.update(chunk);
    this.summary.remuxBytes += chunk.length;
    this.o.metrics.remuxBytes.inc({ stream: this.o.stream.id }, chunk.length);
    if (this.splitFailed) return;
    try {
      this.spoolAll(this.splitter.push(chunk, receivedAt));
    } catch (err) {
      this.splitFailed = true;
      this.log.error({ err }, 'remuxer output is not fragmented MP4; stopping this publish');
      void this.remuxer.stop();
    }
  }

  private spoolAll(outputs: ContainerOutput[]): void {
    const stream = this.o.stream.id;
    const spool = this.spool;
    if (!spool) {
      this.early.push(...outputs);
      return;
    }
    for (const out of outputs) {
      if (out.type === 'fragment') {
        this.summary.fragments++;
        this.o.metrics.fragmentArrived(stream, out.receivedAt);
        spool.append({ kind: 'fragment', receivedAt: out.receivedAt, mediaTime: out.startTime, duration: out.duration, keyframe: out.keyframe }, out.bytes);
      } else {
        spool.append({ kind: out.type, receivedAt: Date.now() }, out.bytes);
      }
      this.summary.spooledBytes += out.bytes.length;
    }
  }

  private async finish(exit: RemuxerExit): Promise<SessionSummary> {
    clearInterval(this.watchdog);
    const stream = this.o.stream.id;
    // Exiting while the camera still publishes: stalled (killed above) or crashed.
    const lost = this.inputEnded ? undefined : (this.lostReason ?? (exit.signal ? `signal-${exit.signal}` : `exit-${exit.code}`));
    if (!this.splitFailed) {
      try {
        this.spoolAll(this.splitter.flush());
      } catch (err) {
        const dropped = (err as { droppedBytes?: number }).droppedBytes ?? 0;
        if (dropped > 0) this.o.metrics.lostBytes.inc({ stream, reason: 'truncated-remux-output' }, dropped);
        this.log.error({ err }, 'remuxer output ended inside a box; the partial box is not recorded');
      }
    }
    try {
      await (await this.o.spool).seal();
    } catch (err) {
      this.log.error({ err }, 'cannot seal the spool of this publish');
    }
    if (lost) this.o.metrics.ffmpegRestarts.inc({ stream, reason: lost });
    else if (!exit.clean) this.log.warn({ ffmpeg: exit }, 'remuxer did not exit cleanly at the end of the publish');
    if (!lost) this.o.metrics.streamUp.set({ stream }, 0);
    Object.assign(this.summary, { endedAt: new Date().toISOString(), remuxSha256: this.remuxSha.digest('hex'), ffmpegExit: exit });
    this.log.info({ ffmpeg: exit, remuxBytes: this.summary.remuxBytes, remuxSha256: this.summary.remuxSha256, fragments: this.summary.fragments }, 'publish ended');
    this.emit('finished', this.summary);
    if (lost) this.emit('remuxerLost', lost);
    return this.summary;
  }
}
