import { describe, expect, it } from 'vitest';
import { dropRanges } from '../../src/spool/drop-ledger.js';
import { newEntryRec } from '../../src/spool/entry-record.js';

const rec = (seq: number, size: number) => newEntryRec(seq, { kind: 'fragment', receivedAt: seq }, size);
const where = { stream: 'cam', sessionId: 's' };

describe('dropped ranges', () => {
  it('one range per run of consecutive seqs, with its exact bytes', () => {
    const ranges = dropRanges([rec(3, 10), rec(4, 20), rec(5, 30), rec(8, 1), rec(10, 2), rec(11, 3)], where, 'quota-stream');
    expect(ranges).toEqual([
      { ...where, fromSeq: 3, toSeq: 6, bytes: 60, reason: 'quota-stream' },
      { ...where, fromSeq: 8, toSeq: 9, bytes: 1, reason: 'quota-stream' },
      { ...where, fromSeq: 10, toSeq: 12, bytes: 5, reason: 'quota-stream' },
    ]);
  });

  it('nothing dropped, no range', () => {
    expect(dropRanges([], where, 'write-error')).toEqual([]);
  });
});
