import { EventEmitter } from 'node:events';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';
import { AckCursor } from './ack-cursor.js';
import { DropLedger, dropRanges, oldestDroppable, type SpoolDropReason, type SpoolDroppedRange } from './drop-ledger.js';
import { EntryIndex, toEntry } from './entry-index.js';
import type { EntryRec, Segment, StreamState } from './entry-record.js';
import { SpoolBusyError, SpoolClosedError, SpoolRangeError, SpoolSealedError, SpoolWriteError } from './errors.js';
import { AtomicJsonFile, errnoCode, writeFileAtomic } from './fs-util.js';
import { FrameReader } from './journal-reader.js';
import { JournalWriter } from './journal-writer.js';
import { SegmentGc } from './segment-gc.js';
import { CURSOR_FILE, DROPS_FILE, SEALED_FILE, createSessionDir } from './session-files.js';
import type { SpoolPort } from './spool-port.js';
import type {
  AppenderState, DropReason, InFlightRecord, JournalIo, SessionCursor, SpoolEntry, SpoolEntryMeta, SpoolOptions, SpoolRead,
} from './types.js';

export type { SpoolDropReason, SpoolDroppedRange };

export interface SessionSpoolEvents {
  /** New entries became readable: every entry below `readableSeq` may be read. */
  readable: [readableSeq: number];
  /** Entries [fromSeq, toSeq) will never be read: read() skips them. */
  dropped: [range: SpoolDroppedRange];
  /** Sealed, and the journal written to its end. */
  sealed: [];
  /** A journal write or fsync failed (the entries concerned are reported as dropped too). Only
   *  emitted when someone listens: an unhandled 'error' must not take the gateway down. */
  error: [err: Error];
}

/** What a session needs from its Spool (quota, memory budget, drop reporting). */
export interface SpoolHost {
  readonly opts: SpoolOptions;
  readonly logger: Logger | undefined;
  readonly io: JournalIo;
  afterAppend(stream: StreamState): void;
  evict(stream: StreamState): void;
  reportDrop(range: SpoolDroppedRange): void;
  removed(session: SessionSpool): void;
}

/** State rebuilt from disk by recovery (see session-recovery.ts). */
export interface RecoveredSession {
  cursor: SessionCursor;
  /** Where the cursor's log stands (see cursor-log.ts). */
  cursorGen: number;
  cursorLogEnd: number;
  nextSeq: number;
  sealed: boolean;
  /** Dense index of [cursor.nextSeq, nextSeq). */
  entries: EntryRec[];
  segments: Segment[];
  /** Init entries (bytes loaded) from the one current at the cursor on. */
  inits: EntryRec[];
  /** Persisted drops above the cursor. */
  drops: SpoolDroppedRange[];
  /** Seqs found neither in the journal nor in the drop record: lost, reported when the session starts. */
  gaps: SpoolDroppedRange[];
}

export interface SessionSpoolInit {
  host: SpoolHost;
  stream: StreamState;
  sessionId: string;
  dir: string;
  createdAt: number;
  recovered?: RecoveredSession;
}

/**
 * One remuxer session's journal: entries in, in order, durably (JournalWriter); out to the appender
 * through the SpoolPort (read / begin / commit, the in-flight record kept by AckCursor); gone once
 * acknowledged (SegmentGc) or dropped (DropLedger). EntryIndex is the in-memory index. See spool.ts
 * for the guarantees per fsync policy and the drop policy.
 */
export class SessionSpool extends EventEmitter<SessionSpoolEvents> implements SpoolPort {
  readonly stream: string;
  readonly sessionId: string;
  readonly dir: string;
  readonly createdAt: number;
  private readonly host: SpoolHost;
  private readonly ss: StreamState;
  private readonly log: Logger | undefined;
  private readonly index: EntryIndex;
  private readonly writer: JournalWriter;
  private readonly ledger: DropLedger;
  private readonly segments: SegmentGc;
  private readonly acks: AckCursor;
  private readonly recovered: RecoveredSession | undefined;

  private readable: number;
  /** No more appends (seal() was called). */
  private inputClosed: boolean;
  /** Sealed and every entry written (or dropped): nothing will ever become readable past endSeq. */
  private journalComplete: boolean;
  private sealing: Promise<void> | undefined;
  private closed = false;
  private finished = false;
  /** Everything in [floor, dropHint) is dropped or init. */
  private dropHint: number;
  private gcDone: Promise<void> = Promise.resolve();
  private readonly waiters = new Set<() => void>();
  private started: Promise<void> | undefined;
  private resolveReady!: () => void;
  private rejectReady!: (err: unknown) => void;
  /** No directory of its own (its start failed, or never happened): nothing may be written there. */
  private dirless = false;

