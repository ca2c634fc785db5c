import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { AppendcastError, ErrorCode } from '../errors.js';

export interface RemuxerOptions {
  ffmpegPath: string;
  /** Input format on stdin: an RTMP publish as FLV, or as our native fMP4 (H.265). */
  inputFormat: 'flv' | 'mp4';
  /** ffmpeg -frag_duration in ms; undefined = one fragment per GOP. */
  fragmentDurationMs?: number | undefined;
  /** `aac` transcodes the audio (G.711 does not play in browsers), `none` drops it; video is always copied. Default copy. */
  audio?: 'copy' | 'aac' | 'none';
  /** Fragmented MP4 (default) or MPEG-TS on stdout. */
  format?: 'fmp4' | 'mpegts';
  /** MPEG-TS: output timestamps start here (s) — a continued recording (mp4 ignores it; see TimelineShift). */
  outputTsOffsetSeconds?: number;
  /** How long stop() waits after closing stdin before SIGTERM, then again before SIGKILL. */
  stopGraceMs?: number;
}

export interface RemuxerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the exit followed stop() and ffmpeg flushed cleanly (code 0). */
  clean: boolean;
}

export interface RemuxerEvents {
  data: [chunk: Buffer, receivedAt: number];
  stderr: [line: string];
  exit: [exit: RemuxerExit];
  error: [err: AppendcastError];
}

/**
 * The argv for a `-c copy` remux (or copy video, AAC audio) to fragmented MP4 on stdout. `-analyzeduration 1000000` keeps the
 * first output within about a second even for video-only cameras (NMS's FLV header always claims
 * audio); probesize is never shrunk (that drops frames). `+skip_trailer` keeps the `mfra` index out
 * of the stream, so every byte on stdout belongs to the init segment or to a fragment.
 */
export function remuxArgs(opts: Pick<RemuxerOptions, 'inputFormat' | 'fragmentDurationMs' | 'audio' | 'format' | 'outputTsOffsetSeconds'>): string[] {
  const audio = opts.audio === 'aac' ? ['-map', '0:a?', '-c:a', 'aac', '-b:a', '64k'] : opts.audio === 'none' ? ['-an'] : ['-map', '0:a?', '-c:a', 'copy'];
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'warning', '-analyzeduration', '1000000', '-f', opts.inputFormat, '-i', 'pipe:0',
    '-map', '0:v?', ...audio, '-c:v', 'copy'];
  // MPEG-TS: ffmpeg's defaults put PAT+PMT before every keyframe, where the TS splitter cuts.
  if (opts.format === 'mpegts') {
    if (opts.outputTsOffsetSeconds) args.push('-output_ts_offset', opts.outputTsOffsetSeconds.toFixed(3));
    args.push('-f', 'mpegts');
  }
  else {
    args.push('-f', 'mp4', '-movflags', '+frag_keyframe+empty_moov+default_base_moof+skip_trailer');
    if (opts.fragmentDurationMs) args.push('-frag_duration', String(Math.round(opts.fragmentDurationMs * 1000)));
  }
  args.push('pipe:1');
  return args;
}

/**
 * One supervised ffmpeg: FLV in on stdin, fMP4 out on stdout. `-nostdin` is about the console;
 * the input still comes from pipe:0. Closing stdin is the clean stop: ffmpeg flushes the last
 * fragment and exits 0. SIGTERM/SIGKILL are the fallbacks when it does not.
 */
export class Remuxer extends EventEmitter<RemuxerEvents> {
  readonly args: readonly string[];
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private stopping = false;
  private exited: RemuxerExit | undefined;
  private readonly exitPromise: Promise<RemuxerExit>;
  private readonly stopGraceMs: number;
  bytesIn = 0;
  bytesOut = 0;

  constructor(opts: RemuxerOptions) {
    super();
    this.stopGraceMs = opts.stopGraceMs ?? 5000;
    this.args = remuxArgs(opts);
    // Its own process group: a terminal's Ctrl-C (SIGINT to the whole foreground group) must reach
    // only the gateway, which then stops ffmpeg cleanly by closing stdin; SIGINT'd, ffmpeg exits 255.
    this.child = spawn(opts.ffmpegPath, this.args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.exitPromise = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        this.exited = { code, signal, clean: code === 0 };
        this.emit('exit', this.exited);
        resolve(this.exited);
      });
    });
    this.child.once('error', (err) => {
      this.emit('error', new AppendcastError(ErrorCode.FfmpegFailed, `ffmpeg failed to start (${opts.ffmpegPath}): ${err.message}`, { cause: err }));
    });
    // EPIPE on stdin when ffmpeg dies early: the exit event reports it; don't crash the gateway.
    this.child.stdin.on('error', () => {});
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.bytesOut += chunk.length;
      this.emit('data', chunk, Date.now());
    });
    let pending = '';
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (s: string) => {
      pending += s;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).trimEnd();
        pending = pending.slice(nl + 1);
        if (line) this.emit('stderr', line);
      }
      if (pending.length > 64 * 1024) pending = pending.slice(-4096); // a runaway line must not grow forever
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Bytes written to stdin that ffmpeg has not read yet (the FLV tap has no backpressure). */
  get stdinBacklog(): number {
    return this.child.stdin.writableLength;
  }

  write(buf: Buffer): void {
    if (this.stopping || this.exited) return;
    this.bytesIn += buf.length;
    this.child.stdin.write(buf);
  }

  /** Ends the input and waits for ffmpeg to flush and exit; escalates to SIGTERM then SIGKILL. */
  async stop(): Promise<RemuxerExit> {
    if (this.exited) return this.exited;
    if (!this.stopping) {
      this.stopping = true;
      this.child.stdin.end();
    }
    const timer = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
    if ((await Promise.race([this.exitPromise, timer(this.stopGraceMs)])) === 'timeout') {
      this.child.kill('SIGTERM');
      if ((await Promise.race([this.exitPromise, timer(this.stopGraceMs)])) === 'timeout') this.child.kill('SIGKILL');
    }
    return this.exitPromise;
  }

  /** Kills ffmpeg at once (it stalled): whatever it had buffered is lost. */
  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  /** Resolves when ffmpeg has exited, however that happened. */
  done(): Promise<RemuxerExit> {
    return this.exitPromise;
  }
}
