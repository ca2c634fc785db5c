/** The appender's policy over the traits store errors declare: never a blind resend of an unknown outcome. */
import { describe, expect, it } from 'vitest';
import { classifyAppendError } from '../../src/appender/append-failure.js';
import { AppendcastError, ErrorCode } from '../../src/errors.js';
import {
  InvalidKeyError, ObjectNotAppendableError, ObjectTooLargeError, PositionNotEqualToLengthError, StoreClosedError,
} from '../../src/store/errors.js';
import { StoreIntegrityError } from '../../src/store/fs/fs-errors.js';
import { OssCredentialsError } from '../../src/store/oss/credentials.js';
import { OssIntegrityError, OssProtocolError, OssServiceError, OssTransportError } from '../../src/store/oss/oss-errors.js';

const body = (code: string) => ({ code, message: '', requestId: 'r', ec: undefined, hostId: undefined, recommendDoc: undefined, serverTime: undefined });

describe('classifyAppendError', () => {
  const cases: Array<[string, unknown, string]> = [
    ['position mismatch (maybe our own lost answer)', new PositionNotEqualToLengthError('k', 10, 20), 'reconcile'],
    ['fs integrity', new StoreIntegrityError('k', 'short'), 'reconcile'],
    ['OSS integrity', new OssIntegrityError('k', 200, { position: 0, length: 1, expectedNextPosition: 1, actualNextPosition: 2, expectedCrc64: 1n, actualCrc64: 2n, requestId: 'r' }), 'reconcile'],
    ['a reset after the body went out', new OssTransportError('POST', 'k', 'headers', true, new Error('reset')), 'reconcile'],
    ['a refused connection', new OssTransportError('POST', 'k', 'connect', false, new Error('ECONNREFUSED')), 'resend'],
    ['503 (may follow a commit)', new OssServiceError('POST', 'k', 503, body('ServiceUnavailable')), 'reconcile'],
    ['an answer outside the protocol', new OssProtocolError('POST', 'k', 200, 'r', 'odd'), 'reconcile'],
    ['403 AccessDenied', new OssServiceError('POST', 'k', 403, body('AccessDenied')), 'fatal'],
    ['404 NoSuchBucket', new OssServiceError('POST', 'k', 404, body('NoSuchBucket')), 'fatal'],
    ['a bad key', new InvalidKeyError('k', 'x'), 'fatal'],
    ['a closed store', new StoreClosedError('k', 'fs'), 'fatal'],
    ['no credentials', new OssCredentialsError('none'), 'fatal'],
    ['someone else\'s object', new ObjectNotAppendableError('k'), 'foreign'],
    ['full', new ObjectTooLargeError('k', 6, 5), 'too-large'],
    ['an unknown local failure', Object.assign(new Error('EIO'), { code: 'EIO' }), 'reconcile'],
    ['another appendcast error', new AppendcastError(ErrorCode.SpoolWrite, 'x'), 'reconcile'],
  ];
  for (const [name, err, action] of cases) {
    it(`${name} → ${action}`, () => expect(classifyAppendError(err)).toBe(action));
  }

  it('reads declared traits, not duck-typed fields', () => {
    // A plain object that looks like a retryable service error is not one.
    expect(classifyAppendError({ code: ErrorCode.StoreService, retryable: true, ambiguous: false })).toBe('reconcile');
    expect(new OssServiceError('GET', 'k', 500, body('InternalError'))).toMatchObject({ retryable: true, ambiguous: true });
    expect(new ObjectTooLargeError('k', 6, 5)).toMatchObject({ retryable: false, ambiguous: false });
  });
});
