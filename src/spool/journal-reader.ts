import { open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { EntryRec } from './entry-record.js';
import { SpoolRangeError } from './errors.js';
import { readFrameAt } from './frame.js';
import type { SpoolEntry } from './types.js';

/**
 * Reads entries back from their journal frames, one frame each (never a whole segment), checked
 * against their CRC, seq and size; each segment is opened once per reader. close() when done.
 */
export class FrameReader {
  private readonly handles = new Map<string, FileHandle>();

  /** The entry's payload; undefined when its frame is torn or rotten. */
  async payload(rec: EntryRec): Promise<Buffer | undefined> {
    const seg = rec.segment;
    if (!seg) throw new SpoolRangeError(`entry ${rec.seq} has no journal frame`);
    let fh = this.handles.get(seg.path);
    if (!fh) {
      fh = await open(seg.path, 'r');
      this.handles.set(seg.path, fh);
    }
    const frame = await readFrameAt(fh, rec.frameOffset);
    return frame && frame.header.seq === rec.seq && frame.payload.length === rec.size ? frame.payload : undefined;
  }

  async close(): Promise<void> {
    for (const fh of this.handles.values()) await fh.close().catch(() => undefined);
    this.handles.clear();
  }
}

const SEGMENT = /^(\d+)\.seg(\.acked)?$/;

/**
 * Every intact entry in one session directory's journal, acknowledged or not, in seq order:
 * with `retainAcked`, exactly what reached the spool. Stops at a torn frame (a crash mid-write).
 * For audits and tests; the gateway itself never needs it.
 */
export async function readJournal(sessionDir: string): Promise<SpoolEntry[]> {
  const names = (await readdir(sessionDir)).filter((n) => SEGMENT.test(n));
  names.sort((a, b) => Number(SEGMENT.exec(a)![1]) - Number(SEGMENT.exec(b)![1]));
  const bySeq = new Map<number, SpoolEntry>();
  for (const n of names) {
    const fh = await open(join(sessionDir, n), 'r');
    try {
      for (let offset = 0; ; ) {
        const f = await readFrameAt(fh, offset);
        if (!f) break;
        const { seq, length: _length, ...meta } = f.header;
        bySeq.set(seq, { ...meta, seq, bytes: Buffer.from(f.payload) });
        offset += f.length;
      }
    } finally {
      await fh.close();
    }
  }
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}