  constructor(init: SessionSpoolInit) {
    super();
    this.host = init.host;
    this.ss = init.stream;
    this.stream = init.stream.name;
    this.sessionId = init.sessionId;
    this.dir = init.dir;
    this.createdAt = init.createdAt;
    this.log = init.host.logger?.child({ stream: this.stream, session: this.sessionId });
    const r = (this.recovered = init.recovered);
    const cursor: SessionCursor = r?.cursor ?? { nextSeq: 0, state: null, inflight: null };
    this.index = new EntryIndex(this.ss, cursor.nextSeq, r);
    this.readable = r?.nextSeq ?? 0;
    this.inputClosed = this.journalComplete = r?.sealed ?? false;
    if (r?.sealed) this.sealing = Promise.resolve();
    this.dropHint = cursor.nextSeq;
    this.acks = new AckCursor(this.dir, { cursor, gen: r?.cursorGen ?? 0, logEnd: r?.cursorLogEnd ?? 0 }, (before, now) => this.cursorPersisted(before, now));
    this.segments = new SegmentGc(this.dir, init.host.opts.retainAcked ?? false, this.log, r?.segments);
    const ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ledger = new DropLedger({
      file: new AtomicJsonFile(join(this.dir, DROPS_FILE), init.host.opts.fsync !== 'never'),
      ready,
      log: this.log,
      recovered: r?.drops ?? [],
      floor: () => this.acks.persisted.nextSeq,
      announce: (range) => {
        this.emit('dropped', range);
        this.host.reportDrop({ ...range });
      },
      persisted: (ranges) => {
        // Only now may segments holding them go: a crash before this would resurrect them.
        for (const d of ranges) this.index.markDead(d.fromSeq, d.toSeq, true);
        void this.segments.collect();
      },
    });
    this.writer = new JournalWriter({
      dir: this.dir, opts: init.host.opts, io: init.host.io, stream: this.ss, segments: this.segments, log: this.log,
      advanced: (seq) => this.advanced(seq),
      failed: (err, lost) => this.writeFailed(err, lost),
    }, ready);
  }

  /**
   * A new session: creates its directory (`session.json`, fsynced into the spool root); entries
   * appended before it is done wait in the writer's queue. A recovered one: reports the entries
   * recovery found missing and deletes what it found dead. Idempotent.
   */
  start(): Promise<void> {
    this.started ??= this.open().then(this.resolveReady, (err: unknown) => {
      this.giveUpDirectory(err);
      throw err;
    });
    return this.started;
  }

  // ---- the ingest side ----------------------------------------------------------------------

  /**
   * Queues the entry for the journal (in order) and returns its seq. Synchronous and O(1): never
   * waits on the disk or the store. Throws only when sealed/closed. If the writer is further
   * behind than memoryBytesPerStream, the entry is dropped at once ('write-backlog') rather than
   * buffered without bound, and so are the non-keyframe fragments after it (so the journal
   * resumes at a keyframe); init entries are never dropped that way.
   */
  append(meta: SpoolEntryMeta, bytes: Buffer): number {
    if (this.closed) throw new SpoolClosedError(`spool session ${this.stream}/${this.sessionId} is closed`);
    if (this.inputClosed) throw new SpoolSealedError(`spool session ${this.stream}/${this.sessionId} is sealed`);
    const rec = this.index.add(meta, bytes);
    if (!this.writer.enqueue(rec, bytes)) this.drop([rec], 'write-backlog');
    this.host.afterAppend(this.ss);
    return rec.seq;
  }

  /**
   * No more appends; waits for the journal to be written (fsynced unless fsync 'never') and
   * persists a marker so recovery knows. Only then does the session end for its reader.
   */
  seal(): Promise<void> {
    if (this.sealing) return this.sealing;
    this.assertUsable();
    this.sealing = (async () => {
      this.inputClosed = true;
      await this.writer.flush(this.host.opts.fsync !== 'never');
      await this.ledger.written;
      try {
        if (!this.dirless) await writeFileAtomic(join(this.dir, SEALED_FILE), JSON.stringify({ endSeq: this.endSeq }), true);
      } finally {
        // The marker only tells a later recovery; in this process the journal is complete either way.
        this.journalComplete = true;
        this.notify();
        this.emit('sealed');
      }
    })();
    return this.sealing;
  }

  // ---- the appender side (SpoolPort) ----------------------------------------------------------

  /** The newest cursor: acknowledged entries, the appender's state, the batch in flight. */
  get cursor(): SessionCursor {
    return this.acks.current;
  }

