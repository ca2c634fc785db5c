import type { RolloverPolicy } from '../config/index.js';
import type { SpoolEntry } from '../spool/types.js';
import type { ObjectState } from './appender-state.js';
import { objectDeadline, type RolloverReason } from './rollover.js';

/**
 * Why the batch starting with `first` needs a new object; null when it goes to the current one.
 * `pending`: why the last object was left (full or foreign), if it was.
 */
export function rolloverReason(
  obj: ObjectState | null, first: SpoolEntry, gapAfter: number | null, pending: RolloverReason | null, p: RolloverPolicy,
): RolloverReason | 'start' | null {
  if (!obj) return pending ?? 'start';
  if (first.kind === 'init') return obj.position > 0 ? 'init-change' : null;
  if (obj.position === 0) return null;
  if (gapAfter !== null && first.seq >= gapAfter) return 'gap';
  if (obj.position + first.bytes.length > p.maxBytes) return 'size';
  if (first.kind === 'fragment' && first.keyframe !== false && first.receivedAt >= objectDeadline(obj.openedAt, p)) return 'duration';
  return null;
}

/**
 * The longest prefix of `entries` that can go into one append to an object that holds `position`
 * bytes and ends at `deadline`: it stops at a seq jump (a dropped range), before an init entry that
 * is not first, and at the size and duration boundaries (duration: at a keyframe).
 */
export function cutBatch(entries: readonly SpoolEntry[], position: number, deadline: number, maxBytes: number): SpoolEntry[] {
  const out: SpoolEntry[] = [];
  for (const e of entries) {
    const prev = out.at(-1);
    if (prev) {
      if (e.seq !== prev.seq + 1) break;
      if (e.kind === 'init') break;
      if (position + e.bytes.length > maxBytes) break;
      if (e.kind === 'fragment' && e.keyframe !== false && e.receivedAt >= deadline) break;
    }
    out.push(e);
    position += e.bytes.length;
  }
  return out;
}
