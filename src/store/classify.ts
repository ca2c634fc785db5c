import { ErrorCode } from '../errors.js';

/**
 * What the appender should do after a failed append. The rule that matters (DESIGN invariant 5):
 * an append whose outcome is unknown is never blindly resent; it is reconciled by HEAD.
 */
export type AppendFailureAction =
  /** Outcome unknown (timeout, reset, 5xx, position mismatch, integrity): HEAD and compare. */
  | 'reconcile'
  /** Certainly not applied and transient (connection refused): back off and resend. */
  | 'resend'
  /** The object is someone else's (not appendable): never touch it again, open a new one. */
  | 'foreign'
  /** The object is full: roll over. */
  | 'too-large'
  /** Will not heal by retrying (credentials, permissions, no bucket, bad key): halt and alarm. */
  | 'fatal';

interface ErrorShape {
  code?: unknown;
  status?: unknown;
  retryable?: unknown;
  ambiguous?: unknown;
}

export function classifyAppendError(err: unknown): AppendFailureAction {
  const e = (typeof err === 'object' && err !== null ? err : {}) as ErrorShape;
  switch (e.code) {
    case ErrorCode.PositionNotEqualToLength:
    case ErrorCode.StoreIntegrity:
      return 'reconcile';
    case ErrorCode.ObjectNotAppendable:
      return 'foreign';
    case ErrorCode.ObjectTooLarge:
      return 'too-large';
    case ErrorCode.InvalidKey:
    case ErrorCode.CredentialsMissing:
      return 'fatal';
    case ErrorCode.StoreTransport:
      return e.ambiguous === false ? 'resend' : 'reconcile';
    case ErrorCode.StoreService:
      // A service error with a body: 5xx/429/RequestTimeout are retryable, but a 5xx may come after
      // the body was committed, so reconcile; the rest (403, NoSuchBucket, 400) will not heal.
      return e.retryable === true ? 'reconcile' : 'fatal';
    default:
      // Unknown failures (a local EIO, say): reconciling is always safe.
      return 'reconcile';
  }
}

/** HEAD failures: only transient ones are worth retrying. */
export function isFatalStoreError(err: unknown): boolean {
  return classifyAppendError(err) === 'fatal';
}
