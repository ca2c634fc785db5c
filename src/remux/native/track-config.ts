/** What one output track is made of: its id and the parsed decoder configuration it was built from. */
import type { AacConfig } from '../../media/codec/aac-config.js';
import type { AvcConfig } from '../../media/codec/avc-config.js';
import type { HevcConfig } from '../../media/codec/hevc-config.js';

export type VideoConfig = AvcConfig | HevcConfig;

export interface VideoTrackConfig {
  kind: 'video';
  id: number;
  config: VideoConfig;
}

export interface AudioTrackConfig {
  kind: 'audio';
  id: number;
  config: AacConfig;
}

export type TrackConfig = VideoTrackConfig | AudioTrackConfig;

/** Video media timescale: 90 kHz, so FLV milliseconds map exactly (90 ticks per ms). */
export const VIDEO_TIMESCALE = 90000;
export const VIDEO_TICKS_PER_MS = VIDEO_TIMESCALE / 1000;

/** Sample entry fourcc for a video configuration (we always write `hvc1`, never `hev1`). */
export function videoSampleEntry(config: VideoConfig): 'avc1' | 'hvc1' {
  return config.codec === 'avc' ? 'avc1' : 'hvc1';
}

/** sample_flags as FFmpeg writes them (ISO/IEC 14496-12 §8.8.3.1). */
export const SAMPLE_FLAGS_SYNC = 0x02000000; // sample_depends_on = 2 (independent)
export const SAMPLE_FLAGS_NON_SYNC = 0x01010000; // sample_depends_on = 1, sample_is_non_sync_sample
