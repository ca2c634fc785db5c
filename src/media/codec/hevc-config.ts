/**
 * HEVCDecoderConfigurationRecord (the hvcC payload, ISO/IEC 14496-15 §8.3.3.1) and the parts of the
 * H.265 sequence parameter set (ITU-T H.265 §7.3.2.2) a sample entry needs. Bounded like avc-config:
 * every array count and NAL length is checked against the record.
 */
import { MediaError } from '../errors.js';
import { readVuiAspectRatio, type SampleAspectRatio } from './avc-config.js';
import { BitReader, unescapeRbsp } from './bit-reader.js';

export const HEVC_NAL_VPS = 32;
export const HEVC_NAL_SPS = 33;
export const HEVC_NAL_PPS = 34;

export interface HevcNalArray {
  /** array_completeness: 1 = all NAL units of this type are in the record (what `hvc1` promises). */
  complete: boolean;
  nalType: number;
  /** Views into the record, each a whole NAL unit (2-byte header included). */
  units: Buffer[];
}

export interface HevcConfig {
  codec: 'hevc';
  /** The record verbatim (written as the hvcC payload unchanged, array_completeness included). */
  record: Buffer;
  profileSpace: number;
  tier: number;
  profile: number;
  compatibilityFlags: number;
  /** general_constraint_indicator_flags, 6 bytes (a view into the record). */
  constraintFlags: Buffer;
  level: number;
  chromaFormat: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  nalLengthSize: 1 | 2 | 4;
  arrays: HevcNalArray[];
  width: number;
  height: number;
  sar: SampleAspectRatio;
  /** RFC 6381 / ISO 14496-15 Annex E codec string, e.g. `hvc1.1.6.L93.B0`. */
  codecString: string;
}

const FIXED_BYTES = 23;
const MAX_EDGE = 16888; // H.265 level 6.2: sqrt(MaxLumaPs * 8)

function bad(message: string): MediaError {
  return new MediaError('hvcc-invalid', `hvcC: ${message}`);
}

export function parseHevcConfig(record: Buffer): HevcConfig {
  if (record.length < FIXED_BYTES) throw bad(`${record.length} bytes, shorter than its ${FIXED_BYTES}-byte fixed part`);
  // Version 0 was written by some early encoders for the same layout; FFmpeg reads both.
  if (record[0] !== 1 && record[0] !== 0) throw bad(`configurationVersion ${record[0]}`);
  const b1 = record[1] as number;
  const lengthSizeMinusOne = (record[21] as number) & 0x03;
  if (lengthSizeMinusOne === 2) throw bad('lengthSizeMinusOne 2 (3-byte NAL lengths are not allowed)');
  const numArrays = record[22] as number;

  const arrays: HevcNalArray[] = [];
  let at = FIXED_BYTES;
  for (let a = 0; a < numArrays; a++) {
    if (at + 3 > record.length) throw bad(`array #${a} header runs past the record`);
    const head = record[at] as number;
    const count = record.readUInt16BE(at + 1);
    at += 3;
    const units: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      if (at + 2 > record.length) throw bad(`array #${a} NAL #${i} length runs past the record`);
      const len = record.readUInt16BE(at);
      at += 2;
      if (len < 2) throw bad(`array #${a} NAL #${i} is ${len} bytes, shorter than a NAL header`);
      if (at + len > record.length) throw bad(`array #${a} NAL #${i} (${len} bytes) runs past the record`);
      units.push(record.subarray(at, at + len));
      at += len;
    }
    arrays.push({ complete: (head & 0x80) !== 0, nalType: head & 0x3f, units });
  }
  const unitsOf = (type: number): Buffer[] => arrays.filter((x) => x.nalType === type).flatMap((x) => x.units);
  // An hvc1 sample entry carries the parameter sets out of band: all three must be there.
  for (const [type, name] of [[HEVC_NAL_VPS, 'VPS'], [HEVC_NAL_SPS, 'SPS'], [HEVC_NAL_PPS, 'PPS']] as const) {
    const units = unitsOf(type);
    if (units.length === 0) throw bad(`no ${name}`);
    for (const u of units) {
      const t = ((u[0] as number) >> 1) & 0x3f;
      if (t !== type) throw bad(`a ${name} array holds a NAL unit of type ${t}`);
    }
  }
  const sps = parseHevcSps(unitsOf(HEVC_NAL_SPS)[0] as Buffer);

  const profileSpace = b1 >> 6;
  const tier = (b1 >> 5) & 1;
  const profile = b1 & 0x1f;
  const compatibilityFlags = record.readUInt32BE(2);
  const constraintFlags = record.subarray(6, 12);
  const level = record[12] as number;
  return {
    codec: 'hevc',
    record,
    profileSpace,
    tier,
    profile,
    compatibilityFlags,
    constraintFlags,
    level,
    chromaFormat: (record[16] as number) & 0x03,
    bitDepthLuma: ((record[17] as number) & 0x07) + 8,
    bitDepthChroma: ((record[18] as number) & 0x07) + 8,
    nalLengthSize: (lengthSizeMinusOne + 1) as 1 | 2 | 4,
    arrays,
    width: sps.width,
    height: sps.height,
    sar: sps.sar,
    codecString: hevcCodecString(profileSpace, tier, profile, compatibilityFlags, constraintFlags, level),
  };
}

