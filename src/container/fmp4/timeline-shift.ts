/**
 * Moves a fragmented MP4 stream later on the media timeline: every `tfdt` (each track's base decode
 * time, in that track's timescale from the init segment) gets `seconds` added, in place, and the
 * fragment's `startTime` with it. This is how a camera that reconnects continues the same object
 * after its last fragment plus the real gap, whichever remuxer made the bytes (ffmpeg's mp4 muxer
 * always starts a track at 0 and ignores -output_ts_offset). Sizes never change: the tfdt keeps its
 * version; a version-0 tfdt that would overflow 32 bits is a ContainerError.
 */
import type { ContainerOutput } from '../types.js';
import { ContainerError } from '../types.js';
import { childBoxes } from './box-reader.js';

export class TimelineShift {
  readonly seconds: number;
  /** Ticks to add, per track id, from the latest init segment. */
  private shifts = new Map<number, bigint>();

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
      } else if (out.type === 'fragment') {
        shiftFragment(out.bytes, this.shifts);
        out.startTime += this.seconds;
      }
    }
    return outputs;
  }
}

/** Adds each track's shift to the tfdt of every traf of every moof in `bytes`. */
export function shiftFragment(bytes: Buffer, shifts: ReadonlyMap<number, bigint>): void {
  for (const moof of childBoxes(bytes, 0, bytes.length, 0)) {
    if (moof.type !== 'moof') continue;
    for (const traf of childBoxes(bytes, moof.payload, moof.end, 0)) {
      if (traf.type !== 'traf') continue;
      const children = childBoxes(bytes, traf.payload, traf.end, 0);
      const tfhd = children.find((b) => b.type === 'tfhd');
      const tfdt = children.find((b) => b.type === 'tfdt');
      if (!tfhd || !tfdt || tfhd.end - tfhd.payload < 8) continue;
      const shift = shifts.get(bytes.readUInt32BE(tfhd.payload + 4));
      if (shift === undefined || shift === 0n) continue;
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
}
