import { AppendcastError, ErrorCode } from '../../errors.js';

/** Why an AMF payload was refused; stable strings, safe as metric labels. */
export const AMF_ERROR_REASONS = [
  /** A value, length or end marker runs past the end of the payload. */
  'amf-truncated',
  /** Containers nested deeper than `maxDepth` (also used when encoding a too-deep or cyclic value). */
  'amf-depth',
  /** A string or key longer than `maxStringBytes` (or, when encoding, a key over 65535 bytes). */
  'amf-too-long',
  /** More than `maxValues` values in one payload (references count as what they point to). */
  'amf-too-many-values',
  /** A reserved or unknown marker (0x04 movieclip, 0x0E recordset, ≥ 0x12). */
  'amf-unknown-marker',
  /** A reference to no object, or to one still being decoded (which would make a cycle). */
  'amf-bad-reference',
  /** Structurally wrong: an object-end marker where a value belongs, an empty key without the end marker. */
  'amf-malformed',
  /** An AMF3 value (0x11 switch) when AMF3 is not allowed, or an AMF3 type outside the decoded subset. */
  'amf3-unsupported',
] as const;

export type AmfErrorReason = (typeof AMF_ERROR_REASONS)[number];

/** A malformed or over-limit AMF payload (code APC_ERR_MEDIA_INVALID). */
export class AmfError extends AppendcastError {
  readonly reason: AmfErrorReason;
  /** Byte offset in the payload where decoding stopped, when known. */
  readonly offset: number | undefined;
  constructor(reason: AmfErrorReason, message: string, offset?: number) {
    super(ErrorCode.MediaInvalid, offset === undefined ? message : `${message} (at byte ${offset})`);
    this.reason = reason;
    this.offset = offset;
  }
}
