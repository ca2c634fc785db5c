import type { SpoolEntry } from '../spool/types.js';
import { crc64Of } from '../store/crc64.js';
import type { AppendableStore } from '../store/types.js';
import { backoffDelay, sleep } from '../util/backoff.js';
import type { Logger } from '../util/logger.js';

/**
 * The per-object sidecar index: an appendable object next to the media object (`<key>.index.jsonl`),
 * one JSON line per entry: its byte offset and length in the object, media time and duration,
 * wall-clock arrival and keyframe flag. Time-range reads and live tails use it to find byte ranges
 * without scanning the media.
 *
 * It is secondary: a failure never holds up the media. Appends are position-fenced and reconciled
 * like the media's; after a few failed attempts, or someone else's bytes, this object's index is
 * marked broken and no longer written (logged).
 */

export interface IndexState {
  key: string;
  position: number;
  crc: string;
  broken: boolean;
}

export interface IndexLine {
  /** Spool entry seq; absent for an init segment repeated at the start of a rolled-over object. */
  seq?: number;
  type: 'init' | 'fragment' | 'trailer';
  offset: number;
  length: number;
  /** Media time (s) of the first sample, and duration (s). */
  t?: number;
  d?: number;
  /** Wall-clock arrival (ms since the epoch). */
  w: number;
  k?: boolean;
}

export function indexKeyFor(objectKey: string): string {
  return `${objectKey}.index.jsonl`;
}

const ATTEMPTS = 5;

export class IndexWriter {
  private readonly store: AppendableStore;
  private readonly state: IndexState;
  private readonly log: Logger;

  static initial(key: string): IndexState {
    return { key, position: 0, crc: '0', broken: false };
  }

  constructor(store: AppendableStore, state: IndexState, log: Logger) {
    this.store = store;
    this.state = state;
    this.log = log;
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

  /** Appends the lines for one media append; returns the index state to persist. */
  async append(mediaPosition: number, init: Buffer | null, entries: readonly SpoolEntry[], signal: AbortSignal): Promise<IndexState> {
    if (this.state.broken) return this.state;
    const body = Buffer.from(IndexWriter.lines(mediaPosition, init, entries).map((l) => JSON.stringify(l) + '\n').join(''));
    const { key, position } = this.state;
    const crcBefore = BigInt(this.state.crc);
    const crcAfter = crc64Of([body], crcBefore);
    const done: IndexState = { key, position: position + body.length, crc: crcAfter.toString(), broken: false };
    for (let attempt = 0; attempt < ATTEMPTS && !signal.aborted; attempt++) {
      try {
        const res = await this.store.append(key, position, [body], position === 0 ? { contentType: 'application/x-ndjson' } : undefined);
        if (res.nextPosition === done.position && res.crc64 === crcAfter) return done;
      } catch (err) {
        this.log.warn({ err, key, attempt }, 'index append failed');
      }
      try {
        const head = await this.store.head(key);
        if (head && head.size === done.position && head.crc64 === crcAfter) return done;
        if (!(head === null && position === 0) && !(head && head.size === position && head.crc64 === crcBefore)) break; // someone else's bytes
      } catch {
        // unknown: try again
      }
      await sleep(backoffDelay(attempt, 100, 2000), signal);
    }
    this.log.error({ key, position }, 'index object broken: no longer written for this media object (the media is unaffected)');
    return { ...this.state, broken: true };
  }
}
