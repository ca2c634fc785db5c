/**
 * Orphan parameter sets (keyframe.ts): a live RTP pull joined mid access unit gives ffmpeg the tail
 * of a parameter-set run before the complete one, and its MPEG-TS starts with an H.265 SPS/PPS
 * before any VPS (or an H.264 PPS before any SPS). Made here with ffmpeg (x265/x264 with headers
 * on every keyframe, the first SPS and PPS copied in front of the stream, remuxed to MPEG-TS):
 * ffmpeg itself reports that input ("VPS 0 does not exist"), the splitter's output decodes with 0
 * errors and every frame, and only those orphan NAL headers changed (one byte each).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Mpeg2TsSplitter } from '../../src/container/index.js';
import { prng } from '../../src/util/prng.js';
import { randomChunks } from '../helpers/bytes.js';
import { splitAll } from '../helpers/container.js';
import { decodeErrors, probe } from '../helpers/media.js';

const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg';
const QUIET = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y'];
const dir = mkdtempSync(join(tmpdir(), 'apc-ts-orphans-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Start offsets of the NAL units of an Annex B stream, with their types. */
function nalUnits(es: Buffer, hevc: boolean): Array<{ at: number; type: number }> {
  const out: Array<{ at: number; type: number }> = [];
  for (let i = es.indexOf(Buffer.from([0, 0, 1])); i >= 0; i = es.indexOf(Buffer.from([0, 0, 1]), i + 3)) {
    const h = es[i + 3]!;
    out.push({ at: i, type: hevc ? (h >> 1) & 0x3f : h & 0x1f });
  }
  return out;
}

/** The i-th NAL unit of `type` (start code included) and where it is. */
function nal(es: Buffer, hevc: boolean, type: number, nth = 0): { at: number; bytes: Buffer } {
  const nals = nalUnits(es, hevc);
  const i = nals.map((n, k) => (n.type === type ? k : -1)).filter((k) => k >= 0)[nth]!;
  return { at: nals[i]!.at, bytes: es.subarray(nals[i]!.at, nals[i + 1]!.at) };
}

const CASES = [
  // H.265: an SPS and a PPS before the second keyframe's VPS.
  { codec: 'hevc', hevc: true, encode: ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'keyint=25:min-keyint=25:scenecut=0:bframes=0:repeat-headers=1:pools=1:frame-threads=1:log-level=error'], orphans: [33, 34], before: 32 },
  // H.264: a PPS before the second keyframe's SPS.
  { codec: 'h264', hevc: false, encode: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-keyint_min', '25', '-sc_threshold', '0', '-x264-params', 'repeat-headers=1'], orphans: [8], before: 7 },
] as const;

describe('MPEG-TS: orphan parameter sets before the first keyframe', () => {
  for (const c of CASES) {
    it(`${c.codec}: the splitter's output decodes clean, with every frame, and only the orphan headers changed`, async () => {
      const es = join(dir, `${c.codec}.es`);
      execFileSync(FFMPEG, [...QUIET, '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-t', '3', ...c.encode, '-pix_fmt', 'yuv420p', '-f', c.hevc ? 'hevc' : 'h264', es]);
      const original = readFileSync(es);
      // The tail of a run as a mid-unit join leaves it, in front of the second keyframe's complete run.
      const orphans = Buffer.concat(c.orphans.map((t) => nal(original, c.hevc, t).bytes));
      const at = nal(original, c.hevc, c.before, 1).at;
      const joined = join(dir, `${c.codec}-joined.es`);
      writeFileSync(joined, Buffer.concat([original.subarray(0, at), orphans, original.subarray(at)]));
      const ts = join(dir, `${c.codec}-joined.ts`);
      execFileSync(FFMPEG, [...QUIET, '-f', c.hevc ? 'hevc' : 'h264', '-framerate', '25', '-i', joined, '-c', 'copy', '-bsf:v', 'setts=ts=N', '-f', 'mpegts', ts]); // raw H.265 has no first timestamp
      expect(await decodeErrors(ts)).toBe(''); // decoded from the start, the orphans are harmless

      const input = readFileSync(ts);
      const before = Buffer.from(input); // the splitter rewrites the bytes it was given
      const outs = splitAll(new Mpeg2TsSplitter(), [input]);
      const out = Buffer.concat(outs.map((o) => o.bytes));
      expect(out.length).toBe(before.length);
      const changed = [...out.keys()].filter((i) => out[i] !== before[i]);
      expect(changed).toHaveLength(c.orphans.length);
      // The same bytes however the input arrives: headers in packets split across pushes are
      // scanned from a copy but rewritten where they are held.
      for (let seed = 1; seed <= 20; seed++) {
        const chunks = randomChunks(Buffer.from(before), prng(seed));
        expect(Buffer.concat(splitAll(new Mpeg2TsSplitter(), chunks).map((o) => o.bytes)).equals(out), `chunking ${seed}`).toBe(true);
      }
      // An object that starts at the second keyframe (as a pull that joined there would): the init,
      // then the fragments from there. As received, a decoder starting there complains; as split, not.
      const init = outs.find((o) => o.type === 'init')!;
      const frags = outs.filter((o) => o.type === 'fragment');
      expect(frags.length).toBe(3);
      const from = init.bytes.length + frags[0]!.bytes.length;
      const tail = (bytes: Buffer): Buffer => Buffer.concat([bytes.subarray(0, init.bytes.length), bytes.subarray(from)]);
      const asReceived = join(dir, `${c.codec}-received.ts`);
      const asSplit = join(dir, `${c.codec}-split.ts`);
      writeFileSync(asReceived, tail(before));
      writeFileSync(asSplit, tail(out));
      expect(await decodeErrors(asReceived)).toMatch(c.hevc ? /VPS 0 does not exist|SPS 0 does not exist/ : /sps_id|non-existing SPS/);
      expect(await decodeErrors(asSplit)).toBe('');
      expect(Number((await probe(asSplit, true)).streams[0]!.nb_read_frames)).toBe(50);
    }, 60_000);
  }
});