  /**
   * Readable, undropped entries from fromSeq on, up to maxBytes of payload (at least one entry if
   * any): from memory when still there, else that frame alone is read back and CRC-checked. Seqs
   * jump over dropped ranges (also announced by 'dropped'). What it returns is pinned: the drop
   * policy will not take it any more.
   */
  async read(fromSeq: number, maxBytes: number): Promise<SpoolRead> {
    this.assertUsable();
    if (!Number.isSafeInteger(fromSeq) || fromSeq < this.acks.acked) {
      throw new SpoolRangeError(`read(${fromSeq}): entries below ${this.acks.acked} are acknowledged and gone`);
    }
    const picked: EntryRec[] = [];
    let total = 0;
    for (let seq = fromSeq; seq < this.readable; seq++) {
      const rec = this.index.get(seq);
      if (rec === undefined || rec.dropped) continue;
      if (picked.length > 0 && total + rec.size > maxBytes) break;
      picked.push(rec);
      total += rec.size;
    }
    const entries: SpoolEntry[] = [];
    if (picked.length > 0) {
      this.acks.pinTo(picked.at(-1)!.seq + 1);
      const reader = new FrameReader();
      try {
        for (const rec of picked) {
          const bytes = rec.bytes ?? (await reader.payload(rec));
          if (bytes !== undefined) entries.push(toEntry(rec, bytes));
          else this.rotten(rec);
        }
      } finally {
        await reader.close();
      }
    }
    const first = entries[0];
    return { entries, init: first && this.index.initAt(first.seq), readableSeq: this.readable, ended: this.ended };
  }

