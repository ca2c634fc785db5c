/**
 * Backend-neutral conformance suite for AppendableStore: OSS AppendObject semantics, exercised only
 * through the interface, so every backend (fs, oss against the local server, …) runs the same tests.
 * Usage, in a test file: `describeStoreConformance('fs', async () => ({ store, cleanup, maxObjectBytes }))`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  InvalidKeyError,
  InvalidRangeError,
  NoSuchKeyError,
  ObjectNotAppendableError,
  ObjectTooLargeError,
  PositionNotEqualToLengthError,
} from '../../src/store/errors.js';
import type { AppendableStore } from '../../src/store/types.js';
import { rejectionOf } from './expect-error.js';
import { readAll } from './objects.js';

export interface ConformanceFixture {
  store: AppendableStore;
  cleanup(): Promise<void>;
  /** The store's size cap; the cap test runs only when it is small enough to reach (≤ 64 MiB). */
  maxObjectBytes: number;
}

const CAP_TEST_LIMIT = 64 * 1024 * 1024;

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

async function expectPositionError(p: Promise<unknown>, currentLength: number, position: number): Promise<void> {
  const err = await rejectionOf(p);
  expect(err).toBeInstanceOf(PositionNotEqualToLengthError);
  const e = err as PositionNotEqualToLengthError;
  expect(e.code).toBe('APC_ERR_POSITION_NOT_EQUAL_TO_LENGTH');
  expect(e.ossCode).toBe('PositionNotEqualToLength');
  expect(e.currentLength).toBe(currentLength);
  expect(e.position).toBe(position);
}

