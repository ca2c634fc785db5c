/**
 * RTMP/FLV milliseconds → one monotonic output timeline shared by all tracks.
 *
 * Unwrap: FLV timestamps are u32 ms that wrap at 2^32 (49.7 days). Each media timestamp is read
 * relative to the previous one by serial-number arithmetic (RFC 1982): the signed 32-bit difference,
 * so adjacent packets may lie up to 2^31 − 1 ms apart in either direction, and the running value is
 * a plain (53-bit safe) number that keeps counting past the wrap.
 *
 * Map: output ms = unwrapped ms + offset, with offset = −origin at the start. Per track, a packet is
 * compared with that track's previous mapped time (a track's first packet: with the latest time of
 * any track, and then only a step beyond `maxForwardJumpMs` either way counts):
 *   - back by more than `backwardToleranceMs`, or forward by more than `maxForwardJumpMs`: a
 *     discontinuity (encoder restart, clock reset, a stream spliced in). The offset is changed so the
 *     packet lands right after the latest sample of any track (its last time + its last step), and
 *     the same offset then applies to every track, so audio and video stay in sync;
 *   - back within the tolerance: left as is; the caller nudges the DTS to stay monotonic.
 * The thresholds default to 10 s forward (FFmpeg's -dts_delta_threshold for FLV input) and 100 ms
 * backward.
 */
export interface TimelineOptions {
  backwardToleranceMs: number;
  maxForwardJumpMs: number;
}

export type TimelineTrack = 'video' | 'audio';

interface TrackClock {
  /** Last mapped time (ms) of this track, null before its first packet. */
  last: number | null;
  /** Last positive step between two packets (ms), bounded; used to place a packet after a jump. */
  step: number;
}

const MAX_STEP_MS = 1000;

export class Timeline {
  private lastRaw: number | null = null;
  private unwrapped = 0;
  private offset = 0;
  private readonly clocks: Record<TimelineTrack, TrackClock> = {
    video: { last: null, step: 40 },
    audio: { last: null, step: 21 },
  };
  discontinuities = 0;

  constructor(private readonly opts: TimelineOptions) {}

  /** Unwraps one media timestamp; call for every media frame in arrival order (not for configs). */
  unwrap(raw: number): number {
    const r = raw >>> 0;
    if (this.lastRaw === null) {
      this.unwrapped = r;
    } else {
      this.unwrapped += (r - this.lastRaw) | 0; // signed 32-bit difference
    }
    this.lastRaw = r;
    return this.unwrapped;
  }

  /** Fixes the origin: the unwrapped time that becomes output 0. */
  start(originMs: number): void {
    this.offset = -originMs;
  }

  /** Maps an unwrapped time of a `track` packet to output ms, applying the discontinuity policy. */
  map(track: TimelineTrack, unwrappedMs: number): number {
    const clock = this.clocks[track];
    let m = unwrappedMs + this.offset;
    // A track's first packet is only compared with the other track within the wide window: FLV
    // interleaving puts audio hundreds of ms before or after video (B-frame delay, late audio).
    const ref = clock.last ?? this.latest();
    const back = clock.last === null ? this.opts.maxForwardJumpMs : this.opts.backwardToleranceMs;
    if (ref !== null && (m < ref - back || m > ref + this.opts.maxForwardJumpMs)) {
      const anchor = this.anchor();
      this.offset += anchor - m;
      m = anchor;
      this.discontinuities++;
    }
    if (clock.last !== null && m > clock.last) clock.step = Math.min(m - clock.last, MAX_STEP_MS);
    clock.last = m;
    return m;
  }

  /** The latest mapped time of any track, or null before the first packet. */
  private latest(): number | null {
    const v = this.clocks.video.last;
    const a = this.clocks.audio.last;
    if (v === null) return a;
    if (a === null) return v;
    return Math.max(v, a);
  }

  /** Where a packet after a discontinuity goes: just after the latest sample of any track. */
  private anchor(): number {
    let at = 0;
    for (const c of Object.values(this.clocks)) if (c.last !== null) at = Math.max(at, c.last + c.step);
    return at;
  }
}