  /** Resolves once entries past `afterSeq` are readable or the session ended, after `ms`, or on abort. */
  waitReadable(afterSeq: number, ms: number, signal: AbortSignal): Promise<void> {
    if (this.readable > afterSeq || this.ended || this.closed || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      signal.addEventListener('abort', done, { once: true });
      this.waiters.add(done);
    });
  }

  /** The batch goes to the store: recorded as in flight with the appender's state, pinned. */
  async begin(batch: InFlightRecord, state: AppenderState): Promise<void> {
    this.assertUsable();
    const { fromSeq, uptoSeq } = batch;
    if (!Number.isSafeInteger(fromSeq) || !Number.isSafeInteger(uptoSeq) || fromSeq < this.acks.acked || uptoSeq <= fromSeq || uptoSeq > this.readable) {
      throw new SpoolRangeError(`begin([${fromSeq}, ${uptoSeq})) outside [${this.acks.acked}, ${this.readable}] (acked, readable)`);
    }
    await this.acks.begin(batch, state);
  }

  /**
   * The batch's outcome. Landed: [cursor, uptoSeq) is acknowledged and persisted with the state
   * (temp + fsync + rename + fsync dir), then segments and init files nobody needs are deleted.
   * Not landed (absent, or the object was left): the record is cleared, the entries stay pinned and
   * are read again.
   */
  async commit(batch: InFlightRecord, result: { landed: boolean; state: AppenderState }): Promise<void> {
    this.assertUsable();
    const inflight = this.acks.current.inflight;
    if (inflight && (inflight.fromSeq !== batch.fromSeq || inflight.uptoSeq !== batch.uptoSeq)) {
      throw new SpoolRangeError(`commit([${batch.fromSeq}, ${batch.uptoSeq})) but [${inflight.fromSeq}, ${inflight.uptoSeq}) is in flight`);
    }
    if (!result.landed) {
      await this.acks.commit(null, result.state);
      return;
    }
    const from = this.acks.acked;
    const upto = batch.uptoSeq;
    if (!Number.isSafeInteger(upto) || upto < from || upto > this.readable) {
      throw new SpoolRangeError(`commit(${upto}) outside [${from}, ${this.readable}] (acked, readable)`);
    }
    this.index.acknowledge(from, upto);
    await this.acks.commit(upto, result.state);
    await this.gcDone;
  }

  /** Sealed, written to its end and fully acknowledged (or dropped): removes the session directory. */
  async finish(): Promise<void> {
    if (this.finished) return;
    if (!this.ended) throw new SpoolBusyError(`finish(): ${this.stream}/${this.sessionId} is not sealed and written to its end`);
    if (this.index.bytes > 0) throw new SpoolBusyError(`finish(): ${this.stream}/${this.sessionId} still holds ${this.index.bytes} unacknowledged bytes`);
    this.finished = this.closed = true;
    this.notify();
    await this.writer.closeActive(false);
    await this.acks.close();
    await this.segments.collect();
    this.index.releaseAll();
    if (!this.dirless) {
      if (this.host.opts.retainAcked) await rename(this.dir, `${this.dir}.done`);
      else await rm(this.dir, { recursive: true, force: true });
    }
    this.host.removed(this);
  }

  // ---- state ----------------------------------------------------------------------------------

  /** Highest seq+1 that is durable per the fsync policy (or dropped): everything below is readable. */
  get readableSeq(): number {
    return this.readable;
  }

  /** Next seq append() will return. */
  get endSeq(): number {
    return this.index.endSeq;
  }

  /** No more appends (the remuxer ended); entries may still be on their way to the disk. */
  get sealed(): boolean {
    return this.inputClosed;
  }

  /**
   * Sealed, and the journal written to its end: every entry is readable, acknowledged or dropped.
   * Only then is "nothing readable" the end of the session rather than a slow disk.
   */
  get ended(): boolean {
    return this.journalComplete && this.readable >= this.endSeq;
  }

  /** Unacknowledged, undropped payload bytes of this session (on disk or on their way). */
  get bytes(): number {
    return this.index.bytes;
  }

  /** Arrival time (wall-clock ms) of the oldest fragment neither acknowledged nor dropped, if any. */
  get oldestUnackedAt(): number | undefined {
    return this.index.oldestFragmentAt();
  }

  /** The init entry most recently appended at or before `seq`. */
  initFor(seq: number): SpoolEntry | undefined {
    return this.index.initAt(seq);
  }

  /** Writes what is queued, fsyncs, closes the file. Deletes nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.notify();
    // Never started: what was queued can never be written (dropped and counted, like a failed write).
    if (!this.started) {
      const err = new SpoolClosedError(`spool session ${this.stream}/${this.sessionId} closed before it was started`);
      this.started = Promise.reject(err);
      this.started.catch(() => undefined);
      this.giveUpDirectory(err);
    }
    await this.writer.flush(true);
    await this.writer.closeActive(false);
    await this.ledger.written;
    await this.acks.close();
    await this.segments.collect();
  }

  // ---- used by the Spool ----------------------------------------------------------------------

  /** The interval fsync tick. */
  requestSync(): void {
    if (!this.closed) this.writer.requestSync();
  }

  /**
   * Drops the oldest droppable entries until at least `need` bytes are gone, then keeps going up
   * to the next keyframe fragment or init (see spool.ts). Returns the bytes dropped.
   */
  dropOldest(need: number, reason: DropReason): number {
    const pick = oldestDroppable(this.index, Math.max(this.acks.floor, this.dropHint), need);
    this.dropHint = pick.stop;
    this.drop(pick.recs, reason);
    return pick.bytes;
  }

  // ---- internals ------------------------------------------------------------------------------

  private async open(): Promise<void> {
    const r = this.recovered;
    if (!r) {
      await createSessionDir(this.dir, { stream: this.stream, sessionId: this.sessionId, createdAt: this.createdAt }, this.host.opts.fsync !== 'never');
      return;
    }
    this.ledger.record(r.gaps);
    for (const rec of this.index.pruneInits(this.acks.persisted.nextSeq)) this.segments.dropInits([rec]);
    await this.segments.collect();
  }

  /** The session will have no directory of its own: its queued entries are lost (counted), nothing is written. */
  private giveUpDirectory(err: unknown): void {
    this.dirless = true;
    this.rejectReady(err);
    this.host.removed(this);
  }

  private assertUsable(): void {
    if (this.finished) throw new SpoolClosedError(`spool session ${this.stream}/${this.sessionId} was finished`);
  }

  private drop(recs: readonly EntryRec[], reason: SpoolDropReason): void {
    if (recs.length === 0) return;
    for (const rec of recs) this.index.drop(rec);
    this.ledger.record(dropRanges(recs, this, reason));
  }

  private advanced(readableSeq: number): void {
    if (readableSeq > this.readable) {
      this.readable = readableSeq;
      this.emit('readable', readableSeq);
      this.notify();
    }
    this.host.evict(this.ss);
  }

  private writeFailed(err: unknown, lost: readonly EntryRec[]): void {
    this.log?.error({ err, code: errnoCode(err), lostEntries: lost.length }, 'spool journal write failed');
    if (this.listenerCount('error') > 0) this.emit('error', new SpoolWriteError(`${this.stream}/${this.sessionId}`, err));
    this.drop(lost, 'write-error');
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private cursorPersisted(before: SessionCursor, now: SessionCursor): void {
    if (now.nextSeq <= before.nextSeq) return;
    this.index.markDead(before.nextSeq, now.nextSeq, false);
    this.index.forgetBelow(now.nextSeq);
    this.segments.dropInits(this.index.pruneInits(now.nextSeq));
    this.gcDone = this.segments.collect();
  }

  /** A frame rotten on disk: counted and skipped rather than wedging the appender forever. */
  private rotten(rec: EntryRec): void {
    this.log?.error({ seq: rec.seq, path: rec.segment?.path, offset: rec.frameOffset }, 'spool journal frame failed its check on read-back');
    if (!rec.dropped) this.drop([rec], 'journal-corrupt');
  }
}
