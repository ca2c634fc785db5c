import { EventEmitter } from 'node:events';
import type { FlushPolicy, RetryPolicy, RolloverPolicy } from '../config/index.js';
import type { SessionSpool } from '../spool/session-spool.js';
import type { AppenderState, SpoolEntry } from '../spool/types.js';
import { AppenderFailedError } from './errors.js';
import { crc64Of } from '../store/crc64.js';
import type { AppendableStore, CreateOptions } from '../store/types.js';
import { backoffDelay, sleep } from '../util/backoff.js';
import type { Logger } from '../util/logger.js';
import { FencedAppender, wholeFence, type FencedResult, type ReconcileOutcome } from './fenced-appender.js';
import { renderKey, withCollisionSuffix } from './key-template.js';
import { objectDeadline, type RolloverReason } from './rollover.js';
import { IndexWriter, indexKeyFor, type IndexState } from './index-writer.js';

/** The object being appended to, as persisted in the spool cursor (JSON: CRCs as decimal strings). */
export interface ObjectState {
  key: string;
  /** Per-session object counter, 0 first. */
  seq: number;
  position: number;
  crc: string;
  openedAt: number;
  index: IndexState;
}

/** An append whose outcome was not known yet when the state was saved (crash recovery reconciles it). */
export interface InflightState {
  uptoSeq: number;
  fromSeq: number;
  position: number;
  bytes: number;
  crcAfter: string;
  withInit: boolean;
}

export interface PersistedAppenderState extends AppenderState {
  v: 1;
  object: ObjectState | null;
  nextObjectSeq: number;
  inflight: InflightState | null;
  /** Entries before this seq were dropped by the spool quota after the current object's last byte. */
  gapAfter: number | null;
  /** Indexes of earlier objects whose lines are still being written (absent in older states). */
  trailingIndexes?: IndexState[];
}

export type { ReconcileOutcome };

export interface SessionAppenderEvents {
  appended: [info: {
    key: string; position: number; bytes: number; nextPosition: number; durationMs: number; newestReceivedAt: number; entries: number;
    /** For each fragment of the batch: ms from its arrival in the spool (complete) to this acknowledgement. */
    fragmentAgesMs: number[];
  }];
  objectOpened: [info: { key: string; seq: number; reason: RolloverReason | 'start' }];
  rollover: [reason: RolloverReason];
  reconciled: [outcome: ReconcileOutcome];
  appendError: [info: { code: string; action: string }];
  halted: [halted: boolean];
  /** An unexpected error stopped the appender; it resumes after `retryInMs` (failures: in a row). */
  failed: [info: { error: AppenderFailedError; failures: number; retryInMs: number }];
  finished: [];
}

export interface SessionAppenderOptions {
  stream: string;
  spool: SessionSpool;
  store: AppendableStore;
  keyTemplate: string;
  contentType: string;
  flush: FlushPolicy;
  rollover: RolloverPolicy;
  retry: RetryPolicy;
  logger: Logger;
  now?: () => number;
}

interface Batch {
  entries: SpoolEntry[];
  /** The init segment to put first: a new object always starts with one. */
  init: Buffer | null;
  uptoSeq: number;
}

const MAX_KEY_COLLISIONS = 1000;

/**
 * Drains one remuxer session's spool into its object(s), exactly once, in order.
 *
 * One append in flight; batches of ready entries (flush.maxBytes / flush.maxDelay); every append
 * carries the position the store returned last (the fence). Failures whose outcome is unknown are
 * reconciled by HEAD (length and CRC-64), never resent blindly; someone else's bytes mean a new
 * object. Before each append, what it is about to do is saved in the spool cursor, so a crash at
 * any moment is settled on restart by the same reconciliation.
 */
export class SessionAppender extends EventEmitter<SessionAppenderEvents> {
  private readonly o: SessionAppenderOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private state: PersistedAppenderState;
  private nextSeq: number;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private readonly media: FencedAppender;
  /** Index writers by index key: the current object's, and earlier ones still trailing. */
  private readonly indexes = new Map<string, IndexWriter>();
  private haltedNow = false;
  /** Unexpected failures since the last acknowledged batch. */
  private failures = 0;
  private wake: (() => void) | undefined;
  /** Why the next object is opened, when the last one was left (full or foreign). */
  private pendingReason: RolloverReason | null = null;
  /** receivedAt of the newest entry the store acknowledged. */
  newestAckedAt = 0;

