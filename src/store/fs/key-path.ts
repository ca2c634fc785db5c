import { InvalidKeyError } from '../errors.js';
import { validateKey } from '../keys.js';

/**
 * Top-level directory of the fs store's own files (sidecars, temp files). Keys whose first segment
 * is this name are refused, so no object can collide with the store's metadata.
 */
export const META_DIR = '.appendcast-meta';

/** Longest file name most Linux file systems accept (NAME_MAX), in bytes. */
const MAX_SEGMENT_BYTES = 255;

/**
 * Validates `key` for the fs store and returns its `/`-separated segments, which become the file
 * path under the root. On top of the shared OSS rules (keys.ts), a key must map to one distinct
 * file: no empty segments (`a//b`, trailing `/`), no `.` segments, no segment over 255 bytes, and
 * not inside META_DIR. These keys are legal in OSS but cannot be mirrored as plain file paths.
 */
export function keySegments(key: string): string[] {
  validateKey(key);
  const segments = key.split('/');
  for (const s of segments) {
    if (s === '') throw new InvalidKeyError(key, 'has an empty path segment (not storable by the fs store)');
    if (s === '.') throw new InvalidKeyError(key, 'has a . segment (not storable by the fs store)');
    if (Buffer.byteLength(s, 'utf8') > MAX_SEGMENT_BYTES) {
      throw new InvalidKeyError(key, `has a path segment over ${MAX_SEGMENT_BYTES} bytes (not storable by the fs store)`);
    }
  }
  if (segments[0] === META_DIR) throw new InvalidKeyError(key, `${META_DIR}/ is reserved by the fs store`);
  return segments;
}

/** True when `key` is storable by the fs store (used to skip foreign files while listing). */
export function isFsKey(key: string): boolean {
  try {
    keySegments(key);
    return true;
  } catch {
    return false;
  }
}
