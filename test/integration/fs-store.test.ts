import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFile, mkdtemp, readFile, readdir, rm, truncate, unlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { StoreIntegrityError } from '../../src/store/fs/fs-errors.js';
import { StoreClosedError } from '../../src/store/errors.js';
import { KeyedMutex } from '../../src/store/fs/keyed-mutex.js';
import { decodeSidecarFile } from '../../src/store/fs/sidecar.js';
import { crc64 } from '../../src/store/crc64.js';
import {
  InvalidKeyError,
  ObjectNotAppendableError,
  PositionNotEqualToLengthError,
} from '../../src/store/errors.js';
import { isValidKey, validateKey } from '../../src/store/keys.js';
import { rejectionOf } from '../helpers/expect-error.js';
import { readAll } from '../helpers/objects.js';
import { describeStoreConformance } from '../helpers/store-conformance.js';
import { waitFor } from '../helpers/wait.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const readText = async (stream: AsyncIterable<unknown>): Promise<string> => (await readAll(stream)).toString();

async function walkFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const r = rel === '' ? d.name : `${rel}/${d.name}`;
    if (d.isDirectory()) out.push(...(await walkFiles(join(dir, d.name), r)));
    else out.push(r);
  }
  return out.sort();
}

describeStoreConformance('fs', async () => {
  const root = await mkdtemp(join(tmpdir(), 'appendcast-fs-conf-'));
  const maxObjectBytes = 1024 * 1024;
  return {
    store: new FsStore({ root, maxObjectBytes }),
    maxObjectBytes,
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

describe('FsStore (fs only)', () => {
  let root: string;
  const opened: FsStore[] = [];
  const open = (opts: { maxObjectBytes?: number; fsync?: 'always' | 'never' } = {}): FsStore => {
    const s = new FsStore({ root, ...opts });
    opened.push(s);
    return s;
  };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'appendcast-fs-'));
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    await rm(root, { recursive: true, force: true });
  });

  it('stores objects as plain files mirroring the key, and never lists its sidecars', async () => {
    const store = open();
    expect(store.kind).toBe('fs');
    expect(store.fsync).toBe('always');
    expect(store.maxObjectBytes).toBe(5 * 1024 ** 3);
    await store.append('cam1/2026/a.mp4', 0, [enc('abc')], { contentType: 'video/mp4', metadata: { Camera: 'one' } });
    await store.append('cam1/2026/a.mp4', 3, [enc('test')]);
    await store.put('cam1/index.json', enc('{}'));
    expect(await readFile(join(root, 'cam1/2026/a.mp4'), 'utf8')).toBe('abctest');
    expect(await readFile(join(root, 'cam1/index.json'), 'utf8')).toBe('{}');
    // The sidecars exist on disk, in the reserved tree, and hold length + CRC...
    const files = await walkFiles(root);
    expect(files.filter((f) => f.startsWith('.appendcast-meta/objects/'))).toEqual([
      '.appendcast-meta/objects/cam1/2026/a.mp4',
      '.appendcast-meta/objects/cam1/index.json',
    ]);
    // (a JSON line as created, then one record per append)
    const raw = await readFile(join(root, '.appendcast-meta/objects/cam1/2026/a.mp4'));
    const firstLine = JSON.parse(raw.subarray(0, raw.indexOf(0x0a)).toString('utf8')) as Record<string, unknown>;
    expect(firstLine).toMatchObject({ type: 'Appendable', length: 3, metadata: { camera: 'one' } });
    const file = decodeSidecarFile(raw)!;
    expect(file.records).toBe(1);
    expect(file.sidecar).toMatchObject({ type: 'Appendable', length: 7, crc64: 3454605731697256492n, metadata: { camera: 'one' } });
    // ...but list() never shows them, and their namespace is not a key namespace.
    expect((await store.list('')).map((e) => e.key)).toEqual(['cam1/2026/a.mp4', 'cam1/index.json']);
    expect(await store.list('.appendcast-meta')).toEqual([]);
    expect(await store.list('.')).toEqual([]);
    expect(await rejectionOf(store.append('.appendcast-meta/objects/cam1/index.json', 0, [enc('x')]))).toBeInstanceOf(InvalidKeyError);
    expect(await rejectionOf(store.head('.appendcast-meta/tmp'))).toBeInstanceOf(InvalidKeyError);
    // Metadata names come back lower-cased, as OSS returns x-oss-meta-* headers.
    expect((await store.head('cam1/2026/a.mp4'))?.metadata).toEqual({ camera: 'one' });
  });

  it('recovers from a torn append: unacknowledged bytes are ignored, then truncated by the next append', async () => {
    const a = open();
    const r = await a.append('cam/x.mp4', 0, [enc('hello')]);
    expect(r.crc64).toBe(crc64(enc('hello')));
    await a.close();
    // The process died mid-append: bytes reached the data file, the sidecar was never updated.
    await appendFile(join(root, 'cam/x.mp4'), 'GARBAGE');

    const b = open();
    expect(await b.head('cam/x.mp4')).toMatchObject({ size: 5, nextPosition: 5, crc64: crc64(enc('hello')) });
    expect(await readText(await b.read('cam/x.mp4'))).toBe('hello');
    expect((await b.list('cam/'))[0]?.size).toBe(5);
    const err = await rejectionOf(b.append('cam/x.mp4', 12, [enc('!')]));
    expect(err).toBeInstanceOf(PositionNotEqualToLengthError);
    expect((err as PositionNotEqualToLengthError).currentLength).toBe(5);

    expect(await b.append('cam/x.mp4', 5, [enc('world')])).toEqual({ nextPosition: 10, crc64: crc64(enc('helloworld')) });
    expect(await readFile(join(root, 'cam/x.mp4'), 'utf8')).toBe('helloworld');
    expect(await readText(await b.read('cam/x.mp4'))).toBe('helloworld');
  });

  it('treats a create that died before its rename as absent', async () => {
    const store = open();
    await store.append('cam/y.mp4', 0, [enc('first')]);
    // Leaves the sidecar without its data file, as a crash between sidecar write and rename does.
    await unlink(join(root, 'cam/y.mp4'));
    expect(await store.head('cam/y.mp4')).toBeNull();
    expect(await store.list('cam/')).toEqual([]);
    expect(await store.append('cam/y.mp4', 0, [enc('abc')])).toEqual({ nextPosition: 3, crc64: 3231342946509354535n });
    expect(await readText(await store.read('cam/y.mp4'))).toBe('abc');
  });

  it('reports acknowledged bytes that went missing as an integrity error', async () => {
    const store = open();
    await store.append('cam/z.mp4', 0, [enc('0123456789')]);
    await truncate(join(root, 'cam/z.mp4'), 4);
    for (const op of [() => store.head('cam/z.mp4'), () => store.read('cam/z.mp4'), () => store.append('cam/z.mp4', 10, [enc('x')])]) {
      const err = await rejectionOf(op());
      expect(err).toBeInstanceOf(StoreIntegrityError);
      expect((err as StoreIntegrityError).code).toBe('APC_ERR_STORE_INTEGRITY');
    }
  });

  it('sees a file without sidecar as a normal object without CRC', async () => {
    const store = open();
    await mkdir(join(root, 'dropped'), { recursive: true });
    await writeFile(join(root, 'dropped/file.bin'), 'copied in');
    expect(await store.head('dropped/file.bin')).toMatchObject({ size: 9, appendable: false, crc64: undefined, metadata: {} });
    expect(await store.list('dropped/')).toMatchObject([{ key: 'dropped/file.bin', size: 9, appendable: false }]);
    expect(await readText(await store.read('dropped/file.bin', { start: 7 }))).toBe('in');
    expect(await rejectionOf(store.append('dropped/file.bin', 9, [enc('x')]))).toBeInstanceOf(ObjectNotAppendableError);
    await store.put('dropped/file.bin', enc('abc'));
    expect((await store.head('dropped/file.bin'))?.crc64).toBe(3231342946509354535n);
  });

  it('persists objects across FsStore instances, the CRC continuing where it left off', async () => {
    const a = open();
    await a.append('p/x', 0, [enc('abc')], { contentType: 'video/mp4', metadata: { camera: 'c1' } });
    await a.close();
    expect(await rejectionOf(a.head('p/x'))).toBeInstanceOf(StoreClosedError);
    const b = open({ fsync: 'never' });
    expect(await b.head('p/x')).toMatchObject({ size: 3, appendable: true, contentType: 'video/mp4', metadata: { camera: 'c1' } });
    expect(await b.append('p/x', 3, [enc('test')])).toEqual({ nextPosition: 7, crc64: 3454605731697256492n });
    await b.close();
    const c = open();
    expect(await readText(await c.read('p/x'))).toBe('abctest');
    expect((await c.head('p/x'))?.crc64).toBe(3454605731697256492n);
  });

  it('serializes racing appends across two FsStore instances on one root in one process', async () => {
    const a = open();
    const b = open();
    const payloads = Array.from({ length: 10 }, (_, i) => `payload-${i}-${'z'.repeat(100)}`);
    const results = await Promise.allSettled(payloads.map((p, i) => (i % 2 === 0 ? a : b).append('race/two', 0, [enc(p)])));
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [payloads[i]] : []));
    expect(winners).toHaveLength(1);
    expect(await readFile(join(root, 'race/two'), 'utf8')).toBe(winners[0]);
  });

  it('read() streams a snapshot of the length acknowledged when it was opened', async () => {
    const store = open();
    await store.append('snap/x', 0, [enc('first')]);
    const stream = await store.read('snap/x');
    await store.append('snap/x', 5, [enc('-second')]);
    expect(await readText(stream)).toBe('first');
  });

  it('refuses keys that cannot be a distinct file path', async () => {
    const store = open();
    for (const key of ['a//b', 'a/./b', './a', 'a/', `${'s'.repeat(256)}/x`]) {
      const err = await rejectionOf(store.append(key, 0, [enc('x')]));
      expect(err, key).toBeInstanceOf(InvalidKeyError);
    }
    // A key cannot be both an object and a directory of other objects.
    await store.put('f', enc('file'));
    expect(await rejectionOf(store.append('f/g', 0, [enc('x')]))).toBeInstanceOf(InvalidKeyError);
    await store.append('d/e', 0, [enc('x')]);
    expect(await rejectionOf(store.append('d', 0, [enc('x')]))).toBeInstanceOf(InvalidKeyError);
    expect(await rejectionOf(store.put('d', enc('x')))).toBeInstanceOf(InvalidKeyError);
    expect(await store.head('d')).toBeNull();
    // Deleting the last object under d/ prunes the directory, so d becomes usable.
    await store.delete('d/e');
    expect((await store.append('d', 0, [enc('now a file')])).nextPosition).toBe(10);
    expect((await store.list('')).map((e) => e.key)).toEqual(['d', 'f']);
  });

  it('waits for in-flight work on close() and refuses work after it', async () => {
    const store = open();
    const pending = store.append('close/x', 0, [new Uint8Array(256 * 1024).fill(1)]);
    await store.close();
    expect((await pending).nextPosition).toBe(256 * 1024);
    const ops: Array<() => Promise<unknown>> = [() => store.append('close/x', 0, []), () => store.list(''), () => store.delete('close/x')];
    for (const op of ops) {
      const err = await rejectionOf(op());
      expect(err).toBeInstanceOf(StoreClosedError);
    }
    const again = open();
    expect((await again.head('close/x'))?.size).toBe(256 * 1024);
  });
});