  constructor(o: SessionAppenderOptions) {
    super();
    this.o = o;
    this.now = o.now ?? Date.now;
    this.log = o.logger.child({ stream: o.stream, session: o.spool.sessionId });
    const saved = o.spool.cursor.state as PersistedAppenderState | null;
    this.state = saved && saved.v === 1 ? saved : { v: 1, object: null, nextObjectSeq: 0, inflight: null, gapAfter: null };
    this.nextSeq = o.spool.cursor.nextSeq;
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
    o.spool.on('readable', () => this.poke());
    o.spool.on('sealed', () => this.poke());
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

  /** Runs until the session is sealed and fully acknowledged (then its spool is removed), or stop(). */
  start(): Promise<void> {
    if (!this.running) {
      // Index lines a previous run left pending go first (they trail; the media does not wait).
      for (const index of [this.state.object?.index, ...(this.state.trailingIndexes ?? [])]) {
        if (index) this.indexWriter(index).start();
      }
      this.running = this.supervise();
    }
    return this.running;
  }

  /**
   * An unexpected error (a spool file that cannot be written, a bug) must not park the session
   * until the next start while the others go on: it is logged and reported ('failed'), and the
   * loop resumes after a jittered backoff from its state in memory; a batch that was in flight is
   * settled by HEAD first, exactly as after a crash.
   */
  private async supervise(): Promise<void> {
    for (;;) {
      try {
        await this.run();
        return;
      } catch (err) {
        if (this.stopped) return;
        this.failures++;
        const error = new AppenderFailedError(this.o.stream, this.o.spool.sessionId, err);
        const retryInMs = backoffDelay(this.failures - 1, this.o.retry.baseDelayMs, this.o.retry.maxDelayMs);
        this.log.error({ err, failures: this.failures, retryInMs }, 'appender failed unexpectedly; resuming after a backoff');
        this.emit('failed', { error, failures: this.failures, retryInMs });
        await sleep(retryInMs, this.abort.signal);
      }
    }
  }

  /** Stops after the append in flight (if any) settles; the spool keeps what is left. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.poke();
    await this.running;
    await Promise.all([...this.indexes.values()].map((w) => w.close()));
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private waitForWork(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
      if (this.abort.signal.aborted) this.poke();
    });
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    if (this.state.inflight) await this.recoverInflight(this.state.inflight);
    while (!this.stopped) {
      const batch = await this.nextBatch();
      if (this.stopped) return;
      if (!batch) break;
      await this.deliver(batch);
    }
    if (this.stopped) return;
    // The index trails the media: let it catch up (bounded: it gives up after a few attempts)
    // before the spool, which holds its pending lines, goes.
    await Promise.all([...this.indexes.values()].map((w) => w.idle()));
    if (this.stopped) return;
    this.log.info({ key: this.state.object?.key, position: this.position }, 'session fully appended; removing its spool');
    await this.o.spool.destroy();
    this.emit('finished');
  }

  // ------------------------------------------------------------------------------------------
  // Planning a batch
  // ------------------------------------------------------------------------------------------

  private async nextBatch(): Promise<Batch | null> {
    const { spool, flush } = this.o;
    for (;;) {
      if (this.stopped) return null;
      if (spool.readableSeq <= this.nextSeq) {
        // Not `sealed`: sealing waits for the journal writes in flight, and what they carry is
        // still to come (issue 8: taking sealed for drained lost the tail until a restart).
        if (spool.ended) return null;
        await this.waitForWork(1000);
        continue;
      }
      let entries = await spool.read(this.nextSeq, flush.maxBytes);
      if (entries.length === 0) {
        // Everything readable was dropped by the quota since: skip past it.
        this.noteGap(spool.readableSeq);
        this.nextSeq = spool.readableSeq;
        continue;
      }
      if (entries[0]!.seq > this.nextSeq) this.noteGap(entries[0]!.seq);
      this.nextSeq = entries[0]!.seq;
      const reason = this.rolloverReason(entries[0]!);
      // A batch that opens a new object is measured against that object: empty, or holding only the
      // init segment that a rolled-over object repeats first.
      let target = { position: this.state.object?.position ?? 0, openedAt: this.state.object?.openedAt ?? entries[0]!.receivedAt };
      let init: Buffer | null = null;
      if (reason !== null || target.position === 0) {
        if (entries[0]!.kind !== 'init') {
          const i = await spool.initFor(entries[0]!.seq);
          if (!i) throw new Error(`no init segment in the spool before entry ${entries[0]!.seq}`);
          init = i.bytes;
        }
        target = { position: init?.length ?? 0, openedAt: entries[0]!.receivedAt };
      }
      entries = this.cut(entries, target.position, objectDeadline(target.openedAt, this.o.rollover));
      const bytes = entries.reduce((n, e) => n + e.bytes.length, 0);
      const age = this.now() - entries[0]!.receivedAt;
      const more = spool.readableSeq > entries[entries.length - 1]!.seq + 1 || spool.sealed;
      // Flush now when the batch is full, the oldest entry has waited long enough, or the batch
      // was cut short by a boundary (more is readable behind it).
      if (bytes >= flush.maxBytes || age >= flush.maxDelayMs || more) {
        if (reason !== null) await this.openObject(reason, entries[0]!.receivedAt);
        return { entries, init, uptoSeq: entries[entries.length - 1]!.seq + 1 };
      }
      await this.waitForWork(Math.max(1, flush.maxDelayMs - age));
    }
  }

  private noteGap(resumeSeq: number): void {
    if (this.state.object && this.state.object.position > 0) this.state.gapAfter = resumeSeq;
  }

  /** Why the batch starting with `first` needs a new object; null when it goes to the current one. */
  private rolloverReason(first: SpoolEntry): RolloverReason | 'start' | null {
    const obj = this.state.object;
    if (!obj) return this.pendingReason ?? 'start';
    if (first.kind === 'init') return obj.position > 0 ? 'init-change' : null;
    if (obj.position === 0) return null;
    if (this.state.gapAfter !== null && first.seq >= this.state.gapAfter) return 'gap';
    if (obj.position + first.bytes.length > this.o.rollover.maxBytes) return 'size';
    if (first.kind === 'fragment' && first.keyframe !== false && first.receivedAt >= objectDeadline(obj.openedAt, this.o.rollover)) return 'duration';
    return null;
  }

  /**
   * Keeps the longest prefix of `entries` that can go into one append to an object that holds
   * `position` bytes and ends at `deadline`: stops at a seq jump (a dropped range), before an init
   * entry that is not first, and at the size and duration boundaries (duration: at a keyframe).
   */
  private cut(entries: SpoolEntry[], position: number, deadline: number): SpoolEntry[] {
    const out: SpoolEntry[] = [];
    for (const e of entries) {
      if (out.length > 0) {
        if (e.seq !== out[out.length - 1]!.seq + 1) break;
        if (e.kind === 'init') break;
        if (position + e.bytes.length > this.o.rollover.maxBytes) break;
        if (e.kind === 'fragment' && e.keyframe !== false && e.receivedAt >= deadline) break;
      }
      out.push(e);
      position += e.bytes.length;
    }
    return out;
  }

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
      if (n > MAX_KEY_COLLISIONS) throw new Error(`no free key near ${base}`);
      key = withCollisionSuffix(base, n);
    }
    const index = this.indexWriter(IndexWriter.initial(indexKeyFor(key)));
    this.state = {
      ...this.state,
      object: { key, seq, position: 0, crc: '0', openedAt: Math.min(openedAt, firstArrival), index: index.snapshot() },
      nextObjectSeq: seq + 1,
      gapAfter: null,
    };
    await this.o.spool.saveState(this.persisted());
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
        'appendcast-session': this.o.spool.sessionId,
        'appendcast-object-seq': String(objSeq),
      },
    };
  }

  private async deliver(batch: Batch): Promise<void> {
    const obj = this.state.object!;
    const chunks = batch.init ? [batch.init, ...batch.entries.map((e) => e.bytes)] : batch.entries.map((e) => e.bytes);
    const bytes = chunks.reduce((n, c) => n + c.length, 0);
    const crcAfter = crc64Of(chunks, BigInt(obj.crc));
    const inflight: InflightState = {
      uptoSeq: batch.uptoSeq, fromSeq: batch.entries[0]!.seq, position: obj.position, bytes, crcAfter: crcAfter.toString(), withInit: batch.init !== null,
    };
    this.state = { ...this.state, inflight };
    await this.o.spool.saveState(this.persisted());
    this.o.spool.setInFlight(batch.uptoSeq);
    const fence = wholeFence(obj.key, obj.position, BigInt(obj.crc), bytes, crcAfter);
    const result = await this.media.append(fence, chunks, obj.position === 0 ? this.createOptions(obj.seq) : undefined);
    await this.conclude(result, batch, inflight);
  }

  /** What the store made of a batch: acknowledged, or the object is left for a new one. */
  private async conclude(result: FencedResult, batch: Batch, inflight: InflightState): Promise<void> {
    switch (result.kind) {
      case 'landed':
        return this.acknowledge(batch, inflight, result.durationMs);
      case 'foreign':
        return this.abandon('foreign-writer');
      case 'too-large':
        return this.abandon('size');
      case 'unsettled':
        return; // stopping: the cursor keeps `inflight`, the next start settles it
    }
  }

  /** The batch is in the object: queue its index lines, then let the spool forget it. */
  private async acknowledge(batch: Batch, inflight: InflightState, durationMs: number): Promise<void> {
    const obj = this.state.object!;
    // Queued before the state is saved, so the saved state holds them until the index has them.
    this.indexWriter(obj.index).push(IndexWriter.lines(inflight.position, batch.init, batch.entries));
    this.state = { ...this.state, object: { ...obj, position: inflight.position + inflight.bytes, crc: inflight.crcAfter }, inflight: null };
    this.nextSeq = batch.uptoSeq;
    this.failures = 0;
    const newest = batch.entries.reduce((m, e) => Math.max(m, e.receivedAt), 0);
    this.newestAckedAt = Math.max(this.newestAckedAt, newest);
    await this.o.spool.ack(batch.uptoSeq, this.persisted());
    const now = this.now();
    const fragmentAgesMs: number[] = [];
    for (const e of batch.entries) if (e.kind === 'fragment') fragmentAgesMs.push(now - e.receivedAt);
    this.emit('appended', {
      key: obj.key, position: inflight.position, bytes: inflight.bytes, nextPosition: inflight.position + inflight.bytes, durationMs, newestReceivedAt: newest,
      entries: batch.entries.length, fragmentAgesMs,
    });
  }

  /** The current object is done with (full, or someone else's): the same entries go to a new one. */
  private async abandon(reason: RolloverReason): Promise<void> {
    this.log.warn({ key: this.state.object?.key, reason }, 'leaving the object; the pending entries go to a new one');
    this.state = { ...this.state, object: null, inflight: null, gapAfter: null };
    this.pendingReason = reason;
    await this.o.spool.saveState(this.persisted());
  }

  /** After a crash: the cursor says an append was in flight. Settle it before anything else. */
  private async recoverInflight(inflight: InflightState): Promise<void> {
    const obj = this.state.object;
    if (!obj) {
      this.state = { ...this.state, inflight: null };
      return;
    }
    this.o.spool.setInFlight(inflight.uptoSeq);
    const outcome = await this.media.settle(wholeFence(obj.key, inflight.position, BigInt(obj.crc), inflight.bytes, BigInt(inflight.crcAfter)));
    if (outcome.kind === 'unsettled') return;
    this.log.info({ key: obj.key, outcome: outcome.kind, fromSeq: inflight.fromSeq, uptoSeq: inflight.uptoSeq }, 'recovered the append in flight at the crash');
    if (outcome.kind === 'landed') {
      const entries = await this.o.spool.read(inflight.fromSeq, inflight.bytes);
      const batchEntries = entries.filter((e) => e.seq < inflight.uptoSeq);
      const init = inflight.withInit ? ((await this.o.spool.initFor(inflight.fromSeq))?.bytes ?? null) : null;
      await this.acknowledge({ entries: batchEntries, init, uptoSeq: inflight.uptoSeq }, inflight, 0);
    } else if (outcome.kind === 'foreign') {
      await this.abandon('foreign-writer');
    } else {
      this.state = { ...this.state, inflight: null };
      await this.o.spool.saveState(this.persisted());
    }
  }

  /** The writer of one index object (made once, kept while its lines trail the media). */
  private indexWriter(state: IndexState): IndexWriter {
    let w = this.indexes.get(state.key);
    if (!w) {
      w = new IndexWriter(this.o.store, state, this.log);
      this.indexes.set(state.key, w);
    }
    return w;
  }

  /** The state to persist: with each index as its writer has it, and earlier indexes that still trail. */
  private persisted(): PersistedAppenderState {
    const current = this.state.object ? indexKeyFor(this.state.object.key) : undefined;
    const trailing: IndexState[] = [];
    for (const [key, w] of this.indexes) {
      if (key === current) continue;
      if (w.backlog > 0) trailing.push(w.snapshot());
      else this.indexes.delete(key); // caught up: nothing left to persist or wait for
    }
    const object = this.state.object && { ...this.state.object, index: this.indexWriter(this.state.object.index).snapshot() };
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
