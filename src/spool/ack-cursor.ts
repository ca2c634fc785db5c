import { CursorLog } from './cursor-log.js';
import type { AppenderState, InFlightRecord, SessionCursor } from './types.js';

/**
 * What the store has acknowledged of a session, and the one record of what is in flight to it.
 * `begin` records a batch as in flight (persisted with the appender's state, before the append is
 * sent) and pins it: the drop policy never takes an entry that may be in the store. `commit` clears
 * the record, advancing the acknowledged cursor if the batch landed. Everything below `floor` is
 * acknowledged, in flight, or handed out by read().
 *
 * The cursor is written durably whatever the spool's fsync policy (an appended, fdatasync'ed record
 * in `cursor.log`, see cursor-log.ts), writes coalesced; `current` is the newest value (written or on
 * its way), `persisted` the last one known to be on disk.
 */
export class AckCursor {
  private latest: SessionCursor;
  private onDisk: SessionCursor;
  private pin: number;
  private readonly file: CursorLog<SessionCursor>;

  /** `dir`: the session directory; `persisted(before, now)`: a cursor value reached the disk. */
  constructor(dir: string, recovered: { cursor: SessionCursor; gen: number; logEnd: number }, persisted: (before: SessionCursor, now: SessionCursor) => void) {
    const cursor = recovered.cursor;
    this.latest = this.onDisk = cursor;
    // A batch in flight at a crash stays pinned until it is settled.
    this.pin = Math.max(cursor.nextSeq, cursor.inflight?.uptoSeq ?? 0);
    this.file = new CursorLog(dir, recovered, (c) => {
      const before = this.onDisk;
      this.onDisk = c;
      persisted(before, c);
    });
  }

  get current(): SessionCursor {
    return this.latest;
  }

  get persisted(): SessionCursor {
    return this.onDisk;
  }

  /** Every entry below is acknowledged. */
  get acked(): number {
    return this.latest.nextSeq;
  }

  /** The drop policy starts here: below are entries acknowledged, in flight or handed out. */
  get floor(): number {
    return Math.max(this.latest.nextSeq, this.pin);
  }

  /** read() handed out entries below `uptoSeq`: never dropped from now on. */
  pinTo(uptoSeq: number): void {
    this.pin = Math.max(this.pin, uptoSeq);
  }

  begin(batch: InFlightRecord, state: AppenderState): Promise<void> {
    this.pinTo(batch.uptoSeq);
    return this.write({ nextSeq: this.latest.nextSeq, state, inflight: batch });
  }

  /**
   * Clears the record; `ackedUpto` (the batch landed) moves the acknowledged cursor. Not synced on
   * its own: lost in a crash, the in-flight record before it is settled again by HEAD with the same
   * outcome; `persisted` moves (and space is freed) once a later sync covers it (within 5 s).
   */
  commit(ackedUpto: number | null, state: AppenderState): Promise<void> {
    const nextSeq = ackedUpto ?? this.latest.nextSeq;
    this.pinTo(nextSeq);
    return this.write({ nextSeq, state, inflight: null }, false);
  }

  /** Waits for the cursor writes under way, syncs and closes the log file. */
  close(): Promise<void> {
    return this.file.close();
  }

  private write(c: SessionCursor, durable = true): Promise<void> {
    this.latest = c;
    return this.file.write(c, durable);
  }
}
