import { unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAllAt } from '../util/fs-durable.js';
import type { Logger } from '../util/logger.js';
import { Fifo, type EntryRec, type Segment, type StreamState } from './entry-record.js';
import { encodeFrame } from './frame.js';
import { fsyncDir, writeFileAtomic } from './fs-util.js';
import type { SegmentGc } from './segment-gc.js';
import { initFileName, segmentFileName } from './session-files.js';
import type { JournalIo, SpoolOptions } from './types.js';

const BATCH_MAX_ENTRIES = 256; // 3 iovecs each: stays under IOV_MAX (1024)
const BATCH_MAX_BYTES = 8 * 1024 * 1024;

export interface JournalWriterHost {
  readonly dir: string;
  readonly opts: SpoolOptions;
  readonly io: JournalIo;
  readonly stream: StreamState;
  readonly segments: SegmentGc;
  readonly log: Logger | undefined;
  /** Every entry below `readableSeq` is written per the fsync policy, or was dropped. */
  advanced(readableSeq: number): void;
  /** A write or fsync failed: `lost` (non-init entries of that batch) did not reach the disk. */
  failed(err: unknown, lost: readonly EntryRec[]): void;
}

interface Taken {
  rec: EntryRec;
  bytes: Buffer;
}

/**
 * The one writer of a session's journal: entries are queued in order (synchronously, never waiting
 * on the disk), written with writev at the end of the active segment (group commit: whatever queued
 * up meanwhile goes as the next batch), fdatasync'ed once per batch under 'always', and only then
 * made readable. Segments rotate at `segmentBytes`. A failed write or fsync loses its batch (the
 * host drops and counts it), the segment is cut back and abandoned, and the next batch starts a
 * fresh one: ingest never stops.
 */
export class JournalWriter {
  private readonly host: JournalWriterHost;
  private readonly pending = new Fifo<EntryRec>();
  private active: { seg: Segment; fh: FileHandle } | undefined;
  private writing = false;
  private dirty = false;
  private syncRequested = false;
  private skipUntilKeyframe = false;
  private idleWaiters: Array<() => void> = [];
  /** The session directory exists (session start): nothing is written before. */
  private readonly ready: Promise<void>;

  constructor(host: JournalWriterHost, ready: Promise<void>) {
    this.host = host;
    this.ready = ready;
    ready.catch(() => undefined); // a failed start is handled batch by batch
  }

  /**
   * Queues the entry, in seq order. Refuses it (false: the caller drops it, 'write-backlog') when
   * the writer is further behind than memoryBytesPerStream, and then the non-keyframe fragments after
   * it too, so the journal resumes at a keyframe; init entries are never refused.
   */
  enqueue(rec: EntryRec, bytes: Buffer): boolean {
    const ss = this.host.stream;
    let accepted = true;
    if (rec.meta.kind === 'init') {
      this.skipUntilKeyframe = false;
    } else {
      if (rec.meta.kind === 'fragment' && rec.meta.keyframe !== false) this.skipUntilKeyframe = false;
      if (this.skipUntilKeyframe || (ss.pendingBytes > 0 && ss.pendingBytes + rec.size > this.host.opts.memoryBytesPerStream)) {
        this.skipUntilKeyframe = true;
        accepted = false;
      } else {
        rec.bytes = bytes;
        rec.inMemory = true;
        rec.pending = true;
        ss.memBytes += rec.size;
        ss.pendingBytes += rec.size;
        ss.memFifo.push(rec);
      }
    }
    this.pending.push(rec); // refused ones too: readableSeq passes over them in order
    this.kick();
    return accepted;
  }

  /** Waits until everything queued is written (and fsynced when `sync`). */
  flush(sync: boolean): Promise<void> {
    if (sync) this.syncRequested = true;
    if (!this.writing && this.pending.length === 0 && !(sync && this.dirty)) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.kick();
    return p;
  }

  /** The interval fsync tick. */
  requestSync(): void {
    if (!this.dirty) return;
    this.syncRequested = true;
    this.kick();
  }

