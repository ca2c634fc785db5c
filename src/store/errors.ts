import { AppendcastError, ErrorCode } from '../errors.js';

/** What a failed store request means for whoever retries it, declared by each error class. */
export interface StoreErrorTraits {
  /** Sending the same request again may succeed (a transient failure). */
  retryable: boolean;
  /** The request may have been applied although it failed: an append's outcome is unknown until reconciled. */
  ambiguous: boolean;
}

const DEFINITE: StoreErrorTraits = { retryable: false, ambiguous: false };

/** Store errors mirror OSS's error vocabulary; `ossCode` is the OSS `Code` string. */
export class StoreError extends AppendcastError implements StoreErrorTraits {
  readonly ossCode: string;
  readonly status: number;
  readonly key: string;
  readonly retryable: boolean;
  readonly ambiguous: boolean;
  constructor(code: ErrorCode, ossCode: string, status: number, key: string, message: string, options?: { cause?: unknown; traits?: StoreErrorTraits }) {
    super(code, message, options);
    this.ossCode = ossCode;
    this.status = status;
    this.key = key;
    const t = options?.traits ?? DEFINITE;
    this.retryable = t.retryable;
    this.ambiguous = t.ambiguous;
  }
}

/** An operation was started on a store after close() (every backend throws this one). */
export class StoreClosedError extends StoreError {
  constructor(key: string, backend: string) {
    super(ErrorCode.StoreClosed, 'StoreClosed', 0, key, `${backend} store is closed (operation on ${key === '' ? 'the bucket' : key})`);
  }
}

/** The append position was not the object's length; `currentLength` is the length the store reported. */
export class PositionNotEqualToLengthError extends StoreError {
  readonly currentLength: number;
  readonly position: number;
  constructor(key: string, position: number, currentLength: number) {
    // Ambiguous: the bytes at the end may be our own earlier append whose answer was lost.
    super(ErrorCode.PositionNotEqualToLength, 'PositionNotEqualToLength', 409, key,
      `append to ${key} at position ${position}, but the object is ${currentLength} bytes long`, { traits: { retryable: false, ambiguous: true } });
    this.position = position;
    this.currentLength = currentLength;
  }
}

/** The object exists and is not appendable (written by put, multipart or copy). */
export class ObjectNotAppendableError extends StoreError {
  constructor(key: string) {
    super(ErrorCode.ObjectNotAppendable, 'ObjectNotAppendable', 409, key, `object ${key} is not appendable`);
  }
}

/**
 * The append would take the object past the store's size cap; nothing was written.
 * OSS documents no code for this (docs/oss-protocol.md); ObjectTooLarge is our own, HTTP 400.
 */
export class ObjectTooLargeError extends StoreError {
  readonly limit: number;
  readonly wouldBe: number;
  constructor(key: string, wouldBe: number, limit: number) {
    super(ErrorCode.ObjectTooLarge, 'ObjectTooLarge', 400, key,
      `append to ${key} would make it ${wouldBe} bytes, over the ${limit}-byte cap; nothing written`);
    this.limit = limit;
    this.wouldBe = wouldBe;
  }
}

export class NoSuchKeyError extends StoreError {
  constructor(key: string) {
    super(ErrorCode.NoSuchKey, 'NoSuchKey', 404, key, `object ${key} does not exist`);
  }
}

export class InvalidKeyError extends StoreError {
  constructor(key: string, why: string) {
    super(ErrorCode.InvalidKey, 'InvalidObjectName', 400, key, `invalid object key ${JSON.stringify(key)}: ${why}`);
  }
}

export class InvalidRangeError extends StoreError {
  constructor(key: string, start: number, size: number) {
    super(ErrorCode.InvalidRange, 'InvalidRange', 416, key, `range start ${start} is not within ${key} (${size} bytes)`);
  }
}
