/**
 * TsTimelineShift: a continued MPEG-TS recording moved on the media timeline (PTS/DTS/PCR rewritten
 * in place). Two real ffmpeg TS sessions (each starting near 1.4 s, as ffmpeg's muxer does), the
 * second shifted to start after the first plus a gap: the joined object decodes with 0 errors, its
 * times only grow, and the splitter reads the new times.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mpeg2TsSplitter } from '../../src/container/ts/splitter.js';
import { shiftPackets, TsTimelineShift } from '../../src/container/ts/ts-timeline-shift.js';
import type { ContainerOutput, MediaFragment } from '../../src/container/types.js';
import { decodeErrors, packetTimes } from '../helpers/media.js';

const run = promisify(execFile);
let dir = '';
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'apc-tsshift-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

/** A 3 s H.264 (1 s GOP) + AAC MPEG-TS, as the RTSP path's ffmpeg writes it. */
async function tsSession(name: string, tone: number): Promise<Buffer> {
  const file = join(dir, name);
  await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25', '-f', 'lavfi', '-i', `sine=frequency=${tone}:sample_rate=48000`,
    '-t', '3', '-c:v', 'libx264', '-g', '25', '-bf', '2', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-f', 'mpegts', file]);
  return readFile(file);
}

const times = (file: string, stream: 'v' | 'a', field: 'dts_time' | 'pts_time'): Promise<number[]> => packetTimes(file, stream, field);

/** All outputs of a whole stream (push, then flush for the last fragment). */
function split(buf: Buffer): ContainerOutput[] {
  const s = new Mpeg2TsSplitter();
  return [...s.push(buf), ...s.flush()];
}

const fragments = (outs: ContainerOutput[]): MediaFragment[] => outs.filter((o): o is MediaFragment => o.type === 'fragment');

describe('TsTimelineShift', () => {
  it('continues a second session after the first plus the gap: one clean, monotonic object', async () => {
    const first = split(await tsSession('a.ts', 440));
    const secondRaw = await tsSession('b.ts', 880);
    const second = split(Buffer.from(secondRaw));
    const end = fragments(first).at(-1)!;
    const target = end.startTime + end.duration + 2; // a 2 s gap
    const before = fragments(second).map((f) => f.startTime);
    const shift = new TsTimelineShift(target);
    shift.apply(second);
    expect(shift.seconds).toBeGreaterThan(0);
    const after = fragments(second).map((f) => f.startTime);
    after.forEach((t, i) => expect(t - before[i]!).toBeCloseTo(shift.seconds!, 6));
    expect(after[0]).toBeGreaterThanOrEqual(target - 1e-9);

    // The continued object: the first session, then the second without its PAT/PMT init (the appender skips an identical one).
    const joined = Buffer.concat([...first.map((o) => o.bytes), ...second.filter((o) => o.type !== 'init').map((o) => o.bytes)]);
    const file = join(dir, 'joined.ts');
    await writeFile(file, joined);
    expect(await decodeErrors(file)).toBe('');
    for (const s of ['v', 'a'] as const) {
      const dts = await times(file, s, 'dts_time');
      expect(dts.every((t, i) => i === 0 || t > dts[i - 1]!), `${s} dts increasing`).toBe(true);
    }
    const v = await times(file, 'v', 'dts_time');
    expect(v.length).toBe(150);
    // The second session's first frame sits at the target (the earliest PES of its first fragment starts there).
    const a = await times(file, 'a', 'pts_time');
    const secondStart = Math.min(v[75]!, ...a.filter((t) => t > end.startTime + end.duration + 1));
    expect(secondStart).toBeCloseTo(target, 3);
    // The splitter reads what was written.
    const resplit = fragments(split(joined));
    expect(resplit.slice(-after.length).map((f) => f.startTime)).toEqual(after.map((t) => expect.closeTo(t, 6) as unknown as number));
  });

  it('keeps PTS − DTS and the 33-bit wrap; leaves everything but times untouched', async () => {
    const raw = await tsSession('c.ts', 660);
    const shifted = Buffer.from(raw);
    const ticks = 2 ** 33 - 90_000; // wraps: a time of t s becomes t − 1 s (mod 2^33)
    shiftPackets(shifted, ticks);
    expect(shifted.length).toBe(raw.length);
    let changed = 0;
    for (let i = 0; i < raw.length; i++) if (raw[i] !== shifted[i]) changed++;
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThan(raw.length / 50); // only header fields
    const file = join(dir, 'wrapped.ts');
    await writeFile(file, shifted);
    const [p0, d0, p1, d1] = await Promise.all([
      times(join(dir, 'c.ts'), 'v', 'pts_time'), times(join(dir, 'c.ts'), 'v', 'dts_time'), times(file, 'v', 'pts_time'), times(file, 'v', 'dts_time'),
    ]);
    expect(p1.length).toBe(p0.length);
    p1.forEach((t, i) => expect(t - d1[i]!).toBeCloseTo(p0[i]! - d0[i]!, 6));
    d1.forEach((t, i) => expect(t).toBeCloseTo(d0[i]! - 1, 4));
    expect(await decodeErrors(file)).toBe('');
  });

  it('refuses a negative or non-finite target', () => {
    expect(() => new TsTimelineShift(-1)).toThrow(RangeError);
    expect(() => new TsTimelineShift(Number.NaN)).toThrow(RangeError);
  });
});
