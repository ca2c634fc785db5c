/**
 * Is this access unit a keyframe? Scans the Annex B byte stream at the start of a video PES for the
 * first VCL NAL unit: H.264 IDR (type 5) / H.265 IRAP (types 16–21) is a keyframe, any other slice
 * is not. Parameter sets and SEI come first in a keyframe (x264/x265 put kilobytes of SEI in the
 * first one), so the scan runs across packets, incrementally (no buffering: start-code state is
 * carried between calls), and gives up after a bound. The random_access_indicator is only the
 * fallback for a scan that gave up or a PES that ended first: ffmpeg sets it from the input's key
 * flag, which for FLV input also marks non-IDR recovery points that cannot start a decode.
 * An H.265 CRA (x265's default open GOP) counts: a decode that starts there skips the CRA's RASL
 * pictures (ffmpeg does so silently), so the object plays, minus those few leading frames.
 */
export type VideoCodec = 'h264' | 'hevc';

export const VERDICT_PENDING = -1;
export const VERDICT_DELTA = 0;
export const VERDICT_KEY = 1;
/** The bound was reached before any VCL NAL unit. */
export const VERDICT_GAVE_UP = 2;
export type Verdict = typeof VERDICT_PENDING | typeof VERDICT_DELTA | typeof VERDICT_KEY | typeof VERDICT_GAVE_UP;

/** ES bytes scanned per access unit at most; far above the SPS+PPS+SEI an encoder puts before the slice. */
export const DEFAULT_KEYFRAME_SCAN_BYTES = 64 * 1024;

export class KeyframeScanner {
  private readonly hevc: boolean;
  private readonly limit: number;
  private zeros = 0;
  /** The previous byte completed a start code: this one is a NAL header. */
  private atHeader = false;
  private scanned = 0;

  constructor(codec: VideoCodec, limit = DEFAULT_KEYFRAME_SCAN_BYTES) {
    this.hevc = codec === 'hevc';
    this.limit = limit;
  }

  reset(): void {
    this.zeros = 0;
    this.atHeader = false;
    this.scanned = 0;
  }

  /** Scans `buf[from..to)`, the next ES bytes of the access unit. */
  scan(buf: Uint8Array, from: number, to: number): Verdict {
    const stop = Math.min(to, from + (this.limit - this.scanned));
    for (let i = from; i < stop; i++) {
      const b = buf[i] as number;
      if (this.atHeader) {
        this.atHeader = false;
        const v = this.classify(b);
        if (v !== VERDICT_PENDING) return v;
      }
      if (b === 0) {
        this.zeros++;
      } else {
        if (b === 1 && this.zeros >= 2) this.atHeader = true;
        this.zeros = 0;
      }
    }
    this.scanned += stop - from;
    return this.scanned >= this.limit ? VERDICT_GAVE_UP : VERDICT_PENDING;
  }

  private classify(header: number): Verdict {
    if (this.hevc) {
      const type = (header >> 1) & 0x3f;
      if (type >= 32) return VERDICT_PENDING; // VPS, SPS, PPS, AUD, SEI…
      return type >= 16 && type <= 21 ? VERDICT_KEY : VERDICT_DELTA;
    }
    const type = header & 0x1f;
    if (type === 5) return VERDICT_KEY;
    return type >= 1 && type <= 4 ? VERDICT_DELTA : VERDICT_PENDING;
  }
}
