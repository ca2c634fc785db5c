import type { AppendableStore, CreateOptions, HeadResult } from '../store/types.js';
import { backoffDelay, sleep } from '../util/backoff.js';
import type { Logger } from '../util/logger.js';
import { classifyAppendError, isFatalStoreError, type AppendFailureAction } from './append-failure.js';

/** Where a position-fenced append goes, and what the object looks like if it landed. */
export interface Fence {
  key: string;
  /** The object's length before the append (the fence), and its CRC-64 there. */
  position: number;
  crc: bigint;
  /**
   * Object ends (length, CRC-64) that mean "our bytes are there", ascending. The media has one: its
   * whole batch. The index also accepts every whole-line prefix, so that after a crash it can
   * recognise how far its own trailing appends got.
   */
  ends: readonly FenceEnd[];
}

export interface FenceEnd {
  position: number;
  crc: bigint;
}

export type ReconcileOutcome = 'landed' | 'absent' | 'foreign';

export type FencedResult =
  /** The object ends at `ends[end]`, with our bytes. */
  | { kind: 'landed'; end: number; durationMs: number }
  /** The object is someone else's (their bytes, or not appendable): never write to it again. */
  | { kind: 'foreign' }
  /** The store refused: the object would grow past its cap. Nothing was written. */
  | { kind: 'too-large' }
  /** Stopped, or out of attempts, before the outcome was known: a persisted fence settles it later. */
  | { kind: 'unsettled' };

/** What settle() found: the append landed, or certainly did not (safe to resend), or the object is someone else's. */
export type SettleResult = { kind: 'landed'; end: number } | { kind: 'absent' } | { kind: 'foreign' } | { kind: 'unsettled' };

export interface FencedAppenderOptions {
  store: AppendableStore;
  log: Logger;
  retry: { baseDelayMs: number; maxDelayMs: number };
  signal: AbortSignal;
  /** Store requests (appends and HEADs) an append may take; omitted: until settled or stopped. */
  maxAttempts?: number;
  /**
   * A non-retryable store error (credentials, permissions, no bucket): resolves once it is worth
   * trying again (the media halts and probes). Omitted: a backoff, counted as an attempt.
   */
  onFatal?(err: unknown): Promise<void>;
  /** Every failed append, with what was decided about it. */
  onAppendError?(err: unknown, action: AppendFailureAction): void;
  onReconciled?(outcome: ReconcileOutcome, fence: Fence, head: HeadResult | null): void;
  /** A store request succeeded (the media clears its halt). */
  onHealthy?(): void;
}

/**
 * Appends at a position and settles unknown outcomes by HEAD + CRC-64, never by resending blindly
 * (docs/design.md, invariant 5). The one implementation behind the media appends and the index appends; they
 * differ only in their options (attempts, what a fatal error does, what is reported).
 */
export class FencedAppender {
  private readonly o: FencedAppenderOptions;

  constructor(o: FencedAppenderOptions) {
    this.o = o;
  }

  /** Appends `chunks` at `fence.position`; `createOptions` go with the append that creates the object. */
  async append(fence: Fence, chunks: readonly Uint8Array[], createOptions?: CreateOptions): Promise<FencedResult> {
    const last = fence.ends[fence.ends.length - 1]!;
    let look = false;
    let started = performance.now();
    for (let attempt = 0; this.may(attempt); attempt++) {
      if (look) {
        const head = await this.look(fence, attempt);
        if (head === undefined) continue;
        const outcome = this.judge(fence, head);
        if (outcome.kind === 'landed') return { kind: 'landed', end: outcome.end, durationMs: performance.now() - started };
        if (outcome.kind === 'foreign') return outcome;
        // Certainly not there: send it again, after a backoff.
        look = false;
        await sleep(this.backoff(attempt), this.o.signal);
        continue;
      }
      started = performance.now();
      let action: AppendFailureAction;
      let failure: unknown;
      try {
        const res = await this.o.store.append(fence.key, fence.position, chunks, fence.position === 0 ? createOptions : undefined);
        this.o.onHealthy?.();
        if (res.nextPosition === last.position && res.crc64 === last.crc) {
          return { kind: 'landed', end: fence.ends.length - 1, durationMs: performance.now() - started };
        }
        // The store says it appended, but not what we sent: look before deciding anything.
        this.o.log.error({ key: fence.key, expected: { next: last.position, crc: last.crc.toString() }, got: { next: res.nextPosition, crc: res.crc64.toString() } },
          'append response does not match the bytes sent');
        look = true;
        continue;
      } catch (err) {
        failure = err;
        action = classifyAppendError(err);
        this.o.onAppendError?.(err, action);
      }
      switch (action) {
        case 'foreign':
          return { kind: 'foreign' };
        case 'too-large':
          return { kind: 'too-large' };
        case 'reconcile':
          look = true;
          break;
        case 'resend':
          await sleep(this.backoff(attempt), this.o.signal);
          break;
        case 'fatal':
          await this.halt(failure, attempt);
          break;
      }
    }
    return { kind: 'unsettled' };
  }

