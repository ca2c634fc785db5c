import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readFrameAt } from './frame.js';
import type { SpoolEntry } from './types.js';

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
