/**
 * AVCDecoderConfigurationRecord (the avcC payload, ISO/IEC 14496-15 §5.3.3.1) and the parts of the
 * H.264 sequence parameter set (ITU-T H.264 §7.3.2.1.1) a sample entry needs: the cropped picture
 * size and the sample aspect ratio. Bounded: every count and length is checked against the record;
 * anything inconsistent is a MediaError.
 */
import { MediaError } from '../errors.js';
import { BitReader, unescapeRbsp } from './bit-reader.js';

/** Pixel aspect ratio (sample_aspect_ratio in the VUI; pasp in MP4). */
export interface SampleAspectRatio {
  num: number;
  den: number;
}

/** H.264 Table E-1, also used by H.265 (Table E-1 there): aspect_ratio_idc 1..16; 0 and reserved → 1:1. */
const SAR_TABLE: ReadonlyArray<readonly [number, number]> = [
  [1, 1], [1, 1], [12, 11], [10, 11], [16, 11], [40, 33], [24, 11], [20, 11], [32, 11],
  [80, 33], [18, 11], [15, 11], [64, 33], [160, 99], [4, 3], [3, 2], [2, 1],
];

/**
 * aspect_ratio_idc (255 = explicit sar_width/sar_height, read by the caller) → ratio. Advisory data:
 * unknown or zero values give square pixels.
 */
export function aspectRatioFromIdc(idc: number, explicit?: { num: number; den: number }): SampleAspectRatio {
  if (idc === 255) return explicit !== undefined && explicit.num > 0 && explicit.den > 0 ? explicit : { num: 1, den: 1 };
  const e = SAR_TABLE[idc];
  return e === undefined ? { num: 1, den: 1 } : { num: e[0], den: e[1] };
}

export interface AvcConfig {
  codec: 'avc';
  /** The record verbatim (it is written as the avcC payload unchanged). */
  record: Buffer;
  profile: number;
  compatibility: number;
  level: number;
  /** Bytes of each NAL unit length prefix in samples: 1, 2 or 4. */
  nalLengthSize: 1 | 2 | 4;
  /** Views into `record`, each a whole NAL unit (header byte included). */
  sps: Buffer[];
  pps: Buffer[];
  /** Displayed picture size: coded size minus the SPS frame cropping. */
  width: number;
  height: number;
  sar: SampleAspectRatio;
  /** RFC 6381 codec string, e.g. `avc1.64001f`. */
  codecString: string;
}

/** Largest picture edge accepted (H.264 level 6.2 tops out at 8192; keep headroom). */
const MAX_EDGE = 16384;

/** profile_idc values whose SPS carries chroma_format_idc, bit depths and scaling matrices. */
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

function bad(message: string): MediaError {
  return new MediaError('avcc-invalid', `avcC: ${message}`);
}

export function parseAvcConfig(record: Buffer): AvcConfig {
  if (record.length < 7) throw bad(`${record.length} bytes, shorter than its fixed fields`);
  if (record[0] !== 1) throw bad(`configurationVersion ${record[0]}, expected 1`);
  const profile = record[1] as number;
  const compatibility = record[2] as number;
  const level = record[3] as number;
  const lengthSizeMinusOne = (record[4] as number) & 0x03;
  if (lengthSizeMinusOne === 2) throw bad('lengthSizeMinusOne 2 (3-byte NAL lengths are not allowed)');
  const nalLengthSize = (lengthSizeMinusOne + 1) as 1 | 2 | 4;

  let at = 5;
  const readArray = (count: number, nalType: number, name: string): Buffer[] => {
    const out: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      if (at + 2 > record.length) throw bad(`${name} #${i} length runs past the record`);
      const len = record.readUInt16BE(at);
      at += 2;
      if (len === 0) throw bad(`${name} #${i} is empty`);
      if (at + len > record.length) throw bad(`${name} #${i} (${len} bytes) runs past the record`);
      const nal = record.subarray(at, at + len);
      if (((nal[0] as number) & 0x1f) !== nalType) throw bad(`${name} #${i} has NAL type ${(nal[0] as number) & 0x1f}, expected ${nalType}`);
      out.push(nal);
      at += len;
    }
    return out;
  };
  const numSps = (record[at++] as number) & 0x1f;
  if (numSps === 0) throw bad('no SPS');
  const sps = readArray(numSps, 7, 'SPS');
  if (at >= record.length) throw bad('PPS count missing');
  const numPps = record[at++] as number;
  if (numPps === 0) throw bad('no PPS');
  const pps = readArray(numPps, 8, 'PPS');
  // Bytes after the PPS array (High-profile chroma/bit-depth extension) are kept verbatim, not needed.

  const info = parseAvcSps(sps[0] as Buffer);
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  return {
    codec: 'avc',
    record,
    profile,
    compatibility,
    level,
    nalLengthSize,
    sps,
    pps,
    width: info.width,
    height: info.height,
    sar: info.sar,
    codecString: `avc1.${hex(profile)}${hex(compatibility)}${hex(level)}`,
  };
}

