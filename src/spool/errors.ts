import { AppendcastError, ErrorCode } from '../errors.js';

/** Misuse of the spool API. Each kind is a class of its own with a stable code. */
export abstract class SpoolError extends AppendcastError {}

/** append() after seal() or close(). */
export class SpoolSealedError extends SpoolError {
  constructor(message: string) {
    super(ErrorCode.SpoolSealed, message);
  }
}

/** read(), begin() or commit() outside what the session holds. */
export class SpoolRangeError extends SpoolError {
  constructor(message: string) {
    super(ErrorCode.SpoolRange, message);
  }
}

/** A spool option, a stream or a session name that cannot be used. */
export class SpoolInvalidArgumentError extends SpoolError {
  constructor(message: string) {
    super(ErrorCode.SpoolInvalidArgument, message);
  }
}

/** A new session whose directory exists already. */
export class SpoolSessionExistsError extends SpoolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.SpoolSessionExists, message, options);
  }
}

/** finish() on a session that is not sealed and written to its end, or not fully acknowledged. */
export class SpoolBusyError extends SpoolError {
  constructor(message: string) {
    super(ErrorCode.SpoolBusy, message);
  }
}

/** The spool or the session was closed or finished (or the spool was never started). */
export class SpoolClosedError extends SpoolError {
  constructor(message: string) {
    super(ErrorCode.SpoolClosed, message);
  }
}

/** A journal write or fsync failed (the cause is the file system's error); its entries are dropped and counted. */
export class SpoolWriteError extends SpoolError {
  constructor(session: string, cause: unknown) {
    super(ErrorCode.SpoolWrite, `spool journal write failed for ${session}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
