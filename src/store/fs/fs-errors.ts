import { ErrorCode } from '../../errors.js';
import { StoreError } from '../errors.js';

/**
 * The data file is shorter than the length its sidecar acknowledged (bytes acknowledged earlier are
 * gone: power loss with `fsync: 'never'`, or someone edited the root), or the sidecar is unreadable.
 */
export class StoreIntegrityError extends StoreError {
  constructor(key: string, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.StoreIntegrity, 'StoreIntegrity', 500, key, message, { ...options, traits: { retryable: false, ambiguous: true } });
  }
}
