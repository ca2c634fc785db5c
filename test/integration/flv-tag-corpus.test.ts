/**
 * parseFlvTag on real files: every tag of every FLV in the remux corpus (made by ffmpeg, cached)
 * parses, nothing unsupported. The tag forms one by one are in test/unit/flv-tag.test.ts.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { readFlv } from '../../src/media/flv/flv-file.js';
import { parseFlvTag } from '../../src/media/flv/flv-tag.js';
import { remuxCorpus } from '../helpers/remux-corpus.js';

describe('real files', () => {
  it('every tag of every corpus FLV parses, with nothing unsupported', async () => {
    for (const c of await remuxCorpus()) {
      const kinds = new Map<string, number>();
      for (const t of readFlv(await readFile(c.flv)).tags) {
        const p = parseFlvTag(t);
        kinds.set(p.kind, (kinds.get(p.kind) ?? 0) + 1);
      }
      expect(kinds.get('unsupported'), c.name).toBeUndefined();
      expect(kinds.get('metadata'), c.name).toBe(1);
      if (c.video !== null) expect(kinds.get('video'), c.name).toBeGreaterThan(80);
      if (c.audio !== null) expect(kinds.get('audio'), c.name).toBeGreaterThan(90);
    }
  });
});
