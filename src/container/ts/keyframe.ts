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
 *
 * Orphan parameter sets. ffmpeg pulling a live RTP stream joins it mid access unit and may put
 * the tail of a parameter-set run in front of the first one: an H.265 SPS/PPS before any VPS (an
 * H.264 PPS before any SPS), then the complete run, then the slice. Every frame decodes, but a
 * decoder starting there reports "VPS 0 does not exist" / "SPS 0 does not exist". When a complete
 * set follows in the same access unit (so the orphans are redundant), their NAL headers are
 * rewritten in place to an unspecified NAL type, which decoders skip silently: one byte each, no
 * size change, reported through `patch` by stream offset.
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

/** Rewrites the byte at a stream offset (the splitter's held bytes). */
export type PatchByte = (streamOffset: number, value: number) => void;

/** Orphan parameter-set headers remembered per access unit at most. */
const MAX_ORPHANS = 8;
// NAL types: H.265 VPS/SPS/PPS and H.264 SPS/PPS; the unspecified types orphans become.
const HEVC_VPS = 32;
const HEVC_SPS = 33;
const HEVC_PPS = 34;
const HEVC_UNSPECIFIED = 48;
const AVC_SPS = 7;
const AVC_PPS = 8;
const AVC_UNSPECIFIED = 30;

export class KeyframeScanner {
  private readonly hevc: boolean;
  private readonly limit: number;
  private readonly patch: PatchByte | undefined;
  private zeros = 0;
  /** The previous byte completed a start code: this one is a NAL header. */
  private atHeader = false;
  private scanned = 0;
  private sawVps = false;
  private sawSps = false;
  /** Stream offsets and values of orphan parameter-set headers in this access unit. */
  private orphans: Array<{ at: number; header: number }> = [];

  constructor(codec: VideoCodec, limit = DEFAULT_KEYFRAME_SCAN_BYTES, patch?: PatchByte) {
    this.hevc = codec === 'hevc';
    this.limit = limit;
    this.patch = patch;
  }

  reset(): void {
    this.zeros = 0;
    this.atHeader = false;
    this.scanned = 0;
    this.sawVps = false;
    this.sawSps = false;
    this.orphans = [];
  }

  /** Scans `buf[from..to)`, the next ES bytes of the access unit; `buf[0]` is at stream offset `base`. */
  scan(buf: Uint8Array, from: number, to: number, base = 0): Verdict {
    const stop = Math.min(to, from + (this.limit - this.scanned));
    for (let i = from; i < stop; i++) {
      const b = buf[i] as number;
      if (this.atHeader) {
        this.atHeader = false;
        this.parameterSet(b, base + i);
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

  /** Tracks the parameter sets before the first slice; rewrites orphans once a complete set makes them redundant. */
  private parameterSet(header: number, at: number): void {
    if (this.patch === undefined) return;
    if (this.hevc) {
      const type = (header >> 1) & 0x3f;
      if (type === HEVC_VPS) this.sawVps = true;
      else if (type === HEVC_SPS && !this.sawVps) this.orphan(at, header);
      else if (type === HEVC_PPS && !this.sawSps) this.orphan(at, header);
      else if (type === HEVC_SPS) {
        this.sawSps = true;
        this.rewriteOrphans((h) => (h & 0x81) | (HEVC_UNSPECIFIED << 1));
      }
      return;
    }
    const type = header & 0x1f;
    if (type === AVC_PPS && !this.sawSps) this.orphan(at, header);
    else if (type === AVC_SPS) {
      this.sawSps = true;
      this.rewriteOrphans((h) => (h & 0xe0) | AVC_UNSPECIFIED);
    }
  }

  private orphan(at: number, header: number): void {
    if (this.orphans.length < MAX_ORPHANS) this.orphans.push({ at, header });
  }

  private rewriteOrphans(neutral: (header: number) => number): void {
    for (const o of this.orphans) this.patch?.(o.at, neutral(o.header));
    this.orphans = [];
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
