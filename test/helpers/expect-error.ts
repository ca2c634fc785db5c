import { expect } from 'vitest';
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

/** `fn` throws a MediaError with this reason (and a message matching `pattern`, if given). */
export function expectMediaError(fn: () => unknown, reason: string, pattern?: RegExp): void {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(MediaError);
  expect((err as MediaError).reason).toBe(reason);
  if (pattern) expect((err as MediaError).message).toMatch(pattern);
}
