import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { writeAllAt } from '../util/fs-durable.js';
import { errnoCode, fsyncDir, writeFileAtomic } from './fs-util.js';

/**
 * A session's cursor on disk, cheaply: every value is one record appended to `cursor.log` (the
 * file stays open), fdatasync'ed when it must be durable, instead of a temp file, fsync, rename and
 * directory fsync per value — the appender writes two per append (in flight, then settled). Records are
 * `[u32 length][u32 CRC-32 of the payload][payload]`, the payload `{"g":<generation>,"c":<value>}`.
 * When the log passes LOG_LIMIT bytes the newest value is written to `cursor.json` atomically (as
 * before this log existed) and the log is emptied. Reading takes the value with the highest
 * generation among `cursor.json` and the log's valid records: a record torn by a crash fails its
 * CRC and ends the scan (it was never acknowledged to anyone), and a crash between the compaction's
 * two steps leaves older records that lose to `cursor.json`'s generation.
 */

export const CURSOR_JSON = 'cursor.json';
export const CURSOR_LOG = 'cursor.log';
/** The log is compacted into cursor.json past this size. */
const LOG_LIMIT = 1 << 20;
/**
 * A value written without fdatasync is synced at the latest this much later, if no durable write
 * came first. Longer than a camera's fragment interval (about 1 s), so the next batch's in-flight
 * record usually covers it and the timer's own fdatasync is rare.
 */
const SYNC_LATER_MS = 5000;
/** A record longer than this is not one of ours (the appender's state is bounded well below). */
const MAX_RECORD = 4 << 20;

export interface CursorFiles {
  /** The newest value (undefined: never written). */
  value: unknown;
  /** Its generation (0 for a cursor.json from before the log, or none). */
  gen: number;
  /** Offset after the log's last valid record: where the next one goes. */
  logEnd: number;
}

interface Versioned {
  g: number;
  c: unknown;
}

function versioned(raw: unknown): Versioned | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const o = raw as Record<string, unknown>;
  if (typeof o.g === 'number' && Number.isSafeInteger(o.g) && 'c' in o) return { g: o.g, c: o.c };
  return undefined;
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    // A directory in its place reads as no log: the next write fails loudly (EISDIR) and the appender reports it.
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'EISDIR') return undefined;
    throw err;
  }
}

/** Reads `cursor.json` and `cursor.log` of a session directory. Throws when cursor.json is not JSON (the session is then left alone). */
export async function readCursorFiles(dir: string): Promise<CursorFiles> {
  let best: Versioned | undefined;
  const json = await readOptional(join(dir, CURSOR_JSON));
  if (json !== undefined) {
    const raw = JSON.parse(json.toString('utf8')) as unknown;
    best = versioned(raw) ?? { g: 0, c: raw }; // a plain value: written before the log existed
  }
  let logEnd = 0;
  const log = await readOptional(join(dir, CURSOR_LOG));
  if (log !== undefined) {
    let lastG = -1;
    while (logEnd + 8 <= log.length) {
      const len = log.readUInt32BE(logEnd);
      if (len === 0 || len > MAX_RECORD || logEnd + 8 + len > log.length) break;
      const payload = log.subarray(logEnd + 8, logEnd + 8 + len);
      if (crc32(payload) !== log.readUInt32BE(logEnd + 4)) break;
      let v: Versioned | undefined;
      try {
        v = versioned(JSON.parse(payload.toString('utf8')));
      } catch {
        v = undefined;
      }
      if (v === undefined || v.g <= lastG) break; // generations only grow within one log
      lastG = v.g;
      logEnd += 8 + len;
      if (best === undefined || v.g > best.g) best = v;
    }
  }
  return { value: best?.c, gen: best?.g ?? 0, logEnd };
}

/**
 * Writes a session's cursor values, serialized and coalesced: while one write runs, later values
 * replace each other and the next write carries the newest; every caller's promise settles when a
 * write carrying its value (or a newer one) has been made. A `durable` write (the default) is
 * fdatasync'ed before it settles, whatever the spool's fsync policy: the in-flight record is what
 * exactly-once rests on. A write that is not durable (a batch's settlement: after a crash the
 * in-flight record before it is settled again by HEAD, with the same outcome) is synced by the next
 * durable one, by close(), or within SYNC_LATER_MS (5 s). `onWritten` sees a value once it is on disk.
 */
