/**
 * The recording half of a session, whatever its source (an RTMP publish's remux stage, an RTSP
 * pull's ffmpeg): container outputs into the spool session, the bytes' SHA-256 and counts for the
 * API, and the per-stream metrics. `finish()` seals the spool session and returns the summary.
 */
import { createHash, type Hash } from 'node:crypto';
import type { ContainerOutput } from '../container/index.js';
import type { TimelineShifter } from '../container/types.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import type { RemuxExit, RemuxKind, RemuxStageEvents } from '../remux/remux-stage.js';
import type { SessionSpool } from '../spool/session-spool.js';
import type { Logger } from '../util/logger.js';

export interface SessionSummary {
  /** The session id (the spool session's): a publish id (`-rN` after a remuxer restart), or an RTSP pull's. */
  id: string;
  /** The publish (RTMP) or pull session (RTSP) this recording came from. */
  publishId: string;
  stream: string;
  startedAt: string;
  endedAt: string | null;
  /** Which remuxer ran (null when the session ended before any media). */
  remux: RemuxKind | null;
  /** SHA-256 of what reached the spool (the recorded bytes: whole boxes, timeline-shifted when continued); null unless spool.sessionSha256. */
  remuxSha256: string | null;
  /** Bytes the remuxer produced. */
  remuxBytes: number;
  /** Bytes of the remuxer output that reached the spool (whole boxes); equal to remuxBytes unless the output ended mid-box. */
  spooledBytes: number;
  /** Bytes received from the camera for this session (FLV tag bodies for RTMP; 0 for RTSP, which ffmpeg reads). */
  ingestBytes: number;
  fragments: number;
  remuxExit: RemuxExit | null;
}

export class SessionRecorder {
  readonly summary: SessionSummary;
  private readonly stream: string;
  private readonly spool: SessionSpool;
  private readonly metrics: GatewayMetrics;
  private readonly log: Logger;
  private readonly sha: Hash | undefined;
  private finished: Promise<SessionSummary> | undefined;
  private shift: TimelineShifter | undefined;
  /** Camera bytes not yet added to the ingest counter (prom-client's labelled inc per packet was 1.3 % of a core at 200 cameras). */
  private unreportedIngest = 0;
  /** Media time (s) where the last fragment ends: a reconnect continues from here. */
  mediaEnd: number | null = null;
  /** The video frame duration (s) of the last fragment (0: unknown): a reconnect stays on the frame grid. */
  frameStep = 0;

  constructor(o: { sessionId: string; publishId: string; stream: string; startedAt: number; spool: SessionSpool; metrics: GatewayMetrics; logger: Logger; sha256?: boolean }) {
    this.sha = o.sha256 ? createHash('sha256') : undefined;
    this.stream = o.stream;
    this.spool = o.spool;
    this.metrics = o.metrics;
    this.log = o.logger;
    o.metrics.sessionStarted(o.stream, Date.now());
    this.summary = {
      id: o.sessionId, publishId: o.publishId, stream: o.stream, startedAt: new Date(o.startedAt).toISOString(), endedAt: null,
      remux: null, remuxSha256: null, remuxBytes: 0, spooledBytes: 0, ingestBytes: 0, fragments: 0, remuxExit: null,
    };
  }

  /** What a remux stage (or an RTSP pull) reports into. */
  readonly events: RemuxStageEvents = {
    onBytes: (chunk) => {
      this.summary.remuxBytes += chunk.length;
      this.metrics.remuxBytes.inc({ stream: this.stream }, chunk.length);
    },
    onOutputs: (outs) => this.spoolAll(outs),
  };

  /** Fragments from now on are moved on the timeline by this shift (a continued recording); set before the first output. */
  shiftBy(shift: TimelineShifter): void {
    this.shift = shift;
  }

  /** Bytes received from the camera (ingest metric: added to the counter once per output, not per packet). */
  ingested(bytes: number): void {
    this.summary.ingestBytes += bytes;
    this.unreportedIngest += bytes;
  }

  private reportIngest(): void {
    if (this.unreportedIngest === 0) return;
    this.metrics.ingestBytes.inc({ stream: this.stream }, this.unreportedIngest);
    this.unreportedIngest = 0;
  }

  private spoolAll(outputs: ContainerOutput[]): void {
    this.reportIngest();
    if (this.shift) this.shift.apply(outputs);
    for (const out of outputs) {
      if (out.type === 'fragment') {
        this.mediaEnd = Math.max(this.mediaEnd ?? 0, out.startTime + out.duration);
        if (out.videoSamples > 0 && out.duration > 0) this.frameStep = out.duration / out.videoSamples;
        this.summary.fragments++;
        this.metrics.fragmentArrived(this.stream, out.receivedAt);
        this.spool.append({ kind: 'fragment', receivedAt: out.receivedAt, mediaTime: out.startTime, duration: out.duration, keyframe: out.keyframe }, out.bytes);
      } else {
        this.spool.append({ kind: out.type, receivedAt: Date.now() }, out.bytes);
      }
      this.summary.spooledBytes += out.bytes.length;
      this.sha?.update(out.bytes);
    }
  }

  /**
   * Where a continuation after `gapSeconds` starts: the media end plus the gap rounded up to whole
   * frames (the frame grid goes on; a decoder's frame-rate view of the object stays monotonic), and
   * that effective gap (null: nothing recorded).
   */
  continueAt(gapSeconds: number): { base: number; gap: number } | null {
    if (this.mediaEnd === null) return null;
    const step = this.frameStep;
    const gap = step > 0 ? Math.max(1, Math.ceil(gapSeconds / step - 1e-9)) * step : gapSeconds;
    return { base: this.mediaEnd + gap, gap };
  }

  /** Seals the spool session (the appender drains the rest) and completes the summary. Once. */
  finish(exit: RemuxExit | null): Promise<SessionSummary> {
    this.finished ??= (async () => {
      this.reportIngest();
      if (exit?.droppedBytes) this.metrics.lostBytes.inc({ stream: this.stream, reason: 'truncated-remux-output' }, exit.droppedBytes);
      if (exit?.error) this.log.error({ err: exit.error }, 'the remuxer failed at the end of the session');
      try {
        await this.spool.seal();
      } catch (err) {
        this.log.error({ err }, 'cannot seal the spool of this session');
      }
      Object.assign(this.summary, { endedAt: new Date().toISOString(), remuxSha256: this.sha?.digest('hex') ?? null, remuxExit: exit });
      this.log.info({ remux: exit, remuxBytes: this.summary.remuxBytes, remuxSha256: this.summary.remuxSha256, fragments: this.summary.fragments }, 'session ended');
      return this.summary;
    })();
    return this.finished;
  }
}
