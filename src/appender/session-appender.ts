import { EventEmitter } from 'node:events';
import type { FlushPolicy, RetryPolicy, RolloverPolicy } from '../config/index.js';
import type { SpoolPort } from '../spool/spool-port.js';
import type { InFlightRecord, SpoolEntry } from '../spool/types.js';
import { crc64Of } from '../store/crc64.js';
import type { AppendableStore, CreateOptions } from '../store/types.js';
import { backoffDelay, sleep } from '../util/backoff.js';
import type { Logger } from '../util/logger.js';
import type { AppendFailureAction } from './append-failure.js';
import { resume, type MediaFence, type ObjectState, type PersistedAppenderState } from './appender-state.js';
import { cutBatch, rolloverReason } from './batch-plan.js';
import { AppenderFailedError, MissingInitError, NoFreeKeyError } from './errors.js';
import { FencedAppender, wholeFence, type FencedResult, type ReconcileOutcome } from './fenced-appender.js';
import { IndexWriter, indexKeyFor, type IndexLine, type IndexState } from './index-writer.js';
import { renderKey, withCollisionSuffix } from './key-template.js';
import { objectDeadline, type RolloverReason } from './rollover.js';

export type { MediaFence, ObjectState, PersistedAppenderState, ReconcileOutcome };

export interface SessionAppenderEvents {
  appended: [info: {
    key: string; position: number; bytes: number; nextPosition: number; durationMs: number; newestReceivedAt: number; entries: number;
    /** For each fragment of the batch: ms from its arrival in the spool (complete) to this acknowledgement. */
    fragmentAgesMs: number[];
  }];
  objectOpened: [info: { key: string; seq: number; reason: RolloverReason | 'start' }];
  /** A reconnected camera's session goes on in its predecessor's object (same init, within the grace). */
  continued: [info: { key: string; position: number; gapMs: number }];
  rollover: [reason: RolloverReason];
  /** Lines queued for an object's sidecar index (the object holds their bytes already): live playlists follow them. */
  indexed: [info: { key: string; lines: readonly IndexLine[] }];
  reconciled: [outcome: ReconcileOutcome];
  appendError: [info: { code: string; action: AppendFailureAction }];
  halted: [halted: boolean];
  /** An unexpected error stopped the appender; it resumes after `retryInMs` (failures: in a row). */
  failed: [info: { error: AppenderFailedError; failures: number; retryInMs: number }];
  finished: [];
}

export interface SessionAppenderOptions {
  stream: string;
  spool: SpoolPort;
  store: AppendableStore;
  keyTemplate: string;
  contentType: string;
  flush: FlushPolicy;
  rollover: RolloverPolicy;
  retry: RetryPolicy;
  logger: Logger;
  now?: () => number;
  /** This session continues the previous one's object if its init segment is the same. */
  continuation?: Continuation;
  /** Index appends at most this often (ms; default INDEX_BATCH_MS, 5 s); 0: one per media append. */
  indexBatchMs?: number;
}

/** Where a previous session of the stream left its object, for a reconnect within the grace. */
export interface Continuation {
  object: ObjectState;
  /** The init segment at the start of that object: a continuation needs the same one. */
  init: Buffer;
  nextObjectSeq: number;
  /** How long the camera was away (wall clock), for the index's gap line. */
  gapMs: number;
}

/** What a finished appender leaves for a successor: its last object and that object's init. */
export type ObjectEnd = Omit<Continuation, 'gapMs'>;

interface Batch {
  entries: SpoolEntry[];
  /** The init segment to put first: a new object always starts with one. */
  init: Buffer | null;
  uptoSeq: number;
}

export type AppenderEnd = 'finished' | 'closed';

const MAX_KEY_COLLISIONS = 1000;
/** Idle: how often to look at the spool even without a 'readable' (belt and braces; unref'd). */
const IDLE_POLL_MS = 1000;

