/**
 * One FLV tag body (an RTMP audio/video/data message payload) → what it carries. Payloads are views
 * into `tag.body`; nothing is copied. Throws MediaError when a header field runs past the body or
 * holds an undefined value, AmfError (from the AMF0 decoder) for a malformed script tag.
 *
 * Video, legacy (byte 0 < 0x80): frame type (high nibble) | codec id (low nibble). Codec 7 (AVC) and
 * 12 (HEVC, the CDN-Union extension, laid out exactly like AVC): AVCPacketType, SI24 composition time,
 * then the configuration record or length-prefixed NAL units.
 *
 * Video, enhanced RTMP (bit 7 set): frame type in bits 6–4, VideoPacketType in bits 3–0, then the
 * FourCC. `avc1` and `hvc1` are ours; any other FourCC is UnsupportedMedia. Metadata (4, an HDR
 * colorInfo object) and MPEG2TSSequenceStart (5, AV1 only) are skipped. E-RTMP v2 additions:
 *   - ModEx (7) prefixes are consumed and their data ignored (TimestampOffsetNano is sub-millisecond,
 *     below what FLV timestamps and our 90 kHz rounding carry);
 *   - Multitrack (6): only track 0 (the spec's "default track") is recorded; a message that carries
 *     no track 0 is skipped. OBS sends Multitrack only for extra tracks (index > 0), so its main
 *     track arrives as plain packets.
 * Frame type 5 (info/command frames, e.g. seek markers) and empty payloads are skipped, as FFmpeg's
 * flvdec drops them.
 *
 * Audio: AAC (10) → config (AudioSpecificConfig) or frame (raw AAC, no ADTS); G.711 A-law (7) and
 * µ-law (8) → frames (8 kHz, channels from bit 0). Everything else, including enhanced audio (9), is
 * UnsupportedMedia with a short codec name.
 *
 * Script data: `["onMetaData", {…}]` or `["@setDataFrame", "onMetaData", {…}]` → MetadataPacket;
 * anything else is skipped.
 */
import { decodeAmf0 } from '../amf/amf0.js';
import { MediaError } from '../errors.js';
import type { AmfObject, AmfValue, AudioPacket, FlvTag, ParsedTag, VideoCodec, VideoPacket } from '../types.js';

export function parseFlvTag(tag: FlvTag): ParsedTag {
  switch (tag.type) {
    case 9:
      return parseVideoTag(tag);
    case 8:
      return parseAudioTag(tag);
    case 18:
      return parseScriptTag(tag);
    default:
      return { kind: 'skip', reason: `tag type ${String(tag.type)}`, tag };
  }
}

const LEGACY_VIDEO_CODECS: Record<number, string> = {
  1: 'jpeg', 2: 'h263', 3: 'screen', 4: 'vp6', 5: 'vp6a', 6: 'screen2', 13: 'av1', 11: 'video-11',
};

/** E-RTMP VideoPacketType. */
const ExVideoPacketType = {
  SequenceStart: 0,
  CodedFrames: 1,
  SequenceEnd: 2,
  CodedFramesX: 3,
  Metadata: 4,
  Mpeg2TsSequenceStart: 5,
  Multitrack: 6,
  ModEx: 7,
} as const;

const FRAME_TYPE_COMMAND = 5;

function truncated(what: string, tag: FlvTag): MediaError {
  return new MediaError('flv-tag-truncated', `${what}: ${tag.body.length}-byte tag body is too short (ts ${tag.timestamp})`);
}

export function parseVideoTag(tag: FlvTag): ParsedTag {
  const body = tag.body;
  if (body.length === 0) return { kind: 'skip', reason: 'empty video payload', tag };
  const b0 = body[0] as number;
  if (b0 & 0x80) return parseEnhancedVideo(tag);
  const frameType = b0 >> 4;
  const codecId = b0 & 0x0f;
  if (frameType === FRAME_TYPE_COMMAND) return { kind: 'skip', reason: 'video info/command frame', tag };
  if (codecId !== 7 && codecId !== 12) {
    return { kind: 'unsupported', media: 'video', codec: LEGACY_VIDEO_CODECS[codecId] ?? `video-codec-${codecId}`, tag };
  }
  const codec: VideoCodec = codecId === 7 ? 'avc' : 'hevc';
  if (body.length === 1) return { kind: 'skip', reason: 'empty video payload', tag };
  if (body.length < 5) throw truncated(`${codec} video tag header`, tag);
  const packetType = body[1] as number;
  switch (packetType) {
    case 0:
      return videoPacket(tag, codec, 'config', false, 0, body.subarray(5), 'legacy');
    case 1:
      return videoPacket(tag, codec, 'frame', frameType === 1, body.readIntBE(2, 3), body.subarray(5), 'legacy');
    case 2:
      return videoPacket(tag, codec, 'end', false, 0, body.subarray(5, 5), 'legacy');
    default:
      throw new MediaError('flv-tag-invalid', `${codec} video tag: AVCPacketType ${packetType} (ts ${tag.timestamp})`);
  }
}

