/**
 * One media fragment: moof (mfhd, one traf per non-empty track) + one mdat holding the tracks'
 * samples in traf order. Written the way FFmpeg's movenc does (reference notes §7):
 * - tfhd flags 0x020038: default-base-is-moof + default duration, size and flags, taken from the
 *   first sample (duration, size) and the second sample (flags);
 * - tfdt version 1 (64-bit baseMediaDecodeTime);
 * - trun: data offset always; per-sample duration / size / flags only where samples differ from the
 *   defaults; first-sample-flags when only the first differs; composition offsets when the track has
 *   ever had one (sticky, like FFmpeg's MOV_TRACK_CTTS). trun version 0, or version 1 (signed
 *   offsets) when an offset in this run is negative — see the CTS policy in flv-to-fmp4.ts.
 *
 * Cost: the whole fragment (moof + mdat) is one allocation of its exact size and each payload is
 * copied once into it.
 */
import { ByteWriter } from './box-writer.js';

export interface FragmentSample {
  /** Length-prefixed NAL units or one raw AAC frame (a view; copied into the mdat). */
  data: Buffer;
  duration: number;
  flags: number;
  /** Composition time offset (PTS − DTS), in the track's timescale; may be negative. */
  cto: number;
}

export interface TrackRun {
  trackId: number;
  /** tfdt baseMediaDecodeTime, in the track's timescale. */
  baseDecodeTime: number;
  samples: readonly FragmentSample[];
  /** Write composition offsets even when all are 0 (the track had one before). */
  compositionOffsets: boolean;
}

const TFHD_DEFAULT_BASE_IS_MOOF = 0x020000;
const TFHD_DEFAULT_DURATION = 0x000008;
const TFHD_DEFAULT_SIZE = 0x000010;
const TFHD_DEFAULT_FLAGS = 0x000020;
const TRUN_DATA_OFFSET = 0x000001;
const TRUN_FIRST_SAMPLE_FLAGS = 0x000004;
const TRUN_DURATION = 0x000100;
const TRUN_SIZE = 0x000200;
const TRUN_FLAGS = 0x000400;
const TRUN_CTO = 0x000800;

interface RunLayout {
  run: TrackRun;
  trunFlags: number;
  trunVersion: 0 | 1;
  defaultDuration: number;
  defaultSize: number;
  defaultFlags: number;
  dataBytes: number;
}

function layout(run: TrackRun): RunLayout {
  const s = run.samples;
  const first = s[0] as FragmentSample;
  const defaultDuration = first.duration;
  const defaultSize = first.data.length;
  const defaultFlags = (s[1] ?? first).flags;
  let trunFlags = TRUN_DATA_OFFSET;
  let negative = false;
  let anyCto = run.compositionOffsets;
  let dataBytes = 0;
  for (let i = 0; i < s.length; i++) {
    const x = s[i] as FragmentSample;
    dataBytes += x.data.length;
    if (x.duration !== defaultDuration) trunFlags |= TRUN_DURATION;
    if (x.data.length !== defaultSize) trunFlags |= TRUN_SIZE;
    if (i > 0 && x.flags !== defaultFlags) trunFlags |= TRUN_FLAGS;
    if (x.cto !== 0) anyCto = true;
    if (x.cto < 0) negative = true;
  }
  if (!(trunFlags & TRUN_FLAGS) && first.flags !== defaultFlags) trunFlags |= TRUN_FIRST_SAMPLE_FLAGS;
  if (anyCto) trunFlags |= TRUN_CTO;
  return { run, trunFlags, trunVersion: negative ? 1 : 0, defaultDuration, defaultSize, defaultFlags, dataBytes };
}

function trunBytes(l: RunLayout): number {
  const f = l.trunFlags;
  const perSample = (f & TRUN_DURATION ? 4 : 0) + (f & TRUN_SIZE ? 4 : 0) + (f & TRUN_FLAGS ? 4 : 0) + (f & TRUN_CTO ? 4 : 0);
  return 12 + 4 + 4 + (f & TRUN_FIRST_SAMPLE_FLAGS ? 4 : 0) + perSample * l.run.samples.length;
}

const MFHD_BYTES = 16;
const TFHD_BYTES = 28; // header + version/flags + track_ID + 3 defaults
const TFDT_V1_BYTES = 20;

export interface WrittenFragment {
  bytes: Buffer;
  /** Size of the moof box (the mdat header starts here). */
  moofBytes: number;
}

/** Writes moof + mdat. Runs without samples are left out (FFmpeg writes no traf for them). */
export function writeFragment(sequence: number, runs: readonly TrackRun[]): WrittenFragment {
  const layouts = runs.filter((r) => r.samples.length > 0).map(layout);
  let moofBytes = 8 + MFHD_BYTES;
  let dataBytes = 0;
  for (const l of layouts) {
    moofBytes += 8 + TFHD_BYTES + TFDT_V1_BYTES + trunBytes(l);
    dataBytes += l.dataBytes;
  }
  const mdatBytes = 8 + dataBytes;
  if (mdatBytes > 0xffffffff) throw new RangeError(`fragment mdat of ${mdatBytes} bytes needs a 64-bit size`);
  const w = new ByteWriter(Buffer.allocUnsafe(moofBytes + mdatBytes));

  const moof = w.open('moof');
  const mfhd = w.openFull('mfhd', 0, 0);
  w.u32(sequence);
  w.close(mfhd);
  let dataOffset = moofBytes + 8;
  for (const l of layouts) {
    const traf = w.open('traf');
    const tfhd = w.openFull('tfhd', 0, TFHD_DEFAULT_BASE_IS_MOOF | TFHD_DEFAULT_DURATION | TFHD_DEFAULT_SIZE | TFHD_DEFAULT_FLAGS);
    w.u32(l.run.trackId);
    w.u32(l.defaultDuration);
    w.u32(l.defaultSize);
    w.u32(l.defaultFlags);
    w.close(tfhd);
    const tfdt = w.openFull('tfdt', 1, 0);
    w.u64(l.run.baseDecodeTime);
    w.close(tfdt);
    const f = l.trunFlags;
    const trun = w.openFull('trun', l.trunVersion, f);
    w.u32(l.run.samples.length);
    w.i32(dataOffset);
    if (f & TRUN_FIRST_SAMPLE_FLAGS) w.u32((l.run.samples[0] as FragmentSample).flags);
    for (const s of l.run.samples) {
      if (f & TRUN_DURATION) w.u32(s.duration);
      if (f & TRUN_SIZE) w.u32(s.data.length);
      if (f & TRUN_FLAGS) w.u32(s.flags);
      if (f & TRUN_CTO) {
        if (l.trunVersion === 1) w.i32(s.cto);
        else w.u32(s.cto);
      }
    }
    w.close(trun);
    w.close(traf);
    dataOffset += l.dataBytes;
  }
  w.close(moof);

  w.u32(mdatBytes);
  w.fourcc('mdat');
  for (const l of layouts) for (const s of l.run.samples) w.bytes(s.data);
  return { bytes: w.buf, moofBytes };
}
