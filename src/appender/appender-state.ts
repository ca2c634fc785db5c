import type { AppenderState, InFlightRecord, SessionCursor } from '../spool/types.js';
import type { IndexState } from './index-writer.js';

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

export interface PersistedAppenderState extends AppenderState {
  v: 2;
  object: ObjectState | null;
  nextObjectSeq: number;
  /** Entries before this seq were dropped by the spool quota after the current object's last byte. */
  gapAfter: number | null;
  /** Indexes of earlier objects whose lines are still being written. */
  trailingIndexes: IndexState[];
}

/** What settles a media append of unknown outcome, as the spool's in-flight record carries it. */
export interface MediaFence extends AppenderState {
  key: string;
  /** The object's length and CRC-64 before the append. */
  position: number;
  crcBefore: string;
  bytes: number;
  crcAfter: string;
  /** The append started with the init segment (a new object). */
  withInit: boolean;
}

export interface Resumed {
  state: PersistedAppenderState;
  /** The batch in flight, if any, and its fence (null: nothing to settle it against, e.g. no object). */
  inflight: { record: InFlightRecord; fence: MediaFence | null } | null;
}

export function initialState(): PersistedAppenderState {
  return { v: 2, object: null, nextObjectSeq: 0, gapAfter: null, trailingIndexes: [] };
}

/**
 * The appender's state and the batch in flight, from a session cursor: this version's (v 2), or
 * v 1's, whose in-flight batch lived inside the state and named neither the key nor the CRC before
 * (they were the current object's).
 */
export function resume(cursor: SessionCursor): Resumed {
  const s = cursor.state;
  const state = s && (s.v === 1 || s.v === 2) ? {
    ...initialState(),
    object: (s.object as ObjectState | null | undefined) ?? null,
    nextObjectSeq: typeof s.nextObjectSeq === 'number' ? s.nextObjectSeq : 0,
    gapAfter: typeof s.gapAfter === 'number' ? s.gapAfter : null,
    trailingIndexes: Array.isArray(s.trailingIndexes) ? (s.trailingIndexes as IndexState[]) : [],
  } : initialState();
  const record = cursor.inflight;
  if (!record) return { state, inflight: null };
  const f = record.fence;
  const obj = state.object;
  let fence: MediaFence | null = null;
  if (typeof f.position === 'number' && typeof f.bytes === 'number' && typeof f.crcAfter === 'string' && typeof f.withInit === 'boolean') {
    const key = typeof f.key === 'string' ? f.key : obj?.key;
    const crcBefore = typeof f.crcBefore === 'string' ? f.crcBefore : obj?.crc;
    if (key !== undefined && crcBefore !== undefined) fence = { key, position: f.position, crcBefore, bytes: f.bytes, crcAfter: f.crcAfter, withInit: f.withInit };
  }
  return { state, inflight: { record, fence } };
}
