/**
 * Every error the gateway raises carries a stable `code` (like undici's UND_ERR_*), so callers,
 * logs and metrics can branch on it without parsing messages.
 */
export const ErrorCode = {
  // config
  ConfigInvalid: 'APC_ERR_CONFIG_INVALID',
  // ffmpeg / remux
  FfmpegNotFound: 'APC_ERR_FFMPEG_NOT_FOUND',
  FfmpegFailed: 'APC_ERR_FFMPEG_FAILED',
  // container parsing
  ContainerInvalid: 'APC_ERR_CONTAINER_INVALID',
  // store (the OSS codes are kept verbatim in `ossCode` where they apply)
  PositionNotEqualToLength: 'APC_ERR_POSITION_NOT_EQUAL_TO_LENGTH',
  ObjectNotAppendable: 'APC_ERR_OBJECT_NOT_APPENDABLE',
  ObjectTooLarge: 'APC_ERR_OBJECT_TOO_LARGE',
  NoSuchKey: 'APC_ERR_NO_SUCH_KEY',
  InvalidKey: 'APC_ERR_INVALID_KEY',
  InvalidRange: 'APC_ERR_INVALID_RANGE',
  StoreIntegrity: 'APC_ERR_STORE_INTEGRITY',
  StoreService: 'APC_ERR_STORE_SERVICE',
  StoreTransport: 'APC_ERR_STORE_TRANSPORT',
  StoreClosed: 'APC_ERR_STORE_CLOSED',
  CredentialsMissing: 'APC_ERR_CREDENTIALS_MISSING',
  // spool (src/spool/errors.ts)
  /** append() after seal(). */
  SpoolSealed: 'APC_ERR_SPOOL_SEALED',
  /** read(), begin() or commit() outside what the session holds. */
  SpoolRange: 'APC_ERR_SPOOL_RANGE',
  /** A spool option, stream or session name that cannot be used. */
  SpoolInvalidArgument: 'APC_ERR_SPOOL_INVALID_ARGUMENT',
  /** A new session whose directory exists already. */
  SpoolSessionExists: 'APC_ERR_SPOOL_SESSION_EXISTS',
  /** finish() on a session not written to its end, or not fully acknowledged. */
  SpoolBusy: 'APC_ERR_SPOOL_BUSY',
  /** The spool or session is closed, finished, or not started. */
  SpoolClosed: 'APC_ERR_SPOOL_CLOSED',
  /** A journal write or fsync failed (its entries are dropped and counted). */
  SpoolWrite: 'APC_ERR_SPOOL_WRITE',
  /** A positional write made no progress (the disk refused more bytes without an error). */
  WriteNoProgress: 'APC_ERR_WRITE_NO_PROGRESS',
  // appender
  /** An unexpected error stopped a session's appender; it is retried with backoff (counted in append_errors_total). */
  AppenderFailed: 'APC_ERR_APPENDER_FAILED',
  /** A new object must start with an init segment and the spool has none before the entry. */
  AppenderNoInit: 'APC_ERR_APPENDER_NO_INIT',
  /** Every key near the rendered one is taken. */
  AppenderNoFreeKey: 'APC_ERR_APPENDER_NO_FREE_KEY',
  /** A key template names a placeholder that does not exist (the config validates them: a programming error). */
  AppenderKeyTemplate: 'APC_ERR_APPENDER_KEY_TEMPLATE',
  // playback (the read side)
  /** `appendcast convert` refused: no source, the target exists, or the copy's CRC-64 did not check out. */
  ConvertRefused: 'APC_ERR_CONVERT_REFUSED',
  // serve-oss (the OSS-compatible server)
  /** An OSS error reply to a client (status + OSS Code): thrown inside the server, answered, never a failure of ours. */
  ServeOssReply: 'APC_ERR_SERVE_OSS_REPLY',
  /** The client went away mid-body: nothing is written, nobody to answer. */
  ServeOssClientAborted: 'APC_ERR_SERVE_OSS_CLIENT_ABORTED',
  /** start/outage called in the wrong state (programming error). */
  ServeOssState: 'APC_ERR_SERVE_OSS_STATE',
  /** A gateway started twice, or after close(). */
  GatewayState: 'APC_ERR_GATEWAY_STATE',
  // ingest
  IngestPortInUse: 'APC_ERR_INGEST_PORT_IN_USE',
  HttpPortInUse: 'APC_ERR_HTTP_PORT_IN_USE',
  /** A peer broke the RTMP protocol or one of its limits; the error carries a `reason` label. */
  RtmpProtocol: 'APC_ERR_RTMP_PROTOCOL',
  // media parsing (FLV tags, codec configuration records, AMF)
  MediaInvalid: 'APC_ERR_MEDIA_INVALID',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class AppendcastError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
