/**
 * What the splitter tests (fMP4 and MPEG-TS, synthetic and ffmpeg-made) share: running a splitter
 * over chunks, picking its outputs apart, checking its errors, and feeding it ffmpeg's stdout live.
 */
import { spawn } from 'node:child_process';
import { expect } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { ContainerError } from '../../src/container/index.js';
import type { ContainerOutput, InitSegment, MediaFragment } from '../../src/container/index.js';

/** Fmp4Splitter and Mpeg2TsSplitter alike. */
export interface Splitter {
  push(chunk: Uint8Array, receivedAt?: number): ContainerOutput[];
  flush(): ContainerOutput[];
}

/** Every output of `s` for these chunks (chunk i received at time i), flush included. */
export function splitAll(s: Splitter, chunks: readonly Uint8Array[]): ContainerOutput[] {
  const out: ContainerOutput[] = [];
  chunks.forEach((c, i) => out.push(...s.push(c, i)));
  out.push(...s.flush());
  return out;
}

/**
 * Pushes the chunks, then flushes, stopping at the first error, which must be a ContainerError:
 * the outputs delivered before it, and whether it came (how fuzzed input must fail).
 */
export function splitUntilContainerError(s: Splitter, chunks: readonly Uint8Array[]): { outs: ContainerOutput[]; failed: boolean } {
  const outs: ContainerOutput[] = [];
  try {
    for (const c of chunks) outs.push(...s.push(c));
    outs.push(...s.flush());
    return { outs, failed: false };
  } catch (err) {
    expect(err).toBeInstanceOf(ContainerError);
    return { outs, failed: true };
  }
}

export const fragmentsOf = (outs: ContainerOutput[]): MediaFragment[] => outs.filter((o): o is MediaFragment => o.type === 'fragment');
export const initsOf = (outs: ContainerOutput[]): InitSegment[] => outs.filter((o): o is InitSegment => o.type === 'init');

/** The outputs as comparable rows (type, and for fragments sequence, keyframe, times, samples; size). */
export const summary = (outs: ContainerOutput[]): unknown[] =>
  outs.map((o) =>
    o.type === 'fragment' ? [o.type, o.sequence, o.keyframe, o.startTime, o.duration, o.videoSamples, o.bytes.length] : [o.type, o.bytes.length],
  );

/** `err` is a ContainerError (APC_ERR_CONTAINER_INVALID) whose message matches `pattern`. */
export function expectContainerError(err: unknown, pattern: RegExp): ContainerError {
  expect(err).toBeInstanceOf(ContainerError);
  const e = err as ContainerError;
  expect(e.code).toBe(ErrorCode.ContainerInvalid);
  expect(e.message).toMatch(pattern);
  return e;
}

/**
 * Runs ffmpeg (`args` after `-hide_banner -nostdin -loglevel error`, writing to pipe:1) and pushes
 * its stdout into `s` as it arrives, the way the gateway does; killed after `killAfterMs`.
 */
export async function splitFfmpegStdout(
  args: readonly string[],
  s: Splitter,
  killAfterMs = 20_000,
): Promise<{ code: number | null; received: Buffer[]; outs: ContainerOutput[] }> {
  const ff = spawn(process.env.FFMPEG_PATH ?? 'ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const received: Buffer[] = [];
  const outs: ContainerOutput[] = [];
  const timer = setTimeout(() => ff.kill('SIGKILL'), killAfterMs);
  ff.stdout.on('data', (chunk: Buffer) => {
    received.push(chunk);
    outs.push(...s.push(chunk));
  });
  const code = await new Promise<number | null>((resolve) => ff.on('close', resolve));
  clearTimeout(timer);
  return { code, received, outs };
}
