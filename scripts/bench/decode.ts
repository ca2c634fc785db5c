/** Does a recorded object decode? `ffmpeg -v error -i OBJ -f null -` must print nothing; ffprobe gives its duration. */
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { round } from './num.js';

const run = promisify(execFile);

export interface DecodeResult {
  stream: string;
  /** the object's path from its `objects/` directory on (null: no object found) */
  object: string | null;
  bytes: number;
  durationSeconds: number | null;
  /** lines ffmpeg printed at -v error (-1: no object) */
  errorLines: number;
  firstError?: string;
}

/** The ffprobe next to an ffmpeg binary. */
export const ffprobeOf = (ffmpeg: string): string => ffmpeg.replace(/ffmpeg$/, 'ffprobe');

export async function decodeCheck(ffmpeg: string, stream: string, object: string | null): Promise<DecodeResult> {
  if (!object) return { stream, object: null, bytes: 0, durationSeconds: null, errorLines: -1, firstError: 'no object found' };
  const bytes = await stat(object).then((st) => st.size, () => 0);
  let errorLines = 0;
  let firstError: string | undefined;
  try {
    const r = await run(ffmpeg, ['-hide_banner', '-nostdin', '-v', 'error', '-i', object, '-f', 'null', '-'], { timeout: 180_000, maxBuffer: 16 << 20 });
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    errorLines = lines.length;
    firstError = lines[0];
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const lines = (e.stderr ?? '').split('\n').filter((l) => l.trim() !== '');
    errorLines = Math.max(1, lines.length);
    firstError = lines[0] ?? e.message;
  }
  let durationSeconds: number | null = null;
  try {
    const r = await run(ffprobeOf(ffmpeg), ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', object], { timeout: 60_000 });
    durationSeconds = round(Number(r.stdout.trim()), 2);
  } catch {
    // left null
  }
  return { stream, object: object.replace(/^.*\/objects\//, 'objects/'), bytes, durationSeconds, errorLines, ...(firstError ? { firstError } : {}) };
}
