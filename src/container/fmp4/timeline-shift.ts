/**
 * Moves a fragmented MP4 stream later on the media timeline: every `tfdt` (each track's base decode
 * time, in that track's timescale from the init segment) gets `seconds` added, in place, and the
 * fragment's `startTime` with it. This is how a camera that reconnects continues the same object
 * after its last fragment plus the real gap, whichever remuxer made the bytes (ffmpeg's mp4 muxer
 * always starts a track at 0 and ignores -output_ts_offset). Sizes never change: the tfdt keeps its
 * version; a version-0 tfdt that would overflow 32 bits is a ContainerError.
 *
 * One repair goes with it: ffmpeg's RTSP client gives the first two frames of a session the same
 * timestamp (before the first RTCP sender report), and its mp4 muxer then puts the second one tick
 * after the first. At an object's start players and decoders shrug; in the middle of a continued
 * object two frames a tick apart are a timestamp error. So in the first fragment after the shift,
 * a first video sample shorter than a quarter of the next one is given the next one's duration and
 * moved earlier by the difference (into the gap before it, which the shift leaves).
 */
import type { ContainerOutput } from '../types.js';
import { ContainerError } from '../types.js';
import { childBoxes } from './box-reader.js';

export class TimelineShift {
  readonly seconds: number;
  /** Ticks to add, per track id, from the latest init segment. */
  private shifts = new Map<number, bigint>();
  /** Video track ids and their timescales: the first fragment after an init gets the repair. */
  private video = new Map<number, number>();
  private repairNext = true;

  constructor(seconds: number) {
    if (!(seconds >= 0) || !Number.isFinite(seconds)) throw new RangeError(`timeline shift must be ≥ 0 s, got ${seconds}`);
    this.seconds = seconds;
  }

  /** Shifts the fragments among `outputs` (in place) and returns them. */
  apply(outputs: ContainerOutput[]): ContainerOutput[] {
    if (this.seconds === 0) return outputs;
    for (const out of outputs) {
      if (out.type === 'init') {
        this.shifts = new Map(out.tracks.map((t) => [t.id, BigInt(Math.round(this.seconds * t.timescale))]));
        this.video = new Map(out.tracks.filter((t) => t.kind === 'video').map((t) => [t.id, t.timescale]));
        this.repairNext = true;
      } else if (out.type === 'fragment') {
        const earlier = shiftFragment(out.bytes, this.shifts, this.repairNext ? this.video : undefined);
        this.repairNext = false;
        out.startTime += this.seconds - earlier;
      }
    }
    return outputs;
  }
}

/**
 * Adds each track's shift to the tfdt of every traf of every moof in `bytes`; for the tracks in
 * `repair` (id → timescale), a tiny first sample is stretched (see above). Returns how many
 * seconds earlier than the shift the repaired track now starts (0 when nothing was repaired).
 */
export function shiftFragment(bytes: Buffer, shifts: ReadonlyMap<number, bigint>, repair?: ReadonlyMap<number, number>): number {
  let earlierSeconds = 0;
  for (const moof of childBoxes(bytes, 0, bytes.length, 0)) {
    if (moof.type !== 'moof') continue;
    for (const traf of childBoxes(bytes, moof.payload, moof.end, 0)) {
      if (traf.type !== 'traf') continue;
      const children = childBoxes(bytes, traf.payload, traf.end, 0);
      const tfhd = children.find((b) => b.type === 'tfhd');
      const tfdt = children.find((b) => b.type === 'tfdt');
      if (!tfhd || !tfdt || tfhd.end - tfhd.payload < 8) continue;
      const trackId = bytes.readUInt32BE(tfhd.payload + 4);
      let shift = shifts.get(trackId);
      if (shift === undefined || shift === 0n) continue;
      const timescale = repair?.get(trackId);
      const trun = children.find((b) => b.type === 'trun');
      if (timescale !== undefined && trun) {
        const earlier = stretchTinyFirstSample(bytes, trun.payload, trun.end);
        if (earlier > 0 && BigInt(earlier) < shift) {
          shift -= BigInt(earlier);
          earlierSeconds = Math.max(earlierSeconds, earlier / timescale);
        }
      }
      const version = bytes[tfdt.payload];
      const at = tfdt.payload + 4;
      if (version === 1 && tfdt.end - at >= 8) {
        bytes.writeBigUInt64BE(bytes.readBigUInt64BE(at) + shift, at);
      } else if (version === 0 && tfdt.end - at >= 4) {
        const v = BigInt(bytes.readUInt32BE(at)) + shift;
        if (v > 0xffffffffn) throw new ContainerError(`tfdt v0 cannot hold ${v} after the timeline shift`, { offset: tfdt.start, unit: 'tfdt' });
        bytes.writeUInt32BE(Number(v), at);
      }
    }
  }
  return earlierSeconds;
}

// trun flags (ISO/IEC 14496-12)
const DATA_OFFSET = 0x001, FIRST_SAMPLE_FLAGS = 0x004, DURATION = 0x100, SIZE = 0x200, FLAGS = 0x400, CTO = 0x800;

/**
 * In a trun with per-sample durations, a first sample shorter than a quarter of the second gets the
 * second's duration; returns how many ticks longer it became (0: left alone).
 */
function stretchTinyFirstSample(bytes: Buffer, payload: number, end: number): number {
  if (end - payload < 8) return 0;
  const flags = bytes.readUInt32BE(payload) & 0xffffff;
  const count = bytes.readUInt32BE(payload + 4);
  if (!(flags & DURATION) || count < 2) return 0;
  let at = payload + 8 + (flags & DATA_OFFSET ? 4 : 0) + (flags & FIRST_SAMPLE_FLAGS ? 4 : 0);
  const perSample = 4 + (flags & SIZE ? 4 : 0) + (flags & FLAGS ? 4 : 0) + (flags & CTO ? 4 : 0);
  if (at + 2 * perSample > end) return 0;
  const first = bytes.readUInt32BE(at);
  const second = bytes.readUInt32BE(at + perSample);
  if (first * 4 >= second) return 0;
  bytes.writeUInt32BE(second, at);
  return second - first;
}
