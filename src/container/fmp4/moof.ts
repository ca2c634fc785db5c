/**
 * Reads what the splitter needs from `moof`: the mfhd sequence number and, per `traf`, the track,
 * base decode time (tfdt v0/v1), sample count, summed sample durations and the first sample's flags,
 * resolving trun per-sample values → tfhd defaults → trex defaults as ISO/IEC 14496-12 says.
 */
import { ContainerError } from '../types.js';
import { BoxFieldReader, childBoxes } from './box-reader.js';
import type { BoxRange } from './box-reader.js';
import type { TrackDefaults } from './moov.js';

export interface TrafSummary {
  trackId: number;
  /** tfdt baseMediaDecodeTime, in the track's timescale; null without a tfdt. */
  baseDecodeTime: number | null;
  sampleCount: number;
  /** Sum of sample durations, in the track's timescale. */
  duration: number;
  /** sample_flags of the first sample; null when the traf has no samples. */
  firstSampleFlags: number | null;
}

export interface MoofSummary {
  sequence: number;
  trafs: TrafSummary[];
}

// tfhd flags
const TFHD_BASE_DATA_OFFSET = 0x000001;
const TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002;
const TFHD_DEFAULT_DURATION = 0x000008;
const TFHD_DEFAULT_SIZE = 0x000010;
const TFHD_DEFAULT_FLAGS = 0x000020;
// trun flags
const TRUN_DATA_OFFSET = 0x000001;
const TRUN_FIRST_SAMPLE_FLAGS = 0x000004;
const TRUN_SAMPLE_DURATION = 0x000100;
const TRUN_SAMPLE_SIZE = 0x000200;
const TRUN_SAMPLE_FLAGS = 0x000400;
const TRUN_COMPOSITION_OFFSET = 0x000800;

/** sample_is_non_sync_sample, bit 16 of sample_flags. */
export function isSyncSample(sampleFlags: number): boolean {
  return (sampleFlags & 0x00010000) === 0;
}

const NO_DEFAULTS: TrackDefaults = { sampleDuration: 0, sampleFlags: 0 };

/** `buf` holds exactly one moof box; `base` is its stream offset. */
export function parseMoof(buf: Buffer, base: number, trex: ReadonlyMap<number, TrackDefaults>): MoofSummary {
  const moof = childBoxes(buf, 0, buf.length, base)[0];
  if (moof === undefined || moof.type !== 'moof') {
    throw new ContainerError(`expected moof at offset ${base}`, { offset: base, unit: moof?.type });
  }
  let sequence: number | null = null;
  const trafs: TrafSummary[] = [];
  for (const child of childBoxes(buf, moof.payload, moof.end, base)) {
    if (child.type === 'mfhd') {
      const r = new BoxFieldReader(buf, child, base);
      r.fullBox();
      sequence = r.u32();
    } else if (child.type === 'traf') {
      trafs.push(parseTraf(buf, child, base, trex));
    }
  }
  if (sequence === null) {
    throw new ContainerError(`moof at offset ${base} has no mfhd`, { offset: base, unit: 'moof' });
  }
  return { sequence, trafs };
}

function parseTraf(buf: Buffer, traf: BoxRange, base: number, trex: ReadonlyMap<number, TrackDefaults>): TrafSummary {
  const children = childBoxes(buf, traf.payload, traf.end, base);
  const tfhdBox = children.find((b) => b.type === 'tfhd');
  if (tfhdBox === undefined) {
    throw new ContainerError(`traf at offset ${base + traf.start} has no tfhd`, { offset: base + traf.start, unit: 'traf' });
  }
  const tfhd = new BoxFieldReader(buf, tfhdBox, base);
  const { flags } = tfhd.fullBox();
  const trackId = tfhd.u32();
  const fallback = trex.get(trackId) ?? NO_DEFAULTS;
  if (flags & TFHD_BASE_DATA_OFFSET) tfhd.skip(8);
  if (flags & TFHD_SAMPLE_DESCRIPTION_INDEX) tfhd.skip(4);
  const defaultDuration = flags & TFHD_DEFAULT_DURATION ? tfhd.u32() : fallback.sampleDuration;
  if (flags & TFHD_DEFAULT_SIZE) tfhd.skip(4);
  const defaultFlags = flags & TFHD_DEFAULT_FLAGS ? tfhd.u32() : fallback.sampleFlags;

  let baseDecodeTime: number | null = null;
  let sampleCount = 0;
  let duration = 0;
  let firstSampleFlags: number | null = null;
  for (const box of children) {
    if (box.type === 'tfdt') {
      const r = new BoxFieldReader(buf, box, base);
      const { version } = r.fullBox();
      baseDecodeTime = version === 1 ? r.u64() : r.u32();
    } else if (box.type === 'trun') {
      const r = new BoxFieldReader(buf, box, base);
      const { flags: tf } = r.fullBox();
      const count = r.u32();
      if (tf & TRUN_DATA_OFFSET) r.i32();
      const firstFlags = tf & TRUN_FIRST_SAMPLE_FLAGS ? r.u32() : null;
      const perSample =
        (tf & TRUN_SAMPLE_DURATION ? 4 : 0) + (tf & TRUN_SAMPLE_SIZE ? 4 : 0) +
        (tf & TRUN_SAMPLE_FLAGS ? 4 : 0) + (tf & TRUN_COMPOSITION_OFFSET ? 4 : 0);
      // Check the declared count against the box before looping, so a lying count fails fast.
      if (count * perSample > r.remaining()) {
        throw new ContainerError(`trun at offset ${base + box.start} declares ${count} samples but is too short`, {
          offset: base + box.start,
          unit: 'trun',
        });
      }
      for (let i = 0; i < count; i++) {
        duration += tf & TRUN_SAMPLE_DURATION ? r.u32() : defaultDuration;
        if (tf & TRUN_SAMPLE_SIZE) r.skip(4);
        const sampleFlags = tf & TRUN_SAMPLE_FLAGS ? r.u32() : defaultFlags;
        if (tf & TRUN_COMPOSITION_OFFSET) r.skip(4);
        if (sampleCount === 0 && i === 0) firstSampleFlags = firstFlags ?? sampleFlags;
      }
      sampleCount += count;
    }
  }
  return { trackId, baseDecodeTime, sampleCount, duration, firstSampleFlags };
}
