import { rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';
import type { EntryRec, Segment } from './entry-record.js';
import { errnoCode } from './fs-util.js';
import { initFileName } from './session-files.js';

/**
 * The journal segments of one session, and their deletion: a closed segment goes once nothing
 * in it is live (every entry acknowledged or dropped, and that persisted); with `retainAcked` it
 * is renamed `*.seg.acked` instead. Superseded init files go the same way.
 */
export class SegmentGc {
  private segments: Segment[];
  private running: Promise<void> | undefined;
  private again = false;
  private readonly dir: string;
  private readonly retainAcked: boolean;
  private readonly log: Logger | undefined;

  constructor(dir: string, retainAcked: boolean, log: Logger | undefined, segments: Segment[] = []) {
    this.dir = dir;
    this.retainAcked = retainAcked;
    this.log = log;
    this.segments = segments;
  }

  /** A new segment (replacing a failed one of the same name). */
  add(seg: Segment): void {
    this.segments = this.segments.filter((s) => s.path !== seg.path);
    this.segments.push(seg);
  }

  /** A segment deleted by its writer (it held nothing). */
  forget(seg: Segment): void {
    this.segments = this.segments.filter((s) => s !== seg);
  }

  /** Deletes the init files of init entries nobody needs any more. Best effort. */
  dropInits(recs: readonly EntryRec[]): void {
    for (const rec of recs) void unlink(join(this.dir, initFileName(rec.seq))).catch(() => undefined);
  }

  /**
   * Deletes closed segments with nothing live in them. One pass at a time; a call during a pass
   * makes it run again, and resolves when that is done too.
   */
  collect(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = async (): Promise<void> => {
      await null; // settle only after `running` is assigned below
      try {
        do {
          this.again = false;
          const dead = this.segments.filter((s) => s.closed && s.live <= 0);
          if (dead.length === 0) continue;
          this.segments = this.segments.filter((s) => !dead.includes(s));
          for (const s of dead) await this.delete(s);
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    };
    this.running = run();
    return this.running;
  }

  private async delete(s: Segment): Promise<void> {
    try {
      if (this.retainAcked) await rename(s.path, `${s.path}.acked`);
      else await unlink(s.path);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') this.log?.warn({ err, path: s.path }, 'spool could not delete a segment');
    }
  }
}
