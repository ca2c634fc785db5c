import { AppendcastError, ErrorCode } from '../errors.js';
import { PositionNotEqualToLengthError, StoreError } from '../store/errors.js';

/**
 * An OSS error reply: HTTP status, OSS `Code`, message, and what goes with it (extra XML elements such
 * as `<StringToSign>`, extra headers such as `x-oss-next-append-position`). Thrown inside the server and
 * turned into the response by server.ts; it never leaves this module as a failure of ours.
 */
export class OssHttpError extends AppendcastError {
  readonly status: number;
  readonly ossCode: string;
  /** OSS's fine-grained error code (`x-oss-ec`, `<EC>`); see EC below. */
  readonly ec: string;
  /** Extra `<Error>` children, in order. */
  readonly details: ReadonlyArray<readonly [string, string]>;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    ossCode: string,
    message: string,
    extra: { ec?: string; details?: ReadonlyArray<readonly [string, string]>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(ErrorCode.ServeOssReply, message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.status = status;
    this.ossCode = ossCode;
    this.ec = extra.ec ?? EC.unknown;
    this.details = extra.details ?? [];
    this.headers = extra.headers ?? {};
  }
}

/**
 * EC values OSS documents in its error reference (position missing/invalid, position not equal to
 * length, object not appendable). For every other
 * error we send `0000-00000000`: inventing real-looking ECs would mislead whoever looks them up.
 */
export const EC = {
  unknown: '0000-00000000',
  positionMissing: '0016-00000501',
  positionInvalid: '0016-00000502',
  positionNotEqualToLength: '0026-00000016',
  objectNotAppendable: '0026-00000017',
} as const;

/** OSS's wording where the docs give it; the store's own message otherwise. */
const MESSAGES: Readonly<Record<string, string>> = {
  PositionNotEqualToLength: 'Position is not equal to file length.',
  ObjectNotAppendable: 'The object is not appendable.',
  NoSuchKey: 'The specified key does not exist.',
};

/**
 * Maps the typed store errors (src/store/errors.ts, fs-errors.ts) onto OSS replies, using the status
 * and OSS code each error carries. ObjectTooLarge is ours (400): OSS documents no code for an append
 * past the 5 GB cap (dossier §2.2), see ObjectTooLargeError.
 */
export function fromStoreError(err: StoreError): OssHttpError {
  if (err instanceof PositionNotEqualToLengthError) {
    return new OssHttpError(409, err.ossCode, MESSAGES[err.ossCode]!, {
      ec: EC.positionNotEqualToLength,
      // OSS sends the current length on this 409 (dossier §2.2).
      headers: { 'x-oss-next-append-position': String(err.currentLength) },
      cause: err,
    });
  }
  const ec = err.ossCode === 'ObjectNotAppendable' ? EC.objectNotAppendable : EC.unknown;
  // 5xx details (integrity, closed store) stay in our logs; clients get OSS's generic wording.
  const message = err.status >= 500 ? 'We encountered an internal error. Please try again.' : MESSAGES[err.ossCode] ?? err.message;
  return new OssHttpError(err.status, err.ossCode, message, { ec, cause: err });
}

export function toOssHttpError(err: unknown): OssHttpError {
  if (err instanceof OssHttpError) return err;
  if (err instanceof StoreError) return fromStoreError(err);
  return new OssHttpError(500, 'InternalError', 'We encountered an internal error. Please try again.', { cause: err });
}
