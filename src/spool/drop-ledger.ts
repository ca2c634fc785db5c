import { errnoCode } from './fs-util.js';
import type { Logger } from '../util/logger.js';
import type { EntryIndex } from './entry-index.js';
import type { EntryRec } from './entry-record.js';
import type { AtomicJsonFile } from './fs-util.js';
import type { DropReason, DroppedRange } from './types.js';

/**
 * Why entries left the spool unacknowledged: the quotas (our policy), or the disk's doing: full
 * (ENOSPC, EDQUOT), another failed write or fsync (EIO, …), a writer that fell further behind than
 * the memory budget, a journal frame that failed its CRC when read back or went missing.
 */
export type SpoolDropReason = DropReason;

/** Errors of a full disk (or a filesystem quota): what `disk-full` drops are, as opposed to our own quotas. */
const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

/** The drop reason of a failed journal write: `disk-full` for a full disk (its errno, or its cause's), else `write-error`. */
export function writeFailureReason(err: unknown): 'disk-full' | 'write-error' {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && typeof e === 'object' && e !== null; depth++) {
    const code = errnoCode(e);
    if (code !== undefined && DISK_FULL_CODES.has(code)) return 'disk-full';
    e = (e as { cause?: unknown }).cause;
  }
  return 'write-error';
}

/** The operator's line for drops of a reason: a full disk is never called a quota. */
export function dropLogMessage(reason: SpoolDropReason): string {
  switch (reason) {
    case 'quota-stream':
    case 'quota-total':
      return 'spool quota: dropped the oldest unacknowledged fragments';
    case 'disk-full':
      return 'spool disk full: dropped fragments that could not be written';
    case 'write-error':
      return 'spool write failed: dropped fragments that could not be written';
    case 'write-backlog':
      return 'spool disk too slow: dropped fragments past the memory budget';
    case 'journal-corrupt':
      return 'spool journal damaged: dropped fragments that failed their check';
  }
}
export interface SpoolDroppedRange extends Omit<DroppedRange, 'reason'> {
  reason: SpoolDropReason;
}

const DROP_LOG_EVERY_MS = 10_000;

/**
 * The contiguous runs of `recs` (ascending seqs) as dropped ranges with their exact payload bytes.
 * The one place ranges are built, whatever dropped them.
 */
export function dropRanges(recs: Iterable<EntryRec>, where: { stream: string; sessionId: string }, reason: SpoolDropReason): SpoolDroppedRange[] {
  const out: SpoolDroppedRange[] = [];
  let run: SpoolDroppedRange | undefined;
  for (const rec of recs) {
    if (run && run.toSeq === rec.seq) {
      run.toSeq++;
      run.bytes += rec.size;
    } else {
      run = { stream: where.stream, sessionId: where.sessionId, fromSeq: rec.seq, toSeq: rec.seq + 1, bytes: rec.size, reason };
      out.push(run);
    }
  }
  return out;
}

/**
 * The quota policy's pick in one session (see spool.ts): from `from` on, the oldest fragments and
 * trailers until at least `need` bytes, then on up to the next keyframe fragment or init entry, so
 * what remains resumes at a keyframe. Init entries are never taken. `stop`: where the walk ended
 * (everything before it, from `from`, is now dropped or init).
 */
export function oldestDroppable(index: EntryIndex, from: number, need: number): { recs: EntryRec[]; bytes: number; stop: number } {
  const recs: EntryRec[] = [];
  let bytes = 0;
  let seq = from;
  for (; seq < index.endSeq; seq++) {
    const rec = index.get(seq);
    if (rec === undefined || rec.dropped) continue;
    const boundary = rec.meta.kind === 'init' || (rec.meta.kind === 'fragment' && rec.meta.keyframe !== false);
    if (bytes >= need && boundary) break;
    if (rec.meta.kind === 'init') continue; // kept: every object starts with one
    recs.push(rec);
    bytes += rec.size;
  }
  return { recs, bytes, stop: seq };
}

export interface DropLedgerOptions {
  file: AtomicJsonFile<SpoolDroppedRange[]>;
  /** The session directory exists; rejected: it is not ours, the record is never written. */
  ready: Promise<void>;
  log: Logger | undefined;
  /** Drops recorded in a previous run (above the cursor). */
  recovered: SpoolDroppedRange[];
  /** The acknowledged cursor: ranges below it need no record. */
  floor(): number;
  /** Each new range, once (metrics, the session's 'dropped' event). */
  announce(range: SpoolDroppedRange): void;
  /** These ranges are on disk: the segments holding them may go. */
  persisted(ranges: readonly SpoolDroppedRange[]): void;
}

/**
 * The record of a session's dropped ranges (`drops.json`): announced at once, persisted before
 * any segment holding them may be deleted (a crash in between would resurrect them otherwise),
 * logged at most every 10 s.
 */
export class DropLedger {
  private readonly o: DropLedgerOptions;
  private drops: SpoolDroppedRange[];
  /** Announced, not yet known to be persisted. */
  private unpersisted: SpoolDroppedRange[] = [];
  private sinceLog = { bytes: 0, ranges: 0, at: 0 };
  private last: Promise<void> = Promise.resolve();

  constructor(o: DropLedgerOptions) {
    this.o = o;
    this.drops = [...o.recovered];
  }

  /** The latest write of the record (seal and close wait for it). */
  get written(): Promise<void> {
    return this.last;
  }

  record(ranges: readonly SpoolDroppedRange[]): void {
    if (ranges.length === 0) return;
    for (const r of ranges) {
      this.drops.push(r);
      this.unpersisted.push(r);
      this.o.announce({ ...r });
      this.sinceLog.bytes += r.bytes;
      this.sinceLog.ranges++;
    }
    const now = Date.now();
    if (now - this.sinceLog.at >= DROP_LOG_EVERY_MS) {
      this.o.log?.warn({ droppedBytes: this.sinceLog.bytes, ranges: this.sinceLog.ranges, reason: ranges[0]!.reason }, 'spool dropped unacknowledged entries');
      this.sinceLog = { bytes: 0, ranges: 0, at: now };
    }
    this.last = this.persist();
  }

  private async persist(): Promise<void> {
    const batch = this.unpersisted;
    this.unpersisted = [];
    try {
      await this.o.ready;
    } catch {
      return; // the session never got a directory of its own: announced, nothing to delete
    }
    const floor = this.o.floor();
    this.drops = this.drops.filter((d) => d.toSeq > floor);
    try {
      await this.o.file.write(this.drops.slice());
    } catch (err) {
      this.o.log?.error({ err }, 'spool could not persist its drop record');
      this.unpersisted.unshift(...batch); // the next write carries them
      return;
    }
    this.o.persisted(batch);
  }
}
