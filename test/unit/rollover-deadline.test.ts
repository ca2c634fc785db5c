import { describe, expect, it } from 'vitest';
import { objectDeadline } from '../../src/appender/rollover.js';

describe('objectDeadline', () => {
  const t = Date.UTC(2026, 10, 25, 9, 47, 12, 345);
  it('counts from the object\'s start by default', () => {
    expect(objectDeadline(t, { maxBytes: 1, maxDurationSeconds: 3600, alignToClock: false })).toBe(t + 3600_000);
  });
  it('aligns to multiples of the duration since 00:00 UTC when asked (the next hour, the next quarter)', () => {
    expect(objectDeadline(t, { maxBytes: 1, maxDurationSeconds: 3600, alignToClock: true })).toBe(Date.UTC(2026, 10, 25, 10, 0, 0));
    expect(objectDeadline(t, { maxBytes: 1, maxDurationSeconds: 900, alignToClock: true })).toBe(Date.UTC(2026, 10, 25, 10, 0, 0));
    expect(objectDeadline(Date.UTC(2026, 10, 25, 9, 15), { maxBytes: 1, maxDurationSeconds: 900, alignToClock: true })).toBe(Date.UTC(2026, 10, 25, 9, 30));
  });
  it('never, without a duration', () => {
    expect(objectDeadline(t, { maxBytes: 1, maxDurationSeconds: null, alignToClock: true })).toBe(Number.POSITIVE_INFINITY);
  });
});
