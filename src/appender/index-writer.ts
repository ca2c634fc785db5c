import type { SpoolEntry } from '../spool/types.js';
import { crc64 } from '../store/crc64.js';
import type { AppendableStore } from '../store/types.js';
import type { Logger } from '../util/logger.js';
import { FencedAppender, type Fence, type FenceEnd } from './fenced-appender.js';

/**
 * The per-object sidecar index: an appendable object next to the media object (`<key>.index.jsonl`),
 * one JSON line per entry: its byte offset and length in the object, media time and duration,
 * wall-clock arrival and keyframe flag. Time-range reads and live tails use it to find byte ranges
 * without scanning the media.
 *
 * It is secondary, and it trails: the appender queues the lines of each acknowledged media append
 * and goes on; this writer appends them in its own loop, position-fenced and reconciled by the same
 * FencedAppender as the media. A lost answer to an index append therefore never holds up the media.
 * Lines are batched: an index append goes out at most every `batchMs` (5 s) unless `batchLines`
 * (64) are waiting, or the session is finishing (idle()); the first lines of an object go at once.
 * Per 1 s fragment that is a fifth of an append instead of one, for a seek index that is at most a
 * few seconds behind the media (live viewers read the media object itself).
 * The lines not yet acknowledged (`pending`) are persisted with the appender's state, so after a
 * crash the writer resends them, recognising by HEAD how far its last appends got (any whole-line
 * prefix). After a few failed attempts, someone else's bytes, or a backlog past MAX_PENDING_LINES,
 * this object's index is marked broken and no longer written (logged); the media is unaffected.
 */

export interface IndexState {
  key: string;
  position: number;
  crc: string;
  broken: boolean;
  /** Lines not yet acknowledged by the store, oldest first (absent in states written before it trailed). */
  pending?: IndexLine[];
}

export interface IndexLine {
  /** Spool entry seq; absent for an init segment repeated at the start of a rolled-over object. */
  seq?: number;
  /** `gap`: the camera was away and came back within the grace; the recording goes on after `g` s. */
  type: 'init' | 'fragment' | 'trailer' | 'gap';
  offset: number;
  length: number;
  /** Media time (s) of the first sample, and duration (s). */
  t?: number;
  d?: number;
  /** Wall-clock arrival (ms since the epoch). */
  w: number;
  k?: boolean;
  /** gap lines: how long the camera was away (s, wall clock); the next fragment's `t` follows by as much. */
  g?: number;
}

export function indexKeyFor(objectKey: string): string {
  return `${objectKey}.index.jsonl`;
}

/** Store requests per index append before the index is given up. */
const ATTEMPTS = 10;
const RETRY = { baseDelayMs: 100, maxDelayMs: 2000 };
/** Lines waiting for the store, at most (about 60 KB, persisted with every acknowledgement). */
export const MAX_PENDING_LINES = 512;
/** Lines per index append. */
const MAX_APPEND_LINES = 256;
/** Index appends go out at most this often, unless BATCH_LINES are waiting or the writer is asked to catch up. */
export const INDEX_BATCH_MS = 5000;
const BATCH_LINES = 64;

export class IndexWriter {
  readonly key: string;
  private position: number;
  private crc: bigint;
  private broken: boolean;
  private readonly pending: IndexLine[];
  /** Media offset past the last line queued: a line below it is queued already (a resumed run). */
  private mediaEnd: number;
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private readonly fenced: FencedAppender;
  private running: Promise<void> | undefined;
  private readonly batchMs: number;
  private lastAppendAt = 0;
  /** idle() was called: append what is pending without waiting for the batch. */
  private urgent = false;
  private wake: (() => void) | undefined;

  static initial(key: string): IndexState {
    return { key, position: 0, crc: '0', broken: false, pending: [] };
  }

  constructor(store: AppendableStore, state: IndexState, log: Logger, opts: { batchMs?: number } = {}) {
    this.batchMs = opts.batchMs ?? INDEX_BATCH_MS;
    this.key = state.key;
    this.position = state.position;
    this.crc = BigInt(state.crc);
    this.broken = state.broken;
    this.pending = [...(state.pending ?? [])];
    const last = this.pending.at(-1);
    this.mediaEnd = last ? last.offset + last.length : 0;
    this.log = log.child({ index: state.key });
    this.fenced = new FencedAppender({
      store, log: this.log, retry: RETRY, signal: this.abort.signal, maxAttempts: ATTEMPTS,
      onAppendError: (err, action) => this.log.warn({ err, action }, 'index append failed'),
    });
  }

