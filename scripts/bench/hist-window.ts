/** What a Prometheus histogram observed inside a measurement window, from two scrapes. */
import { round } from './num.js';
import { histogram, histogramDelta, histogramQuantile, type Quantile, type Sample } from './prom.js';

export interface HistQ { observations: number; p50ms: number | null; p99ms: number | null; p99AtLeast: boolean; buckets: Array<{ le: number; count: number }> }

/** p50/p99 of what a histogram observed between two scrapes; null when the gateway has no such histogram. */
export function windowQuantiles(m0: readonly Sample[], m1: readonly Sample[], name: string): HistQ | null {
  const end = histogram(m1, name);
  if (end.length === 0) return null;
  const d = histogramDelta(histogram(m0, name), end);
  const q50: Quantile | undefined = histogramQuantile(0.5, d);
  const q99: Quantile | undefined = histogramQuantile(0.99, d);
  return {
    observations: d.at(-1)?.count ?? 0,
    p50ms: q50 ? round(q50.value * 1000, 1) : null, p99ms: q99 ? round(q99.value * 1000, 1) : null, p99AtLeast: q99?.atLeast ?? false,
    buckets: d,
  };
}
