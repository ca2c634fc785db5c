import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ObjectWriter, type AppendedInfo } from '../src/appender/object-writer.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import type { AppendableStore } from '../src/store/types.js';
import { crc64Of } from '../src/store/crc64.js';

/** The real fs store, slowed down and watched: how many appends are in flight at once. */
function watched(store: FsStore, delayMs: number): AppendableStore & { maxInFlight: number; positions: number[] } {
  let inFlight = 0;
  const w = Object.create(store) as AppendableStore & { maxInFlight: number; positions: number[] };
  w.maxInFlight = 0;
  w.positions = [];
  w.append = async (key, position, chunks, opts) => {
    inFlight++;
    w.maxInFlight = Math.max(w.maxInFlight, inFlight);
    w.positions.push(position);
    try {
      await new Promise((r) => setTimeout(r, delayMs));
      return await store.append(key, position, chunks, opts);
    } finally {
      inFlight--;
    }
  };
  return w;
}

describe('ObjectWriter', () => {
  let dir: string;
  let fs: FsStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-writer-'));
    fs = new FsStore({ root: dir, fsync: 'never' });
  });
  afterEach(async () => {
    await fs.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps one append in flight, batches what queued meanwhile, and sends the position the store returned', async () => {
    const store = watched(fs, 15);
    const writer = new ObjectWriter(store, 'cam/x.mp4', { contentType: 'video/mp4', metadata: { camera: 'x' } });
    const appended: AppendedInfo[] = [];
    writer.on('appended', (i) => appended.push(i));
    const parts = Array.from({ length: 60 }, (_, i) => randomBytes(100 + i * 37));
    for (let i = 0; i < parts.length; i++) {
      writer.write({ bytes: parts[i]!, receivedAt: 1000 + i });
      if (i % 7 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await writer.drain();
    const all = Buffer.concat(parts);
    expect(store.maxInFlight).toBe(1);
    expect(appended.length).toBeLessThan(parts.length); // batching happened
    expect(appended.reduce((n, a) => n + a.chunks, 0)).toBe(parts.length);
    // Each position is the previous append's nextPosition, starting at 0.
    expect(store.positions[0]).toBe(0);
    for (let i = 1; i < appended.length; i++) expect(appended[i]!.position).toBe(appended[i - 1]!.nextPosition);
    expect(writer.nextPosition).toBe(all.length);
    expect(writer.crc64).toBe(crc64Of([all]));
    expect(await readFile(join(dir, 'cam/x.mp4'))).toEqual(all);
    expect(appended.at(-1)!.newestReceivedAt).toBe(1000 + parts.length - 1);
    // Creation options went with the first append only.
    expect(await fs.head('cam/x.mp4')).toMatchObject({ contentType: 'video/mp4', metadata: { camera: 'x' } });
  });

  it('stops at the first failed append and counts what it could not write', async () => {
    await fs.put('taken.mp4', Buffer.from('normal object'));
    const writer = new ObjectWriter(fs, 'taken.mp4');
    const failures: Error[] = [];
    writer.on('failed', (e) => failures.push(e));
    writer.write({ bytes: Buffer.alloc(10), receivedAt: 1 });
    await writer.drain();
    writer.write({ bytes: Buffer.alloc(5), receivedAt: 2 });
    expect(failures).toHaveLength(1);
    expect((failures[0] as { code?: string }).code).toBe('APC_ERR_OBJECT_NOT_APPENDABLE');
    expect(writer.lostBytes).toBe(15);
    expect((await fs.head('taken.mp4'))!.size).toBe(13);
  });
});
