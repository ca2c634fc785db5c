/**
 * A reader in another process (a viewer, `appendcast tail`, a test) HEADs an object while the
 * gateway appends to it: it must never see "acknowledged data was lost" because its stat and its
 * sidecar read straddled an append.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { waitFor } from '../helpers/wait.js';

const TSX = import.meta.resolve('tsx');
const CHILD = new URL('../helpers/fs-appender-child.ts', import.meta.url).pathname;

describe('fs store: HEAD from another process while appends go on', () => {
  it('never reports lost data, and sizes only grow', async () => {
    const root = await mkdtemp(join(tmpdir(), 'apc-xproc-'));
    try {
      const child = spawn(process.execPath, ['--import', TSX, CHILD, root, 'cam/x.mp4', '3000'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
      const exited = new Promise<number | null>((r) => child.once('close', r));
      const reader = new FsStore({ root });
      await waitFor('the object exists', async () => (await reader.head('cam/x.mp4').catch(() => null)) !== null, 10_000, 5);
      let heads = 0;
      let last = 0;
      const errors: unknown[] = [];
      while (child.exitCode === null && heads < 50_000) {
        try {
          const h = await reader.head('cam/x.mp4');
          expect(h!.size).toBeGreaterThanOrEqual(last);
          last = h!.size;
        } catch (err) {
          errors.push(err);
        }
        heads++;
      }
      expect(await exited).toBe(0);
      await reader.close();
      console.log(`cross-process: ${heads} HEADs during ${out.trim()} appends, ${errors.length} errors`);
      expect(errors).toEqual([]);
      expect(heads).toBeGreaterThan(100);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