/**
 * `hvc1.<space><profile>.<compat, bit-reversed hex>.<L|H><level>[.<constraint byte>…]` with trailing
 * zero constraint bytes dropped (ISO/IEC 14496-15 Annex E.3).
 */
export function hevcCodecString(space: number, tier: number, profile: number, compat: number, constraints: Uint8Array, level: number): string {
  let reversed = 0;
  for (let i = 0; i < 32; i++) reversed = reversed * 2 + ((compat >>> i) & 1);
  const parts = [`hvc1`, `${['', 'A', 'B', 'C'][space] ?? ''}${profile}`, reversed.toString(16).toUpperCase(), `${tier ? 'H' : 'L'}${level}`];
  let last = constraints.length;
  while (last > 0 && constraints[last - 1] === 0) last--;
  for (let i = 0; i < last; i++) parts.push((constraints[i] as number).toString(16).toUpperCase().padStart(2, '0'));
  return parts.join('.');
}

export interface HevcSpsInfo {
  width: number;
  height: number;
  sar: SampleAspectRatio;
}

/**
 * Parses one SPS NAL unit (2-byte header included): the conformance-window-cropped size, then on to
 * the VUI for the sample aspect ratio. Everything after the picture size only serves the SAR, which
 * is advisory, so a failure past that point reads as square pixels.
 */
export function parseHevcSps(nal: Uint8Array): HevcSpsInfo {
  const r = new BitReader(unescapeRbsp(nal), 'sps-invalid', 'H.265 SPS');
  r.skip(1);
  const nalType = r.u(6);
  if (nalType !== HEVC_NAL_SPS) throw new MediaError('sps-invalid', `H.265 SPS: NAL type ${nalType}, expected ${HEVC_NAL_SPS}`);
  r.skip(9); // nuh_layer_id, nuh_temporal_id_plus1
  r.skip(4); // sps_video_parameter_set_id
  const maxSubLayersMinus1 = r.u(3);
  if (maxSubLayersMinus1 > 6) throw new MediaError('sps-invalid', `H.265 SPS: sps_max_sub_layers_minus1 ${maxSubLayersMinus1}`);
  r.skip(1); // sps_temporal_id_nesting_flag
  skipProfileTierLevel(r, maxSubLayersMinus1);
  r.ueIn('sps_seq_parameter_set_id', 0, 15);
  const chromaFormatIdc = r.ueIn('chroma_format_idc', 0, 3);
  const separateColourPlane = chromaFormatIdc === 3 ? r.flag() : false;
  let width = r.ueIn('pic_width_in_luma_samples', 1, MAX_EDGE);
  let height = r.ueIn('pic_height_in_luma_samples', 1, MAX_EDGE);
  if (r.flag()) {
    const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
    const subWidthC = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
    const subHeightC = chromaArrayType === 1 ? 2 : 1;
    const left = r.ueIn('conf_win_left_offset', 0, MAX_EDGE);
    const right = r.ueIn('conf_win_right_offset', 0, MAX_EDGE);
    const top = r.ueIn('conf_win_top_offset', 0, MAX_EDGE);
    const bottom = r.ueIn('conf_win_bottom_offset', 0, MAX_EDGE);
    width -= subWidthC * (left + right);
    height -= subHeightC * (top + bottom);
    if (width <= 0 || height <= 0) throw new MediaError('sps-invalid', `H.265 SPS: conformance window leaves a ${width}x${height} picture`);
  }
  let sar: SampleAspectRatio = { num: 1, den: 1 };
  try {
    sar = readAspectRatioAfterSize(r, maxSubLayersMinus1);
  } catch (err) {
    if (!(err instanceof MediaError)) throw err;
  }
  return { width, height, sar };
}

