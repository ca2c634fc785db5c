import { describe, expect, it } from 'vitest';
import { duplicateJsonKeys } from '../helpers/json-keys.js';

describe('duplicateJsonKeys (the log tests\' checker)', () => {
  it('finds a key written twice, at any depth, and only those', () => {
    expect(duplicateJsonKeys('{"level":40,"app":"appendcast","stream":"x","app":"live","msg":"publish refused"}')).toEqual(['app']);
    expect(duplicateJsonKeys('{"a":{"b":1,"b":2},"c":[{"d":1},{"d":2}],"e":"\\"a\\":1,\\"a\\":2"}')).toEqual(['b']);
    expect(duplicateJsonKeys('{"a":1,"b":{"a":1},"s":"{\\"x\\":1}"}')).toEqual([]);
    expect(() => duplicateJsonKeys('{"a":')).toThrow();
  });
});