  /** Closes the segment being written (fsync first when asked); it becomes collectable. */
  async closeActive(sync: boolean): Promise<void> {
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
    void this.host.segments.collect();
  }

  /** Starts the writer after the current tick, so a burst of appends goes out as one batch. */
  private kick(): void {
    if (this.writing) return;
    this.writing = true;
    queueMicrotask(() => void this.writeLoop());
  }

  private async writeLoop(): Promise<void> {
    const always = this.host.opts.fsync === 'always';
    try {
      for (;;) {
        const { taken, lastSeq } = this.takeBatch();
        if (lastSeq !== undefined) {
          try {
            await this.ready;
            if (taken.length > 0) await this.writeBatch(taken);
            if (always) await this.syncActive();
          } catch (err) {
            await this.onWriteError(err, taken);
          }
          for (const { rec } of taken) this.unpend(rec);
          this.host.advanced(lastSeq + 1);
        }
        if (this.syncRequested) {
          this.syncRequested = false;
          try {
            await this.syncActive();
          } catch (err) {
            this.host.failed(err, []);
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
        this.unpend(rec);
        continue;
      }
      taken.push({ rec, bytes: rec.bytes });
      bytes += rec.size;
    }
    return { taken, lastSeq };
  }

  private unpend(rec: EntryRec): void {
    if (!rec.pending) return;
    rec.pending = false;
    this.host.stream.pendingBytes -= rec.size;
  }

  private async writeBatch(taken: Taken[]): Promise<void> {
    const { segmentBytes, fsync } = this.host.opts;
    let chunks: Buffer[] = [];
    let groupBytes = 0;
    const writeGroup = async (): Promise<void> => {
      if (groupBytes === 0 || !this.active) return;
      const { seg, fh } = this.active;
      await writeAllAt(fh, chunks, seg.size);
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
      // Counted live before the write, so a rotation's collection can never take a segment being filled.
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
      await writeFileAtomic(join(this.host.dir, initFileName(rec.seq)), Buffer.concat([f.head, f.payload, f.tail]), fsync !== 'never');
    }
    for (const rec of placed) rec.written = true;
  }

  private async rotate(firstSeq: number): Promise<void> {
    const durable = this.host.opts.fsync !== 'never';
    await this.closeActive(durable);
    const path = join(this.host.dir, segmentFileName(firstSeq));
    const fh = await this.host.io.open(path, 'w');
    const seg: Segment = { firstSeq, path, size: 0, live: 0, closed: false };
    this.host.segments.add(seg);
    this.active = { seg, fh };
    if (durable) await fsyncDir(this.host.dir);
  }

  private async syncActive(): Promise<void> {
    if (!this.active || !this.dirty) return;
    await this.active.fh.datasync();
    this.dirty = false;
  }

  /**
   * A write or fsync failed: the batch is not durable, so its (non-init) entries are lost; the
   * segment is cut back to before the batch and abandoned (if the cut fails, recovery truncates the
   * torn tail). Init entries stay: they are served from memory (and their own file, if that write
   * worked).
   */
  private async onWriteError(err: unknown, taken: Taken[]): Promise<void> {
    const a = this.active;
    this.active = undefined;
    this.dirty = false;
    if (a) {
      // An empty segment goes: a full disk must not fill the directory with one dead file per batch.
      const first = taken.find((t) => t.rec.segment === a.seg);
      const keep = first ? first.rec.frameOffset : a.seg.size;
      await a.fh.truncate(keep).catch(() => undefined);
      a.seg.size = keep;
      a.seg.closed = true;
      await a.fh.close().catch(() => undefined);
      if (keep === 0) {
        this.host.segments.forget(a.seg);
        await unlink(a.seg.path).catch(() => undefined);
      }
    }
    this.host.failed(err, taken.filter((t) => !t.rec.dropped && t.rec.meta.kind !== 'init').map((t) => t.rec));
  }
}
