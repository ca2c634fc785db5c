import { expect } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { MediaError } from '../../src/media/errors.js';

/** What `fn` threw (undefined if it returned). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** What `fn` threw, asserting that it threw an instance of `type`. */
export function thrownAs<E>(fn: () => unknown, type: abstract new (...args: never[]) => E): E {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(type);
  return err as E;
}

/** The rejection of `p`, asserting that it does reject. */
export async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

/** `fn` throws a MediaError (APC_ERR_MEDIA_INVALID) with this reason (and a message matching `pattern`, if given). */
export function expectMediaError(fn: () => unknown, reason: string, pattern?: RegExp): void {
  const err = thrownAs(fn, MediaError);
  expect(err.reason).toBe(reason);
  expect(err.code).toBe(ErrorCode.MediaInvalid);
  if (pattern) expect(err.message).toMatch(pattern);
}
