import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { StreamConfig } from '../config/index.js';
import type { ContainerOutput } from '../container/index.js';
import type { PublishInfo } from '../ingest/types.js';
import type { MediaPacket } from '../media/types.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import { FfmpegRemuxStage } from '../remux/ffmpeg-remux-stage.js';
import { NativeRemuxStage } from '../remux/native-remux-stage.js';
import type { RemuxExit, RemuxKind, RemuxStage, RemuxStageEvents } from '../remux/remux-stage.js';
import type { SessionSpool } from '../spool/session-spool.js';
import type { Logger } from '../util/logger.js';
import { chooseRemux, CodecProbe, type RemuxChoice } from './codec-probe.js';

export interface SessionSummary {
  /** The remuxer session (and spool session) id: the publish id, with `-rN` after a remuxer restart. */
  id: string;
  publishId: string;
  stream: string;
  startedAt: string;
  endedAt: string | null;
  /** Which remuxer ran (null when the publish ended before any media). */
  remux: RemuxKind | null;
  /** SHA-256 and length of everything the remuxer produced. */
  remuxSha256: string;
  remuxBytes: number;
  /** Bytes of the remuxer output that reached the spool (whole boxes); equal to remuxBytes unless the output ended mid-box. */
  spooledBytes: number;
  /** FLV tag bytes received from the camera for this session. */
  ingestBytes: number;
  fragments: number;
  remuxExit: RemuxExit | null;
}

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
  /** How long the first packets wait for the codecs to be known. */
  probeMs?: number;
}

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
  private readonly remuxSha = createHash('sha256');
  private readonly summary: SessionSummary;
  private inputEnded = false;
  private failed = false;
  private resolveFinished!: (s: SessionSummary) => void;
  private readonly finishedPromise = new Promise<SessionSummary>((r) => { this.resolveFinished = r; });

  constructor(o: PublishSessionOptions) {
    super();
    this.o = o;
    const stream = o.stream.id;
    this.log = o.logger.child({ stream, session: o.sessionId, publish: o.info.id });
    this.probe = new CodecProbe({ probeMs: o.probeMs ?? 1000, maxBytes: PROBE_MAX_BYTES });
    this.summary = {
      id: o.sessionId, publishId: o.info.id, stream, startedAt: new Date(o.info.startedAt).toISOString(), endedAt: null,
      remux: null, remuxSha256: '', remuxBytes: 0, spooledBytes: 0, ingestBytes: 0, fragments: 0, remuxExit: null,
    };
  }

  /** Starts the remuxer when it is known already (a replacement session), and watches the spool start. */
  start(): void {
    this.o.metrics.streamUp.set({ stream: this.o.stream.id }, 1);
    this.o.spool.start().catch((err: unknown) => {
      this.log.error({ err }, 'cannot open the spool for this publish; stopping it');
      this.fail(err);
    });
    if (this.o.choice) this.startStage(this.o.choice);
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
    if (p.kind !== 'metadata') {
      this.summary.ingestBytes += p.tag.body.length;
      this.o.metrics.ingestBytes.inc({ stream: this.o.stream.id }, p.tag.body.length);
    }
    if (this.stage) {
      this.feed(p, at);
      return;
    }
    if (this.probe.push(p, at)) this.startProbed();
  }

  private startProbed(): void {
    const held = this.probe.take();
    if (held.length === 0) return;
    this.startStage(chooseRemux(this.o.stream.remux, this.probe.codecs));
    for (const { p, at } of held) this.feed(p, at);
  }

  private startStage(choice: RemuxChoice): void {
    this.choice = choice;
    const events: RemuxStageEvents = {
      onBytes: (chunk) => {
        this.remuxSha.update(chunk);
        this.summary.remuxBytes += chunk.length;
        this.o.metrics.remuxBytes.inc({ stream: this.o.stream.id }, chunk.length);
      },
      onOutputs: (outs) => this.spoolAll(outs),
    };
    const codecs = choice.codecs;
    this.stage = choice.kind === 'native'
      ? new NativeRemuxStage({ fragmentDurationMs: this.o.stream.fragmentDurationMs }, events)
      : new FfmpegRemuxStage({
        ffmpegPath: this.o.ffmpegPath, audio: choice.audio, hasAudio: codecs.audio !== undefined && !choice.dropAudio,
        hasVideo: codecs.video !== undefined, fragmentDurationMs: this.o.stream.fragmentDurationMs,
        stallTimeoutMs: this.o.stallTimeoutMs, logger: this.log,
      }, events);
    this.summary.remux = choice.kind;
    this.log.info({ remux: choice.kind, audio: choice.audio, dropAudio: choice.dropAudio, codecs, why: choice.why, pid: this.stage.pid }, 'remuxer started');
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
      if (!this.stage) this.startProbed();
      if (this.stage) void this.stage.end();
      else void this.finish(null);
    }
    return this.finishedPromise;
  }

  finished(): Promise<SessionSummary> {
    return this.finishedPromise;
  }

  private spoolAll(outputs: ContainerOutput[]): void {
    const stream = this.o.stream.id;
    const spool = this.o.spool;
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

  private async finish(exit: RemuxExit | null): Promise<void> {
    const stream = this.o.stream.id;
    if (exit?.droppedBytes) this.o.metrics.lostBytes.inc({ stream, reason: 'truncated-remux-output' }, exit.droppedBytes);
    if (exit?.error) this.log.error({ err: exit.error }, 'the remuxer failed at the end of the publish');
    try {
      await this.o.spool.seal();
    } catch (err) {
      this.log.error({ err }, 'cannot seal the spool of this publish');
    }
    const lost = exit?.lost;
    if (lost) this.o.metrics.ffmpegRestarts.inc({ stream, reason: lost });
    else if (exit && !exit.clean) this.log.warn({ remux: exit }, 'remuxer did not end cleanly at the end of the publish');
    if (!lost) this.o.metrics.streamUp.set({ stream }, 0);
    Object.assign(this.summary, { endedAt: new Date().toISOString(), remuxSha256: this.remuxSha.digest('hex'), remuxExit: exit });
    this.log.info({ remux: exit, remuxBytes: this.summary.remuxBytes, remuxSha256: this.summary.remuxSha256, fragments: this.summary.fragments }, 'publish ended');
    this.emit('finished', this.summary);
    if (lost && this.choice) this.emit('remuxerLost', lost, this.choice);
    this.resolveFinished(this.summary);
  }
}
