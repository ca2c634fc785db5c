/**
 * `appendcast convert`: a normal object (put, as an upload or a copy makes it) becomes appendable
 * — into a new key or in place — read by ranges, appended in chunks, CRC-64 checked; the result is
 * the same playable media, and appends go on from its end. On the fs store and on OSS → serve-oss.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ConvertError, convertToAppendable } from '../../src/playback/convert.js';
import { OssLocalServer } from '../../src/serve-oss/server.js';
import { crc64 } from '../../src/store/crc64.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { OssStore } from '../../src/store/oss/oss-store.js';
import type { AppendableStore } from '../../src/store/types.js';
import { rejectionOf } from '../helpers/expect-error.js';
import { decodeErrors } from '../helpers/media.js';
import { readObject } from '../helpers/objects.js';

const run = promisify(execFile);
const TSX = import.meta.resolve('tsx');
const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const FIXTURE = new URL('../../fixtures/av-gop1s.mp4', import.meta.url).pathname;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fsStore(): Promise<{ store: AppendableStore; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'apc-convert-fs-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const store = new FsStore({ root: join(dir, 'objects'), fsync: 'never' });
  cleanups.push(() => store.close());
  return { store, dir };
}

async function ossStore(): Promise<{ store: AppendableStore; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'apc-convert-oss-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const server = new OssLocalServer({ root: join(dir, 'oss'), port: 0, buckets: ['convert'], credentials: [{ accessKeyId: 'ak', accessKeySecret: 'sk' }], fsync: 'never' });
  const addr = await server.start();
  cleanups.push(() => server.close());
  const store = new OssStore({
    kind: 'oss', endpoint: addr.url, bucket: 'convert', region: 'cn-hangzhou', accessKeyId: 'ak', accessKeySecret: 'sk',
    signatureVersion: 'v4', pathStyle: true, timeouts: { connectMs: 2000, headersMs: 5000, bodyMs: 5000 },
  });
  cleanups.push(() => store.close());
  return { store, dir };
}

describe('convert a normal object into an appendable one', () => {
  for (const [kind, make] of [['fs', fsStore], ['oss', ossStore]] as const) {
    it(`${kind}: into a new key and in place; same bytes, same CRC-64, still playable, appends go on`, async () => {
      const { store, dir } = await make();
      const media = await readFile(FIXTURE);
      await store.put('clips/a.mp4', media, { contentType: 'video/mp4', metadata: { camera: 'gate' } });
      expect((await store.head('clips/a.mp4'))!.appendable).toBe(false);

      const r = await convertToAppendable(store, 'clips/a.mp4', 'clips/a-app.mp4', 16 * 1024);
      expect(r).toMatchObject({ key: 'clips/a-app.mp4', bytes: media.length, crc64: crc64(media) });
      expect(r.appends).toBe(Math.ceil(media.length / (16 * 1024)));
      const h = (await store.head('clips/a-app.mp4'))!;
      expect(h).toMatchObject({ appendable: true, size: media.length, crc64: crc64(media), contentType: 'video/mp4', metadata: { camera: 'gate' } });
      const copy = await readObject(store, 'clips/a-app.mp4');
      expect(copy.equals(media)).toBe(true);
      const file = join(dir, 'converted.mp4');
      await writeFile(file, copy);
      expect(await decodeErrors(file)).toBe('');
      expect((await store.append('clips/a-app.mp4', media.length, [Buffer.from('more')])).nextPosition).toBe(media.length + 4);

      // Refusals: the target exists; the source does not.
      expect(await rejectionOf(convertToAppendable(store, 'clips/a.mp4', 'clips/a-app.mp4'))).toBeInstanceOf(ConvertError);
      expect(await rejectionOf(convertToAppendable(store, 'clips/none.mp4', 'clips/x.mp4'))).toBeInstanceOf(ConvertError);

      // In place: the key itself becomes appendable, the temporary is gone; again: nothing to do.
      const inPlace = await convertToAppendable(store, 'clips/a.mp4', undefined, 16 * 1024);
      expect(inPlace).toMatchObject({ key: 'clips/a.mp4', bytes: media.length, crc64: crc64(media) });
      expect((await store.head('clips/a.mp4'))!).toMatchObject({ appendable: true, size: media.length, crc64: crc64(media) });
      expect((await readObject(store, 'clips/a.mp4')).equals(media)).toBe(true);
      expect(await store.head('clips/a.mp4.appendcast-convert')).toBeNull();
      expect((await convertToAppendable(store, 'clips/a.mp4')).appends).toBe(0);

      // An empty object.
      await store.put('clips/empty', Buffer.alloc(0));
      expect(await convertToAppendable(store, 'clips/empty', 'clips/empty-app')).toMatchObject({ bytes: 0, crc64: 0n });
      expect((await store.head('clips/empty-app'))!).toMatchObject({ appendable: true, size: 0 });
    });
  }

  it('the CLI: exit 0 converted, 1 refused, 2 usage', async () => {
    const { store, dir } = await fsStore();
    await store.put('k/a.mp4', await readFile(FIXTURE));
    const cfg = join(dir, 'c.yaml');
    await writeFile(cfg, `dataDir: ${join(dir, 'data')}\nstorage: { kind: fs, root: ${join(dir, 'objects')} }\nstreams:\n  - { id: cam1, key: k1 }\n`);
    const ok = await run(process.execPath, ['--import', TSX, CLI, 'convert', 'k/a.mp4', 'k/b.mp4', '--config', cfg, '--chunk-mib', '0.01']);
    expect(ok.stderr).toMatch(/"k\/b.mp4" is appendable: \d+ bytes in \d+ appends/);
    expect((await store.head('k/b.mp4'))!.appendable).toBe(true);
    await expect(run(process.execPath, ['--import', TSX, CLI, 'convert', 'k/a.mp4', 'k/b.mp4', '--config', cfg])).rejects.toMatchObject({ code: 1 });
    await expect(run(process.execPath, ['--import', TSX, CLI, 'convert', '--config', cfg])).rejects.toMatchObject({ code: 2 });
  }, 60_000);
});
