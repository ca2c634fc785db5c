import type { IndexLine } from '../appender/index-writer.js';
import type { AppendableStore } from '../store/types.js';
import { readIndexLines } from './index-lines.js';
import { listRecordings } from './recordings.js';
import { readRange } from './store-io.js';

/** A byte range [start, end) of an object. */
export interface ObjectRange {
  key: string;
  start: number;
  end: number;
}

/** What a clip is made of: the init segment, then fragment ranges in order (spanning rollovers). */
export interface ClipPlan {
  init: ObjectRange;
  ranges: ObjectRange[];
  /** Wall clock (ms) where the first fragment begins and the last ends. */
  wallStart: number;
  wallEnd: number;
  /** Media seconds in the clip (the fragments' durations). */
  seconds: number;
  /** Why the clip ends before the requested end, when it does. */
  truncated: 'init-change' | 'session-change' | null;
  contentType: string;
}

interface Fragment {
  key: string;
  line: IndexLine;
  /** Wall clock (ms) the fragment's media began: it is indexed at its arrival, when it was complete. */
  wallStart: number;
}

/**
 * A clip of `stream` from `start` for `durationMs`, planned from the sidecar indexes: it begins at
 * the keyframe fragment at or before `start` (or the first one after, if the recording began later),
 * takes every fragment that begins before the end, and goes on across rollovers of the same session
 * whose init segment is byte-identical (so one init serves the whole clip and the timeline runs
 * on). A new session or a new init ends the clip there (`truncated`). Undefined: nothing recorded
 * in the range.
 */
export async function planClip(store: AppendableStore, o: { stream: string; keyTemplate: string; start: Date; durationMs: number }): Promise<ClipPlan | undefined> {
  const t0 = o.start.getTime();
  const t1 = t0 + o.durationMs;
  // Fragments are picked by their own times below; the listing only narrows (with a margin for objects that begin right at t1).
  const recs = await listRecordings(store, { stream: o.stream, keyTemplate: o.keyTemplate, start: o.start, end: new Date(t1 + 60_000) });
  let plan: ClipPlan | undefined;
  let session: string | null = null;
  let initBytes: Buffer | undefined;
  for (const rec of recs) {
    const lines = await readIndexLines(store, rec.key);
    const initLine = lines.filter((l) => l.type === 'init').at(-1);
    if (!initLine) continue;
    const frags: Fragment[] = lines
      .filter((l) => l.type === 'fragment')
      .map((l) => ({ key: rec.key, line: l, wallStart: l.w - (l.d ?? 0) * 1000 }));
    if (!plan) {
      // The keyframe fragment at or before t0, else the first keyframe after it.
      const keyframes = frags.filter((f) => f.line.k === true && f.wallStart < t1);
      const first = keyframes.filter((f) => f.wallStart <= t0).at(-1) ?? keyframes.find((f) => f.wallStart > t0);
      if (!first) continue;
      const chosen = frags.filter((f) => f.line.offset >= first.line.offset && f.wallStart < t1);
      initBytes = await readRange(store, rec.key, initLine.offset, initLine.offset + initLine.length);
      session = rec.session;
      plan = {
        init: { key: rec.key, start: initLine.offset, end: initLine.offset + initLine.length },
        ranges: [], wallStart: first.wallStart, wallEnd: first.wallStart, seconds: 0, truncated: null,
        contentType: rec.key.endsWith('.ts') ? 'video/mp2t' : 'video/mp4',
      };
      add(plan, chosen);
      continue;
    }
    if (rec.session !== session) {
      plan.truncated = 'session-change';
      break;
    }
    const bytes = await readRange(store, rec.key, initLine.offset, initLine.offset + initLine.length);
    if (!initBytes || !bytes.equals(initBytes)) {
      plan.truncated = 'init-change';
      break;
    }
    add(plan, frags.filter((f) => f.wallStart < t1));
  }
  return plan && plan.ranges.length > 0 ? plan : undefined;
}

/** Appends fragments to the plan, merging neighbours of one object into one range. */
function add(plan: ClipPlan, frags: readonly Fragment[]): void {
  for (const f of frags) {
    const last = plan.ranges.at(-1);
    const end = f.line.offset + f.line.length;
    if (last && last.key === f.key && last.end === f.line.offset) last.end = end;
    else plan.ranges.push({ key: f.key, start: f.line.offset, end });
    plan.seconds += f.line.d ?? 0;
    plan.wallEnd = Math.max(plan.wallEnd, f.line.w);
  }
}

/** The clip's bytes in order (the init, then every range, read in chunks from the store) into `write`; stops early when it returns false. */
export async function streamClip(store: AppendableStore, plan: ClipPlan, write: (b: Buffer) => Promise<boolean>): Promise<void> {
  if (!(await write(await readRange(store, plan.init.key, plan.init.start, plan.init.end)))) return;
  for (const r of plan.ranges) {
    for await (const chunk of await store.read(r.key, { start: r.start, end: r.end - 1 })) {
      if (!(await write(chunk as Buffer))) return;
    }
  }
}

/** Bytes a clip has in all. */
export function clipBytes(plan: ClipPlan): number {
  return plan.init.end - plan.init.start + plan.ranges.reduce((n, r) => n + (r.end - r.start), 0);
}