/** Builds a VideoPacket, or a skip for an empty config/frame (FFmpeg drops empty payloads too). */
function videoPacket(
  tag: FlvTag,
  codec: VideoCodec,
  packetType: VideoPacket['packetType'],
  keyframe: boolean,
  cts: number,
  data: Buffer,
  header: VideoPacket['header'],
): ParsedTag {
  if (packetType !== 'end' && data.length === 0) return { kind: 'skip', reason: `empty video ${packetType}`, tag };
  return { kind: 'video', codec, packetType, keyframe, cts, data, header, tag };
}

function parseEnhancedVideo(tag: FlvTag): ParsedTag {
  const body = tag.body;
  const b0 = body[0] as number;
  const frameType = (b0 >> 4) & 0x07;
  let packetType = b0 & 0x0f;
  let at = 1;
  // ModEx prefixes: [size-1 (u8, or 0xFF then u16)] [data] [modExType<<4 | next packet type]
  while (packetType === ExVideoPacketType.ModEx) {
    if (at + 1 > body.length) throw truncated('enhanced video ModEx', tag);
    let size = (body[at++] as number) + 1;
    if (size === 256) {
      if (at + 2 > body.length) throw truncated('enhanced video ModEx', tag);
      size = body.readUInt16BE(at) + 1;
      at += 2;
    }
    if (at + size + 1 > body.length) throw truncated('enhanced video ModEx', tag);
    at += size;
    packetType = (body[at++] as number) & 0x0f;
  }
  if (frameType === FRAME_TYPE_COMMAND && packetType !== ExVideoPacketType.Metadata) {
    return { kind: 'skip', reason: 'video info/command frame', tag };
  }
  if (packetType === ExVideoPacketType.Multitrack) return parseMultitrackVideo(tag, frameType, at);
  if (at + 4 > body.length) throw truncated('enhanced video FourCC', tag);
  const fourcc = body.toString('latin1', at, at + 4);
  return enhancedVideoPacket(tag, frameType, packetType, fourcc, body.subarray(at + 4));
}

function enhancedVideoPacket(tag: FlvTag, frameType: number, packetType: number, fourcc: string, rest: Buffer): ParsedTag {
  if (packetType === ExVideoPacketType.Metadata) return { kind: 'skip', reason: 'enhanced video metadata', tag };
  const codec: VideoCodec | null = fourcc === 'avc1' ? 'avc' : fourcc === 'hvc1' ? 'hevc' : null;
  if (codec === null) return { kind: 'unsupported', media: 'video', codec: printableFourcc(fourcc), tag };
  switch (packetType) {
    case ExVideoPacketType.SequenceStart:
      return videoPacket(tag, codec, 'config', false, 0, rest, 'enhanced');
    case ExVideoPacketType.CodedFrames:
      if (rest.length < 3) throw truncated(`enhanced ${fourcc} CodedFrames`, tag);
      return videoPacket(tag, codec, 'frame', frameType === 1, rest.readIntBE(0, 3), rest.subarray(3), 'enhanced');
    case ExVideoPacketType.CodedFramesX:
      return videoPacket(tag, codec, 'frame', frameType === 1, 0, rest, 'enhanced');
    case ExVideoPacketType.SequenceEnd:
      return videoPacket(tag, codec, 'end', false, 0, rest.subarray(0, 0), 'enhanced');
    case ExVideoPacketType.Mpeg2TsSequenceStart:
      return { kind: 'skip', reason: 'enhanced video MPEG2TSSequenceStart', tag };
    default:
      // Reserved packet types: "fail in a controlled manner" — nothing we could record.
      return { kind: 'skip', reason: `enhanced video packet type ${packetType}`, tag };
  }
}

/** E-RTMP v2 AvMultitrackType. */
const MultitrackType = { OneTrack: 0, ManyTracks: 1, ManyTracksManyCodecs: 2 } as const;

