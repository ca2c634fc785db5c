/**
 * The sidecar index is written in batches: at most one append per batch interval (unless a batch
 * of lines is waiting), the first lines of an object at once, and everything pending at once when
 * the writer is asked to catch up (a finishing session). Real fs store, counted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IndexWriter, type IndexLine } from '../../src/appender/index-writer.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import type { AppendableStore } from '../../src/store/types.js';
import { createLogger } from '../../src/util/logger.js';
import { readObject } from '../helpers/objects.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const log = createLogger('silent');

function counting(fs: FsStore): { store: AppendableStore; appends: () => number } {
  let n = 0;
  const store: AppendableStore = {
    kind: fs.kind,
    append: (k, p, c, o) => { n++; return fs.append(k, p, c, o); },
    head: (k) => fs.head(k), read: (k, r) => fs.read(k, r), put: (k, d, o) => fs.put(k, d, o),
    delete: (k) => fs.delete(k), list: (p) => fs.list(p), close: () => fs.close(),
  };
  return { store, appends: () => n };
}

const line = (i: number): IndexLine => ({ seq: i, type: 'fragment', offset: i * 1000, length: 1000, w: i, t: i, d: 1, k: true });

describe('index batching', () => {
  let dir: string;
  let fs: FsStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-idx-batch-'));
    fs = new FsStore({ root: dir, fsync: 'never' });
  });
  afterEach(async () => {
    await fs.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('one append for the first line at once, then at most one per interval; idle() writes the rest at once', async () => {
    // (idle() with a minute-long interval is the next-but-one case below.)
    const { store, appends } = counting(fs);
    const w = new IndexWriter(store, IndexWriter.initial('k.index.jsonl'), log, { batchMs: 800 });
    w.push([line(0)]);
    await waitFor('the first line written at once', () => appends() === 1, 2000, 5);
    // 12 lines, one every 100 ms (pacing): one append per interval at most, not one per line.
    const t0 = Date.now();
    for (let i = 1; i <= 12; i++) {
      w.push([line(i)]);
      await delay(100);
    }
    const intervals = Math.ceil((Date.now() - t0) / 800);
    expect(appends()).toBeGreaterThanOrEqual(2);
    expect(appends()).toBeLessThanOrEqual(1 + intervals);
    expect(appends()).toBeLessThan(13);
    await w.idle();
    expect(w.backlog).toBe(0);
    const text = (await readObject(fs, 'k.index.jsonl')).toString('utf8').trim().split('\n');
    expect(text.map((l) => (JSON.parse(l) as IndexLine).seq)).toEqual(Array.from({ length: 13 }, (_, i) => i));
    await w.close();
  });

  it('idle() writes what waits without waiting for the interval', async () => {
    const { store, appends } = counting(fs);
    const w = new IndexWriter(store, IndexWriter.initial('k.index.jsonl'), log, { batchMs: 60_000 });
    w.push([line(0)]);
    await waitFor('first append', () => appends() === 1, 2000, 5);
    w.push([line(1), line(2)]);
    await withTimeout(w.idle(), 10_000, 'idle() while lines wait for a minute-long interval');
    expect(w.backlog).toBe(0);
    expect(appends()).toBe(2);
    await w.close();
  });

  it('a full batch of lines goes without waiting for the interval', async () => {
    const { store, appends } = counting(fs);
    const w = new IndexWriter(store, IndexWriter.initial('k.index.jsonl'), log, { batchMs: 60_000 });
    w.push([line(0)]);
    await waitFor('first append', () => appends() === 1, 2000, 5);
    w.push(Array.from({ length: 70 }, (_, i) => line(i + 1)));
    await waitFor('the batch appended although the interval is a minute', () => appends() === 2 && w.backlog === 0, 2000, 5);
    await w.close();
  });

  it('close() does not wait for the interval; what is pending stays in the snapshot', async () => {
    const { store } = counting(fs);
    const w = new IndexWriter(store, IndexWriter.initial('k.index.jsonl'), log, { batchMs: 60_000 });
    w.push([line(0)]);
    await waitFor('first line', () => w.backlog === 0, 2000, 5);
    w.push([line(1), line(2)]);
    // Settles although the interval (a minute) has not passed: bounded by withTimeout, not timed.
    await withTimeout(w.close(), 10_000, 'close() while lines wait for their batch');
    expect(w.snapshot().pending?.map((l) => l.seq)).toEqual([1, 2]);
  });
});