export interface AvcSpsInfo {
  profile: number;
  level: number;
  width: number;
  height: number;
  sar: SampleAspectRatio;
}

/** Parses one SPS NAL unit (header byte included) up to the VUI aspect ratio. */
export function parseAvcSps(nal: Uint8Array): AvcSpsInfo {
  const r = new BitReader(unescapeRbsp(nal), 'sps-invalid', 'H.264 SPS');
  r.skip(3); // forbidden_zero_bit, nal_ref_idc
  const nalType = r.u(5);
  if (nalType !== 7) throw new MediaError('sps-invalid', `H.264 SPS: NAL type ${nalType}, expected 7`);
  const profile = r.u(8);
  r.skip(8); // constraint_set flags + reserved
  const level = r.u(8);
  r.ueIn('seq_parameter_set_id', 0, 31);
  let chromaFormatIdc = 1;
  let separateColourPlane = false;
  if (HIGH_PROFILES.has(profile)) {
    chromaFormatIdc = r.ueIn('chroma_format_idc', 0, 3);
    if (chromaFormatIdc === 3) separateColourPlane = r.flag();
    r.ueIn('bit_depth_luma_minus8', 0, 6);
    r.ueIn('bit_depth_chroma_minus8', 0, 6);
    r.skip(1); // qpprime_y_zero_transform_bypass_flag
    if (r.flag()) {
      const lists = chromaFormatIdc === 3 ? 12 : 8;
      for (let i = 0; i < lists; i++) {
        if (r.flag()) skipScalingList(r, i < 6 ? 16 : 64);
      }
    }
  }
  r.ueIn('log2_max_frame_num_minus4', 0, 12);
  const pocType = r.ueIn('pic_order_cnt_type', 0, 2);
  if (pocType === 0) {
    r.ueIn('log2_max_pic_order_cnt_lsb_minus4', 0, 12);
  } else if (pocType === 1) {
    r.skip(1); // delta_pic_order_always_zero_flag
    r.se(); // offset_for_non_ref_pic
    r.se(); // offset_for_top_to_bottom_field
    const cycle = r.ueIn('num_ref_frames_in_pic_order_cnt_cycle', 0, 255);
    for (let i = 0; i < cycle; i++) r.se();
  }
  r.ue(); // max_num_ref_frames
  r.skip(1); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ueIn('pic_width_in_mbs_minus1', 0, MAX_EDGE / 16 - 1) + 1;
  const heightMapUnits = r.ueIn('pic_height_in_map_units_minus1', 0, MAX_EDGE / 16 - 1) + 1;
  const frameMbsOnly = r.u(1);
  if (frameMbsOnly === 0) r.skip(1); // mb_adaptive_frame_field_flag
  r.skip(1); // direct_8x8_inference_flag
  let width = widthMbs * 16;
  let height = (2 - frameMbsOnly) * heightMapUnits * 16;
  if (r.flag()) {
    const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
    const subWidthC = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
    const subHeightC = chromaArrayType === 1 ? 2 : 1;
    const cropX = chromaArrayType === 0 ? 1 : subWidthC;
    const cropY = (chromaArrayType === 0 ? 1 : subHeightC) * (2 - frameMbsOnly);
    const left = r.ueIn('frame_crop_left_offset', 0, MAX_EDGE);
    const right = r.ueIn('frame_crop_right_offset', 0, MAX_EDGE);
    const top = r.ueIn('frame_crop_top_offset', 0, MAX_EDGE);
    const bottom = r.ueIn('frame_crop_bottom_offset', 0, MAX_EDGE);
    width -= cropX * (left + right);
    height -= cropY * (top + bottom);
    if (width <= 0 || height <= 0) {
      throw new MediaError('sps-invalid', `H.264 SPS: cropping leaves a ${width}x${height} picture`);
    }
  }
  return { profile, level, width, height, sar: readVuiAspectRatio(r) };
}

function skipScalingList(r: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) {
      const delta = r.seIn('delta_scale', -128, 127);
      next = (last + delta + 256) % 256;
    }
    last = next === 0 ? last : next;
  }
}

/**
 * vui_parameters_present_flag, then aspect_ratio_info. The SAR is advisory (it only sizes tkhd and
 * pasp), so a VUI cut short here reads as square pixels rather than failing the stream.
 */
export function readVuiAspectRatio(r: BitReader): SampleAspectRatio {
  try {
    if (!r.flag()) return { num: 1, den: 1 };
    if (!r.flag()) return { num: 1, den: 1 };
    const idc = r.u(8);
    if (idc === 255) return aspectRatioFromIdc(idc, { num: r.u(16), den: r.u(16) });
    return aspectRatioFromIdc(idc);
  } catch (err) {
    if (err instanceof MediaError) return { num: 1, den: 1 };
    throw err;
  }
}
