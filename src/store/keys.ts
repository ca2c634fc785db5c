import { InvalidKeyError } from './errors.js';

/** OSS object keys are 1..1023 bytes of UTF-8. */
export const MAX_KEY_BYTES = 1023;

/**
 * Object-key rules shared by every backend (OSS naming rules, plus the traversal guards a
 * path-mapped backend needs): valid UTF-8 (no lone surrogates), 1..1023 bytes, no leading `/` or
 * `\`, no NUL, and no `..` segment (split on `/` and `\`, so `a\..\b` is refused too).
 * Throws InvalidKeyError saying why.
 */
export function validateKey(key: string): void {
  if (typeof key !== 'string') throw new InvalidKeyError(String(key), 'not a string');
  if (key.length === 0) throw new InvalidKeyError(key, 'empty');
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) throw new InvalidKeyError(key, `${bytes} bytes, over ${MAX_KEY_BYTES}`);
  // Lone surrogates do not survive a UTF-8 round trip (they become U+FFFD).
  if (Buffer.from(key, 'utf8').toString('utf8') !== key) throw new InvalidKeyError(key, 'not valid UTF-8');
  if (key.includes('\0')) throw new InvalidKeyError(key, 'contains NUL');
  if (key.startsWith('/') || key.startsWith('\\')) throw new InvalidKeyError(key, 'starts with / or \\');
  if (key.split(/[/\\]/).includes('..')) throw new InvalidKeyError(key, 'has a .. segment');
}

export function isValidKey(key: string): boolean {
  try {
    validateKey(key);
    return true;
  } catch {
    return false;
  }
}
