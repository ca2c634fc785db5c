/**
 * The durable splice buffer between the splitter and the store (docs/design.md).
 *
 * Layout: <spoolDir>/<stream>/<sessionId>/ holds one remuxer session's journal (append-only
 * segment files of framed entries) and its cursor (what the store has acknowledged, plus the
 * appender's opaque state). Entries leave the spool only when acknowledged.
 */

import type { FileHandle } from 'node:fs/promises';

export type SpoolEntryKind = 'init' | 'fragment' | 'trailer';

export interface SpoolEntryMeta {
  kind: SpoolEntryKind;
  /** Wall-clock ms when the entry's last byte arrived from the remuxer. */
  receivedAt: number;
  /** Seconds (fragments): decode time of the first sample. */
  mediaTime?: number;
  /** Seconds (fragments). */
  duration?: number;
  /** Fragment starts with a sync sample. */
  keyframe?: boolean;
}

export interface SpoolEntry extends SpoolEntryMeta {
  /** Dense per-session sequence number, from 0. */
  seq: number;
  bytes: Buffer;
}

/** Persisted with every acknowledgement; the spool stores it verbatim (JSON). */
export type AppenderState = Record<string, unknown>;

/** A batch the appender has handed to the store, recorded before the append is sent. */
export interface InFlightRecord {
  /** The append holds entries [fromSeq, uptoSeq) (and whatever the appender put around them). */
  fromSeq: number;
  uptoSeq: number;
  /** What the appender needs to settle the append after a crash (its fence); verbatim JSON to the spool. */
  fence: AppenderState;
}

export interface SessionCursor {
  /** Every entry with seq < nextSeq has been acknowledged by the store (or dropped). */
  nextSeq: number;
  state: AppenderState | null;
  /** The batch in flight when this was written: settled (landed or not) before anything else. */
  inflight: InFlightRecord | null;
}

/** What read() hands the appender. */
export interface SpoolRead {
  /**
   * Readable, undropped entries from the requested seq on, up to the byte budget (at least one if
   * any). Pinned: the drop policy never takes them.
   */
  entries: SpoolEntry[];
  /** The init entry current at the first entry (an object starts with it); undefined without entries. */
  init: SpoolEntry | undefined;
  /** Every entry below is readable (or dropped): past the last entry returned, more is waiting. */
  readableSeq: number;
  /** Sealed and written to its end: nothing past readableSeq will ever come. */
  ended: boolean;
}

export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface SpoolOptions {
  /** Root of all spools, e.g. <dataDir>/spool. */
  dir: string;
  /** always: fsync each entry before it is readable by the appender; interval: every fsyncIntervalMs; never. */
  fsync: FsyncPolicy;
  fsyncIntervalMs: number;
  /** Unacknowledged bytes on disk allowed per stream and in total; past them the drop policy applies. */
  quotaBytesPerStream: number;
  quotaBytesTotal: number;
  /** Entries kept in memory (newest first) per stream; older ones are read back from disk. */
  memoryBytesPerStream: number;
  /** Journal segment size before rotating to a new file. */
  segmentBytes: number;
  /**
   * Keep acknowledged journal segments (renamed `*.seg.acked`) and finished sessions (renamed
   * `<session>.done`) instead of deleting them: an audit trail of exactly what reached the spool.
   */
  retainAcked?: boolean;
}

export type DropReason = 'quota-stream' | 'quota-total' | 'disk-full' | 'write-error' | 'write-backlog' | 'journal-corrupt';

export interface DroppedRange {
  stream: string;
  sessionId: string;
  /** Entries [fromSeq, toSeq) were removed unacknowledged. */
  fromSeq: number;
  toSeq: number;
  bytes: number;
  reason: DropReason;
}

/** The file calls the journal writer makes: the real `fs.open` (a test wraps it to slow the disk down). */
export interface JournalIo {
  open(path: string, flags: 'w'): Promise<FileHandle>;
}
