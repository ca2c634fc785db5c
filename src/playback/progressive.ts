import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppendcastError, ErrorCode } from '../errors.js';
import { writeDrained } from './store-io.js';

/**
 * A clip as a progressive MP4 (`moov` first, `-movflags +faststart`, for players and editors that
 * do not take fragmented MP4): ffmpeg `-c copy` from the clip's bytes (fMP4 or MPEG-TS) on its stdin
 * into a temporary file, whose path is returned (the caller deletes it). Bounded by `timeoutMs`;
 * ffmpeg is killed by its PID on timeout or failure.
 */
export async function toProgressiveMp4(
  ffmpegPath: string,
  inputFormat: 'mp4' | 'mpegts',
  produce: (write: (b: Buffer) => Promise<boolean>) => Promise<void>,
  timeoutMs = 120_000,
): Promise<string> {
  const out = join(tmpdir(), `appendcast-clip-${randomBytes(8).toString('hex')}.mp4`);
  const child = spawn(ffmpegPath, ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', inputFormat, '-i', 'pipe:0', '-map', '0', '-c', 'copy', '-movflags', '+faststart', '-f', 'mp4', '-y', out], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr = (stderr + s).slice(-4000); });
  child.stdin.on('error', () => undefined); // ffmpeg gone: its exit code tells
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, error }));
    child.once('close', (code) => resolve({ code }));
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    await produce((b) => writeDrained(child.stdin, b));
    child.stdin.end();
    const r = await exited;
    if (r.code !== 0) throw new AppendcastError(ErrorCode.FfmpegFailed, `ffmpeg could not make a progressive MP4 (exit ${r.code}${r.error ? `, ${r.error.message}` : ''}): ${stderr.trim().slice(-500)}`);
    return out;
  } catch (err) {
    child.kill('SIGKILL');
    await rm(out, { force: true });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
