/**
 * The media contract between ingest and remux: one FLV tag as it arrives in an RTMP audio, video or
 * data message (or is read from an FLV file), and what the tag parser makes of it. Parsed payloads
 * are views (`subarray`) into `tag.body`: nothing is copied on the way in.
 */

/** An AMF value as decoded from the wire. Objects and ECMA arrays have a null prototype. */
export type AmfValue = number | boolean | string | null | undefined | Date | AmfObject | AmfValue[];
export interface AmfObject {
  [key: string]: AmfValue;
}

/** FLV tag types: 8 audio, 9 video, 18 script data (AMF0). */
export type FlvTagType = 8 | 9 | 18;

export interface FlvTag {
  type: FlvTagType;
  /** The RTMP/FLV timestamp (DTS) in ms as sent: an unsigned 32-bit number that wraps at 2^32. */
  timestamp: number;
  /** The tag body: for RTMP the message payload, for a file the tag data (no 11-byte header). */
  body: Buffer;
}

export type VideoCodec = 'avc' | 'hevc';
/** AAC is remuxed as is; G.711 (A-law, µ-law) needs a transcode to AAC to play in browsers. */
export type AudioCodec = 'aac' | 'pcma' | 'pcmu';

export interface VideoPacket {
  kind: 'video';
  codec: VideoCodec;
  /**
   * `config`: the decoder configuration record (avcC / hvcC payload); `frame`: one access unit of
   * length-prefixed NAL units; `end`: end of sequence (no data).
   */
  packetType: 'config' | 'frame' | 'end';
  /** Frame type 1 (key frame); false for config and end. */
  keyframe: boolean;
  /** Composition time offset in ms (signed 24-bit; 0 when absent, e.g. enhanced CodedFramesX). */
  cts: number;
  data: Buffer;
  /** How it was carried: legacy codec id (7, 12) or an enhanced-RTMP ExVideoTagHeader. */
  header: 'legacy' | 'enhanced';
  tag: FlvTag;
}

export interface AudioPacket {
  kind: 'audio';
  codec: AudioCodec;
  /** AAC: `config` = AudioSpecificConfig, `frame` = one raw AAC frame. G.711: always `frame`. */
  packetType: 'config' | 'frame';
  /** From the tag's flags; meaningful for G.711 only (AAC takes rate and channels from the ASC). */
  channels: 1 | 2;
  data: Buffer;
  tag: FlvTag;
}

/** `onMetaData` (the `@setDataFrame` wrapper removed): advisory only, never used to size anything. */
export interface MetadataPacket {
  kind: 'metadata';
  values: AmfObject;
  tag: FlvTag;
}

export type MediaPacket = VideoPacket | AudioPacket | MetadataPacket;

/** A codec we do not record (VP9, AV1, Speex, MP3, H.263…): the publish is refused with this name. */
export interface UnsupportedMedia {
  kind: 'unsupported';
  media: 'video' | 'audio';
  /** A short name for logs and the refusal's description, e.g. `vp09`, `av01`, `speex`. */
  codec: string;
  tag: FlvTag;
}

/** A tag that carries nothing to record (video info/command frames, empty payloads, other script data). */
export interface SkippedTag {
  kind: 'skip';
  reason: string;
  tag: FlvTag;
}

export type ParsedTag = MediaPacket | UnsupportedMedia | SkippedTag;
