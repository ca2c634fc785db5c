import { EventEmitter } from 'node:events';
import { open, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';
import { AtomicJsonFile, errnoCode, fsyncDir, writeFileAtomic } from './fs-util.js';
import { encodeFrame, readFrameAt } from './frame.js';
import { DEAD_DROPPED, Fifo, type EntryRec, type Segment, type StreamState } from './entry-record.js';
import { SpoolError } from './errors.js';
import type {
  AppenderState, DropReason, DroppedRange, JournalIo, SessionCursor, SpoolEntry, SpoolEntryMeta, SpoolOptions,
} from './types.js';

/**
 * Why entries left the spool unacknowledged. The quota reasons are types.ts' DropReason; the others
 * are the disk's doing: a failed write or fsync (ENOSPC, EIO), a writer that fell further behind
 * than the memory budget, a journal frame that failed its CRC when read back or went missing.
 */
export type SpoolDropReason = DropReason | 'write-error' | 'write-backlog' | 'journal-corrupt';
export interface SpoolDroppedRange extends Omit<DroppedRange, 'reason'> {
  reason: SpoolDropReason;
}

export interface SessionSpoolEvents {
  /** New entries became readable: every entry below `readableSeq` may be read. */
  readable: [readableSeq: number];
  /** Entries [fromSeq, toSeq) will never be read: read() skips them. */
  dropped: [range: SpoolDroppedRange];
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
  nextSeq: number;
  sealed: boolean;
  /** Dense index of [cursor.nextSeq, nextSeq). */
  entries: EntryRec[];
  segments: Segment[];
  /** Init entries (bytes loaded) from the one current at the cursor on. */
  inits: EntryRec[];
  /** Persisted drops above the cursor. */
  drops: SpoolDroppedRange[];
}

export interface SessionSpoolInit {
  host: SpoolHost;
  stream: StreamState;
  sessionId: string;
  dir: string;
  createdAt: number;
  recovered?: RecoveredSession;
}

const BATCH_MAX_ENTRIES = 256; // 3 iovecs each: stays under IOV_MAX (1024)
const BATCH_MAX_BYTES = 8 * 1024 * 1024;
const DROP_LOG_EVERY_MS = 10_000;

export function segmentFileName(firstSeq: number): string {
  return `${String(firstSeq).padStart(12, '0')}.seg`;
}
export function initFileName(seq: number): string {
  return `${String(seq).padStart(12, '0')}.init`;
}
export const CURSOR_FILE = 'cursor.json';
export const DROPS_FILE = 'drops.json';
export const SEALED_FILE = 'sealed.json';
export const SESSION_FILE = 'session.json';

interface Taken {
  rec: EntryRec;
  bytes: Buffer;
}

/**
 * One remuxer session's journal: entries in, in order, durably; out to the appender; gone once
 * acknowledged. See spool.ts for the guarantees per fsync policy and the drop policy.
 */
export class SessionSpool extends EventEmitter<SessionSpoolEvents> {
  readonly stream: string;
  readonly sessionId: string;
  readonly dir: string;
  readonly createdAt: number;
  private readonly host: SpoolHost;
  private readonly ss: StreamState;
  private readonly log: Logger | undefined;

  private persistedCursor: SessionCursor;
  /** Highest uptoSeq passed to ack() (persisted or on its way). */
  private ackedSeq: number;
  /** In flight / handed out by read(): the drop policy starts at max(ackedSeq, pin). */
  private pin: number;
  private nextSeq: number;
  private readable: number;
  private unacked = 0;
  private isSealed: boolean;
  /** Sealed and every entry written (or dropped): nothing will ever become readable past endSeq. */
  private journalComplete: boolean;
  private closed = false;
  private destroyed = false;

  // Dense index: entries[head] has seq `base`.
  private entries: Array<EntryRec | undefined> = [];
  private head = 0;
  private base: number;
  private segments: Segment[] = [];
  private active: { seg: Segment; fh: FileHandle } | undefined;
  /** Live init entries, ascending seq, bytes always in memory. */
  private inits: EntryRec[] = [];
  private drops: SpoolDroppedRange[] = [];
  /** Reported drops whose persistence has not yet been accounted in segment liveness. */
  private unmarkedDrops: SpoolDroppedRange[] = [];
  private dropsReported = 0;
  private dropsMarked = 0;
  /** Everything in [max(ackedSeq, pin), dropHint) is dropped or init. */
  private dropHint = 0;
  private skipUntilKeyframe = false;
  private droppedSinceLog = { bytes: 0, ranges: 0, at: 0 };

  // Writer
  private readonly pending = new Fifo<EntryRec>();
  private writing = false;
  private dirty = false;
  private syncRequested = false;
  private idleWaiters: Array<() => void> = [];
  private gcRunning: Promise<void> | undefined;
  /** The latest drop-record write (close/seal wait for it). */
  private dropsPersisted: Promise<void> = Promise.resolve();
  private gcAgain = false;
  private gcDone: Promise<void> = Promise.resolve();

  private readonly cursorFile: AtomicJsonFile<SessionCursor>;
  private readonly dropsFile: AtomicJsonFile<SpoolDroppedRange[]>;

  constructor(init: SessionSpoolInit) {
    super();
    this.host = init.host;
    this.ss = init.stream;
    this.stream = init.stream.name;
    this.sessionId = init.sessionId;
    this.dir = init.dir;
    this.createdAt = init.createdAt;
    this.log = init.host.logger?.child({ stream: this.stream, session: this.sessionId });
    this.cursorFile = new AtomicJsonFile(join(this.dir, CURSOR_FILE), true, (c) => this.onCursorPersisted(c));
    this.dropsFile = new AtomicJsonFile(join(this.dir, DROPS_FILE), init.host.opts.fsync !== 'never');
    const r = init.recovered;
    if (r) {
      this.persistedCursor = r.cursor;
      this.ackedSeq = this.pin = this.base = this.dropHint = r.cursor.nextSeq;
      this.nextSeq = this.readable = r.nextSeq;
      this.isSealed = this.journalComplete = r.sealed;
      this.entries = r.entries;
      this.segments = r.segments;
      this.inits = r.inits;
      this.drops = r.drops;
      for (const rec of r.entries) if (!rec.dropped) this.unacked += rec.size;
      this.ss.bytes += this.unacked;
    } else {
      this.persistedCursor = { nextSeq: 0, state: null };
      this.ackedSeq = this.pin = this.base = this.nextSeq = this.readable = 0;
      this.isSealed = this.journalComplete = false;
    }
  }

  // ---- public API -------------------------------------------------------------------------

  /** Highest seq+1 that is durable per the fsync policy (or dropped): everything below is readable. */
  get readableSeq(): number {
    return this.readable;
  }
  /** Next seq append() will return. */
  get endSeq(): number {
    return this.nextSeq;
  }
  /** As last persisted. */
  get cursor(): SessionCursor {
    return this.persistedCursor;
  }
  /** No more appends (the remuxer ended); entries may still be on their way to the disk. */
  get sealed(): boolean {
    return this.isSealed;
  }
  /**
   * Sealed, and the journal written to its end: every entry is readable, acknowledged or dropped.
   * Only then is "nothing readable" the end of the session rather than a slow disk.
   */
  get ended(): boolean {
    return this.journalComplete && this.readable >= this.nextSeq;
  }
  /** Unacknowledged, undropped payload bytes of this session (on disk or on their way). */
  get bytes(): number {
    return this.unacked;
  }
  /** Start of the range the drop policy may touch (everything below is acked or in flight). */
  get inFlightSeq(): number {
    return Math.max(this.ackedSeq, this.pin);
  }

  /**
   * Queues the entry for the journal (in order) and returns its seq. Synchronous and O(1): never
   * waits on the disk or the store. Throws only when sealed/closed. If the writer is further
   * behind than memoryBytesPerStream, the entry is dropped at once ('write-backlog') rather than
   * buffered without bound, and so are the non-keyframe fragments after it (so the journal
   * resumes at a keyframe); init entries are never dropped that way.
   */
  append(meta: SpoolEntryMeta, bytes: Buffer): number {
    if (this.isSealed || this.closed) {
      throw new SpoolError(this.closed ? 'closed' : 'sealed', `spool session ${this.stream}/${this.sessionId} is ${this.closed ? 'closed' : 'sealed'}`);
    }
    const seq = this.nextSeq++;
    const rec: EntryRec = {
      seq, meta: copyMeta(meta), size: bytes.length, bytes: undefined, inMemory: false, pending: false, written: false,
      segment: undefined, frameOffset: 0, frameLength: 0, dropped: false, dead: false,
    };
    this.entries.push(rec);
    this.unacked += rec.size;
    this.ss.bytes += rec.size;
    if (meta.kind === 'init') {
      rec.bytes = bytes;
      this.inits.push(rec);
      this.skipUntilKeyframe = false;
    } else {
      if (meta.kind === 'fragment' && meta.keyframe !== false) this.skipUntilKeyframe = false;
      const limit = this.host.opts.memoryBytesPerStream;
      if (this.skipUntilKeyframe || (this.ss.pendingBytes > 0 && this.ss.pendingBytes + rec.size > limit)) {
        this.skipUntilKeyframe = true;
        this.markDropped(rec);
        this.reportDrops([{ stream: this.stream, sessionId: this.sessionId, fromSeq: seq, toSeq: seq + 1, bytes: rec.size, reason: 'write-backlog' }]);
      } else {
        rec.bytes = bytes;
        rec.inMemory = true;
        rec.pending = true;
        this.ss.memBytes += rec.size;
        this.ss.pendingBytes += rec.size;
        this.ss.memFifo.push(rec);
      }
    }
    this.pending.push(rec); // dropped ones too: the writer passes readableSeq over them in order
    this.kick();
    this.host.afterAppend(this.ss);
    return seq;
  }

  /**
   * Readable, undropped entries from fromSeq on, up to maxBytes of payload (at least one entry if
   * any): from memory when still there, else that frame alone is read back and CRC-checked.
   * Seqs jump over dropped ranges (also announced by 'dropped'). What it returns is pinned like
   * setInFlight(): the drop policy will not take it any more.
   */
  async read(fromSeq: number, maxBytes: number): Promise<SpoolEntry[]> {
    this.assertUsable();
    if (!Number.isSafeInteger(fromSeq) || fromSeq < this.ackedSeq) {
      throw new SpoolError('range', `read(${fromSeq}): entries below ${this.ackedSeq} are acknowledged and gone`);
    }
    const picked: EntryRec[] = [];
    let total = 0;
    for (let seq = fromSeq; seq < this.readable; seq++) {
      const rec = this.get(seq);
      if (rec === undefined || rec.dropped) continue;
      if (picked.length > 0 && total + rec.size > maxBytes) break;
      picked.push(rec);
      total += rec.size;
    }
    const last = picked.at(-1);
    if (last === undefined) return [];
    this.pin = Math.max(this.pin, last.seq + 1);

    const out: SpoolEntry[] = [];
    const handles = new Map<string, FileHandle>();
    try {
      for (const rec of picked) {
        let bytes = rec.bytes;
        if (bytes === undefined) bytes = await this.readBack(rec, handles);
        if (bytes !== undefined) out.push(toEntry(rec, bytes));
      }
    } finally {
      for (const fh of handles.values()) await fh.close().catch(() => undefined);
    }
    return out;
  }

  /** The appender has taken [cursor.nextSeq, uptoSeq) into an append: never dropped from now on. */
  setInFlight(uptoSeq: number): void {
    if (!Number.isSafeInteger(uptoSeq) || uptoSeq > this.nextSeq) {
      throw new SpoolError('range', `setInFlight(${uptoSeq}) beyond the last entry (${this.nextSeq})`);
    }
    this.pin = Math.max(this.pin, uptoSeq);
  }

  /**
   * [cursor.nextSeq, uptoSeq) is acknowledged by the store: persists {nextSeq: uptoSeq, state}
   * (temp + fsync + rename + fsync dir), then deletes segments and init files nobody needs.
   */
  async ack(uptoSeq: number, state: AppenderState | null): Promise<void> {
    this.assertUsable();
    if (!Number.isSafeInteger(uptoSeq) || uptoSeq < this.ackedSeq || uptoSeq > this.readable) {
      throw new SpoolError('range', `ack(${uptoSeq}) outside [${this.ackedSeq}, ${this.readable}] (acked, readable)`);
    }
    for (let seq = this.ackedSeq; seq < uptoSeq; seq++) {
      const rec = this.get(seq);
      if (rec === undefined || rec.dropped) continue;
      this.unacked -= rec.size;
      this.ss.bytes -= rec.size;
      this.releaseMemory(rec);
    }
    this.ackedSeq = uptoSeq;
    this.pin = Math.max(this.pin, uptoSeq);
    await this.cursorFile.write({ nextSeq: uptoSeq, state });
    await this.gcDone;
  }

  /** Persists the appender's state without advancing the cursor. */
  async saveState(state: AppenderState | null): Promise<void> {
    this.assertUsable();
    await this.cursorFile.write({ nextSeq: this.ackedSeq, state });
  }

  /**
   * The init entry most recently appended at or before `seq`. Init entries stay in memory and in
   * their own `<seq>.init` file (besides the journal) until a newer init is acknowledged, so
   * segment deletion never takes them.
   */
  async initFor(seq: number): Promise<SpoolEntry | undefined> {
    for (let i = this.inits.length - 1; i >= 0; i--) {
      const rec = this.inits[i]!;
      if (rec.seq <= seq && rec.bytes) return toEntry(rec, rec.bytes);
    }
    return undefined;
  }

  /** No more appends; waits for the journal to be written (fsynced unless fsync 'never') and
   *  persists a marker so recovery knows. */
  async seal(): Promise<void> {
    if (this.isSealed) return;
    this.assertUsable();
    this.isSealed = true;
    await this.flush(this.host.opts.fsync !== 'never');
    await this.dropsPersisted;
    try {
      await writeFileAtomic(join(this.dir, SEALED_FILE), JSON.stringify({ endSeq: this.nextSeq }), true);
    } finally {
      // The marker only tells a later recovery; in this process the journal is complete either way.
      this.journalComplete = true;
      this.emit('sealed');
    }
  }

  /** Sealed and fully acknowledged (or dropped): removes the session directory. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    if (!this.isSealed) throw new SpoolError('busy', `destroy(): ${this.stream}/${this.sessionId} is not sealed`);
    await this.flush(false);
    if (this.unacked > 0) throw new SpoolError('busy', `destroy(): ${this.stream}/${this.sessionId} still holds ${this.unacked} unacknowledged bytes`);
    this.destroyed = true;
    this.closed = true;
    await this.closeActive(false);
    await this.gc();
    for (const rec of this.entries) if (rec) this.releaseMemory(rec);
    if (this.host.opts.retainAcked) await rename(this.dir, `${this.dir}.done`);
    else await rm(this.dir, { recursive: true, force: true });
    this.host.removed(this);
  }

  /** Writes what is queued, fsyncs, closes the file. Deletes nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flush(true);
    await this.closeActive(false);
    await this.dropsPersisted;
    await this.gc();
  }

  // ---- used by the Spool ------------------------------------------------------------------

  /** The interval fsync tick. */
  requestSync(): void {
    if (!this.dirty || this.closed) return;
    this.syncRequested = true;
    this.kick();
  }

  /**
   * Drops the oldest droppable entries until at least `need` bytes are gone, then keeps going up
   * to the next keyframe fragment or init (see spool.ts). Returns the bytes dropped.
   */
  dropOldest(need: number, reason: DropReason): number {
    let dropped = 0;
    const ranges: SpoolDroppedRange[] = [];
    let run: SpoolDroppedRange | undefined;
    const closeRun = (): void => {
      if (run) ranges.push(run);
      run = undefined;
    };
    let seq = Math.max(this.ackedSeq, this.pin, this.dropHint);
    for (; seq < this.nextSeq; seq++) {
      const rec = this.get(seq);
      if (rec === undefined || rec.dropped) {
        closeRun();
        continue;
      }
      const boundary = rec.meta.kind === 'init' || (rec.meta.kind === 'fragment' && rec.meta.keyframe !== false);
      if (dropped >= need && boundary) break;
      if (rec.meta.kind === 'init') {
        closeRun();
        continue;
      }
      this.markDropped(rec);
      dropped += rec.size;
      if (run) {
        run.toSeq = seq + 1;
        run.bytes += rec.size;
      } else {
        run = { stream: this.stream, sessionId: this.sessionId, fromSeq: seq, toSeq: seq + 1, bytes: rec.size, reason };
      }
    }
    closeRun();
    this.dropHint = seq;
    if (ranges.length > 0) this.reportDrops(ranges);
    return dropped;
  }

  /** Drops found while recovering (journal gaps), reported once the session exists. */
  reportRecoveredDrops(ranges: SpoolDroppedRange[]): void {
    if (ranges.length > 0) this.reportDrops(ranges);
  }

  /** Deletes segments and init files that recovery found dead. */
  collectGarbage(): Promise<void> {
    this.gcInits();
    return this.gc();
  }

  // ---- internals --------------------------------------------------------------------------

  private get(seq: number): EntryRec | undefined {
    return seq < this.base ? undefined : this.entries[this.head + seq - this.base];
  }

  private assertUsable(): void {
    if (this.destroyed) throw new SpoolError('closed', `spool session ${this.stream}/${this.sessionId} was destroyed`);
  }

  private markDropped(rec: EntryRec): void {
    rec.dropped = true;
    this.unacked -= rec.size;
    this.ss.bytes -= rec.size;
    this.releaseMemory(rec);
  }

  private releaseMemory(rec: EntryRec): void {
    if (!rec.inMemory) return;
    rec.inMemory = false;
    rec.bytes = undefined;
    this.ss.memBytes -= rec.size;
  }

  private reportDrops(ranges: SpoolDroppedRange[]): void {
    for (const r of ranges) {
      this.drops.push(r);
      this.unmarkedDrops.push(r);
      this.dropsReported++;
    }
    for (const r of ranges) {
      this.emit('dropped', { ...r });
      this.host.reportDrop({ ...r });
      this.droppedSinceLog.bytes += r.bytes;
      this.droppedSinceLog.ranges++;
    }
    const now = Date.now();
    if (now - this.droppedSinceLog.at >= DROP_LOG_EVERY_MS) {
      this.log?.warn({ droppedBytes: this.droppedSinceLog.bytes, ranges: this.droppedSinceLog.ranges, reason: ranges[0]!.reason }, 'spool dropped unacknowledged entries');
      this.droppedSinceLog = { bytes: 0, ranges: 0, at: now };
    }
    this.dropsPersisted = this.persistDrops();
  }

  private async persistDrops(): Promise<void> {
    const target = this.dropsReported;
    const floor = this.persistedCursor.nextSeq;
    this.drops = this.drops.filter((d) => d.toSeq > floor);
    try {
      await this.dropsFile.write(this.drops.slice());
    } catch (err) {
      this.log?.error({ err }, 'spool could not persist its drop record');
      return;
    }
    // Only now may segments holding them go: a crash before this would resurrect them otherwise.
    while (this.dropsMarked < target) {
      const r = this.unmarkedDrops.shift();
      this.dropsMarked++;
      if (r) this.markDeadRange(r.fromSeq, r.toSeq, true);
    }
    void this.gc();
  }

  private markDeadRange(from: number, to: number, onlyDropped: boolean): void {
    for (let seq = Math.max(from, this.base); seq < to && seq < this.nextSeq; seq++) {
      const idx = this.head + seq - this.base;
      const rec = this.entries[idx];
      if (rec === undefined || rec.dead) continue;
      if (onlyDropped && !rec.dropped) continue;
      rec.dead = true;
      if (rec.segment && rec.meta.kind !== 'init') rec.segment.live--;
      if (rec.dropped) this.entries[idx] = DEAD_DROPPED;
    }
  }

  private onCursorPersisted(c: SessionCursor): void {
    const prev = this.persistedCursor.nextSeq;
    this.persistedCursor = { nextSeq: c.nextSeq, state: c.state };
    if (c.nextSeq <= prev) return;
    this.markDeadRange(prev, c.nextSeq, false);
    // Forget index records below the cursor.
    while (this.base < c.nextSeq && this.head < this.entries.length) {
      this.entries[this.head++] = undefined;
      this.base++;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    this.gcInits();
    this.gcDone = this.gc();
  }

  /** Keeps the init current at the cursor and every later one; deletes older init files. */
  private gcInits(): void {
    const floor = this.persistedCursor.nextSeq;
    let current = -1;
    for (let i = 0; i < this.inits.length; i++) if (this.inits[i]!.seq < floor) current = i;
    if (current <= 0) return;
    const gone = this.inits.splice(0, current);
    for (const rec of gone) void unlink(join(this.dir, initFileName(rec.seq))).catch(() => undefined);
  }

  /** Deletes closed segments with nothing live in them. One pass at a time; a call during a pass
   *  makes it run again and resolves when that is done too. */
  private gc(): Promise<void> {
    if (this.gcRunning) {
      this.gcAgain = true;
      return this.gcRunning;
    }
    const run = async (): Promise<void> => {
      await null; // settle only after gcRunning is assigned below
      try {
        do {
          this.gcAgain = false;
          const dead = this.segments.filter((s) => s.closed && s.live <= 0);
          if (dead.length === 0) continue;
          this.segments = this.segments.filter((s) => !dead.includes(s));
          for (const s of dead) {
            try {
              if (this.host.opts.retainAcked) await rename(s.path, `${s.path}.acked`);
              else await unlink(s.path);
            } catch (err) {
              if (errnoCode(err) !== 'ENOENT') this.log?.warn({ err, path: s.path }, 'spool could not delete a segment');
            }
          }
        } while (this.gcAgain);
      } finally {
        this.gcRunning = undefined;
      }
    };
    this.gcRunning = run();
    return this.gcRunning;
  }

  private async readBack(rec: EntryRec, handles: Map<string, FileHandle>): Promise<Buffer | undefined> {
    const seg = rec.segment;
    if (!seg) throw new SpoolError('range', `entry ${rec.seq} has no journal frame`);
    let fh = handles.get(seg.path);
    if (!fh) {
      fh = await open(seg.path, 'r');
      handles.set(seg.path, fh);
    }
    const frame = await readFrameAt(fh, rec.frameOffset);
    if (frame && frame.header.seq === rec.seq && frame.payload.length === rec.size) return frame.payload;
    // Rotten on disk: count it and move on rather than wedge the appender forever.
    this.log?.error({ seq: rec.seq, path: seg.path, offset: rec.frameOffset }, 'spool journal frame failed its check on read-back');
    if (!rec.dropped) {
      this.markDropped(rec);
      this.reportDrops([{ stream: this.stream, sessionId: this.sessionId, fromSeq: rec.seq, toSeq: rec.seq + 1, bytes: rec.size, reason: 'journal-corrupt' }]);
    }
    return undefined;
  }

  /** Starts the writer after the current tick, so a burst of appends goes out as one batch. */
  private kick(): void {
    if (this.writing) return;
    this.writing = true;
    queueMicrotask(() => void this.writeLoop());
  }

  /** Waits until everything queued is written (and fsynced when `sync`). */
  private flush(sync: boolean): Promise<void> {
    if (sync) this.syncRequested = true;
    if (!this.writing && this.pending.length === 0 && !(sync && this.dirty)) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.kick();
    return p;
  }

  /**
   * The one writer of this session: takes what is queued (group commit), writes it with writev at
   * the end of the active segment, fsyncs once for the whole batch under 'always', then moves
   * readableSeq over it.
   */
  private async writeLoop(): Promise<void> {
    const always = this.host.opts.fsync === 'always';
    try {
      for (;;) {
        const { taken, lastSeq } = this.takeBatch();
        if (lastSeq !== undefined) {
          try {
            if (taken.length > 0) await this.writeBatch(taken);
            if (always) await this.syncActive();
          } catch (err) {
            await this.onWriteError(err, taken);
          }
          for (const { rec } of taken) {
            if (rec.pending) {
              rec.pending = false;
              this.ss.pendingBytes -= rec.size;
            }
          }
          if (lastSeq + 1 > this.readable) {
            this.readable = lastSeq + 1;
            this.emit('readable', this.readable);
          }
          this.host.evict(this.ss);
        }
        if (this.syncRequested) {
          this.syncRequested = false;
          try {
            await this.syncActive();
          } catch (err) {
            this.reportWriteError(err);
            await this.closeActive(true);
          }
        }
        if (this.pending.length === 0) break;
      }
    } finally {
      this.writing = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private takeBatch(): { taken: Taken[]; lastSeq: number | undefined } {
    const taken: Taken[] = [];
    let bytes = 0;
    let lastSeq: number | undefined;
    while (this.pending.length > 0 && taken.length < BATCH_MAX_ENTRIES && bytes < BATCH_MAX_BYTES) {
      const rec = this.pending.shift()!;
      lastSeq = rec.seq;
      if (rec.dropped || rec.bytes === undefined) {
        if (rec.pending) {
          rec.pending = false;
          this.ss.pendingBytes -= rec.size;
        }
        continue;
      }
      taken.push({ rec, bytes: rec.bytes });
      bytes += rec.size;
    }
    return { taken, lastSeq };
  }

  private async writeBatch(taken: Taken[]): Promise<void> {
    const segmentBytes = this.host.opts.segmentBytes;
    let chunks: Buffer[] = [];
    let groupBytes = 0;
    const writeGroup = async (): Promise<void> => {
      if (groupBytes === 0 || !this.active) return;
      const { seg, fh } = this.active;
      await writeAll(fh, chunks, seg.size);
      seg.size += groupBytes;
      this.dirty = true;
      chunks = [];
      groupBytes = 0;
    };
    const placed: EntryRec[] = [];
    for (const { rec, bytes } of taken) {
      const frame = encodeFrame(rec.seq, rec.meta, bytes);
      if (!this.active || (this.active.seg.size + groupBytes > 0 && this.active.seg.size + groupBytes + frame.length > segmentBytes)) {
        await writeGroup();
        await this.rotate(rec.seq);
      }
      const seg = this.active!.seg;
      // Counted live before the write, so a rotation's gc can never take a segment being filled.
      rec.segment = seg;
      if (!rec.dead && rec.meta.kind !== 'init') seg.live++;
      rec.frameOffset = seg.size + groupBytes;
      rec.frameLength = frame.length;
      chunks.push(frame.head, frame.payload, frame.tail);
      groupBytes += frame.length;
      placed.push(rec);
    }
    await writeGroup();
    // Init entries also get their own small file, which outlives the segments.
    for (const { rec, bytes } of taken) {
      if (rec.meta.kind !== 'init') continue;
      const f = encodeFrame(rec.seq, rec.meta, bytes);
      await writeFileAtomic(join(this.dir, initFileName(rec.seq)), Buffer.concat([f.head, f.payload, f.tail]), this.host.opts.fsync !== 'never');
    }
    for (const rec of placed) rec.written = true;
  }

  private async rotate(firstSeq: number): Promise<void> {
    await this.closeActive(this.host.opts.fsync !== 'never');
    const path = join(this.dir, segmentFileName(firstSeq));
    const fh = await this.host.io.open(path, 'w');
    const seg: Segment = { firstSeq, path, size: 0, live: 0, closed: false };
    this.segments = this.segments.filter((s) => s.path !== path); // a failed segment of the same name
    this.segments.push(seg);
    this.active = { seg, fh };
    if (this.host.opts.fsync !== 'never') await fsyncDir(this.dir);
  }

  private async syncActive(): Promise<void> {
    if (!this.active || !this.dirty) return;
    await this.active.fh.datasync();
    this.dirty = false;
  }

  /** Closes the segment being written (fsync first when asked); it becomes garbage-collectable. */
  private async closeActive(sync: boolean): Promise<void> {
    const a = this.active;
    if (!a) return;
    this.active = undefined;
    a.seg.closed = true;
    try {
      if (sync && this.dirty) await a.fh.datasync();
      this.dirty = false;
    } finally {
      await a.fh.close().catch(() => undefined);
    }
    void this.gc();
  }

  /**
   * A write or fsync failed: the batch is not durable, so its (non-init) entries are dropped
   * ('write-error'), the segment is cut back to before the batch and abandoned (if the cut fails,
   * recovery truncates the torn tail) and the next batch starts a fresh one. Init entries stay:
   * they are served from memory (and their own file, if that write worked).
   */
  private async onWriteError(err: unknown, taken: Taken[]): Promise<void> {
    this.reportWriteError(err);
    const a = this.active;
    this.active = undefined;
    this.dirty = false;
    if (a) {
      // Cut the segment back to before this batch; an empty one goes (a full disk must not fill
      // the directory with one dead file per batch).
      const first = taken.find((t) => t.rec.segment === a.seg);
      const keep = first ? first.rec.frameOffset : a.seg.size;
      await a.fh.truncate(keep).catch(() => undefined);
      a.seg.size = keep;
      a.seg.closed = true;
      await a.fh.close().catch(() => undefined);
      if (keep === 0) {
        this.segments = this.segments.filter((s) => s !== a.seg);
        await unlink(a.seg.path).catch(() => undefined);
      }
    }
    const ranges: SpoolDroppedRange[] = [];
    let run: SpoolDroppedRange | undefined;
    for (const { rec } of taken) {
      if (rec.dropped || rec.meta.kind === 'init') continue;
      this.markDropped(rec);
      if (run && run.toSeq === rec.seq) {
        run.toSeq++;
        run.bytes += rec.size;
      } else {
        run = { stream: this.stream, sessionId: this.sessionId, fromSeq: rec.seq, toSeq: rec.seq + 1, bytes: rec.size, reason: 'write-error' };
        ranges.push(run);
      }
    }
    if (ranges.length > 0) this.reportDrops(ranges);
  }

  private reportWriteError(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.log?.error({ err: e, code: errnoCode(err) }, 'spool journal write failed');
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }
}

function copyMeta(m: SpoolEntryMeta): SpoolEntryMeta {
  const out: SpoolEntryMeta = { kind: m.kind, receivedAt: m.receivedAt };
  if (m.mediaTime !== undefined) out.mediaTime = m.mediaTime;
  if (m.duration !== undefined) out.duration = m.duration;
  if (m.keyframe !== undefined) out.keyframe = m.keyframe;
  return out;
}

function toEntry(rec: EntryRec, bytes: Buffer): SpoolEntry {
  return { ...rec.meta, seq: rec.seq, bytes };
}

/** Writes every byte of `chunks` at `position` (writev; finishes short writes piecewise). */
async function writeAll(fh: FileHandle, chunks: Buffer[], position: number): Promise<void> {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const nonEmpty = chunks.filter((c) => c.length > 0);
  let done = (await fh.writev(nonEmpty, position)).bytesWritten;
  if (done === total) return;
  let skip = done;
  for (const c of nonEmpty) {
    if (skip >= c.length) {
      skip -= c.length;
      continue;
    }
    let off = skip;
    skip = 0;
    while (off < c.length) {
      const { bytesWritten } = await fh.write(c, off, c.length - off, position + done);
      if (bytesWritten <= 0) throw new Error(`journal write made no progress at ${position + done}`);
      off += bytesWritten;
      done += bytesWritten;
    }
  }
}
