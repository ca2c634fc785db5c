/**
 * Holds a publish's first packets until its codecs are known, so the right remuxer can start with
 * all of them: both a video and an audio packet seen; or one of them and metadata that announces
 * no other; or `probeMs` of wall clock since the first packet; or `maxBytes` held.
 */
import type { AudioCodec, MediaPacket, VideoCodec } from '../media/types.js';

export interface ProbedCodecs {
  video: VideoCodec | undefined;
  audio: AudioCodec | undefined;
}

export class CodecProbe {
  private readonly probeMs: number;
  private readonly maxBytes: number;
  private held: Array<{ p: MediaPacket; at: number }> = [];
  private bytes = 0;
  private firstAt: number | undefined;
  private video: VideoCodec | undefined;
  private audio: AudioCodec | undefined;
  /** From onMetaData: undefined until metadata arrives. */
  private announced: { audio: boolean; video: boolean } | undefined;

  constructor(opts: { probeMs: number; maxBytes: number }) {
    this.probeMs = opts.probeMs;
    this.maxBytes = opts.maxBytes;
  }

  get codecs(): ProbedCodecs {
    return { video: this.video, audio: this.audio };
  }

  /** True once the codecs are known (or waiting longer would not help). */
  push(p: MediaPacket, at: number): boolean {
    this.held.push({ p, at });
    this.firstAt ??= at;
    if (p.kind === 'metadata') {
      const v = p.values;
      this.announced = { audio: v['audiocodecid'] !== undefined, video: v['videocodecid'] !== undefined };
    } else {
      this.bytes += p.data.length;
      if (p.kind === 'video') this.video ??= p.codec;
      else this.audio ??= p.codec;
    }
    return this.decided(at);
  }

  private decided(now: number): boolean {
    if (this.video && this.audio) return true;
    const a = this.announced;
    if (a && ((this.video && !a.audio) || (this.audio && !a.video))) return true;
    return now - (this.firstAt ?? now) >= this.probeMs || this.bytes >= this.maxBytes;
  }

  /** What was held, in arrival order; the probe is empty afterwards. */
  take(): Array<{ p: MediaPacket; at: number }> {
    const out = this.held;
    this.held = [];
    this.bytes = 0;
    return out;
  }
}
