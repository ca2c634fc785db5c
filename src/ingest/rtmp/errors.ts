import { AppendcastError, ErrorCode } from '../../errors.js';

/**
 * Why an RTMP connection was dropped. These become the `reason` label of
 * `appendcast_rtmp_protocol_errors_total`, so the list is finite, short and kebab-case: never put
 * peer-controlled text in here.
 */
export const RTMP_ERROR_REASONS = [
  // handshake
  /** C0 was not 3 (RTMPE, HTTP, garbage). */
  'handshake-version',
  // chunk stream
  /** Set Chunk Size of 0, with the MSB set, or above `maxChunkSize`. */
  'chunk-size',
  /** A message header declared more than `maxMessageBytes`. */
  'message-too-large',
  /** More distinct chunk stream ids than `maxChunkStreams`. */
  'too-many-chunk-streams',
  /** A fmt 0/1 header changed the length of a half-assembled message (CVE-2016-10191 class). */
  'length-mismatch',
  /** A chunk header that cannot be valid here: fmt 2/3 on a fresh csid, a new header mid-message, csid 0/1 forms out of place, a type-3 extended timestamp that does not repeat the header's. */
  'bad-chunk-header',
  /** An aggregate (type 22) whose sub-messages do not fit its body, nest, or are too many. */
  'aggregate-malformed',
  /** A protocol control or User Control message too short for its fields, or with a bad value. */
  'control-malformed',
  /** Bytes held in partially assembled messages (or unparsed input) would exceed `maxHeldBytes`. */
  'buffer-limit',
  // connection level (used by the server)
  'handshake-timeout',
  'publish-timeout',
  'media-timeout',
  /** An AMF payload failed to decode (AmfError). */
  'amf',
  /** A command was well-formed AMF but not an acceptable command (wrong argument types, order…). */
  'command',
  /** A media message could not be parsed or is not acceptable. */
  'media',
  /** A client asked to play from this publish-only server. */
  'play',
  /** Anything else that ended a connection (a bug): counted rather than crashing the process. */
  'internal',
] as const;

export type RtmpErrorReason = (typeof RTMP_ERROR_REASONS)[number];

/** A peer broke the RTMP protocol or one of our limits; the connection must be closed. */
export class RtmpProtocolError extends AppendcastError {
  readonly reason: RtmpErrorReason;
  constructor(reason: RtmpErrorReason, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.RtmpProtocol, message, options);
    this.reason = reason;
  }
}
