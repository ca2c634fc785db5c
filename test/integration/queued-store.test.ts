import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { QueuedStore } from '../../src/store/queued-store.js';
import type { AppendableStore } from '../../src/store/types.js';

describe('QueuedStore', () => {
  it('never has more than `concurrency` requests in flight to the store, across keys, and loses nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'apc-queued-'));
    const fs = new FsStore({ root: dir, fsync: 'never' });
    let inFlight = 0;
    let max = 0;
    const slow: AppendableStore = {
      kind: 'fs',
      append: async (k, p, c, o) => {
        max = Math.max(max, ++inFlight);
        try {
          await delay(5); // a store that takes its time, so requests overlap
          return await fs.append(k, p, c, o);
        } finally {
          inFlight--;
        }
      },
      head: (k) => fs.head(k), read: (k, r) => fs.read(k, r), put: (k, d, o) => fs.put(k, d, o), delete: (k) => fs.delete(k), list: (p) => fs.list(p), close: () => fs.close(),
    };
    const q = new QueuedStore(slow, 4);
    // 40 streams, each appending 5 times in order (one in flight per object, as the appender does).
    await Promise.all(Array.from({ length: 40 }, async (_, s) => {
      let pos = 0;
      for (let i = 0; i < 5; i++) pos = (await q.append(`cam${s}.mp4`, pos, [Buffer.from(`s${s}-a${i};`)])).nextPosition;
    }));
    expect(max).toBe(4);
    for (let s = 0; s < 40; s++) expect((await q.head(`cam${s}.mp4`))!.size).toBe(Array.from({ length: 5 }, (_, i) => `s${s}-a${i};`).join('').length);
    await q.close();
    await rm(dir, { recursive: true, force: true });
  });
});
