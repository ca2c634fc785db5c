/** Just enough Prometheus text-format parsing for the ingest benchmark. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const kv of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[kv[1]!] = kv[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[4]) });
  }
  return out;
}

/** Sum of a metric over all label sets (optionally filtered). */
export function sum(samples: readonly Sample[], name: string, filter: (l: Record<string, string>) => boolean = () => true): number {
  let s = 0;
  for (const x of samples) if (x.name === name && filter(x.labels)) s += x.value;
  return s;
}

/** Value per `stream` label. */
export function perStream(samples: readonly Sample[], name: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of samples) if (x.name === name && x.labels['stream'] !== undefined) m.set(x.labels['stream'], (m.get(x.labels['stream']) ?? 0) + x.value);
  return m;
}

/** Cumulative bucket counts of a histogram summed over its other labels (e.g. every stream), sorted by bound (+Inf last). */
export function histogram(samples: readonly Sample[], name: string): Array<{ le: number; count: number }> {
  const byLe = new Map<number, number>();
  for (const x of samples) {
    if (x.name !== `${name}_bucket`) continue;
    const le = x.labels['le'] === '+Inf' ? Infinity : Number(x.labels['le']);
    byLe.set(le, (byLe.get(le) ?? 0) + x.value);
  }
  return [...byLe].map(([le, count]) => ({ le, count })).sort((a, c) => a.le - c.le);
}

/** Bucket-wise difference end − start (the window's own observations). */
export function histogramDelta(start: ReturnType<typeof histogram>, end: ReturnType<typeof histogram>): ReturnType<typeof histogram> {
  return end.map((e) => ({ le: e.le, count: e.count - (start.find((s) => s.le === e.le)?.count ?? 0) }));
}

export interface Quantile {
  /** seconds; when the rank falls in the +Inf bucket, the highest finite bound */
  value: number;
  /** true when the value is only a lower bound (+Inf bucket) */
  atLeast: boolean;
}

/**
 * Quantile of a cumulative histogram the way PromQL's histogram_quantile does it: find the bucket
 * holding rank q·total and interpolate linearly between its lower and upper bound (the first
 * bucket's lower bound is 0), i.e. observations are assumed uniform inside a bucket.
 */
export function histogramQuantile(q: number, buckets: ReturnType<typeof histogram>): Quantile | undefined {
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return { value: prevLe, atLeast: true };
      const inBucket = b.count - prevCount;
      const frac = inBucket > 0 ? (rank - prevCount) / inBucket : 1;
      return { value: prevLe + (b.le - prevLe) * frac, atLeast: false };
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return { value: prevLe, atLeast: true };
}

/** Nearest-rank percentile of raw values. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
