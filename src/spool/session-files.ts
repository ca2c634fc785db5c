import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoCode, fsyncDir, writeFileAtomic } from './fs-util.js';
import { SpoolSessionExistsError } from './errors.js';

/** The files of one session directory (the layout is described in spool.ts). */
export const SESSION_FILE = 'session.json';
export const CURSOR_FILE = 'cursor.json';
export const DROPS_FILE = 'drops.json';
export const SEALED_FILE = 'sealed.json';

export function segmentFileName(firstSeq: number): string {
  return `${String(firstSeq).padStart(12, '0')}.seg`;
}

export function initFileName(seq: number): string {
  return `${String(seq).padStart(12, '0')}.init`;
}

export interface SessionFileBody {
  stream: string;
  sessionId: string;
  createdAt: number;
}

/**
 * Creates a new session's directory and its session.json; with `durable`, the new directory
 * entries are fsynced up to the spool root, so a recovery finds the session after a power loss.
 * A directory that exists already is someone else's: SpoolSessionExistsError, nothing written.
 */
export async function createSessionDir(dir: string, body: SessionFileBody, durable: boolean): Promise<void> {
  const streamDir = dirname(dir);
  await mkdir(streamDir, { recursive: true });
  try {
    await mkdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') throw new SpoolSessionExistsError(`spool session ${body.stream}/${body.sessionId} already exists`, { cause: err });
    throw err;
  }
  await writeFileAtomic(join(dir, SESSION_FILE), JSON.stringify(body), durable);
  if (durable) {
    await fsyncDir(streamDir);
    await fsyncDir(dirname(streamDir));
  }
}
