/**
 * Every native remux output of the equivalence corpus plays in a real browser: Debian's Chromium
 * through Media Source Extensions (init, then fragment by fragment), from 0 to the end, with no
 * media error. H.265 cannot be decoded by Chromium on this headless Linux (no platform decoder):
 * for those cases the test records that `isTypeSupported` says no, and relies on ffmpeg's decode
 * in test/integration/remux-equivalence.test.ts.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CorpusCase } from '../../scripts/make-remux-corpus.js';
import { playInChromium, type PlayResult } from '../helpers/mse-player.js';
import { flvPackets, remuxCorpus, remuxPackets } from '../helpers/remux-corpus.js';

let corpus: CorpusCase[] = [];
const artifacts = process.env['APPENDCAST_ARTIFACTS'] ?? join(tmpdir(), 'appendcast-artifacts', `remux-mse-${Date.now()}`);

beforeAll(async () => {
  corpus = await remuxCorpus();
  await mkdir(artifacts, { recursive: true });
});

describe('native remux output plays in Chromium through MSE', () => {
  it('each H.264/AAC corpus case plays to its end with no error; H.265 is refused up front (no decoder here)', async () => {
    const rows: string[] = [];
    const play = async (c: CorpusCase): Promise<[CorpusCase, PlayResult]> => {
      const { bytes } = remuxPackets(flvPackets(await readFile(c.flv)));
      return [c, await playInChromium(bytes, { timeoutMs: 30_000, screenshotPath: join(artifacts, `${c.name}.png`) })];
    };
    // Two browsers at a time: two cores.
    const results: Array<[CorpusCase, PlayResult]> = [];
    for (let i = 0; i < corpus.length; i += 2) results.push(...(await Promise.all(corpus.slice(i, i + 2).map(play))));
    for (const [c, r] of results) {
      rows.push(`${c.name.padEnd(20)} ${r.codecs.padEnd(24)} supported=${r.isTypeSupported} stop=${r.stopReason} t=${r.currentTime.toFixed(2)}/${r.duration.toFixed(2)} errors=${r.errors.length}`);
      if (c.video === 'hevc') {
        expect(r.isTypeSupported, c.name).toBe(false);
        expect(r.stopReason, c.name).toBe('unsupported');
        continue;
      }
      expect({ name: c.name, stop: r.stopReason, errors: r.errors, videoError: r.videoError })
        .toEqual({ name: c.name, stop: 'ended', errors: [], videoError: null });
      expect(r.appended, c.name).toBe(r.fragments);
      expect(r.currentTime, c.name).toBeGreaterThan(3.2); // 3.5 s clips
      if (c.video) expect([r.videoWidth, r.videoHeight], c.name).toEqual([320, 240]);
    }
    console.log(`MSE playback of native output (Chromium, screenshots in ${artifacts}):\n${rows.join('\n')}`);
  }, 180_000);
});
