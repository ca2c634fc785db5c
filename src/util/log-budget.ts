/**
 * Log lines caused by peers, rate-limited: at most `perWindow` lines per key (a reason, a finite
 * set) and window, so a flood of bad connections cannot fill the disk with the same warning. The
 * first line allowed after some were dropped says how many (`suppressed`). Metrics still count
 * every event; only the log is thinned.
 */
export class LogBudget {
  private readonly windows = new Map<string, { start: number; used: number; dropped: number }>();
  private readonly perWindow: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(perWindow = 20, windowMs = 60_000, now: () => number = Date.now) {
    this.perWindow = perWindow;
    this.windowMs = windowMs;
    this.now = now;
  }

  /** undefined: do not log this one; a number: log it, noting that many dropped since the last logged. */
  take(key: string): number | undefined {
    const t = this.now();
    let w = this.windows.get(key);
    if (!w) this.windows.set(key, (w = { start: t, used: 0, dropped: 0 }));
    if (t - w.start >= this.windowMs) {
      w.start = t;
      w.used = 0;
    }
    if (w.used >= this.perWindow) {
      w.dropped++;
      return undefined;
    }
    w.used++;
    const dropped = w.dropped;
    w.dropped = 0;
    return dropped;
  }
}

/** `{ suppressed: n }` when lines were dropped before this one, else nothing (for spreading into log fields). */
export function suppressedField(dropped: number): { suppressed?: number } {
  return dropped > 0 ? { suppressed: dropped } : {};
}
