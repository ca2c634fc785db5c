import type { RolloverPolicy } from '../config/index.js';

export type RolloverReason = 'size' | 'duration' | 'init-change' | 'foreign-writer' | 'gap';

/** Wall-clock ms at which an object opened at `openedAt` must give way to the next one. */
export function objectDeadline(openedAt: number, p: RolloverPolicy): number {
  if (p.maxDurationSeconds === null) return Number.POSITIVE_INFINITY;
  const span = p.maxDurationSeconds * 1000;
  // Aligned: boundaries at multiples of the span since the epoch (00:00 UTC for spans dividing a day).
  return p.alignToClock ? (Math.floor(openedAt / span) + 1) * span : openedAt + span;
}
