import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readJournal } from '../../src/spool/journal-reader.js';

/**
 * Every session a spool retained (`spool.retainAcked: true`), by session id: what reached the spool,
 * entry by entry — the ground truth the store's objects are compared with.
 */
export async function retainedSessions(spoolDir: string): Promise<Map<string, Buffer[]>> {
  const out = new Map<string, Buffer[]>();
  for (const streamDir of await readdir(spoolDir, { withFileTypes: true })) {
    if (!streamDir.isDirectory()) continue;
    for (const d of await readdir(join(spoolDir, streamDir.name), { withFileTypes: true })) {
      if (!d.isDirectory()) continue;
      const dir = join(spoolDir, streamDir.name, d.name);
      const meta = JSON.parse(await readFile(join(dir, 'session.json'), 'utf8')) as { sessionId: string };
      out.set(meta.sessionId, (await readJournal(dir)).map((e) => e.bytes));
    }
  }
  return out;
}
