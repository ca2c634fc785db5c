import type { SpoolEntryMeta } from './types.js';

/** One journal segment file of a session. */
export interface Segment {
  firstSeq: number;
  path: string;
  /** Bytes written so far. */
  size: number;
  /** Non-init entries in it that are neither acknowledged nor dropped (durably): 0 = deletable. */
  live: number;
  /** No more writes go to it. */
  closed: boolean;
}

/** The index record of one entry: its metadata, where its frame is, and its bytes if in memory. */
export interface EntryRec {
  seq: number;
  meta: SpoolEntryMeta;
  size: number;
  /** The payload while it is in memory (always for init entries). */
  bytes: Buffer | undefined;
  /** Counted in the stream's memory budget (non-init payload held in `bytes`). */
  inMemory: boolean;
  /** Counted in the stream's pendingBytes (queued, not yet written). */
  pending: boolean;
  /** Its frame is in `segment` at `frameOffset` (segment is set, and counted live, from placement on). */
  written: boolean;
  segment: Segment | undefined;
  frameOffset: number;
  frameLength: number;
  dropped: boolean;
  /** Acknowledged or dropped, and that fact is persisted: no longer counted in `segment.live`. */
  dead: boolean;
}

/** A fresh record: not in memory, not written, live. */
export function newEntryRec(seq: number, meta: SpoolEntryMeta, size: number): EntryRec {
  return {
    seq, meta: copyMeta(meta), size, bytes: undefined, inMemory: false, pending: false, written: false,
    segment: undefined, frameOffset: 0, frameLength: 0, dropped: false, dead: false,
  };
}

/** The metadata fields of an entry, and nothing else (a frame header carries more). */
export function copyMeta(m: SpoolEntryMeta): SpoolEntryMeta {
  const out: SpoolEntryMeta = { kind: m.kind, receivedAt: m.receivedAt };
  if (m.mediaTime !== undefined) out.mediaTime = m.mediaTime;
  if (m.duration !== undefined) out.duration = m.duration;
  if (m.keyframe !== undefined) out.keyframe = m.keyframe;
  return out;
}

/** Stands in for dropped entries whose drop is persisted: keeps the index dense for a few bytes. */
export const DEAD_DROPPED: EntryRec = Object.freeze({
  seq: -1, meta: Object.freeze({ kind: 'fragment' as const, receivedAt: 0 }), size: 0, bytes: undefined, inMemory: false, pending: false,
  written: false, segment: undefined, frameOffset: 0, frameLength: 0, dropped: true, dead: true,
}) as EntryRec;

/** A FIFO over an array with a moving head (amortized O(1) shift, no O(n) splice per pop). */
export class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(v: T): void {
    this.items.push(v);
  }
  peek(): T | undefined {
    return this.items[this.head];
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const v = this.items[this.head];
    this.items[this.head++] = undefined as T;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
}

/** Per-stream accounting shared by the stream's sessions (owned by the Spool). */
export interface StreamState {
  readonly name: string;
  /** Unacknowledged, undropped payload bytes (all sessions). */
  bytes: number;
  /** Payload bytes held in memory (cache + not yet written). */
  memBytes: number;
  /** Payload bytes queued for writing, not yet on disk. */
  pendingBytes: number;
  /** Entries in memory, oldest first (may hold stale ones: check `inMemory`). */
  readonly memFifo: Fifo<EntryRec>;
}