describe('keys.validateKey', () => {
  it('applies the OSS naming rules', () => {
    expect(isValidKey('a')).toBe(true);
    expect(isValidKey('dir/x..y/z.mp4')).toBe(true);
    expect(isValidKey('k'.repeat(1023))).toBe(true);
    expect(isValidKey('é'.repeat(512))).toBe(false); // 1024 bytes of UTF-8
    expect(isValidKey('bad\uD800surrogate')).toBe(false);
    expect(isValidKey('a\\..\\b')).toBe(false);
    expect(() => validateKey('/x')).toThrow(InvalidKeyError);
  });
});

describe('KeyedMutex', () => {
  it('serializes per key, survives a failing task and forgets idle keys', async () => {
    const m = new KeyedMutex();
    const order: string[] = [];
    // a1 takes a while (time is the subject here): a2, a3 queue behind it, b1 does not.
    const a1 = m.run('a', async () => { order.push('a1+'); await delay(20); order.push('a1-'); });
    const a2 = m.run('a', async () => { order.push('a2+'); throw new Error('boom'); });
    const a3 = m.run('a', async () => { order.push('a3'); return 3; });
    const b1 = m.run('b', async () => { order.push('b1'); });
    await expect(a2).rejects.toThrow('boom');
    expect(await a3).toBe(3);
    await Promise.all([a1, b1]);
    expect(order.indexOf('b1')).toBeLessThan(order.indexOf('a1-'));
    expect(order.filter((o) => o.startsWith('a'))).toEqual(['a1+', 'a1-', 'a2+', 'a3']);
    await waitFor('the idle keys forgotten', () => m.size === 0, 1000, 1);
    expect(m.size).toBe(0);
  });
});