  static lines(mediaPosition: number, init: Buffer | null, entries: readonly SpoolEntry[]): IndexLine[] {
    const out: IndexLine[] = [];
    let offset = mediaPosition;
    if (init) {
      out.push({ type: 'init', offset, length: init.length, w: entries[0]?.receivedAt ?? Date.now() });
      offset += init.length;
    }
    for (const e of entries) {
      const line: IndexLine = { seq: e.seq, type: e.kind, offset, length: e.bytes.length, w: e.receivedAt };
      if (e.mediaTime !== undefined) line.t = Math.round(e.mediaTime * 1e6) / 1e6;
      if (e.duration !== undefined) line.d = Math.round(e.duration * 1e6) / 1e6;
      if (e.keyframe !== undefined) line.k = e.keyframe;
      out.push(line);
      offset += e.bytes.length;
    }
    return out;
  }

  /** Lines still to be written (in flight included). */
  get backlog(): number {
    return this.pending.length;
  }

  /** What to persist: the acknowledged end of the index object and the lines not yet acknowledged. */
  snapshot(): IndexState {
    return { key: this.key, position: this.position, crc: this.crc.toString(), broken: this.broken, pending: [...this.pending] };
  }

  /** Starts writing what a restored state left pending. */
  start(): void {
    this.kick();
  }

  /** Queues the lines of one acknowledged media append (once: lines already queued are skipped); returns at once. */
  push(lines: readonly IndexLine[]): void {
    if (this.broken || this.abort.signal.aborted) return;
    const fresh = lines.filter((l) => l.offset >= this.mediaEnd);
    const last = fresh.at(-1);
    if (!last) return;
    if (this.pending.length + fresh.length > MAX_PENDING_LINES) {
      this.giveUp(`more than ${MAX_PENDING_LINES} lines waiting for the store`);
      return;
    }
    this.pending.push(...fresh);
    this.mediaEnd = last.offset + last.length;
    if (this.pending.length >= BATCH_LINES) this.wake?.();
    this.kick();
  }

  /** Writes what is queued without waiting for the batch; resolves when nothing is (written, or given up). */
  idle(): Promise<void> {
    this.urgent = true;
    this.wake?.();
    return this.running ?? Promise.resolve();
  }

  /** Stops after the append in flight; what is pending stays in the last persisted snapshot. */
  close(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    return this.running ?? Promise.resolve();
  }

  private kick(): void {
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
  }

  /** Waits up to `ms`, or until push() filled a batch, idle() or close() was called. */
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => { this.wake = undefined; resolve(); }, ms);
      t.unref();
      this.wake = () => { clearTimeout(t); this.wake = undefined; resolve(); };
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0 && !this.broken && !this.abort.signal.aborted) {
      const wait = this.lastAppendAt + this.batchMs - Date.now();
      if (!this.urgent && this.pending.length < BATCH_LINES && wait > 0) {
        await this.pause(wait);
        continue;
      }
      this.lastAppendAt = Date.now();
      const lines = this.pending.slice(0, MAX_APPEND_LINES);
      const chunks = lines.map((l) => Buffer.from(JSON.stringify(l) + '\n'));
      const ends: FenceEnd[] = [];
      let end: FenceEnd = { position: this.position, crc: this.crc };
      for (const c of chunks) {
        end = { position: end.position + c.length, crc: crc64(c, end.crc) };
        ends.push(end);
      }
      const fence: Fence = { key: this.key, position: this.position, crc: this.crc, ends };
      const res = await this.fenced.append(fence, chunks, { contentType: 'application/x-ndjson' });
      if (res.kind === 'landed') {
        this.pending.splice(0, res.end + 1);
        this.position = ends[res.end]!.position;
        this.crc = ends[res.end]!.crc;
      } else if (res.kind !== 'unsettled' || !this.abort.signal.aborted) {
        this.giveUp(res.kind === 'unsettled' ? 'out of attempts' : res.kind === 'foreign' ? 'someone else\'s bytes' : 'too large');
      }
    }
  }

  private giveUp(why: string): void {
    this.broken = true;
    this.pending.length = 0;
    this.log.error({ key: this.key, position: this.position, why }, 'index object broken: no longer written for this media object (the media is unaffected)');
  }
}
