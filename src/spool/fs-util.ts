import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoCode, fsyncDir } from '../util/fs-durable.js';

export { errnoCode, fsyncDir };

/** Writes `data` to `path` atomically: temp file, (fsync), rename, (fsync the directory). */
export async function writeFileAtomic(path: string, data: string | Buffer, durable: boolean): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  if (durable) await fsyncDir(dirname(path));
}

/**
 * A small JSON file rewritten atomically, writes serialized and coalesced: while one write runs,
 * later values replace each other and the next write carries the newest; every caller's promise
 * settles when a write carrying its value (or a newer one) has finished.
 */
export class AtomicJsonFile<T> {
  private next: { value: T; waiters: Array<{ resolve(): void; reject(err: unknown): void }> } | undefined;
  private running = false;

  constructor(
    readonly path: string,
    private readonly durable: boolean,
    private readonly onWritten?: (value: T) => void,
  ) {}

  write(value: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.next) {
        this.next.value = value;
        this.next.waiters.push({ resolve, reject });
      } else {
        this.next = { value, waiters: [{ resolve, reject }] };
      }
      if (!this.running) void this.run();
    });
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.next) {
      const { value, waiters } = this.next;
      this.next = undefined;
      try {
        await writeFileAtomic(this.path, JSON.stringify(value), this.durable);
        this.onWritten?.(value);
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err);
      }
    }
    this.running = false;
  }
}
