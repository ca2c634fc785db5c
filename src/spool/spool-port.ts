import type { AppenderState, InFlightRecord, SessionCursor, SpoolRead } from './types.js';

/**
 * All an appender sees of its spool session. It reads entries, records the batch it sends before
 * sending it (begin) and reports what became of it (commit): the spool owns the in-flight record,
 * persisted with the appender's state in the session cursor, and never drops an entry that is in
 * flight or was handed out. The flow is one way: the spool never calls the appender.
 */
export interface SpoolPort {
  readonly stream: string;
  readonly sessionId: string;
  /**
   * Where the session stands: entries below `nextSeq` are acknowledged, `state` is the appender's
   * last, `inflight` the batch whose outcome is not known yet (after a crash or a failed run:
   * settle it first). The newest value, whether or not it has reached the disk yet.
   */
  readonly cursor: SessionCursor;
  /** Readable entries from `fromSeq` (skipping dropped ranges), up to `maxBytes` (at least one). */
  read(fromSeq: number, maxBytes: number): Promise<SpoolRead>;
  /** Resolves once entries past `afterSeq` are readable or the session ended, after `ms`, or on abort. */
  waitReadable(afterSeq: number, ms: number, signal: AbortSignal): Promise<void>;
  /** Records `batch` as in flight, with the appender's state; resolves once that is durable. */
  begin(batch: InFlightRecord, state: AppenderState): Promise<void>;
  /** The batch landed (acknowledged: the spool forgets it) or did not (its entries will be read again). */
  commit(batch: InFlightRecord, result: { landed: boolean; state: AppenderState }): Promise<void>;
  /** Everything is in the store and nothing more will come (read() said `ended`): the session goes. */
  finish(): Promise<void>;
}
