import { mkdir, rename, rmdir } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, relative, sep } from 'node:path';
import { errnoCode, fsyncDir } from '../../util/fs-durable.js';

export { errnoCode, fsyncDir };

/**
 * `mkdir -p dir`; with `durable`, every directory it created is fsynced into its parent, so a new
 * object's path survives power loss. Throws ENOTDIR/EEXIST when a component is a file.
 */
export async function mkdirp(dir: string, durable: boolean): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (!durable || first === undefined) return;
  // fsync the parent of the first created directory, then each created directory down to `dir`.
  const created: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    created.push(d);
    if (d === first || dirname(d) === d) break;
  }
  await fsyncDir(dirname(first));
  for (const d of created.reverse()) {
    if (d !== dir) await fsyncDir(d);
  }
}

/**
 * rename(src, dest), re-creating dest's directory if a concurrent prune removed it (bounded), then
 * fsyncing dest's directory when `durable`.
 */
export async function renameInto(src: string, dest: string, durable: boolean): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await rename(src, dest);
      break;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' || attempt >= 3) throw err;
      await mkdirp(dirname(dest), durable);
    }
  }
  if (durable) await fsyncDir(dirname(dest));
}

/** Writes every byte of `chunks` at `position` (positional writes, never O_APPEND). */
export async function writeAllAt(fh: FileHandle, chunks: readonly Uint8Array[], position: number): Promise<void> {
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  if (total === 0) return;
  let done = (await fh.writev(chunks.filter((c) => c.byteLength > 0), position)).bytesWritten;
  if (done === total) return;
  // Short writev (rare: huge batches, signals): finish chunk by chunk from where it stopped.
  let skip = done;
  for (const c of chunks) {
    if (skip >= c.byteLength) {
      skip -= c.byteLength;
      continue;
    }
    let off = skip;
    skip = 0;
    while (off < c.byteLength) {
      const { bytesWritten } = await fh.write(c, off, c.byteLength - off, position + done);
      if (bytesWritten <= 0) throw new Error(`write made no progress at offset ${position + done}`);
      off += bytesWritten;
      done += bytesWritten;
    }
  }
}

/** Removes now-empty directories from dirname(path) up to, not including, `stopAt`. Best effort. */
export async function pruneEmptyDirs(path: string, stopAt: string): Promise<void> {
  for (let d = dirname(path); ; d = dirname(d)) {
    const rel = relative(stopAt, d);
    if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) return;
    try {
      await rmdir(d);
    } catch {
      return; // not empty (or already gone): stop climbing
    }
  }
}
