import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AppendableStore } from '../store/types.js';
import { liveStart } from './live-start.js';
import { writeDrained } from './store-io.js';

export interface TailOptions {
  store: AppendableStore;
  key: string;
  /** Everything from byte 0 (default: the init segment, then from the newest keyframe). */
  fromStart: boolean;
  /** Ends when the object has not grown for this long. */
  idleMs: number;
  /** How often the object's length is asked for while it does not grow. */
  pollMs: number;
  out: Writable;
  signal?: AbortSignal;
}

export interface TailResult {
  bytes: number;
  /** Where in the object the tail began (after the init segment). */
  from: number;
  endedBy: 'idle' | 'aborted' | 'closed';
}

/**
 * Follows a growing object: HEAD for its length, a range read for what is new, written to `out`
 * (waiting for it to drain), again and again; ends once the object has not grown for `idleMs`, when
 * `signal` aborts, or when `out` is closed (a player that quit). Only ever reads ranges: never the
 * whole object again.
 */
export async function tailObject(o: TailOptions): Promise<TailResult> {
  let closed = false;
  o.out.once('close', () => { closed = true; });
  o.out.on('error', () => { closed = true; }); // EPIPE: the reader went away
  const start = o.fromStart ? { init: undefined, from: 0 } : await liveStart(o.store, o.key);
  let bytes = 0;
  if (start.init) bytes += await copy(o, start.init.start, start.init.end, () => closed);
  let pos = start.from;
  let lastGrowth = Date.now();
  while (!closed && !o.signal?.aborted) {
    const head = await o.store.head(o.key);
    const size = head?.size ?? 0;
    if (size > pos) {
      bytes += await copy(o, pos, size, () => closed);
      pos = size;
      lastGrowth = Date.now();
      continue;
    }
    if (Date.now() - lastGrowth >= o.idleMs) return { bytes, from: start.from, endedBy: 'idle' };
    await sleep(o.pollMs, undefined, o.signal ? { signal: o.signal } : {}).catch(() => undefined);
  }
  return { bytes, from: start.from, endedBy: closed ? 'closed' : 'aborted' };
}

/** Bytes [from, to) of the object to `out`, honouring its backpressure; returns how many were written. */
async function copy(o: TailOptions, from: number, to: number, isClosed: () => boolean): Promise<number> {
  let n = 0;
  for await (const chunk of await o.store.read(o.key, { start: from, end: to - 1 })) {
    if (isClosed()) break;
    const b = chunk as Buffer;
    n += b.length;
    await writeDrained(o.out, b);
  }
  return n;
}
