import { AppendcastError, ErrorCode } from '../errors.js';
import { StoreError } from '../store/errors.js';

/**
 * What the appender should do after a failed append. The rule that matters (docs/design.md, invariant 5):
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

/**
 * Appender policy over the traits each store error declares (`retryable`, `ambiguous`): store/
 * says what happened, the appender decides what to do about it.
 */
export function classifyAppendError(err: unknown): AppendFailureAction {
  if (err instanceof StoreError) {
    switch (err.code) {
      case ErrorCode.ObjectNotAppendable:
        return 'foreign';
      case ErrorCode.ObjectTooLarge:
        return 'too-large';
      default:
        if (err.ambiguous) return 'reconcile';
        // Certainly not applied: resend what heals by itself (connection refused), halt on the rest
        // (403, NoSuchBucket, a bad key, a closed store).
        return err.retryable ? 'resend' : 'fatal';
    }
  }
  if (err instanceof AppendcastError && err.code === ErrorCode.CredentialsMissing) return 'fatal';
  // Unknown failures (a local EIO, say): reconciling is always safe.
  return 'reconcile';
}

/** HEAD failures: only transient ones are worth retrying. */
export function isFatalStoreError(err: unknown): boolean {
  return classifyAppendError(err) === 'fatal';
}
