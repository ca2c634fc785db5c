import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Files looked at per walk at most: a spool retaining years of audit trail must not stall a scrape. */
const MAX_FILES = 200_000;

/**
 * Bytes the spool occupies on disk per stream (`<dir>/<stream>/**`: live journals, init copies,
 * cursors, and whatever `retainAcked` keeps: `*.seg.acked`, `<session>.done/`). Read by walking
 * the directory, at most once per `maxAgeMs` (scrapes in between get the last result) and one walk
 * at a time; symlinks are not followed, depth is bounded (stream/session/file). A walk that hits
 * MAX_FILES reports what it counted so far (an underestimate, flagged by `truncated`).
 */
export class SpoolDiskUsage {
  private last: { at: number; bytes: Map<string, number>; truncated: boolean } | undefined;
  private running: Promise<Map<string, number>> | undefined;

  constructor(private readonly dir: string, private readonly maxAgeMs = 5_000, private readonly now: () => number = Date.now) {}

  get truncated(): boolean {
    return this.last?.truncated ?? false;
  }

  async bytesByStream(): Promise<Map<string, number>> {
    if (this.last && this.now() - this.last.at < this.maxAgeMs) return this.last.bytes;
    this.running ??= this.walk().finally(() => { this.running = undefined; });
    return this.running;
  }

  private async walk(): Promise<Map<string, number>> {
    const bytes = new Map<string, number>();
    const budget = { files: MAX_FILES };
    for (const d of await entries(this.dir)) {
      if (!d.isDirectory()) continue;
      let stream: string;
      try {
        stream = decodeURIComponent(d.name);
      } catch {
        continue; // not a directory the spool made
      }
      bytes.set(stream, await sizeOf(join(this.dir, d.name), 2, budget));
    }
    this.last = { at: this.now(), bytes, truncated: budget.files <= 0 };
    return bytes;
  }
}

async function entries(dir: string): Promise<import('node:fs').Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch {
    return []; // not there (yet), or gone meanwhile
  }
}

async function sizeOf(dir: string, depth: number, budget: { files: number }): Promise<number> {
  let n = 0;
  for (const d of await entries(dir)) {
    if (budget.files-- <= 0) break;
    const p = join(dir, d.name);
    if (d.isDirectory()) {
      if (depth > 0) n += await sizeOf(p, depth - 1, budget);
    } else if (d.isFile()) {
      n += await lstat(p).then((s) => s.size, () => 0); // deleted meanwhile (acknowledged): 0
    }
  }
  return n;
}