  /** Settles an append of unknown outcome (one in flight at a crash): HEAD, then compare. */
  async settle(fence: Fence): Promise<SettleResult> {
    for (let attempt = 0; this.may(attempt); attempt++) {
      const head = await this.look(fence, attempt);
      if (head !== undefined) return this.judge(fence, head);
    }
    return { kind: 'unsettled' };
  }

  /** A store request retried on transient errors (with backoff) until it succeeds; undefined once stopped. */
  async request<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    for (let attempt = 0; !this.o.signal.aborted; attempt++) {
      try {
        const r = await fn();
        this.o.onHealthy?.();
        return r;
      } catch (err) {
        if (this.o.signal.aborted) break;
        this.o.log.warn({ err, what, attempt }, 'store call failed; retrying');
        await this.pause(err, attempt);
      }
    }
    return undefined;
  }

  private may(attempt: number): boolean {
    return attempt === 0 || (!this.o.signal.aborted && attempt < (this.o.maxAttempts ?? Number.POSITIVE_INFINITY));
  }

  /** One HEAD of the fenced object; undefined when it failed (after the backoff or halt it calls for). */
  private async look(fence: Fence, attempt: number): Promise<HeadResult | null | undefined> {
    try {
      const head = await this.o.store.head(fence.key);
      this.o.onHealthy?.();
      return head;
    } catch (err) {
      if (this.o.signal.aborted) return undefined;
      this.o.log.warn({ err, key: fence.key, attempt }, 'HEAD to settle an append failed; retrying');
      await this.pause(err, attempt);
      return undefined;
    }
  }

  /**
   * Our bytes are there (length and CRC-64 of the object with them), absent (length and CRC as
   * before), or someone else's.
   */
  private judge(fence: Fence, head: HeadResult | null): { kind: 'landed'; end: number } | { kind: 'absent' } | { kind: 'foreign' } {
    let result: { kind: 'landed'; end: number } | { kind: 'absent' } | { kind: 'foreign' };
    if (head === null) result = fence.position === 0 ? { kind: 'absent' } : { kind: 'foreign' };
    else if (!head.appendable) result = { kind: 'foreign' };
    else {
      const end = fence.ends.findIndex((e) => e.position === head.size && e.crc === head.crc64);
      if (end >= 0) result = { kind: 'landed', end };
      else if (head.size === fence.position && head.crc64 === fence.crc) result = { kind: 'absent' };
      else result = { kind: 'foreign' };
    }
    this.o.onReconciled?.(result.kind, fence, head);
    return result;
  }

  private pause(err: unknown, attempt: number): Promise<void> {
    return isFatalStoreError(err) ? this.halt(err, attempt) : sleep(this.backoff(attempt), this.o.signal);
  }

  private halt(err: unknown, attempt: number): Promise<void> {
    return this.o.onFatal ? this.o.onFatal(err) : sleep(this.backoff(attempt), this.o.signal);
  }

  private backoff(attempt: number): number {
    return backoffDelay(attempt, this.o.retry.baseDelayMs, this.o.retry.maxDelayMs);
  }
}

/** The fence of `chunks` appended at (position, crc): one end, after all of them. */
export function wholeFence(key: string, position: number, crc: bigint, bytes: number, crcAfter: bigint): Fence {
  return { key, position, crc, ends: [{ position: position + bytes, crc: crcAfter }] };
}
