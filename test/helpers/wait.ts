/**
 * Waiting in tests: on a condition, never for a fixed time. A fixed delay is only right where time
 * itself is the subject (a pacing gap, a time-out under test, "nothing happens for N ms"); such a
 * place uses `setTimeout` from node:timers/promises directly and says why in a comment.
 */
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Calls `fn` every `everyMs` until it returns something truthy, and resolves with that; rejects
 * naming `what` once `timeoutMs` has passed (an exception from `fn` rejects at once).
 */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 15_000, everyMs = 50): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(everyMs);
  }
}

/** `p`, or a rejection naming `what` if it has not settled within `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms).unref();
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
