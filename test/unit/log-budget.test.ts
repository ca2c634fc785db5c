import { describe, expect, it } from 'vitest';
import { LogBudget, suppressedField } from '../../src/util/log-budget.js';

describe('LogBudget', () => {
  it('allows perWindow lines per key and window, then reports how many it dropped on the next allowed line', () => {
    let now = 0;
    const b = new LogBudget(3, 1000, () => now);
    expect([b.take('a'), b.take('a'), b.take('a')]).toEqual([0, 0, 0]);
    expect([b.take('a'), b.take('a')]).toEqual([undefined, undefined]);
    expect(b.take('b')).toBe(0); // keys have budgets of their own
    now = 999;
    expect(b.take('a')).toBeUndefined();
    now = 1000;
    expect(b.take('a')).toBe(3); // the three dropped in the first window
    expect(b.take('a')).toBe(0);
    expect(suppressedField(3)).toEqual({ suppressed: 3 });
    expect(suppressedField(0)).toEqual({});
  });
});
