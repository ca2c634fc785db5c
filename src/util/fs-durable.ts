import { open, type FileHandle } from 'node:fs/promises';
import { AppendcastError, ErrorCode } from '../errors.js';

/** Node error codes, without `any`. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Makes a directory entry change (create, rename, unlink) in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes every byte of `chunks` at `position` (positional writes, never O_APPEND): one writev, and
 * a short one (rare: huge batches, signals) finished chunk by chunk from where it stopped. The one
 * copy shared by the fs store and the spool journal.
 */
export async function writeAllAt(fh: FileHandle, chunks: readonly Uint8Array[], position: number): Promise<void> {
  const nonEmpty = chunks.filter((c) => c.byteLength > 0);
  const total = nonEmpty.reduce((n, c) => n + c.byteLength, 0);
  if (total === 0) return;
  let done = (await fh.writev(nonEmpty, position)).bytesWritten;
  if (done === total) return;
  let skip = done;
  for (const c of nonEmpty) {
    if (skip >= c.byteLength) {
      skip -= c.byteLength;
      continue;
    }
    let off = skip;
    skip = 0;
    while (off < c.byteLength) {
      const { bytesWritten } = await fh.write(c, off, c.byteLength - off, position + done);
      if (bytesWritten <= 0) throw new AppendcastError(ErrorCode.WriteNoProgress, `write made no progress at offset ${position + done}`);
      off += bytesWritten;
      done += bytesWritten;
    }
  }
}
