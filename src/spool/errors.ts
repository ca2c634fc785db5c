import { AppendcastError, ErrorCode } from '../errors.js';

/** What went wrong, finer than the shared code (the lead may promote these to ErrorCode entries). */
export type SpoolErrorKind =
  /** append() after seal()/close(). */
  | 'sealed'
  /** read()/ack()/setInFlight() outside what the session holds. */
  | 'range'
  /** openSession() for a session directory that already exists. */
  | 'exists'
  /** destroy() on a session that is not sealed or not fully acknowledged. */
  | 'busy'
  /** The spool or session was closed. */
  | 'closed';

/**
 * Misuse of the spool API (code APC_ERR_SPOOL);
 * `kind` is the stable discriminator meanwhile.
 */
export class SpoolError extends AppendcastError {
  readonly kind: SpoolErrorKind;
  constructor(kind: SpoolErrorKind, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Spool, message, options);
    this.kind = kind;
  }
}
