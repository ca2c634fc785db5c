import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

export interface Cleanup {
  /** An undo step; after each test they run newest first, and a failing one does not stop the rest. */
  push(step: () => Promise<unknown>): void;
  /** A fresh directory under the system temp dir, removed after the test. */
  tempDir(): Promise<string>;
}

/** Call at the top of a test file: undo steps and temp dirs (`<prefix>…`) that are cleared after each test. */
export function cleanupAfterEach(prefix: string): Cleanup {
  const steps: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of steps.splice(0).reverse()) await step().catch(() => undefined);
  });
  return {
    push: (step) => void steps.push(step),
    async tempDir() {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      steps.push(() => rm(dir, { recursive: true, force: true }));
      return dir;
    },
  };
}