function skipProfileTierLevel(r: BitReader, maxSubLayersMinus1: number): void {
  r.skip(88); // general_profile_space … general_inbld/reserved flag
  r.skip(8); // general_level_idc
  const profilePresent: boolean[] = [];
  const levelPresent: boolean[] = [];
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    profilePresent.push(r.flag());
    levelPresent.push(r.flag());
  }
  if (maxSubLayersMinus1 > 0) r.skip(2 * (8 - maxSubLayersMinus1)); // reserved_zero_2bits
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    if (profilePresent[i]) r.skip(88);
    if (levelPresent[i]) r.skip(8);
  }
}

function readAspectRatioAfterSize(r: BitReader, maxSubLayersMinus1: number): SampleAspectRatio {
  r.ueIn('bit_depth_luma_minus8', 0, 8);
  r.ueIn('bit_depth_chroma_minus8', 0, 8);
  const log2MaxPocLsb = r.ueIn('log2_max_pic_order_cnt_lsb_minus4', 0, 12) + 4;
  const orderingInfoPresent = r.flag();
  for (let i = orderingInfoPresent ? 0 : maxSubLayersMinus1; i <= maxSubLayersMinus1; i++) {
    r.ue(); // sps_max_dec_pic_buffering_minus1
    r.ue(); // sps_max_num_reorder_pics
    r.ue(); // sps_max_latency_increase_plus1
  }
  r.ue(); // log2_min_luma_coding_block_size_minus3
  r.ue(); // log2_diff_max_min_luma_coding_block_size
  r.ue(); // log2_min_luma_transform_block_size_minus2
  r.ue(); // log2_diff_max_min_luma_transform_block_size
  r.ue(); // max_transform_hierarchy_depth_inter
  r.ue(); // max_transform_hierarchy_depth_intra
  if (r.flag() && r.flag()) skipScalingListData(r); // scaling_list_enabled_flag, sps_scaling_list_data_present_flag
  r.skip(2); // amp_enabled_flag, sample_adaptive_offset_enabled_flag
  if (r.flag()) {
    r.skip(8); // pcm_sample_bit_depth_luma_minus1, _chroma_minus1
    r.ue(); // log2_min_pcm_luma_coding_block_size_minus3
    r.ue(); // log2_diff_max_min_pcm_luma_coding_block_size
    r.skip(1); // pcm_loop_filter_disabled_flag
  }
  const numSets = r.ueIn('num_short_term_ref_pic_sets', 0, 64);
  const sets: ShortTermRps[] = [];
  for (let i = 0; i < numSets; i++) sets.push(readShortTermRps(r, i, sets));
  if (r.flag()) {
    const n = r.ueIn('num_long_term_ref_pics_sps', 0, 32);
    for (let i = 0; i < n; i++) r.skip(log2MaxPocLsb + 1); // lt_ref_pic_poc_lsb_sps, used_by_curr_pic_lt_sps_flag
  }
  r.skip(2); // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
  return readVuiAspectRatio(r);
}