/** E-RTMP v2 Multitrack: returns track 0's packet, or a skip when the message has no track 0. */
function parseMultitrackVideo(tag: FlvTag, frameType: number, start: number): ParsedTag {
  const body = tag.body;
  let at = start;
  if (at + 1 > body.length) throw truncated('enhanced video Multitrack', tag);
  const mb = body[at++] as number;
  const multitrackType = mb >> 4;
  const packetType = mb & 0x0f;
  if (multitrackType > MultitrackType.ManyTracksManyCodecs) {
    throw new MediaError('flv-tag-invalid', `enhanced video: AvMultitrackType ${multitrackType} (ts ${tag.timestamp})`);
  }
  if (packetType === ExVideoPacketType.Multitrack || packetType === ExVideoPacketType.ModEx) {
    throw new MediaError('flv-tag-invalid', `enhanced video: nested packet type ${packetType} inside Multitrack (ts ${tag.timestamp})`);
  }
  let fourcc = '';
  if (multitrackType !== MultitrackType.ManyTracksManyCodecs) {
    if (at + 4 > body.length) throw truncated('enhanced video Multitrack FourCC', tag);
    fourcc = body.toString('latin1', at, at + 4);
    at += 4;
  }
  while (at < body.length) {
    if (multitrackType === MultitrackType.ManyTracksManyCodecs) {
      if (at + 4 > body.length) throw truncated('enhanced video Multitrack FourCC', tag);
      fourcc = body.toString('latin1', at, at + 4);
      at += 4;
    }
    if (at + 1 > body.length) throw truncated('enhanced video Multitrack track id', tag);
    const trackId = body[at++] as number;
    let end = body.length;
    if (multitrackType !== MultitrackType.OneTrack) {
      if (at + 3 > body.length) throw truncated('enhanced video Multitrack track size', tag);
      const size = body.readUIntBE(at, 3);
      at += 3;
      if (at + size > body.length) throw truncated(`enhanced video Multitrack track ${trackId} (${size} bytes)`, tag);
      end = at + size;
    }
    if (trackId === 0) return enhancedVideoPacket(tag, frameType, packetType, fourcc, body.subarray(at, end));
    at = end;
  }
  return { kind: 'skip', reason: 'multitrack video without track 0', tag };
}

function printableFourcc(fourcc: string): string {
  return /^[\x20-\x7e]{4}$/.test(fourcc) ? fourcc.trim() || 'fourcc-blank' : `0x${Buffer.from(fourcc, 'latin1').toString('hex')}`;
}

const AUDIO_FORMATS: Record<number, string> = {
  0: 'pcm', 1: 'adpcm', 2: 'mp3', 3: 'pcm-le', 4: 'nellymoser-16k', 5: 'nellymoser-8k', 6: 'nellymoser',
  9: 'enhanced-audio', 11: 'speex', 12: 'audio-format-12', 13: 'audio-format-13', 14: 'mp3-8k', 15: 'device-specific',
};

export function parseAudioTag(tag: FlvTag): ParsedTag {
  const body = tag.body;
  if (body.length === 0) return { kind: 'skip', reason: 'empty audio payload', tag };
  const b0 = body[0] as number;
  const format = b0 >> 4;
  const channels: AudioPacket['channels'] = b0 & 1 ? 2 : 1;
  if (format === 10) {
    if (body.length === 1) return { kind: 'skip', reason: 'empty audio payload', tag };
    const aacPacketType = body[1] as number;
    if (aacPacketType > 1) throw new MediaError('flv-tag-invalid', `AAC audio tag: AACPacketType ${aacPacketType} (ts ${tag.timestamp})`);
    const data = body.subarray(2);
    const packetType = aacPacketType === 0 ? 'config' : 'frame';
    if (data.length === 0) return { kind: 'skip', reason: `empty AAC ${packetType}`, tag };
    return { kind: 'audio', codec: 'aac', packetType, channels, data, tag };
  }
  if (format === 7 || format === 8) {
    const data = body.subarray(1);
    if (data.length === 0) return { kind: 'skip', reason: 'empty G.711 frame', tag };
    return { kind: 'audio', codec: format === 7 ? 'pcma' : 'pcmu', packetType: 'frame', channels, data, tag };
  }
  if (format === 9 && body.length >= 5) {
    // Enhanced audio: the FourCC names the codec for the refusal (unless a ModEx/Multitrack prefix hides it).
    const packetType = b0 & 0x0f;
    if (packetType !== 5 && packetType !== 7) {
      const fourcc = body.toString('latin1', 1, 5);
      // `mp4a` is AAC, but carried in the v2 enhanced-audio header, which this path does not take.
      return { kind: 'unsupported', media: 'audio', codec: fourcc === 'mp4a' ? 'enhanced-aac' : printableFourcc(fourcc), tag };
    }
  }
  return { kind: 'unsupported', media: 'audio', codec: AUDIO_FORMATS[format] ?? `audio-format-${format}`, tag };
}

export function parseScriptTag(tag: FlvTag): ParsedTag {
  if (tag.body.length === 0) return { kind: 'skip', reason: 'empty script data', tag };
  const values = decodeAmf0(tag.body);
  let i = 0;
  if (values[0] === '@setDataFrame') i = 1;
  if (values[i] !== 'onMetaData') return { kind: 'skip', reason: `script data ${describeName(values[i])}`, tag };
  const obj = values[i + 1];
  if (!isAmfObject(obj)) return { kind: 'skip', reason: 'onMetaData without an object', tag };
  return { kind: 'metadata', values: obj, tag };
}

export function isAmfObject(v: AmfValue): v is AmfObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function describeName(v: AmfValue): string {
  return typeof v === 'string' ? JSON.stringify(v.slice(0, 64)) : typeof v;
}
