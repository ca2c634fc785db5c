/**
 * The durable splice buffer: per stream, the splitter's entries (init segments, fragments, the
 * trailer) go to an on-disk journal first and leave it only when the store acknowledged them.
 * Ingest never waits on the store or the disk: `append()` is synchronous; a slow or absent store
 * grows the spool, bounded by quotas with the drop policy below.
 *
 * Layout: `<dir>/<stream>/<sessionId>/` (names URI-encoded) holds `session.json`, the journal
 * segments `<firstSeq>.seg` (append-only, rotated at `segmentBytes`), each entry framed as
 * magic "ACSP" | version | header length | JSON header | payload | CRC-32(header+payload);
 * `<seq>.init` (a copy of each live init entry), the cursor ({nextSeq, state, inflight}: everything
 * below nextSeq is acknowledged) as records in `cursor.log`, compacted into `cursor.json` (see
 * cursor-log.ts: an in-flight record is fdatasync'ed before its append is sent; its settlement is
 * synced by the next one, or within 5 s), `drops.json` (dropped ranges
 * above the cursor) and `sealed.json` once the remuxer ended. Recovery scans each segment and
 * truncates it at its first torn or corrupt frame.
 *
 * ## fsync policies: what survives what
 *
 * - `always`: an entry becomes readable (can reach the appender, hence the store) only after its
 *   frame was fdatasync'ed, and a new segment's directory entry fsynced. One fdatasync covers
 *   everything written since the last one (group commit: whatever queued up during an fsync goes
 *   out as the next batch). After `kill -9`, kernel panic or power loss, every entry that ever
 *   became readable comes back byte-exact; only entries not yet readable (at most one batch plus
 *   what queued behind it) can be lost, and the store never saw those.
 * - `interval`: readable as soon as written to the OS; fdatasync every `fsyncIntervalMs` (and on
 *   rotation, seal and close). A process crash (`kill -9`) loses nothing that was written. Power
 *   loss can lose up to about `fsyncIntervalMs` of entries, some possibly already appended to the
 *   store but not acknowledged: the appender's position/CRC check then finds bytes it cannot
 *   verify and must start a new object (docs/design.md, invariant 5), never overwrite.
 * - `never`: like `interval` for process crashes; on power loss anything the kernel had not
 *   flushed may be lost. Only the cursor and `sealed.json` are fsynced (always, whatever the
 *   policy); the journal is fsynced only on close.
 *
 * The cursor is always durable before any segment it frees is deleted, and the drop record before
 * any segment it frees is deleted, so recovery never hands out an acknowledged or dropped entry.
 *
 * ## Memory
 *
 * Per stream at most `memoryBytesPerStream` of payload is held: entries queued for writing plus a
 * cache of the newest written ones; older entries are read back from disk one frame at a time.
 * Init entries (a few hundred bytes each) are held in memory besides, until a newer init is
 * acknowledged. The index costs ~150 bytes per unacknowledged entry (~10 bytes per dropped one).
 * If the disk falls so far behind that the write queue alone would exceed the budget, the new entry
 * is dropped ('write-backlog'), and so are the non-keyframe fragments that follow it.
 *
 * ## Drop policy (quotas)
 *
 * Quotas count payload bytes of entries neither acknowledged nor dropped (on disk or queued);
 * actual disk use is higher by the frame overhead (~100 bytes per entry) and by at most the
 * segments still holding a live entry. After every append:
 *
 * 1. stream quota: while the appending stream is over `quotaBytesPerStream`, drop from it
 *    ('quota-stream');
 * 2. total quota: while all streams together are over `quotaBytesTotal`, drop from the stream that
 *    holds the most bytes, then the next ('quota-total') — the stream hogging the disk pays, not
 *    the healthy one that happened to append last.
 *
 * Dropping from a stream takes its sessions oldest first; in a session it starts right after the
 * in-flight range (max of the acknowledged cursor, the batch begin() recorded and what read() handed
 * out — those are never dropped) and walks forward over `fragment`/`trailer` entries, never `init` entries
 * (they are skipped and kept). Once enough bytes are gone it keeps dropping until the next entry
 * is a keyframe fragment (`keyframe !== false`) or an init entry, so what remains resumes at a
 * keyframe; if no such entry exists yet it stops at the newest entry (so dropping can exceed the
 * need by up to one GOP). Each contiguous run becomes one `DroppedRange` [fromSeq, toSeq) with its
 * exact payload bytes, reported through `hooks.onDrop` and the session's 'dropped' event, and is
 * persisted in drops.json; read() skips it (the appender sees the seq jump). Dropped bytes summed
 * over all ranges equal exactly the appended bytes that will never be read.
 *
 * Disk failures: a failed write or fsync (ENOSPC, EIO) drops that batch's entries ('write-error'),
 * emits 'error' on the session (only if someone listens; always logged), abandons the segment and
 * carries on with a fresh one, so ingest never stops. A frame that fails its CRC when read back is
 * dropped ('journal-corrupt'); so are seqs missing on recovery (their size is unknown: 0 bytes).
 */
