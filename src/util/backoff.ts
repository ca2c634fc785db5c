/** Exponential backoff with full jitter, bounded: delay(n) is uniform in [0, min(max, base·2^n)]. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  // Never 0: a tight loop against a failing store helps nobody.
  return Math.max(Math.min(baseMs, cap) / 4, Math.floor(random() * cap));
}

/**
 * A sleep that an AbortSignal can cut short (resolves early, never rejects). Its timer is unref'd:
 * a retry waiting for a store that is down must never, by itself, keep the process alive (a gateway
 * whose start failed has to exit).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    t.unref();
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