/**
 * Drains one remuxer session's spool into its object(s), exactly once, in order.
 *
 * One append in flight; batches of ready entries (flush.maxBytes / flush.maxDelay); every append
 * carries the position the store returned last (the fence) and goes through the FencedAppender
 * (unknown outcomes reconciled by HEAD, never resent blindly; someone else's bytes mean a new
 * object). The spool port records each batch as in flight before it is sent (begin) and learns
 * its outcome (commit), so a crash at any moment is settled on restart by the same reconciliation.
 * The sidecar index trails in its own writers.
 *
 * Lifecycle: the constructor does nothing; start() runs the loop (supervised: an unexpected error
 * is reported and the loop resumed after a backoff) until the session is sealed and fully
 * acknowledged, when the spool session is finished; close() stops after the append in flight.
 */
export class SessionAppender extends EventEmitter<SessionAppenderEvents> {
  private readonly o: SessionAppenderOptions;
  private readonly port: SpoolPort;
  private readonly log: Logger;
  private readonly now: () => number;
  private state: PersistedAppenderState;
  private nextSeq: number;
  private readonly abort = new AbortController();
  private running: Promise<AppenderEnd> | undefined;
  private readonly media: FencedAppender;
  /** Index writers by index key: the current object's, and earlier ones still trailing. */
  private readonly indexes = new Map<string, IndexWriter>();
  private haltedNow = false;
  /** Unexpected failures since the last acknowledged batch. */
  private failures = 0;
  /** Why the next object is opened, when the last one was left (full or foreign). */
  private pendingReason: RolloverReason | null = null;
  /** receivedAt of the newest entry the store acknowledged. */
  newestAckedAt = 0;
  /** The init segment the current object starts with (known for objects this run appended to). */
  private objectInit: Buffer | null = null;
  /** A continuation not yet decided: the session's first entry (its init) settles it. */
  private continuing: { init: Buffer; gapMs: number } | undefined;

  constructor(o: SessionAppenderOptions) {
    super();
    this.o = o;
    this.port = o.spool;
    this.now = o.now ?? Date.now;
    this.log = o.logger.child({ stream: o.stream, session: o.spool.sessionId });
    const { state } = resume(o.spool.cursor);
    this.state = state;
    this.nextSeq = o.spool.cursor.nextSeq;
    const c = o.continuation;
    // Only a session that has appended nothing yet can continue another's object.
    if (c && !state.object && state.nextObjectSeq === 0 && !o.spool.cursor.inflight) {
      this.state = { ...state, object: c.object, nextObjectSeq: c.nextObjectSeq };
      this.objectInit = c.init;
      this.continuing = { init: c.init, gapMs: c.gapMs };
    }
    this.media = new FencedAppender({
      store: o.store, log: this.log, retry: o.retry, signal: this.abort.signal,
      onFatal: () => this.haltFor(),
      onHealthy: () => {
        if (this.haltedNow) this.setHalted(false);
      },
      onAppendError: (err, action) => {
        const code = (err as { code?: string }).code ?? 'unknown';
        this.emit('appendError', { code, action });
        this.log.warn({ err, action }, 'append failed');
      },
      onReconciled: (outcome, fence, head) => {
        this.log.info({ key: fence.key, outcome, expected: fence.ends.at(-1)!.position, size: head?.size }, 'reconciled an append of unknown outcome');
        this.emit('reconciled', outcome);
      },
    });
  }

  get objectKey(): string | undefined {
    return this.state.object?.key;
  }

  get position(): number {
    return this.state.object?.position ?? 0;
  }

  get halted(): boolean {
    return this.haltedNow;
  }

  /** Where this session left its object (after 'finished'), for a successor within the grace; null if unknown. */
  objectEnd(): ObjectEnd | null {
    const obj = this.state.object;
    if (!obj || !this.objectInit || obj.position === 0) return null;
    return { object: { ...obj, index: this.indexWriter(obj.index).snapshot() }, init: this.objectInit, nextObjectSeq: this.state.nextObjectSeq };
  }

