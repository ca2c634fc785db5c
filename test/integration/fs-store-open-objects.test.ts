/**
 * The fs store's cheap append path: an appendable object's two files stay open between appends
 * and each append adds one 32-byte record to the sidecar (no temp file, rename or directory fsync).
 * What must still hold: a crash at any point loses no acknowledged byte (a torn record is ignored,
 * the next append overwrites it; a real kill -9 mid-append), another FsStore's appends are seen,
 * the sidecar is compacted after 4096 records, and handles are bounded and closed.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, readlink, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { crc64 } from '../../src/store/crc64.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { decodeSidecarFile, RECORD_BYTES } from '../../src/store/fs/sidecar.js';
import { readAll } from '../helpers/objects.js';
import { waitFor } from '../helpers/wait.js';

const TSX = import.meta.resolve('tsx');
const CHILD = new URL('../helpers/fs-appender-child.ts', import.meta.url).pathname;
const enc = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Descriptors of this process open on `path`. */
async function fdsOn(path: string): Promise<number> {
  let n = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === path) n++;
  }
  return n;
}

describe('fs store: open objects and append records', () => {
  let root: string;
  const stores: FsStore[] = [];
  const open = (o: ConstructorParameters<typeof FsStore>[0] extends infer T ? Omit<T & object, 'root'> : never = {}): FsStore => {
    const s = new FsStore({ root, ...o });
    stores.push(s);
    return s;
  };
  beforeEach(async () => { root = await mkdtemp(join(tmpdir(), 'apc-fs-open-')); });
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    await rm(root, { recursive: true, force: true });
  });

  it('keeps the object open across appends: one descriptor per file, one record per append, the sidecar never replaced; close() closes them', async () => {
    const store = open();
    const data = join(root, 'cam/a.mp4');
    const meta = join(root, '.appendcast-meta/objects/cam/a.mp4');
    let pos = (await store.append('cam/a.mp4', 0, [enc('init')])).nextPosition;
    const ino = (await stat(meta)).ino;
    const size0 = (await stat(meta)).size;
    for (let i = 0; i < 50; i++) pos = (await store.append('cam/a.mp4', pos, [enc(`frag${i};`)])).nextPosition;
    expect(await fdsOn(data)).toBe(1);
    expect(await fdsOn(meta)).toBe(1);
    expect((await stat(meta)).ino).toBe(ino); // no rename per append
    expect((await stat(meta)).size).toBe(size0 + 50 * RECORD_BYTES);
    const expected = Buffer.concat([enc('init'), ...Array.from({ length: 50 }, (_, i) => enc(`frag${i};`))]);
    expect(await store.head('cam/a.mp4')).toMatchObject({ size: expected.length, crc64: crc64(expected) });
    expect(await readAll(await store.read('cam/a.mp4'))).toEqual(expected);
    await store.close();
    expect(await fdsOn(data)).toBe(0);
    expect(await fdsOn(meta)).toBe(0);
  });

  it('a record torn by a crash is ignored (the append it described never returned) and the next append overwrites it', async () => {
    const a = open();
    let pos = 0;
    for (const s of ['one;', 'two;', 'three;']) pos = (await a.append('k', pos, [enc(s)])).nextPosition;
    await a.close();
    // The crash: the last append's bytes reached the data file, its record only half.
    const meta = join(root, '.appendcast-meta/objects/k');
    await truncate(meta, (await stat(meta)).size - RECORD_BYTES / 2);
    const b = open();
    expect(await b.head('k')).toMatchObject({ size: 8, crc64: crc64(enc('one;two;')) });
    expect((await readAll(await b.read('k'))).toString()).toBe('one;two;');
    expect(await b.append('k', 8, [enc('four;')])).toEqual({ nextPosition: 13, crc64: crc64(enc('one;two;four;')) });
    expect(await readFile(join(root, 'k'), 'utf8')).toBe('one;two;four;');
    const file = decodeSidecarFile(await readFile(meta))!;
    expect(file.records).toBe(2); // the torn one was overwritten
    expect((await stat(meta)).size).toBe(file.end);
  });

  it('a record with a wrong checksum is not believed', async () => {
    const a = open();
    await a.append('k', 0, [enc('abc')]);
    await a.append('k', 3, [enc('def')]);
    await a.close();
    const meta = join(root, '.appendcast-meta/objects/k');
    const bytes = await readFile(meta);
    bytes[bytes.length - 20]! ^= 0xff; // inside the last record's length/CRC fields
    const { writeFile } = await import('node:fs/promises');
    await writeFile(meta, bytes);
    expect(await open().head('k')).toMatchObject({ size: 3, crc64: crc64(enc('abc')) });
  });

  it('sees appends made by another FsStore in between (the cached state is checked against the file)', async () => {
    const a = open();
    const b = open();
    let pos = 0;
    for (let i = 0; i < 10; i++) pos = (await (i % 3 === 0 ? b : a).append('k', pos, [enc(`${i},`)])).nextPosition;
    const want = Array.from({ length: 10 }, (_, i) => `${i},`).join('');
    expect((await readAll(await a.read('k'))).toString()).toBe(want);
    expect(await a.head('k')).toMatchObject({ size: want.length, crc64: crc64(enc(want)) });
    // A put by one replaces the object; the other's next append sees a normal object.
    await b.put('k', enc('x'));
    await expect(a.append('k', 1, [enc('y')])).rejects.toMatchObject({ code: 'APC_ERR_OBJECT_NOT_APPENDABLE' });
  });

  it('rewrites the sidecar as one line after 4096 records; the state is the same', async () => {
    const store = open({ fsync: 'never' });
    const meta = join(root, '.appendcast-meta/objects/k');
    let pos = 0;
    const parts: Buffer[] = [];
    for (let i = 0; i < 4100; i++) {
      const b = enc(`${i}.`);
      parts.push(b);
      pos = (await store.append('k', pos, [b])).nextPosition;
    }
    const file = decodeSidecarFile(await readFile(meta))!;
    // The first append created the object (no record), the next 4096 wrote records, the 4098th compacted, two more since.
    expect(file.records).toBe(2);
    const all = Buffer.concat(parts);
    expect(file.sidecar).toMatchObject({ length: all.length, crc64: crc64(all) });
    expect((await stat(meta)).size).toBeLessThan(1000);
    expect(await open().head('k')).toMatchObject({ size: all.length, crc64: crc64(all) });
  });

  it('keeps at most openObjects.max objects open and closes unused ones after idleMs', async () => {
    const store = open({ openObjects: { max: 2, idleMs: 1000 } });
    const keys = ['a', 'b', 'c'];
    for (const k of keys) await store.append(k, 0, [enc('x')]);
    for (const k of keys) await store.append(k, 1, [enc('y')]); // opens them: a is evicted when c opens
    await waitFor('a closed (least recently used)', async () => (await fdsOn(join(root, 'a'))) === 0, 5000, 20);
    expect(await fdsOn(join(root, 'c'))).toBe(1);
    await waitFor('all closed when idle', async () => (await fdsOn(join(root, 'b'))) + (await fdsOn(join(root, 'c'))) === 0, 10_000, 100);
    // And they reopen on demand.
    expect(await store.append('a', 2, [enc('z')])).toMatchObject({ nextPosition: 3 });
    expect(await fdsOn(join(root, 'a'))).toBe(1);
  });

  it('kill -9 in the middle of appends (fsync always): every acknowledged byte is there, the CRC agrees, appends go on', async () => {
    const runs: string[] = [];
    for (let round = 0; round < 3; round++) {
      const child = spawn(process.execPath, ['--import', TSX, CHILD, root, 'cam/k.mp4', '20000', 'acks'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
      const closed = new Promise<void>((r) => child.once('close', () => r()));
      const wantAcks = 20 + round * 37;
      const ackCount = (): number => out.split('\n').filter((l) => l.startsWith('ack ')).length;
      await waitFor(`${wantAcks} acknowledged appends`, () => ackCount() >= wantAcks, 20_000, 2);
      child.kill('SIGKILL');
      await closed;
      const acked = Math.max(...out.split('\n').filter((l) => l.startsWith('ack ')).map((l) => Number(l.slice(4))));
      const store = open();
      const h = (await store.head('cam/k.mp4'))!;
      expect(h.size).toBeGreaterThanOrEqual(acked);
      const bytes = await readAll(await store.read('cam/k.mp4'));
      expect(bytes.length).toBe(h.size);
      let bad = -1;
      for (let i = 0; i < bytes.length && bad < 0; i++) if (bytes[i] !== i % 251) bad = i;
      expect(bad).toBe(-1);
      expect(h.crc64).toBe(crc64(bytes));
      // The next round's writer goes on from this length (it starts at HEAD's size).
      runs.push(`killed after ${ackCount()} acks: acknowledged ${acked} B, stored ${h.size} B`);
      await store.close();
    }
    console.log(`fs store kill -9:\n${runs.join('\n')}`);
  });
});
