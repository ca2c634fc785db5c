import { DEAD_DROPPED, newEntryRec, type EntryRec, type StreamState } from './entry-record.js';
import type { SpoolEntry, SpoolEntryMeta } from './types.js';

/**
 * The in-memory index of one session: a dense array of entry records from the cursor on (seq →
 * where its frame is, its payload while in memory), the live init entries, and the accounting of
 * bytes neither acknowledged nor dropped (the session's, and the stream's).
 */
export class EntryIndex {
  // Dense: entries[head] has seq `base`.
  private entries: Array<EntryRec | undefined>;
  private head = 0;
  private base: number;
  /** Live init entries, ascending seq, bytes always in memory. */
  private inits: EntryRec[];
  private unacked = 0;
  private readonly ss: StreamState;
  /** Everything below is acknowledged (in memory; the persisted cursor may lag behind). */
  private ackedUpto: number;
  /** Below this, no entry is a live unacknowledged fragment (oldestFragmentAt() moves it on). */
  private oldestHint: number;

  constructor(ss: StreamState, base: number, recovered?: { entries: EntryRec[]; inits: EntryRec[] }) {
    this.ss = ss;
    this.base = base;
    this.ackedUpto = this.oldestHint = base;
    this.entries = recovered?.entries ?? [];
    this.inits = recovered?.inits ?? [];
    for (const rec of recovered?.entries ?? []) if (!rec.dropped) this.unacked += rec.size;
    ss.bytes += this.unacked;
  }

  /** The seq the next entry gets. */
  get endSeq(): number {
    return this.base + this.entries.length - this.head;
  }

  /** Unacknowledged, undropped payload bytes. */
  get bytes(): number {
    return this.unacked;
  }

  get(seq: number): EntryRec | undefined {
    return seq < this.base ? undefined : this.entries[this.head + seq - this.base];
  }

  /** A new entry at endSeq, counted; an init entry keeps its bytes in memory for good. */
  add(meta: SpoolEntryMeta, bytes: Buffer): EntryRec {
    const rec = newEntryRec(this.endSeq, meta, bytes.length);
    this.entries.push(rec);
    this.unacked += rec.size;
    this.ss.bytes += rec.size;
    if (meta.kind === 'init') {
      rec.bytes = bytes;
      this.inits.push(rec);
    }
    return rec;
  }

  /**
   * The init entry most recently added at or before `seq`. Init entries stay in memory (and in their
   * own `<seq>.init` file besides the journal) until a newer init is acknowledged.
   */
  initAt(seq: number): SpoolEntry | undefined {
    for (let i = this.inits.length - 1; i >= 0; i--) {
      const rec = this.inits[i]!;
      if (rec.seq <= seq && rec.bytes) return toEntry(rec, rec.bytes);
    }
    return undefined;
  }

  /** [from, upto) is acknowledged: no longer counted, payloads let go. */
  acknowledge(from: number, upto: number): void {
    this.ackedUpto = Math.max(this.ackedUpto, upto);
    for (let seq = from; seq < upto; seq++) {
      const rec = this.get(seq);
      if (rec === undefined || rec.dropped) continue;
      this.uncount(rec);
    }
  }

  /**
   * Arrival time (wall-clock ms) of the oldest fragment neither acknowledged nor dropped, if any:
   * the stream's lag. Amortised O(1): entries are only added at the end, and once acknowledged,
   * dropped or an init they never count again, so the scan resumes where it last stopped.
   */
  oldestFragmentAt(): number | undefined {
    let seq = Math.max(this.oldestHint, this.base, this.ackedUpto);
    const end = this.endSeq;
    for (; seq < end; seq++) {
      const rec = this.get(seq);
      if (rec && !rec.dropped && rec.meta.kind === 'fragment') break;
    }
    this.oldestHint = seq;
    return seq < end ? this.get(seq)!.meta.receivedAt : undefined;
  }

  /** The entry will never be read. */
  drop(rec: EntryRec): void {
    rec.dropped = true;
    this.uncount(rec);
  }

  /** Its payload no longer counts in the stream's memory (read back from disk from now on). */
  release(rec: EntryRec): void {
    if (!rec.inMemory) return;
    rec.inMemory = false;
    rec.bytes = undefined;
    this.ss.memBytes -= rec.size;
  }

  /**
   * Entries in [from, to) are acknowledged or dropped, and that is persisted: their segments no
   * longer count them as live (`onlyDropped`: the dropped ones only).
   */
  markDead(from: number, to: number, onlyDropped: boolean): void {
    for (let seq = Math.max(from, this.base); seq < to && seq < this.endSeq; seq++) {
      const idx = this.head + seq - this.base;
      const rec = this.entries[idx];
      if (rec === undefined || rec.dead) continue;
      if (onlyDropped && !rec.dropped) continue;
      rec.dead = true;
      if (rec.segment && rec.meta.kind !== 'init') rec.segment.live--;
      if (rec.dropped) this.entries[idx] = DEAD_DROPPED;
    }
  }

  /** Forgets the records below `seq` (acknowledged, and the cursor saying so is persisted). */
  forgetBelow(seq: number): void {
    while (this.base < seq && this.head < this.entries.length) {
      this.entries[this.head++] = undefined;
      this.base++;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Keeps the init current at `floor` and every later one; returns the older ones, now forgotten. */
  pruneInits(floor: number): EntryRec[] {
    let current = -1;
    for (let i = 0; i < this.inits.length; i++) if (this.inits[i]!.seq < floor) current = i;
    return current <= 0 ? [] : this.inits.splice(0, current);
  }

  /** Lets every payload go (the session is finished). */
  releaseAll(): void {
    for (const rec of this.entries) if (rec) this.release(rec);
  }

  private uncount(rec: EntryRec): void {
    this.unacked -= rec.size;
    this.ss.bytes -= rec.size;
    this.release(rec);
  }
}

export function toEntry(rec: EntryRec, bytes: Buffer): SpoolEntry {
  return { ...rec.meta, seq: rec.seq, bytes };
}
