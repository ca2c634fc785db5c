/**
 * The spool's cursor log: each cursor value one fdatasync'ed record appended to cursor.log (no
 * rename per value), compacted into cursor.json past 1 MiB. Recovery takes the newest generation;
 * a record torn by a crash is ignored and overwritten; a crash between compaction's two steps
 * leaves older records that lose to cursor.json.
 */
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CURSOR_JSON, CURSOR_LOG, CursorLog, readCursorFiles } from '../../src/spool/cursor-log.js';
import { waitFor } from '../helpers/wait.js';

interface V { n: number; pad?: string }

describe('cursor log', () => {
  let dir: string;
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'apc-cursor-')); });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('appends one record per write (the file is not replaced) and reads back the newest', async () => {
    const written: number[] = [];
    const log = new CursorLog<V>(dir, { gen: 0, logEnd: 0 }, (v) => written.push(v.n));
    await log.write({ n: 1 });
    const ino = (await stat(join(dir, CURSOR_LOG))).ino;
    for (let n = 2; n <= 20; n++) await log.write({ n });
    expect((await stat(join(dir, CURSOR_LOG))).ino).toBe(ino);
    expect(written).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const r = await readCursorFiles(dir);
    expect(r).toMatchObject({ value: { n: 20 }, gen: 20 });
    expect(r.logEnd).toBe((await stat(join(dir, CURSOR_LOG))).size);
    await log.close();
  });

  it('coalesces: values written while one is on its way replace each other; every promise settles', async () => {
    const written: number[] = [];
    const log = new CursorLog<V>(dir, { gen: 0, logEnd: 0 }, (v) => written.push(v.n));
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.write({ n: i + 1 })));
    expect(written[0]).toBe(1);
    expect(written.at(-1)).toBe(50);
    expect(written.length).toBeLessThan(50);
    expect((await readCursorFiles(dir)).value).toEqual({ n: 50 });
    await log.close();
  });

  it('a write that need not be durable is reported on disk only once synced: by the next durable write, or within 5 s, or by close()', async () => {
    const onDisk: number[] = [];
    const log = new CursorLog<V>(dir, { gen: 0, logEnd: 0 }, (v) => onDisk.push(v.n));
    await log.write({ n: 1 });
    await log.write({ n: 2 }, false);
    expect(onDisk).toEqual([1]);
    expect((await readCursorFiles(dir)).value).toEqual({ n: 2 }); // written (page cache), not yet synced
    await log.write({ n: 3 });
    expect(onDisk).toEqual([1, 3]);
    await log.write({ n: 4 }, false);
    await waitFor('synced later by itself (within 5 s)', () => onDisk.includes(4), 8000, 50);
    await log.write({ n: 5 }, false);
    await log.close();
    expect(onDisk.at(-1)).toBe(5);
    expect((await readCursorFiles(dir)).value).toEqual({ n: 5 });
  });

  it('a torn last record is ignored; the writer of the recovered session overwrites it', async () => {
    const a = new CursorLog<V>(dir, { gen: 0, logEnd: 0 });
    for (let n = 1; n <= 3; n++) await a.write({ n });
    await a.close();
    const path = join(dir, CURSOR_LOG);
    await truncate(path, (await stat(path)).size - 5); // the crash: the third record half written
    const r = await readCursorFiles(dir);
    expect(r).toMatchObject({ value: { n: 2 }, gen: 2 });
    const b = new CursorLog<V>(dir, r);
    await b.write({ n: 4 });
    await b.close();
    expect(await readCursorFiles(dir)).toMatchObject({ value: { n: 4 }, gen: 3, logEnd: (await stat(path)).size });
  });

  it('compacts into cursor.json past 1 MiB and empties the log; reopened, it goes on', async () => {
    const log = new CursorLog<V>(dir, { gen: 0, logEnd: 0 });
    const pad = 'x'.repeat(10_000);
    for (let n = 1; n <= 120; n++) await log.write({ n, pad }); // ~1.2 MB of records
    await log.close();
    const json = JSON.parse(await readFile(join(dir, CURSOR_JSON), 'utf8')) as { g: number; c: V };
    expect(json.g).toBeGreaterThan(90);
    expect((await stat(join(dir, CURSOR_LOG))).size).toBeLessThan(1 << 20);
    const r = await readCursorFiles(dir);
    expect(r).toMatchObject({ value: { n: 120 }, gen: 120 });
    const again = new CursorLog<V>(dir, r);
    await again.write({ n: 121 });
    await again.close();
    expect((await readCursorFiles(dir)).value).toEqual({ n: 121 });
  });

  it('a crash between compaction steps: cursor.json (newer generation) wins over the old records', async () => {
    const log = new CursorLog<V>(dir, { gen: 0, logEnd: 0 });
    for (let n = 1; n <= 5; n++) await log.write({ n });
    await log.close();
    await writeFile(join(dir, CURSOR_JSON), JSON.stringify({ g: 6, c: { n: 6 } }));
    expect(await readCursorFiles(dir)).toMatchObject({ value: { n: 6 }, gen: 6 });
  });

  it('reads a plain cursor.json written before the log existed (generation 0); log records win over it', async () => {
    await writeFile(join(dir, CURSOR_JSON), JSON.stringify({ n: 7 }));
    expect(await readCursorFiles(dir)).toEqual({ value: { n: 7 }, gen: 0, logEnd: 0 });
    const log = new CursorLog<V>(dir, { gen: 0, logEnd: 0 });
    await log.write({ n: 8 });
    await log.close();
    expect((await readCursorFiles(dir)).value).toEqual({ n: 8 });
  });

  it('nothing written: no value; a cursor.json that is not JSON throws (the session is left alone)', async () => {
    expect(await readCursorFiles(dir)).toEqual({ value: undefined, gen: 0, logEnd: 0 });
    await writeFile(join(dir, CURSOR_JSON), '{not json');
    await expect(readCursorFiles(dir)).rejects.toThrow();
  });
});
