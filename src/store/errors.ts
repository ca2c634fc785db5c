import { AppendcastError, ErrorCode } from '../errors.js';

/** Store errors mirror OSS's error vocabulary; `ossCode` is the OSS `Code` string. */
export class StoreError extends AppendcastError {
  readonly ossCode: string;
  readonly status: number;
  readonly key: string;
  constructor(code: ErrorCode, ossCode: string, status: number, key: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.ossCode = ossCode;
    this.status = status;
    this.key = key;
  }
}

/** The append position was not the object's length; `currentLength` is the length the store reported. */
export class PositionNotEqualToLengthError extends StoreError {
  readonly currentLength: number;
  readonly position: number;
  constructor(key: string, position: number, currentLength: number) {
    super(ErrorCode.PositionNotEqualToLength, 'PositionNotEqualToLength', 409, key,
      `append to ${key} at position ${position}, but the object is ${currentLength} bytes long`);
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
 * OSS documents no code for this (see shared/reference); ObjectTooLarge is our own, HTTP 400.
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
