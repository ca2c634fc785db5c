import { createHash, timingSafeEqual } from 'node:crypto';

/** Equality in time independent of where the strings differ (and of their lengths, via fixed-size digests): for secrets, keys and signatures. */
export function constantTimeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}
