/**
 * The benchmark's source: 720p25 H.264 at 2 Mbps with a 1 s GOP (-g 25 -keyint_min 25
 * -sc_threshold 0, libx264 veryfast, High profile with B-frames) and AAC 128k 48 kHz stereo, as FLV,
 * encoded once from ffmpeg's test sources and cached outside the repository
 * (os.tmpdir()/appendcast-bench/). Generated media is never committed.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SourceInfo {
  path: string;
  seconds: number;
  bytes: number;
  bitsPerSecond: number;
  /** wall time of the encode that made it (cached: the first run's) */
  encodeSeconds: number;
  cached: boolean;
  command: string[];
}

export async function sourceFlv(ffmpeg: string, seconds: number, dir = join(tmpdir(), 'appendcast-bench')): Promise<SourceInfo> {
  await mkdir(dir, { recursive: true });
  const name = `src-720p25-h264-2M-g25-aac128k-${seconds}s.flv`;
  const path = join(dir, name);
  const metaPath = `${path}.json`;
  const args = [
    '-hide_banner', '-nostdin', '-v', 'error',
    '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000', '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-keyint_min', '25', '-sc_threshold', '0',
    '-b:v', '2M', '-maxrate', '2M', '-bufsize', '4M', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '128k', '-ac', '2', '-ar', '48000',
    // no end-of-sequence tag: the file is looped
    '-flvflags', 'no_sequence_end', '-f', 'flv',
  ];
  try {
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as SourceInfo;
    const st = await stat(path);
    if (st.size === meta.bytes) return { ...meta, path, cached: true };
  } catch {
    // not made yet
  }
  const tmp = `${path}.${process.pid}.tmp`;
  const t0 = performance.now();
  await run(ffmpeg, [...args, '-y', tmp], { maxBuffer: 1 << 20 });
  const encodeSeconds = (performance.now() - t0) / 1000;
  await rename(tmp, path);
  const bytes = (await stat(path)).size;
  const info: SourceInfo = { path, seconds, bytes, bitsPerSecond: Math.round((bytes * 8) / seconds), encodeSeconds: +encodeSeconds.toFixed(2), cached: false, command: [ffmpeg, ...args, path] };
  await writeFile(metaPath, JSON.stringify(info, null, 2));
  return info;
}