function skipScalingListData(r: BitReader): void {
  for (let sizeId = 0; sizeId < 4; sizeId++) {
    for (let matrixId = 0; matrixId < 6; matrixId += sizeId === 3 ? 3 : 1) {
      if (!r.flag()) {
        r.ue(); // scaling_list_pred_matrix_id_delta
        continue;
      }
      const coefNum = Math.min(64, 1 << (4 + (sizeId << 1)));
      if (sizeId > 1) r.se(); // scaling_list_dc_coef_minus8
      for (let i = 0; i < coefNum; i++) r.se(); // scaling_list_delta_coef
    }
  }
}

/** The delta POCs of one short-term RPS (needed because inter-RPS prediction refers to the previous set). */
interface ShortTermRps {
  negative: number[];
  positive: number[];
}

/** st_ref_pic_set(idx) as it appears in an SPS (H.265 §7.3.7, derivation §7.4.8). */
function readShortTermRps(r: BitReader, idx: number, sets: readonly ShortTermRps[]): ShortTermRps {
  const interPrediction = idx !== 0 && r.flag();
  if (!interPrediction) {
    const numNegative = r.ueIn('num_negative_pics', 0, 16);
    const numPositive = r.ueIn('num_positive_pics', 0, 16);
    const negative: number[] = [];
    const positive: number[] = [];
    let poc = 0;
    for (let i = 0; i < numNegative; i++) {
      poc -= r.ueIn('delta_poc_s0_minus1', 0, 32767) + 1;
      r.skip(1);
      negative.push(poc);
    }
    poc = 0;
    for (let i = 0; i < numPositive; i++) {
      poc += r.ueIn('delta_poc_s1_minus1', 0, 32767) + 1;
      r.skip(1);
      positive.push(poc);
    }
    return { negative, positive };
  }
  // In an SPS the reference set is always the previous one (delta_idx_minus1 is only sent in slices).
  const ref = sets[idx - 1] as ShortTermRps;
  const sign = r.u(1);
  const deltaRps = (1 - 2 * sign) * (r.ueIn('abs_delta_rps_minus1', 0, 32767) + 1);
  const refCount = ref.negative.length + ref.positive.length;
  const useDelta: boolean[] = [];
  for (let j = 0; j <= refCount; j++) {
    const used = r.flag();
    useDelta.push(used ? true : r.flag());
  }
  // Eq. 7-61/7-62: the new set is the reference's POCs shifted by deltaRps (plus deltaRps itself),
  // keeping those flagged and non-zero, split by sign.
  const negative: number[] = [];
  const positive: number[] = [];
  for (let j = ref.positive.length - 1; j >= 0; j--) {
    const d = (ref.positive[j] as number) + deltaRps;
    if (d < 0 && useDelta[ref.negative.length + j]) negative.push(d);
  }
  if (deltaRps < 0 && useDelta[refCount]) negative.push(deltaRps);
  for (let j = 0; j < ref.negative.length; j++) {
    const d = (ref.negative[j] as number) + deltaRps;
    if (d < 0 && useDelta[j]) negative.push(d);
  }
  for (let j = ref.negative.length - 1; j >= 0; j--) {
    const d = (ref.negative[j] as number) + deltaRps;
    if (d > 0 && useDelta[j]) positive.push(d);
  }
  if (deltaRps > 0 && useDelta[refCount]) positive.push(deltaRps);
  for (let j = 0; j < ref.positive.length; j++) {
    const d = (ref.positive[j] as number) + deltaRps;
    if (d > 0 && useDelta[ref.negative.length + j]) positive.push(d);
  }
  if (negative.length > 16 || positive.length > 16) throw new MediaError('sps-invalid', 'H.265 SPS: short-term RPS over 16 pictures');
  return { negative, positive };
}
