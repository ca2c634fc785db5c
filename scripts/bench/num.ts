/** Rounding and averaging shared by the benchmarks' reports. */

/** Bytes as MiB with one decimal. */
export const mb = (b: number): number => +(b / 1048576).toFixed(1);
export const round = (x: number, d = 2): number => +x.toFixed(d);
export const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
/** A value to `d` decimals, or null when there is none (JSON-friendly). */
export const nullable = (x: number | undefined, d = 3): number | null => (x === undefined ? null : round(x, d));
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** A jittered 1.5–2.5 s tick, so that samples do not alias with the 1 s fragment cadence. */
export const tick = (): Promise<void> => sleep(1500 + Math.random() * 1000);