import { mkdir, open, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';
import type { SpoolDroppedRange } from './drop-ledger.js';
import { Fifo, type StreamState } from './entry-record.js';
import { SpoolClosedError, SpoolInvalidArgumentError } from './errors.js';
import { scanSession } from './session-recovery.js';
import { SessionSpool, type SpoolHost } from './session-spool.js';
import type { JournalIo, SpoolOptions } from './types.js';

export interface SpoolHooks {
  /** Every dropped range, once (the metric appendcast_dropped_bytes_total sums `bytes`). */
  onDrop?(d: SpoolDroppedRange): void;
  logger?: Logger;
  /** How journal segments are opened (tests wrap the real file handles to slow the disk down). */
  io?: JournalIo;
}

interface StreamSlot extends StreamState {
  sessions: SessionSpool[];
}

function dirName(name: string, what: string): string {
  if (name === '' || name === '.' || name === '..') throw new SpoolInvalidArgumentError(`invalid ${what} name ${JSON.stringify(name)}`);
  return encodeURIComponent(name);
}

function checkOptions(o: SpoolOptions): void {
  const positive = ['fsyncIntervalMs', 'quotaBytesPerStream', 'quotaBytesTotal', 'memoryBytesPerStream', 'segmentBytes'] as const;
  for (const k of positive) {
    if (!(typeof o[k] === 'number' && o[k] > 0)) throw new SpoolInvalidArgumentError(`spool option ${k} must be a positive number`);
  }
  if (!['always', 'interval', 'never'].includes(o.fsync)) throw new SpoolInvalidArgumentError('spool option fsync must be always|interval|never');
}

/**
 * All streams' spools under one directory; enforces the memory budget and the quotas.
 * Lifecycle: the constructor does no I/O; start() opens the directory, recovers what a previous run
 * left and starts the interval fsync; close() writes what is queued and closes every file.
 */
export class Spool {
  readonly opts: SpoolOptions;
  private readonly hooks: SpoolHooks;
  private readonly logger: Logger | undefined;
  private readonly streams = new Map<string, StreamSlot>();
  private timer: NodeJS.Timeout | undefined;
  private state: 'new' | 'starting' | 'started' | 'closed' = 'new';
  private readonly host: SpoolHost;

  constructor(opts: SpoolOptions, hooks: SpoolHooks = {}) {
    checkOptions(opts);
    this.opts = { ...opts };
    this.hooks = hooks;
    this.logger = hooks.logger?.child({ component: 'spool' });
    this.host = {
      opts: this.opts,
      logger: this.logger,
      io: hooks.io ?? { open: (path, flags) => open(path, flags) },
      afterAppend: (ss) => this.afterAppend(ss as StreamSlot),
      evict: (ss) => this.evict(ss),
      reportDrop: (d) => {
        try {
          this.hooks.onDrop?.(d);
        } catch (err) {
          this.logger?.error({ err }, 'spool onDrop hook threw'); // a metrics bug must not stop ingest
        }
      },
      removed: (sess) => this.removed(sess),
    };
  }

  /**
   * Opens the spool and scans `opts.dir` for the sessions a previous run left, oldest first: each
   * comes back started, with its persisted cursor (and the batch it had in flight), its
   * unacknowledged entries readable, `sealed` as it was. Torn journal tails are truncated; fully
   * acknowledged segments are deleted; nothing else is.
   */
  async start(): Promise<SessionSpool[]> {
    if (this.state !== 'new') throw new SpoolClosedError(`spool start() when ${this.state}`);
    this.state = 'starting';
    await mkdir(this.opts.dir, { recursive: true });
    const found: SessionSpool[] = [];
    for (const sd of await readdir(this.opts.dir, { withFileTypes: true })) {
      if (!sd.isDirectory()) continue;
      for (const d of await readdir(join(this.opts.dir, sd.name), { withFileTypes: true })) {
        if (!d.isDirectory() || d.name.endsWith('.done')) continue; // .done: retained, finished sessions
        const dir = join(this.opts.dir, sd.name, d.name);
        const scanned = await scanSession(dir, this.logger);
        if (!scanned) continue;
        const slot = this.slot(scanned.meta.stream);
        const sess = new SessionSpool({
          host: this.host, stream: slot, sessionId: scanned.meta.sessionId, dir, createdAt: scanned.meta.createdAt, recovered: scanned.recovered,
        });
        slot.sessions.push(sess);
        found.push(sess);
      }
    }
    for (const slot of this.streams.values()) slot.sessions.sort(bySessionAge);
    found.sort(bySessionAge);
    await Promise.all(found.map((s) => s.start()));
    if (this.opts.fsync === 'interval') {
      this.timer = setInterval(() => {
        for (const s of this.streams.values()) for (const sess of s.sessions) sess.requestSync();
      }, this.opts.fsyncIntervalMs);
      this.timer.unref();
    }
    this.state = 'started';
    this.logger?.info({ sessions: found.length, bytes: this.bytes }, 'spool recovered');
    return found;
  }

  /**
   * A new session, registered at once and taking appends at once (they queue, bounded by the
   * memory budget, until its directory exists): start() it. Its directory must not exist yet.
   */
  createSession(stream: string, sessionId: string): SessionSpool {
    if (this.state !== 'started') throw new SpoolClosedError(this.state === 'closed' ? 'spool is closed' : 'spool is not started');
    const dir = join(this.opts.dir, dirName(stream, 'stream'), dirName(sessionId, 'session'));
    const slot = this.slot(stream);
    const sess = new SessionSpool({ host: this.host, stream: slot, sessionId, dir, createdAt: Date.now() });
    slot.sessions.push(sess);
    return sess;
  }

  /** createSession() and start() it. */
  async openSession(stream: string, sessionId: string): Promise<SessionSpool> {
    const sess = this.createSession(stream, sessionId);
    await sess.start();
    return sess;
  }

  /** Unacknowledged, undropped payload bytes, all streams. */
  get bytes(): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.bytes;
    return n;
  }

  streamBytes(stream: string): number {
    return this.streams.get(stream)?.bytes ?? 0;
  }

  /** Arrival time (wall-clock ms) of the stream's oldest fragment neither acknowledged nor dropped, if any: its lag. */
  oldestUnackedAt(stream: string): number | undefined {
    let oldest: number | undefined;
    for (const sess of this.streams.get(stream)?.sessions ?? []) {
      const t = sess.oldestUnackedAt;
      if (t !== undefined && (oldest === undefined || t < oldest)) oldest = t;
    }
    return oldest;
  }

  /** Streams with sessions or unacknowledged bytes in the spool. */
  streamNames(): string[] {
    return [...this.streams.keys()];
  }

  /** Payload bytes of this stream held in memory (write queue + cache; init entries excluded). */
  memoryBytes(stream: string): number {
    return this.streams.get(stream)?.memBytes ?? 0;
  }

  /** Live sessions, oldest first (of one stream, or all). */
  sessions(stream?: string): SessionSpool[] {
    if (stream !== undefined) return [...(this.streams.get(stream)?.sessions ?? [])];
    return [...this.streams.values()].flatMap((s) => s.sessions).sort(bySessionAge);
  }

  /** Writes what is queued, fsyncs and closes every session's files. Deletes nothing. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.timer) clearInterval(this.timer);
    await Promise.all(this.sessions().map((s) => s.close()));
  }

  private slot(stream: string): StreamSlot {
    let s = this.streams.get(stream);
    if (!s) {
      s = { name: stream, bytes: 0, memBytes: 0, pendingBytes: 0, memFifo: new Fifo(), sessions: [] };
      this.streams.set(stream, s);
    }
    return s;
  }

  private afterAppend(slot: StreamSlot): void {
    if (slot.bytes > this.opts.quotaBytesPerStream) this.dropFrom(slot, slot.bytes - this.opts.quotaBytesPerStream, 'quota-stream');
    let over = this.bytes - this.opts.quotaBytesTotal;
    if (over > 0) {
      const bySize = [...this.streams.values()].sort((a, b) => b.bytes - a.bytes);
      for (const s of bySize) {
        if (over <= 0) break;
        over -= this.dropFrom(s, over, 'quota-total');
      }
    }
    this.evict(slot);
  }

  private dropFrom(slot: StreamSlot, need: number, reason: 'quota-stream' | 'quota-total'): number {
    let dropped = 0;
    for (const sess of slot.sessions) {
      if (dropped >= need) break;
      dropped += sess.dropOldest(need - dropped, reason);
    }
    return dropped;
  }

  /** Forgets the payload of the oldest written entries until the stream is within its budget. */
  private evict(ss: StreamState): void {
    const limit = this.opts.memoryBytesPerStream;
    for (;;) {
      const rec = ss.memFifo.peek();
      if (!rec) break;
      if (rec.inMemory) {
        // Within budget, or still queued for the disk (cannot go yet): stop.
        if (ss.memBytes <= limit || !rec.written) break;
        rec.inMemory = false;
        rec.bytes = undefined;
        ss.memBytes -= rec.size;
      }
      ss.memFifo.shift(); // evicted now, or acknowledged/dropped before
    }
  }

  private removed(sess: SessionSpool): void {
    const slot = this.streams.get(sess.stream);
    if (!slot) return;
    slot.sessions = slot.sessions.filter((s) => s !== sess);
    if (slot.sessions.length === 0 && slot.bytes === 0) {
      this.streams.delete(sess.stream);
      // Best effort: the stream directory goes when its last session does.
      void rmdir(join(this.opts.dir, dirName(sess.stream, 'stream'))).catch(() => undefined);
    }
  }
}

function bySessionAge(a: SessionSpool, b: SessionSpool): number {
  return a.createdAt - b.createdAt || (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0);
}