export function describeStoreConformance(name: string, makeStore: () => Promise<ConformanceFixture>): void {
  describe(`AppendableStore conformance: ${name}`, () => {
    let fx: ConformanceFixture;
    let store: AppendableStore;

    beforeEach(async () => {
      fx = await makeStore();
      store = fx.store;
    });
    afterEach(async () => {
      await fx.store.close();
      await fx.cleanup();
    });

    describe('append', () => {
      it('creates at position 0 and grows with each append', async () => {
        const r0 = await store.append('cam/a.mp4', 0, [enc('hello')], { contentType: 'video/mp4' });
        expect(r0.nextPosition).toBe(5);
        let pos = r0.nextPosition;
        const expected = ['hello'];
        for (let i = 0; i < 5; i++) {
          const part = `-part${i}`;
          const r = await store.append('cam/a.mp4', pos, [enc(part)]);
          expect(r.nextPosition).toBe(pos + part.length);
          pos = r.nextPosition;
          expected.push(part);
        }
        expect((await readAll(await store.read('cam/a.mp4'))).toString()).toBe(expected.join(''));
        expect((await store.head('cam/a.mp4'))?.size).toBe(pos);
      });

      it('reports the CRC-64/XZ of the whole object', async () => {
        expect((await store.append('crc/check', 0, [enc('123456789')])).crc64).toBe(0x995dc9bbdf1939fan);
        expect((await store.append('crc/abc', 0, [enc('abc')])).crc64).toBe(3231342946509354535n);
        const first = await store.append('crc/abctest', 0, [enc('abc')]);
        const second = await store.append('crc/abctest', first.nextPosition, [enc('test')]);
        expect(second).toEqual({ nextPosition: 7, crc64: 3454605731697256492n });
        expect((await store.head('crc/abctest'))?.crc64).toBe(3454605731697256492n);
      });

      it('appends several chunks in one call, in order', async () => {
        const r = await store.append('crc/chunks', 0, [enc('12'), enc('345'), new Uint8Array(0), enc('6789')]);
        expect(r).toEqual({ nextPosition: 9, crc64: 0x995dc9bbdf1939fan });
        const r2 = await store.append('crc/chunks', 9, [enc('a'), enc('bc')]);
        expect(r2.nextPosition).toBe(12);
        expect((await readAll(await store.read('crc/chunks'))).toString()).toBe('123456789abc');
      });

      it('creates an empty object with an empty append; empty appends change nothing', async () => {
        expect(await store.append('empty/x', 0, [])).toEqual({ nextPosition: 0, crc64: 0n });
        const h = await store.head('empty/x');
        expect(h).toMatchObject({ size: 0, appendable: true, nextPosition: 0, crc64: 0n });
        expect(await store.append('empty/x', 0, [new Uint8Array(0)])).toEqual({ nextPosition: 0, crc64: 0n });
        const r = await store.append('empty/x', 0, [enc('abc')]);
        expect(r).toEqual({ nextPosition: 3, crc64: 3231342946509354535n });
        expect(await store.append('empty/x', 3, [])).toEqual({ nextPosition: 3, crc64: 3231342946509354535n });
        expect((await store.head('empty/x'))?.size).toBe(3);
        await expectPositionError(store.append('empty/x', 0, []), 3, 0);
      });

      it('rejects a position below or above the length with the current length', async () => {
        await store.append('pos/x', 0, [enc('0123456789')]);
        await expectPositionError(store.append('pos/x', 0, [enc('zz')]), 10, 0);
        await expectPositionError(store.append('pos/x', 9, [enc('zz')]), 10, 9);
        await expectPositionError(store.append('pos/x', 11, [enc('zz')]), 10, 11);
        const h = await store.head('pos/x');
        expect(h?.size).toBe(10);
        expect((await readAll(await store.read('pos/x'))).toString()).toBe('0123456789');
        expect((await store.append('pos/x', 10, [enc('ab')])).nextPosition).toBe(12);
      });

      it('rejects a non-zero position on an absent key with current length 0, creating nothing', async () => {
        await expectPositionError(store.append('pos/absent', 5, [enc('x')]), 0, 5);
        expect(await store.head('pos/absent')).toBeNull();
      });

      it('refuses to append to an object written by put', async () => {
        const { crc64 } = await store.put('normal/x', enc('abc'), { contentType: 'text/plain' });
        expect(crc64).toBe(3231342946509354535n);
        for (const pos of [0, 3]) {
          const err = await rejectionOf(store.append('normal/x', pos, [enc('more')]));
          expect(err).toBeInstanceOf(ObjectNotAppendableError);
          expect((err as ObjectNotAppendableError).code).toBe('APC_ERR_OBJECT_NOT_APPENDABLE');
        }
        expect((await readAll(await store.read('normal/x'))).toString()).toBe('abc');
      });

      it('put over an appendable object makes it a normal one', async () => {
        await store.append('normal/was-appendable', 0, [enc('appendable')]);
        await store.put('normal/was-appendable', enc('123456789'));
        const h = await store.head('normal/was-appendable');
        expect(h).toMatchObject({ size: 9, appendable: false, nextPosition: undefined, crc64: 0x995dc9bbdf1939fan });
        expect(await rejectionOf(store.append('normal/was-appendable', 9, [enc('x')]))).toBeInstanceOf(ObjectNotAppendableError);
      });

      it('caps the object size and writes nothing past it', async (ctx) => {
        const cap = fx.maxObjectBytes;
        if (cap > CAP_TEST_LIMIT) {
          ctx.skip();
          return;
        }
        const head = await store.append('cap/x', 0, [new Uint8Array(cap - 10).fill(7)]);
        expect(head.nextPosition).toBe(cap - 10);
        const err = await rejectionOf(store.append('cap/x', cap - 10, [new Uint8Array(11)]));
        expect(err).toBeInstanceOf(ObjectTooLargeError);
        expect((err as ObjectTooLargeError).code).toBe('APC_ERR_OBJECT_TOO_LARGE');
        expect((await store.head('cap/x'))?.size).toBe(cap - 10);
        expect((await store.head('cap/x'))?.crc64).toBe(head.crc64);
        // Exactly up to the cap is fine; one byte more is not.
        expect((await store.append('cap/x', cap - 10, [new Uint8Array(10)])).nextPosition).toBe(cap);
        expect(await rejectionOf(store.append('cap/x', cap, [new Uint8Array(1)]))).toBeInstanceOf(ObjectTooLargeError);
        expect((await store.head('cap/x'))?.size).toBe(cap);
        // A creating append over the cap creates nothing.
        expect(await rejectionOf(store.append('cap/y', 0, [new Uint8Array(cap + 1)]))).toBeInstanceOf(ObjectTooLargeError);
        expect(await store.head('cap/y')).toBeNull();
      });
    });

    describe('read', () => {
      it('serves ranges while the object grows', async () => {
        const key = 'grow/obj';
        let content = '';
        let pos = 0;
        for (let i = 0; i < 6; i++) {
          const part = `<${i}:${'x'.repeat(i * 3)}>`;
          pos = (await store.append(key, pos, [enc(part)])).nextPosition;
          content += part;
          expect(pos).toBe(content.length);
          const size = content.length;
          expect((await readAll(await store.read(key))).toString()).toBe(content);
          const a = Math.floor(size / 3);
          const b = Math.floor((2 * size) / 3);
          expect((await readAll(await store.read(key, { start: a }))).toString()).toBe(content.slice(a));
          expect((await readAll(await store.read(key, { start: a, end: b }))).toString()).toBe(content.slice(a, b + 1));
          expect((await readAll(await store.read(key, { start: a, end: size + 100 }))).toString()).toBe(content.slice(a));
          expect((await readAll(await store.read(key, { start: size - 1, end: size - 1 }))).toString()).toBe(content.slice(-1));
          const err = await rejectionOf(store.read(key, { start: size }));
          expect(err).toBeInstanceOf(InvalidRangeError);
          expect((err as InvalidRangeError).code).toBe('APC_ERR_INVALID_RANGE');
        }
      });

      it('raises NoSuchKey for an absent key and InvalidRange for any range of an empty object', async () => {
        const err = await rejectionOf(store.read('nothing/here'));
        expect(err).toBeInstanceOf(NoSuchKeyError);
        expect((err as NoSuchKeyError).code).toBe('APC_ERR_NO_SUCH_KEY');
        await store.append('nothing/empty', 0, []);
        expect((await readAll(await store.read('nothing/empty'))).length).toBe(0);
        expect(await rejectionOf(store.read('nothing/empty', { start: 0 }))).toBeInstanceOf(InvalidRangeError);
      });
    });

    describe('head', () => {
      it('reports type, length, CRC and the first append\'s headers only', async () => {
        expect(await store.head('head/x')).toBeNull();
        const before = Date.now();
        await store.append('head/x', 0, [enc('abc')], { contentType: 'video/mp4', metadata: { camera: 'cam-1', site: 'north' } });
        await store.append('head/x', 3, [enc('test')], { contentType: 'text/plain', metadata: { camera: 'other', extra: 'x' } });
        const h = await store.head('head/x');
        expect(h).not.toBeNull();
        expect(h).toMatchObject({
          size: 7,
          appendable: true,
          nextPosition: 7,
          crc64: 3454605731697256492n,
          contentType: 'video/mp4',
          metadata: { camera: 'cam-1', site: 'north' },
        });
        expect(h?.metadata).not.toHaveProperty('extra');
        expect(h?.lastModified).toBeInstanceOf(Date);
        // Second-granularity clocks (HTTP dates) may round down.
        expect(h?.lastModified.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1000);
      });

      it('reports put objects as normal, with their CRC and content type', async () => {
        await store.put('head/normal', enc('abc'), { contentType: 'text/plain', metadata: { k: 'v' } });
        expect(await store.head('head/normal')).toMatchObject({
          size: 3,
          appendable: false,
          nextPosition: undefined,
          crc64: 3231342946509354535n,
          contentType: 'text/plain',
          metadata: { k: 'v' },
        });
      });
    });

    describe('list and delete', () => {
      it('lists keys under a prefix, sorted, with size and type', async () => {
        await store.append('p/b/d', 0, [enc('dddd')]);
        await store.append('p/a', 0, [enc('a')]);
        await store.put('p/b/c', enc('ccc'));
        await store.append('pz', 0, [enc('zz')]);
        await store.append('q/x', 0, [enc('x')]);
        const underP = await store.list('p/');
        expect(underP.map((e) => [e.key, e.size, e.appendable])).toEqual([
          ['p/a', 1, true],
          ['p/b/c', 3, false],
          ['p/b/d', 4, true],
        ]);
        for (const e of underP) expect(e.lastModified).toBeInstanceOf(Date);
        expect((await store.list('p')).map((e) => e.key)).toEqual(['p/a', 'p/b/c', 'p/b/d', 'pz']);
        expect((await store.list('p/b/')).map((e) => e.key)).toEqual(['p/b/c', 'p/b/d']);
        expect((await store.list('p/b/c')).map((e) => e.key)).toEqual(['p/b/c']);
        expect(await store.list('nope/')).toEqual([]);
        expect((await store.list('')).map((e) => e.key)).toEqual(['p/a', 'p/b/c', 'p/b/d', 'pz', 'q/x']);
      });

      it('lists non-ASCII keys exactly', async () => {
        const key = '摄像头/流-1.mp4';
        await store.append(key, 0, [enc('v')]);
        expect((await store.list('摄像头/')).map((e) => e.key)).toEqual([key]);
        expect((await store.head(key))?.size).toBe(1);
      });

      it('delete removes the object; append at 0 then recreates it fresh', async () => {
        await store.delete('del/never-existed'); // not an error
        await store.append('del/x', 0, [enc('old data')], { contentType: 'video/mp4', metadata: { gen: '1' } });
        await store.delete('del/x');
        expect(await store.head('del/x')).toBeNull();
        expect(await rejectionOf(store.read('del/x'))).toBeInstanceOf(NoSuchKeyError);
        expect(await store.list('del/')).toEqual([]);
        const r = await store.append('del/x', 0, [enc('abc')], { contentType: 'audio/mp4', metadata: { gen: '2' } });
        expect(r).toEqual({ nextPosition: 3, crc64: 3231342946509354535n });
        expect(await store.head('del/x')).toMatchObject({ size: 3, contentType: 'audio/mp4', metadata: { gen: '2' } });
        await store.delete('del/x');
        await store.delete('del/x');
      });
    });

    describe('concurrency', () => {
      it('racing appends at one position: exactly one wins each round, bytes never interleave', async () => {
        const key = 'race/x';
        const round = async (position: number, tag: string): Promise<{ winner: string; next: number }> => {
          const payloads = Array.from({ length: 20 }, (_, i) => `[${tag}${i}:${String(i).repeat(50 + i)}]`);
          const results = await Promise.allSettled(payloads.map((p) => store.append(key, position, [enc(p)])));
          const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ payload: payloads[i] as string, next: r.value.nextPosition }] : []));
          expect(won).toHaveLength(1);
          const [w] = won;
          if (w === undefined) throw new Error('no winner');
          expect(w.next).toBe(position + w.payload.length);
          for (const r of results) {
            if (r.status === 'rejected') {
              expect(r.reason).toBeInstanceOf(PositionNotEqualToLengthError);
              expect((r.reason as PositionNotEqualToLengthError).currentLength).toBe(w.next);
            }
          }
          return { winner: w.payload, next: w.next };
        };
        const first = await round(0, 'a');
        const second = await round(first.next, 'b');
        const body = (await readAll(await store.read(key))).toString();
        expect(body).toBe(first.winner + second.winner);
        expect((await store.head(key))?.size).toBe(second.next);
      });

      it('appends to different keys run independently', async () => {
        const keys = Array.from({ length: 8 }, (_, i) => `par/k${i}`);
        await Promise.all(keys.map(async (k) => {
          let pos = 0;
          for (let j = 0; j < 5; j++) pos = (await store.append(k, pos, [enc(`${k}#${j};`)])).nextPosition;
        }));
        for (const k of keys) {
          expect((await readAll(await store.read(k))).toString()).toBe([0, 1, 2, 3, 4].map((j) => `${k}#${j};`).join(''));
        }
      });
    });

    describe('keys', () => {
      const invalid = ['../x', 'a/../../b', '/abs', '\\abs', '', 'nul\0byte', 'k'.repeat(1024)];
      it.each(invalid.map((k) => [JSON.stringify(k.length > 40 ? `${k.slice(0, 10)}…(${k.length})` : k), k]))('rejects key %s', async (_label, key) => {
        for (const op of [
          () => store.append(key, 0, [enc('x')]),
          () => store.head(key),
          () => store.read(key),
          () => store.put(key, enc('x')),
          () => store.delete(key),
        ]) {
          const err = await rejectionOf(op());
          expect(err).toBeInstanceOf(InvalidKeyError);
          expect((err as InvalidKeyError).code).toBe('APC_ERR_INVALID_KEY');
        }
      });

      it('accepts a 1023-byte key', async () => {
        const key = `${Array.from({ length: 5 }, () => 'x'.repeat(200)).join('/')}/${'y'.repeat(18)}`;
        expect(Buffer.byteLength(key)).toBe(1023);
        expect((await store.append(key, 0, [enc('ok')])).nextPosition).toBe(2);
        expect((await store.head(key))?.size).toBe(2);
      });
    });
  });
}
