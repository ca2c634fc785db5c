/** docs/errors.md lists every error code, and every listed code exists: the table cannot drift. */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';

describe('error codes', () => {
  it('are unique, and docs/errors.md lists exactly them', async () => {
    const codes = Object.values(ErrorCode);
    expect(new Set(codes).size).toBe(codes.length);
    const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const documented = new Set([...doc.matchAll(/`(APC_ERR_[A-Z0-9_]+)`/g)].map((m) => m[1]));
    expect([...documented].sort()).toEqual([...new Set(codes)].sort());
  });
});
