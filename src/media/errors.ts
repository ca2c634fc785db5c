import { AppendcastError, ErrorCode } from '../errors.js';

/** Why media was refused; stable strings, safe as metric labels. */
export const MEDIA_ERROR_REASONS = [
  /** An FLV tag body is shorter than its own header fields (packet type, CTS, FourCC, ModEx…). */
  'flv-tag-truncated',
  /** An FLV tag header field holds a value the format does not define (e.g. AVCPacketType 3). */
  'flv-tag-invalid',
  /** An FLV file/stream: bad signature or header, encrypted tag, PreviousTagSize mismatch, truncation. */
  'flv-file-invalid',
  /** A tag body over 16 MiB - 1 cannot be written as FLV. */
  'flv-tag-too-large',
  /** AVCDecoderConfigurationRecord (avcC) is truncated or inconsistent. */
  'avcc-invalid',
  /** HEVCDecoderConfigurationRecord (hvcC) is truncated or inconsistent. */
  'hvcc-invalid',
  /** A sequence parameter set cannot be parsed (truncated, out-of-range values). */
  'sps-invalid',
  /** AudioSpecificConfig is truncated, reserved or of an object type we cannot time. */
  'asc-invalid',
  /** A video frame's length-prefixed NAL units do not fill its payload exactly. */
  'nal-length-invalid',
  /** A sample too large for one fragment, or a stream the remuxer's bounds refuse. */
  'media-too-large',
  /** The remuxer was used after flush or after it failed. */
  'remuxer-state',
] as const;

export type MediaErrorReason = (typeof MEDIA_ERROR_REASONS)[number];

/** Media the native path cannot make sense of (code APC_ERR_MEDIA_INVALID); the caller ends that publish. */
export class MediaError extends AppendcastError {
  readonly reason: MediaErrorReason;
  constructor(reason: MediaErrorReason, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.MediaInvalid, message, options);
    this.reason = reason;
  }
}
