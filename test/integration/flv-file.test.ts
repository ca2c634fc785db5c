/**
 * FlvFileReader (push/flush, any chunking, bounded) and FlvWriter (exact bytes: ffmpeg's own FLVs
 * come back byte-identical through read → write; ffmpeg reads what we write).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaError } from '../../src/media/errors.js';
import { FLV_MAX_BODY_BYTES, FlvFileReader, FlvWriter, readFlv } from '../../src/media/flv/flv-file.js';
import type { FlvTag } from '../../src/media/types.js';
import { prng } from '../../src/util/prng.js';
import { frameMd5 } from '../helpers/framemd5.js';
import { remuxCorpus } from '../helpers/remux-corpus.js';
import { expectMediaError } from '../helpers/expect-error.js';

const run = promisify(execFile);
let dir = '';
let flvBytes = Buffer.alloc(0);
let flvPath = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flv-file-'));
  const c = (await remuxCorpus()).find((x) => x.name === 'h264-bframes-aac48k');
  if (c === undefined) throw new Error('corpus case missing');
  flvPath = c.flv;
  flvBytes = await readFile(c.flv);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function readInChunks(bytes: Buffer, sizes: () => number): FlvTag[] {
  const r = new FlvFileReader();
  const tags: FlvTag[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = Math.max(1, Math.min(sizes(), bytes.length - at));
    tags.push(...r.push(bytes.subarray(at, at + n)));
    // Never more than one partial tag (header + body + PreviousTagSize) is held.
    expect(r.bufferedBytes).toBeLessThan(11 + FLV_MAX_BODY_BYTES + 4);
    at += n;
  }
  tags.push(...r.flush());
  return tags;
}

describe('FlvFileReader', () => {
  it('reads ffmpeg FLV: header flags, every tag, the same tags whatever the chunking', async () => {
    const whole = readFlv(flvBytes);
    expect(whole.header).toEqual({ version: 1, hasAudio: true, hasVideo: true });
    const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'packet=stream_index', '-of', 'csv=p=0', flvPath]);
    const packets = stdout.trim().split('\n').length;
    // + onMetaData + the two sequence headers (ffprobe shows them as extradata, not packets) + the
    // AVC end-of-sequence tag flvenc writes last (flvdec drops it).
    expect(whole.tags.length).toBe(packets + 4);
    expect(whole.tags.at(-1)?.body).toEqual(Buffer.from([0x17, 2, 0, 0, 0]));
    expect(whole.tags.map((t) => t.type).slice(0, 3)).toEqual([18, 9, 8]);

    const rand = prng(7);
    const byteWise = readInChunks(flvBytes, () => 1);
    const randomly = readInChunks(flvBytes, () => 1 + Math.floor(rand() * 5000));
    for (const tags of [byteWise, randomly]) {
      expect(tags.length).toBe(whole.tags.length);
      tags.forEach((t, i) => {
        const w = whole.tags[i] as FlvTag;
        expect([t.type, t.timestamp]).toEqual([w.type, w.timestamp]);
        expect(t.body.equals(w.body)).toBe(true);
      });
    }
  });

  it('a tag inside one chunk is a view of it; a split tag is one copy', () => {
    const r = new FlvFileReader();
    const tags = r.push(flvBytes);
    expect(tags[1]?.body.buffer).toBe(flvBytes.buffer);
  });

  it('refuses what is not FLV, and says where', () => {
    expectMediaError(() => new FlvFileReader().push(Buffer.from('GIF89a')), 'flv-file-invalid', /signature/);
    const partial = new FlvFileReader();
    expect(partial.push(Buffer.from('FL'))).toEqual([]);
    expectMediaError(() => partial.push(Buffer.from('X')), 'flv-file-invalid', /signature/);
    const header = Buffer.from(flvBytes.subarray(0, 13));
    expectMediaError(() => new FlvFileReader().push(Buffer.concat([Buffer.from('FLV'), Buffer.from([2, 5, 0, 0, 0, 9, 0, 0, 0, 0])])), 'flv-file-invalid', /version 2/);
    expectMediaError(() => new FlvFileReader().push(Buffer.concat([Buffer.from('FLV'), Buffer.from([1, 5, 0, 0, 0, 8, 0, 0, 0, 0])])), 'flv-file-invalid', /DataOffset 8/);
    expectMediaError(() => new FlvFileReader().push(Buffer.concat([Buffer.from('FLV'), Buffer.from([1, 5, 0xff, 0, 0, 9, 0, 0, 0, 0])])), 'flv-file-invalid', /DataOffset/);
    const encrypted = Buffer.concat([header, Buffer.from([0x29, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x17, 0, 0, 0, 12])]);
    expectMediaError(() => new FlvFileReader().push(encrypted), 'flv-file-invalid', /encrypted/);
    const badPrev = Buffer.concat([header, Buffer.from([9, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x17, 0, 0, 0, 99])]);
    expectMediaError(() => new FlvFileReader().push(badPrev), 'flv-file-invalid', /PreviousTagSize 99 .* at offset 13/);
    expect(new FlvFileReader({ checkPreviousTagSize: false }).push(badPrev)).toHaveLength(1);
  });

  it('truncation is reported at flush with the bytes dropped; errors are sticky', () => {
    const r = new FlvFileReader();
    const tags = r.push(flvBytes.subarray(0, flvBytes.length - 10));
    expect(tags.length).toBeGreaterThan(100);
    expectMediaError(() => r.flush(), 'flv-file-invalid', /ended inside a tag at offset \d+ \(\d+ bytes dropped\)/);
    const h = new FlvFileReader();
    h.push(flvBytes.subarray(0, 5));
    expectMediaError(() => h.flush(), 'flv-file-invalid', /inside its header/);
    const bad = new FlvFileReader();
    expect(() => bad.push(Buffer.from('nope'))).toThrow(MediaError);
    expect(() => bad.push(flvBytes)).toThrow(MediaError);
    const ended = new FlvFileReader();
    ended.push(flvBytes);
    ended.flush();
    expectMediaError(() => ended.push(flvBytes), 'flv-file-invalid', /after flush/);
  });

  it('maxTagBytes bounds what it will hold; tags of unknown types are skipped and counted', () => {
    const small = new FlvFileReader({ maxTagBytes: 1000 });
    expect(small.push(flvBytes).length).toBeGreaterThan(0); // the small tags before the big one
    expectMediaError(() => small.flush(), 'flv-file-invalid', /over maxTagBytes 1000/);
    const header = flvBytes.subarray(0, 13);
    const odd = Buffer.concat([header, Buffer.from([15, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 7, 7, 0, 0, 0, 13])]);
    const r = new FlvFileReader();
    expect(r.push(odd)).toEqual([]);
    expect(r.skippedTags).toBe(1);
  });

  it('a valid-so-far prefix is returned before the error surfaces', () => {
    const firstTagLen = 11 + flvBytes.readUIntBE(14, 3) + 4;
    // The onMetaData tag, then a tag header with the filter (encryption) bit set.
    const prefix = Buffer.concat([flvBytes.subarray(0, 13 + firstTagLen), Buffer.from([0x3f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])]);
    const r = new FlvFileReader();
    expect(r.push(prefix)).toHaveLength(1);
    expectMediaError(() => r.push(Buffer.alloc(1)), 'flv-file-invalid', /encrypted/);
  });
});

describe('FlvWriter', () => {
  it('read → write reproduces ffmpeg FLVs byte for byte', async () => {
    const w = new FlvWriter();
    for (const c of await remuxCorpus()) {
      if (c.referenceFrom !== 'flv') continue;
      const bytes = await readFile(c.flv);
      const { header, tags } = readFlv(bytes);
      const again = Buffer.concat([w.header({ audio: header.hasAudio, video: header.hasVideo }), ...tags.map((t) => w.tag(t))]);
      expect(again.equals(bytes), c.name).toBe(true);
    }
  });

  it('ffmpeg reads what we write (same packets as the original FLV)', async () => {
    const w = new FlvWriter();
    const { tags } = readFlv(flvBytes);
    // Header, vector-style parts (tagHeader + body + previousTagSize) for half the tags.
    const parts: Buffer[] = [w.header({ audio: true, video: true })];
    tags.forEach((t, i) => (i % 2 === 0 ? parts.push(w.tag(t)) : parts.push(w.tagHeader(t), t.body, w.previousTagSize(t))));
    const out = join(dir, 'written.flv');
    await writeFile(out, Buffer.concat(parts));
    const [a, b] = await Promise.all([frameMd5(out), frameMd5(flvPath)]);
    expect(a).toEqual(b);
  });

  it('header flags, 32-bit timestamps with the extended byte, wrap, and limits', () => {
    const w = new FlvWriter();
    expect(w.header({ audio: false, video: true })).toEqual(Buffer.from([0x46, 0x4c, 0x56, 1, 1, 0, 0, 0, 9, 0, 0, 0, 0]));
    expect(w.header({ audio: true, video: false })[4]).toBe(4);
    const t = w.tag({ type: 9, timestamp: 0x89abcdef, body: Buffer.from([1, 2, 3]) });
    expect(t).toEqual(Buffer.from([9, 0, 0, 3, 0xab, 0xcd, 0xef, 0x89, 0, 0, 0, 1, 2, 3, 0, 0, 0, 14]));
    const back = readFlv(Buffer.concat([w.header({ audio: false, video: true }), t])).tags[0];
    expect(back?.timestamp).toBe(0x89abcdef);
    expect(w.tag({ type: 8, timestamp: 2 ** 32 + 5, body: Buffer.alloc(0) }).subarray(4, 8)).toEqual(Buffer.from([0, 0, 5, 0]));
    expect(() => w.tag({ type: 8, timestamp: -1, body: Buffer.alloc(1) })).toThrow(MediaError);
    expect(() => w.tag({ type: 8, timestamp: 1.5, body: Buffer.alloc(1) })).toThrow(MediaError);
    let err: unknown;
    try {
      w.tag({ type: 9, timestamp: 0, body: Buffer.alloc(FLV_MAX_BODY_BYTES + 1) });
    } catch (e) {
      err = e;
    }
    expect((err as MediaError).reason).toBe('flv-tag-too-large');
    expect(w.tag({ type: 9, timestamp: 0, body: Buffer.alloc(FLV_MAX_BODY_BYTES) }).length).toBe(11 + FLV_MAX_BODY_BYTES + 4);
  });
});
