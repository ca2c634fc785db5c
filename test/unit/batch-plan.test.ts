import { describe, expect, it } from 'vitest';
import { cutBatch, rolloverReason } from '../../src/appender/batch-plan.js';
import type { ObjectState } from '../../src/appender/appender-state.js';
import type { RolloverPolicy } from '../../src/config/index.js';
import type { SpoolEntry } from '../../src/spool/types.js';

const frag = (seq: number, size: number, receivedAt = seq, keyframe = false): SpoolEntry => ({ kind: 'fragment', seq, bytes: Buffer.alloc(size), receivedAt, keyframe });
const init = (seq: number): SpoolEntry => ({ kind: 'init', seq, bytes: Buffer.alloc(10), receivedAt: seq });
const policy: RolloverPolicy = { maxBytes: 1000, maxDurationSeconds: 10, alignToClock: false };
const object = (position: number, openedAt = 0): ObjectState => ({ key: 'k', seq: 0, position, crc: '0', openedAt, index: { key: 'k.index.jsonl', position: 0, crc: '0', broken: false } });

describe('cutting a batch', () => {
  it('stops at a dropped range, before a later init, at the size cap and at a keyframe past the deadline', () => {
    expect(cutBatch([frag(1, 10), frag(2, 10), frag(4, 10)], 0, Infinity, 1000).map((e) => e.seq)).toEqual([1, 2]);
    expect(cutBatch([init(1), frag(2, 10), init(3), frag(4, 10)], 0, Infinity, 1000).map((e) => e.seq)).toEqual([1, 2]);
    expect(cutBatch([frag(1, 400), frag(2, 400), frag(3, 400)], 100, Infinity, 1000).map((e) => e.seq)).toEqual([1, 2]);
    expect(cutBatch([frag(1, 10, 100), frag(2, 10, 200), frag(3, 10, 300, true)], 0, 250, 1000).map((e) => e.seq)).toEqual([1, 2]);
    // The first entry always goes (a boundary needs a new object, not an empty batch).
    expect(cutBatch([frag(1, 5000)], 0, 0, 1000).map((e) => e.seq)).toEqual([1]);
  });
});

describe('why a batch opens a new object', () => {
  it('start, a pending reason, init change, gap, size and duration', () => {
    expect(rolloverReason(null, frag(0, 10), null, null, policy)).toBe('start');
    expect(rolloverReason(null, frag(0, 10), null, 'foreign-writer', policy)).toBe('foreign-writer');
    expect(rolloverReason(object(500), init(9), null, null, policy)).toBe('init-change');
    expect(rolloverReason(object(0), init(9), null, null, policy)).toBeNull();
    expect(rolloverReason(object(500), frag(9, 10), 9, null, policy)).toBe('gap');
    expect(rolloverReason(object(500), frag(9, 600), null, null, policy)).toBe('size');
    expect(rolloverReason(object(500, 0), frag(9, 10, 10_000, true), null, null, policy)).toBe('duration');
    expect(rolloverReason(object(500, 0), frag(9, 10, 10_000, false), null, null, policy)).toBeNull();
  });
});
