/**
 * The ffmpeg path: packets are written back as an FLV byte stream (or, for H.265, which ffmpeg
 * cannot read from FLV, as our own native fMP4) into a supervised `ffmpeg -c:v copy` (audio copied,
 * transcoded to AAC, or dropped), whose fMP4 or MPEG-TS output is cut into whole units by the
 * splitter. A child that dies, or stalls (input flows, nothing comes out), while the publish goes
 * on is reported as lost; the gateway replaces it.
 */
import { ContainerError, Fmp4Splitter, Mpeg2TsSplitter, type ContainerSplitter } from '../container/index.js';
import { FlvWriter } from '../media/flv/flv-file.js';
import type { MediaPacket } from '../media/types.js';
import type { Logger } from '../util/logger.js';
import { FlvToFmp4 } from './native/flv-to-fmp4.js';
import { Remuxer } from './remuxer.js';
import type { RemuxExit, RemuxStage, RemuxStageEvents } from './remux-stage.js';

export interface FfmpegRemuxStageOptions {
  ffmpegPath: string;
  /** What ffmpeg reads: the packets as FLV, or as fMP4 from the native remuxer (H.265). */
  input: 'flv' | 'mp4';
  audio: 'copy' | 'aac' | 'none';
  /** What the FLV header announces (ffmpeg waits for announced streams). */
  hasAudio: boolean;
  hasVideo: boolean;
  fragmentDurationMs: number | null;
  format: 'fmp4' | 'mpegts';
  /** MPEG-TS of a continued recording: its timestamps start here (s). */
  tsOffsetSeconds?: number;
  /** Input flowing and no output for this long (after the start-up probe): ffmpeg is stuck. */
  stallTimeoutMs: number;
  logger: Logger;
}

export class FfmpegRemuxStage implements RemuxStage {
  readonly kind = 'ffmpeg' as const;
  private readonly o: FfmpegRemuxStageOptions;
  private readonly remuxer: Remuxer;
  private readonly writer = new FlvWriter();
  /** input 'mp4': the native remuxer in front of ffmpeg. */
  private readonly native: FlvToFmp4 | undefined;
  private readonly splitter: ContainerSplitter;
  private readonly events: RemuxStageEvents;
  private splitFailed = false;
  private ended = false;
  private lost: string | undefined;
  /** A replacement starts mid-publish: video waits for a keyframe so the first fragment starts with one. */
  private waitingForKeyframe: boolean;
  private readonly startedAt = Date.now();
  private lastInputAt = Date.now();
  private lastOutputAt = 0;
  private readonly watchdog: NodeJS.Timeout;
  private readonly donePromise: Promise<RemuxExit>;

  constructor(o: FfmpegRemuxStageOptions, events: RemuxStageEvents) {
    this.o = o;
    this.events = events;
    this.waitingForKeyframe = o.hasVideo;
    this.splitter = o.format === 'mpegts' ? new Mpeg2TsSplitter({ fragmentDurationMs: o.fragmentDurationMs ?? undefined }) : new Fmp4Splitter();
    this.remuxer = new Remuxer({ ffmpegPath: o.ffmpegPath, inputFormat: o.input, audio: o.audio, format: o.format, fragmentDurationMs: o.fragmentDurationMs ?? undefined,
      ...(o.tsOffsetSeconds ? { outputTsOffsetSeconds: o.tsOffsetSeconds } : {}) });
    this.native = o.input === 'mp4' ? new FlvToFmp4({ fragmentDurationMs: null }) : undefined;
    o.logger.info({ pid: this.remuxer.pid, args: this.remuxer.args.join(' ') }, 'ffmpeg remuxer spawned');
    this.remuxer.on('stderr', (line) => o.logger.warn({ ffmpeg: line }, 'ffmpeg'));
    this.remuxer.on('error', (err) => o.logger.error({ err }, 'remuxer failed'));
    this.remuxer.on('data', (chunk, at) => this.onData(chunk, at));
    if (!this.native) this.remuxer.write(this.writer.header({ audio: o.hasAudio, video: o.hasVideo }));
    this.watchdog = setInterval(() => this.checkStall(), Math.min(1000, Math.max(50, o.stallTimeoutMs / 4)));
    this.watchdog.unref();
    this.donePromise = this.remuxer.done().then((exit) => this.finish(exit));
  }

  get pid(): number | undefined {
    return this.remuxer.pid;
  }

  push(p: MediaPacket, _receivedAt: number): void {
    if (this.ended) return;
    if (this.waitingForKeyframe && p.kind !== 'metadata' && p.packetType !== 'config') {
      if (p.kind !== 'video' || !p.keyframe) return;
      this.waitingForKeyframe = false;
    }
    this.lastInputAt = Date.now();
    if (this.native) {
      for (const out of this.native.push(p, _receivedAt)) this.remuxer.write(out.bytes);
    } else {
      this.remuxer.write(this.writer.tag(p.tag));
    }
  }

  private onData(chunk: Buffer, at: number): void {
    this.lastOutputAt = at;
    this.events.onBytes(chunk);
    if (this.splitFailed) return;
    try {
      this.events.onOutputs(this.splitter.push(chunk, at));
    } catch (err) {
      this.splitFailed = true;
      this.o.logger.error({ err }, `remuxer output is not ${this.o.format === 'mpegts' ? 'MPEG-TS' : 'fragmented MP4'}; stopping it`);
      void this.remuxer.stop();
    }
  }

  private checkStall(): void {
    if (this.ended || this.lost) return;
    const now = Date.now();
    const limit = this.o.stallTimeoutMs;
    const since = Math.max(this.lastOutputAt, this.startedAt);
    if (now - since > limit && now - this.lastInputAt < limit) {
      this.lost = 'stall';
      this.o.logger.error({ pid: this.remuxer.pid, silentMs: now - since }, 'remuxer stalled: input flows but no output; killing it');
      this.remuxer.kill();
    }
  }

  end(): Promise<RemuxExit> {
    if (!this.ended && this.native) {
      try {
        for (const out of this.native.flush()) this.remuxer.write(out.bytes);
      } catch (err) {
        this.o.logger.error({ err }, 'the native remuxer in front of ffmpeg failed at the end of the publish');
      }
    }
    this.ended = true;
    void this.remuxer.stop();
    return this.donePromise;
  }

  /** Kills ffmpeg at once (tests, or a stall). */
  kill(): void {
    this.remuxer.kill();
  }

  done(): Promise<RemuxExit> {
    return this.donePromise;
  }

  private finish(exit: { code: number | null; signal: NodeJS.Signals | null; clean: boolean }): RemuxExit {
    clearInterval(this.watchdog);
    let droppedBytes = 0;
    if (!this.splitFailed) {
      try {
        this.events.onOutputs(this.splitter.flush());
      } catch (err) {
        droppedBytes = err instanceof ContainerError ? err.droppedBytes : 0;
        this.o.logger.error({ err }, 'remuxer output ended inside a box; the partial box is not recorded');
      }
    }
    // Exiting while the camera still publishes: stalled (killed above) or crashed.
    const lost = this.ended ? undefined : (this.lost ?? (exit.signal ? `signal-${exit.signal}` : `exit-${exit.code}`));
    return { clean: exit.clean && !lost, code: exit.code, signal: exit.signal, droppedBytes, ...(lost ? { lost } : {}) };
  }
}
