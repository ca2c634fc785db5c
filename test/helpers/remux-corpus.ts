/**
 * Test-side helpers for the native remuxer: the equivalence corpus (made once per ffmpeg build and
 * script version, cached under the OS temp dir), and FLV → packets → FlvToFmp4 → outputs.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { makeRemuxCorpus, type CorpusCase } from '../../scripts/make-remux-corpus.js';
import type { ContainerOutput } from '../../src/container/types.js';
import { readFlv } from '../../src/media/flv/flv-file.js';
import { parseFlvTag } from '../../src/media/flv/flv-tag.js';
import type { MediaPacket } from '../../src/media/types.js';
import { FlvToFmp4, type FlvToFmp4Options } from '../../src/remux/native/flv-to-fmp4.js';

export const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg';

/** First line of `ffmpeg -version`, e.g. `ffmpeg version 5.1.9-0+deb12u1 …`. */
export function ffmpegVersion(): string {
  return execFileSync(FFMPEG, ['-version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
}

/** The corpus, made into a cache dir keyed by the ffmpeg build and the corpus scripts' source. */
export async function remuxCorpus(): Promise<CorpusCase[]> {
  const root = join(import.meta.dirname, '..', '..', 'scripts');
  const key = createHash('sha256')
    .update(ffmpegVersion())
    .update(readFileSync(join(root, 'make-remux-corpus.ts')))
    .update(readFileSync(join(root, 'mp4-to-flv.ts')))
    .digest('hex')
    .slice(0, 16);
  const dir = join(tmpdir(), `appendcast-remux-corpus-${key}`);
  const manifest = join(dir, 'manifest.json');
  // The manifest names files in the dir it was built in: re-anchor them in the cache dir.
  const load = async (): Promise<CorpusCase[]> =>
    (JSON.parse(await readFile(manifest, 'utf8')) as CorpusCase[]).map((c) => ({
      ...c,
      flv: join(dir, basename(c.flv)),
      reference: join(dir, basename(c.reference)),
    }));
  if (existsSync(manifest)) return load();
  // Built aside and renamed into place, so a concurrent or interrupted run never sees half a corpus.
  const work = await mkdtemp(join(tmpdir(), 'appendcast-remux-corpus-work-'));
  try {
    await makeRemuxCorpus(work);
    await rename(work, dir);
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    if (!existsSync(manifest)) throw err;
  }
  return load();
}

/** An FLV's media packets, in file order (skipped and unsupported tags left out). */
export function flvPackets(flv: Buffer): MediaPacket[] {
  const out: MediaPacket[] = [];
  for (const tag of readFlv(flv).tags) {
    const p = parseFlvTag(tag);
    if (p.kind === 'video' || p.kind === 'audio' || p.kind === 'metadata') out.push(p);
  }
  return out;
}

export interface RemuxResult {
  outputs: ContainerOutput[];
  bytes: Buffer;
  remuxer: FlvToFmp4;
}

/** Runs packets through a fresh FlvToFmp4 (receivedAt = packet index) and joins the output bytes. */
export function remuxPackets(packets: readonly MediaPacket[], opts?: FlvToFmp4Options): RemuxResult {
  const remuxer = new FlvToFmp4(opts);
  const outputs: ContainerOutput[] = [];
  packets.forEach((p, i) => outputs.push(...remuxer.push(p, i)));
  outputs.push(...remuxer.flush());
  return { outputs, bytes: Buffer.concat(outputs.map((o) => o.bytes)), remuxer };
}