export class CursorLog<T> {
  private next: { value: T; durable: boolean; waiters: Array<{ resolve(): void; reject(err: unknown): void }> } | undefined;
  private running: Promise<void> | undefined;
  private fh: FileHandle | undefined;
  private gen: number;
  private end: number;
  private closed = false;
  /** The newest value written but not yet fdatasync'ed. */
  private unsynced: { value: T } | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private syncRequested = false;

  constructor(
    private readonly dir: string,
    recovered: { gen: number; logEnd: number },
    private readonly onWritten?: (value: T) => void,
  ) {
    this.gen = recovered.gen;
    this.end = recovered.logEnd;
  }

  write(value: T, durable = true): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.next) {
        this.next.value = value;
        this.next.durable ||= durable;
        this.next.waiters.push({ resolve, reject });
      } else {
        this.next = { value, durable, waiters: [{ resolve, reject }] };
      }
      this.running ??= this.run();
    });
  }

  /** Waits for the writes under way, syncs what is not yet on disk, then closes the log file. Later writes reopen it. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running) await this.running;
    this.clearSyncTimer();
    await this.syncPending().catch(() => undefined);
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }

  private clearSyncTimer(): void {
    if (this.syncTimer !== undefined) clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
  }

  /** fdatasync, then report the newest value written as on disk. */
  private async syncPending(): Promise<void> {
    const pending = this.unsynced;
    if (!pending || !this.fh) return;
    await this.fh.datasync();
    if (this.unsynced === pending) this.unsynced = undefined;
    this.onWritten?.(pending.value);
  }

  private async run(): Promise<void> {
    for (;;) {
      if (!this.next) {
        if (!this.syncRequested) break;
        this.syncRequested = false;
        await this.syncPending().catch(() => undefined); // a failed sync: the next durable write tells
        continue;
      }
      const { value, durable, waiters } = this.next;
      this.next = undefined;
      try {
        await this.writeOne(value, durable);
        if (durable) {
          this.clearSyncTimer();
          this.unsynced = undefined;
          this.onWritten?.(value);
        } else {
          this.unsynced = { value };
          this.syncTimer ??= setTimeout(() => {
            this.syncTimer = undefined;
            // A sync of its own, in the write chain (never beside a write).
            this.syncRequested = true;
            this.running ??= this.run();
          }, SYNC_LATER_MS).unref();
        }
        for (const w of waiters) w.resolve();
      } catch (err) {
        // The file's state is unknown: reopen (and find the end again) on the next write.
        await this.fh?.close().catch(() => undefined);
        this.fh = undefined;
        this.unsynced = undefined;
        this.end = (await readCursorFiles(this.dir).catch(() => undefined))?.logEnd ?? this.end;
        for (const w of waiters) w.reject(err);
      }
    }
    this.running = undefined;
    if (this.closed && this.fh && !this.unsynced) {
      const fh = this.fh;
      this.fh = undefined;
      await fh.close().catch(() => undefined);
    }
  }

  private async writeOne(value: T, durable: boolean): Promise<void> {
    const g = this.gen + 1;
    const payload = Buffer.from(JSON.stringify({ g, c: value }), 'utf8');
    if (this.end + 8 + payload.length > LOG_LIMIT) {
      // Compaction: the newest value as cursor.json (atomic, durable), then an empty log.
      await writeFileAtomic(join(this.dir, CURSOR_JSON), payload, true);
      this.gen = g;
      const fh = await this.log();
      await fh.truncate(0);
      await fh.datasync();
      this.end = 0;
      return;
    }
    const head = Buffer.allocUnsafe(8);
    head.writeUInt32BE(payload.length, 0);
    head.writeUInt32BE(crc32(payload), 4);
    const fh = await this.log();
    await writeAllAt(fh, [head, payload], this.end);
    if (durable) await fh.datasync();
    this.gen = g;
    this.end += 8 + payload.length;
  }

  private async log(): Promise<FileHandle> {
    if (this.fh) return this.fh;
    const path = join(this.dir, CURSOR_LOG);
    let created = false;
    try {
      this.fh = await open(path, 'r+');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      this.fh = await open(path, 'w+');
      created = true;
    }
    if (created) await fsyncDir(this.dir); // the new file's entry survives a power loss
    return this.fh;
  }
}
