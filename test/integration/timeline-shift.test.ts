/**
 * TimelineShift: a continued recording's fMP4 moved later on the media timeline (tfdt rewritten in
 * place), checked as media by ffprobe/ffmpeg, and the first-sample repair for ffmpeg's RTSP output.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fmp4Splitter } from '../../src/container/fmp4/splitter.js';
import { shiftFragment, TimelineShift } from '../../src/container/fmp4/timeline-shift.js';
import type { MediaFragment } from '../../src/container/types.js';
import { writeFragment } from '../../src/remux/native/fragment-writer.js';
import { decodeErrors, packetTimes } from '../helpers/media.js';
import { flvPackets, remuxCorpus, remuxPackets } from '../helpers/remux-corpus.js';

let dir = '';
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'apc-shift-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

describe('TimelineShift', () => {
  it('moves every track by the same seconds; the object still decodes; the splitter reads the new times', async () => {
    const c = (await remuxCorpus()).find((x) => x.name === 'h264-bframes-aac48k')!;
    const { outputs, bytes } = remuxPackets(flvPackets(await readFile(c.flv)));
    const plain = join(dir, 'plain.mp4');
    await writeFile(plain, bytes);
    const before = outputs.filter((o): o is MediaFragment => o.type === 'fragment').map((f) => f.startTime);
    const shifted = new TimelineShift(100.5).apply(outputs.map((o) => ({ ...o, bytes: Buffer.from(o.bytes) })));
    const file = join(dir, 'shifted.mp4');
    await writeFile(file, Buffer.concat(shifted.map((o) => o.bytes)));
    expect(await decodeErrors(file)).toBe('');
    for (const s of ['v', 'a'] as const) {
      const [a, b] = await Promise.all([packetTimes(plain, s), packetTimes(file, s)]);
      expect(b.length).toBe(a.length);
      b.forEach((t, i) => expect(t - a[i]!).toBeCloseTo(100.5, 4));
    }
    const after = shifted.filter((o): o is MediaFragment => o.type === 'fragment').map((f) => f.startTime);
    after.forEach((t, i) => expect(t).toBeCloseTo(before[i]! + 100.5, 6));
    // What a reader cutting the stored bytes sees agrees.
    const resplit = new Fmp4Splitter().push(await readFile(file)).filter((o): o is MediaFragment => o.type === 'fragment');
    resplit.forEach((f, i) => expect(f.startTime).toBeCloseTo(after[i]!, 6));
  });

  it('stretches a first video sample a tick long (ffmpeg RTSP start) into the gap, once', async () => {
    // The init of a video-only native output: track 1, 90 kHz.
    const c = (await remuxCorpus()).find((x) => x.name === 'h264-video-only')!;
    const init = remuxPackets(flvPackets(await readFile(c.flv))).outputs.find((o) => o.type === 'init')!.bytes;
    const frag = () => writeFragment(1, [{
      trackId: 1, baseDecodeTime: 0, compositionOffsets: false,
      samples: [1, 3600, 3600].map((duration, i) => ({ data: Buffer.alloc(10, i), duration, flags: 0, cto: 0 })),
    }]).bytes;
    const shifts = new Map([[1, 90_000n * 10n]]);
    const bytes = frag();
    const earlier = shiftFragment(bytes, shifts, new Map([[1, 90_000]]));
    expect(earlier).toBeCloseTo(3599 / 90_000, 9);
    const f = new Fmp4Splitter().push(Buffer.concat([init, bytes])).find((o): o is MediaFragment => o.type === 'fragment')!;
    expect(f.startTime).toBeCloseTo(10 - 3599 / 90_000, 9);
    expect(f.duration).toBeCloseTo(3 * 3600 / 90_000, 9); // the first sample now lasts a whole frame
    // Without the repair set, only the shift.
    const plain = frag();
    expect(shiftFragment(plain, shifts)).toBe(0);
    expect(new Fmp4Splitter().push(Buffer.concat([init, plain])).find((o): o is MediaFragment => o.type === 'fragment')!.startTime).toBeCloseTo(10, 9);
  });

  it('refuses a negative or non-finite shift', () => {
    expect(() => new TimelineShift(-1)).toThrow(RangeError);
    expect(() => new TimelineShift(Number.NaN)).toThrow(RangeError);
  });
});