  /** Starts draining (idempotent); whenDone() tells how it ended. */
  start(): void {
    if (this.running) return;
    // Index lines a previous run left pending go first (they trail; the media does not wait).
    for (const index of [this.state.object?.index, ...this.state.trailingIndexes]) {
      if (index) this.indexWriter(index).start();
    }
    this.running = this.supervise();
  }

  /** 'finished': sealed, fully acknowledged, the spool session removed; 'closed': close() stopped it first. */
  whenDone(): Promise<AppenderEnd> {
    return this.running ?? Promise.resolve('closed');
  }

  /** Stops after the append in flight (if any) settles; the spool keeps what is left. */
  async close(): Promise<void> {
    this.abort.abort();
    await this.running;
    await Promise.all([...this.indexes.values()].map((w) => w.close()));
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /**
   * An unexpected error (a spool file that cannot be written, a bug) must not park the session
   * until the next start while the others go on: it is logged and reported ('failed'), and the
   * loop resumes after a jittered backoff; a batch the spool still records as in flight is settled
   * by HEAD first, exactly as after a crash.
   */
  private async supervise(): Promise<AppenderEnd> {
    for (;;) {
      try {
        return await this.run();
      } catch (err) {
        if (this.stopped) return 'closed';
        this.failures++;
        const error = new AppenderFailedError(this.o.stream, this.port.sessionId, err);
        const retryInMs = backoffDelay(this.failures - 1, this.o.retry.baseDelayMs, this.o.retry.maxDelayMs);
        this.log.error({ err, failures: this.failures, retryInMs }, 'appender failed unexpectedly; resuming after a backoff');
        this.emit('failed', { error, failures: this.failures, retryInMs });
        await sleep(retryInMs, this.abort.signal);
        if (this.stopped) return 'closed';
      }
    }
  }

  private async run(): Promise<AppenderEnd> {
    // A batch in flight (at a crash, or when a run failed) is settled first, from the state that
    // went with it. Otherwise the state in memory is the newest (the cursor is derived from it).
    const { state, inflight } = resume(this.port.cursor);
    if (inflight) {
      this.state = state;
      this.nextSeq = this.port.cursor.nextSeq;
      await this.settle(inflight.record, inflight.fence);
    }
    while (!this.stopped) {
      const batch = await this.nextBatch();
      // Stopping while the batch was planned: nothing new goes out (its key may not even be checked).
      if (!batch || this.stopped) break;
      await this.deliver(batch);
    }
    if (this.stopped) return 'closed';
    // The index trails the media: let it catch up (bounded: it gives up after a few attempts)
    // before the spool, which holds its pending lines, goes.
    await Promise.all([...this.indexes.values()].map((w) => w.idle()));
    if (this.stopped) return 'closed';
    this.log.info({ key: this.state.object?.key, position: this.position }, 'session fully appended; removing its spool');
    await this.port.finish();
    this.emit('finished');
    return 'finished';
  }

  // ------------------------------------------------------------------------------------------
  // Planning a batch
  // ------------------------------------------------------------------------------------------

  private async nextBatch(): Promise<Batch | null> {
    const { flush, rollover } = this.o;
    for (;;) {
      if (this.stopped) return null;
      const read = await this.port.read(this.nextSeq, flush.maxBytes);
      const first = read.entries[0];
      if (!first) {
        // Everything readable was dropped by the quota since: skip past it.
        if (read.readableSeq > this.nextSeq) {
          this.noteGap(read.readableSeq);
          this.nextSeq = read.readableSeq;
        }
        if (read.ended) return null;
        await this.port.waitReadable(this.nextSeq, IDLE_POLL_MS, this.abort.signal);
        continue;
      }
      if (first.seq > this.nextSeq) this.noteGap(first.seq);
      this.nextSeq = first.seq;
      if (this.continuing) {
        const c = this.continuing;
        this.continuing = undefined;
        if (first.kind === 'init' && first.bytes.equals(c.init) && this.state.object) {
          await this.continueObject(first, c.gapMs);
          continue;
        }
        // Other codec parameters: the init entry below opens a new object (init-change).
        this.log.info({ key: this.state.object?.key }, 'the reconnected camera\'s parameters changed: a new object');
      }
      const reason = rolloverReason(this.state.object, first, this.state.gapAfter, this.pendingReason, rollover);
      // A batch that opens a new object is measured against that object: empty, or holding only the
      // init segment that a rolled-over object repeats first.
      let target = { position: this.state.object?.position ?? 0, openedAt: this.state.object?.openedAt ?? first.receivedAt };
      let init: Buffer | null = null;
      if (reason !== null || target.position === 0) {
        if (first.kind !== 'init') {
          if (!read.init) throw new MissingInitError(this.o.stream, this.port.sessionId, first.seq);
          init = read.init.bytes;
        }
        target = { position: init?.length ?? 0, openedAt: first.receivedAt };
      }
      const entries = cutBatch(read.entries, target.position, objectDeadline(target.openedAt, rollover), rollover.maxBytes);
      const last = entries.at(-1)!;
      const bytes = entries.reduce((n, e) => n + e.bytes.length, 0);
      const age = this.now() - first.receivedAt;
      const more = read.readableSeq > last.seq + 1 || read.ended;
      // Flush now when the batch is full, the oldest entry has waited long enough, or the batch
      // was cut short by a boundary (more is readable behind it).
      if (bytes >= flush.maxBytes || age >= flush.maxDelayMs || more) {
        if (reason !== null) await this.openObject(reason, first.receivedAt);
        return { entries, init, uptoSeq: last.seq + 1 };
      }
      await this.port.waitReadable(last.seq + 1, Math.max(1, flush.maxDelayMs - age), this.abort.signal);
    }
  }

  /**
   * The reconnected camera's init segment is the one its object starts with: it is not appended
   * again (consumed like an acknowledged append of 0 bytes), a gap line goes to the index, and the
   * fragments follow in the same object.
   */
  private async continueObject(init: SpoolEntry, gapMs: number): Promise<void> {
    const obj = this.state.object!;
    const fence: MediaFence = { key: obj.key, position: obj.position, crcBefore: obj.crc, bytes: 0, crcAfter: obj.crc, withInit: false };
    const record: InFlightRecord = { fromSeq: init.seq, uptoSeq: init.seq + 1, fence };
    await this.port.begin(record, this.persisted());
    const gap: IndexLine[] = [{ type: 'gap', offset: obj.position, length: 0, w: init.receivedAt, g: Math.round(gapMs) / 1000 }];
    this.indexWriter(obj.index).push(gap);
    this.nextSeq = record.uptoSeq;
    await this.port.commit(record, { landed: true, state: this.persisted() });
    this.emit('indexed', { key: obj.key, lines: gap });
    this.log.info({ key: obj.key, position: obj.position, gapMs }, 'camera back within the grace: the recording goes on in the same object');
    this.emit('continued', { key: obj.key, position: obj.position, gapMs });
  }

  private noteGap(resumeSeq: number): void {
    if (this.state.object && this.state.object.position > 0) this.state.gapAfter = resumeSeq;
  }

  /** Picks a key nobody used (HEAD); the object is created by its first append. */
  private async openObject(reason: RolloverReason | 'start', firstArrival: number): Promise<void> {
    this.pendingReason = null;
    if (reason !== 'start') this.emit('rollover', reason);
    const openedAt = this.now();
    const seq = this.state.nextObjectSeq;
    const base = renderKey(this.o.keyTemplate, { stream: this.o.stream, date: new Date(openedAt), seq });
    let key = base;
    for (let n = 1; ; n++) {
      const exists = await this.media.request('head', () => this.o.store.head(key));
      if (!exists) break;
      if (n > MAX_KEY_COLLISIONS) throw new NoFreeKeyError(base, MAX_KEY_COLLISIONS);
      key = withCollisionSuffix(base, n);
    }
    const index = this.indexWriter(IndexWriter.initial(indexKeyFor(key)));
    this.state = {
      ...this.state,
      object: { key, seq, position: 0, crc: '0', openedAt: Math.min(openedAt, firstArrival), index: index.snapshot() },
      nextObjectSeq: seq + 1,
      gapAfter: null,
    };
    this.log.info({ key, reason, objectSeq: seq }, 'object opened');
    this.emit('objectOpened', { key, seq, reason });
  }

  // ------------------------------------------------------------------------------------------
  // Delivering a batch
  // ------------------------------------------------------------------------------------------

  private createOptions(objSeq: number): CreateOptions {
    return {
      contentType: this.o.contentType,
      metadata: {
        'appendcast-stream': this.o.stream,
        'appendcast-session': this.port.sessionId,
        'appendcast-object-seq': String(objSeq),
      },
    };
  }

  /** begin (recorded as in flight) → fenced append → commit what became of it. */
  private async deliver(batch: Batch): Promise<void> {
    const obj = this.state.object!;
    const chunks = batch.init ? [batch.init, ...batch.entries.map((e) => e.bytes)] : batch.entries.map((e) => e.bytes);
    const bytes = chunks.reduce((n, c) => n + c.length, 0);
    const crcAfter = crc64Of(chunks, BigInt(obj.crc));
    const fence: MediaFence = { key: obj.key, position: obj.position, crcBefore: obj.crc, bytes, crcAfter: crcAfter.toString(), withInit: batch.init !== null };
    const record: InFlightRecord = { fromSeq: batch.entries[0]!.seq, uptoSeq: batch.uptoSeq, fence };
    await this.port.begin(record, this.persisted());
    const result = await this.media.append(toFence(fence), chunks, obj.position === 0 ? this.createOptions(obj.seq) : undefined);
    await this.conclude(result.kind, record, fence, batch, result.kind === 'landed' ? result.durationMs : 0);
  }

  /** What the store made of a batch: acknowledged, or the object is left for a new one. */
  private async conclude(outcome: FencedResult['kind'] | 'absent', record: InFlightRecord, fence: MediaFence, batch: Batch, durationMs: number): Promise<void> {
    switch (outcome) {
      case 'landed':
        return this.acknowledge(record, fence, batch, durationMs);
      case 'foreign':
        return this.abandon(record, 'foreign-writer');
      case 'too-large':
        return this.abandon(record, 'size');
      case 'absent':
        // Certainly not in the store: the entries are read again and go in the next batch.
        return this.port.commit(record, { landed: false, state: this.persisted() });
      case 'unsettled':
        return; // stopping: the spool keeps the record, the next start settles it
    }
  }

  /** The batch is in the object: queue its index lines, then let the spool forget it. */
  private async acknowledge(record: InFlightRecord, fence: MediaFence, batch: Batch, durationMs: number): Promise<void> {
    const obj = this.state.object!;
    const first = batch.entries[0];
    if (batch.init) this.objectInit = batch.init;
    else if (fence.position === 0 && first?.kind === 'init') this.objectInit = first.bytes;
    // Queued before the state is committed, so the committed state holds them until the index has them.
    const lines = IndexWriter.lines(fence.position, batch.init, batch.entries);
    this.indexWriter(obj.index).push(lines);
    const nextPosition = fence.position + fence.bytes;
    this.state = { ...this.state, object: { ...obj, position: nextPosition, crc: fence.crcAfter } };
    this.nextSeq = record.uptoSeq;
    this.failures = 0;
    const newest = batch.entries.reduce((m, e) => Math.max(m, e.receivedAt), 0);
    this.newestAckedAt = Math.max(this.newestAckedAt, newest);
    await this.port.commit(record, { landed: true, state: this.persisted() });
    const now = this.now();
    const fragmentAgesMs: number[] = [];
    for (const e of batch.entries) if (e.kind === 'fragment') fragmentAgesMs.push(now - e.receivedAt);
    this.emit('indexed', { key: obj.key, lines });
    this.emit('appended', {
      key: obj.key, position: fence.position, bytes: fence.bytes, nextPosition, durationMs, newestReceivedAt: newest,
      entries: batch.entries.length, fragmentAgesMs,
    });
  }

  /** The current object is done with (full, or someone else's): the same entries go to a new one. */
  private async abandon(record: InFlightRecord, reason: RolloverReason): Promise<void> {
    this.log.warn({ key: this.state.object?.key, reason }, 'leaving the object; the pending entries go to a new one');
    this.state = { ...this.state, object: null, gapAfter: null };
    this.objectInit = null;
    this.pendingReason = reason;
    await this.port.commit(record, { landed: false, state: this.persisted() });
  }

  /** A batch whose outcome is unknown (in flight at a crash, or when a run failed): HEAD, then commit. */
  private async settle(record: InFlightRecord, fence: MediaFence | null): Promise<void> {
    if (!fence || !this.state.object) {
      await this.port.commit(record, { landed: false, state: this.persisted() });
      return;
    }
    const outcome = await this.media.settle(toFence(fence));
    if (outcome.kind === 'unsettled') return;
    this.log.info({ key: fence.key, outcome: outcome.kind, fromSeq: record.fromSeq, uptoSeq: record.uptoSeq }, 'settled the append that was in flight');
    let batch: Batch = { entries: [], init: null, uptoSeq: record.uptoSeq };
    if (outcome.kind === 'landed') {
      // Its entries, for the index and the metrics: still in the spool (pinned, never dropped).
      const read = await this.port.read(record.fromSeq, fence.bytes);
      batch = { entries: read.entries.filter((e) => e.seq < record.uptoSeq), init: fence.withInit ? (read.init?.bytes ?? null) : null, uptoSeq: record.uptoSeq };
    }
    await this.conclude(outcome.kind, record, fence, batch, 0);
  }

  /** The writer of one index object (made once, kept while its lines trail the media). */
  private indexWriter(state: IndexState): IndexWriter {
    let w = this.indexes.get(state.key);
    if (!w) {
      w = new IndexWriter(this.o.store, state, this.log, this.o.indexBatchMs !== undefined ? { batchMs: this.o.indexBatchMs } : {});
      this.indexes.set(state.key, w);
    }
    return w;
  }

  /** The state to persist: each index as its writer has it, and earlier indexes that still trail. */
  private persisted(): PersistedAppenderState {
    const current = this.state.object ? indexKeyFor(this.state.object.key) : undefined;
    const trailing: IndexState[] = [];
    for (const [key, w] of this.indexes) {
      if (key === current) continue;
      if (w.backlog > 0) trailing.push(w.snapshot());
      else this.indexes.delete(key); // caught up: nothing left to persist or wait for
    }
    const object: ObjectState | null = this.state.object && { ...this.state.object, index: this.indexWriter(this.state.object.index).snapshot() };
    return { ...this.state, object, trailingIndexes: trailing };
  }

  private setHalted(h: boolean): void {
    this.haltedNow = h;
    this.emit('halted', h);
  }

  /** A non-retryable error: stop appending (the spool keeps recording) and probe again later. */
  private async haltFor(): Promise<void> {
    if (!this.haltedNow) {
      this.log.error({ key: this.state.object?.key, probeSeconds: this.o.retry.haltedProbeSeconds },
        'appends halted by a non-retryable store error (credentials, permissions, bucket?); the spool keeps recording');
      this.setHalted(true);
    }
    await sleep(this.o.retry.haltedProbeSeconds * 1000, this.abort.signal);
  }
}

function toFence(f: MediaFence): ReturnType<typeof wholeFence> {
  return wholeFence(f.key, f.position, BigInt(f.crcBefore), f.bytes, BigInt(f.crcAfter));
}
