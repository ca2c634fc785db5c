import { spawn, type ChildProcess } from 'node:child_process';

export interface CameraOptions {
  url: string;
  seconds: number;
  /** GOP in frames at 25 fps (default 25 = 1 s). */
  gop?: number;
  audio?: boolean;
  size?: string;
  /** Called with ffmpeg's progress (seconds of media written to the RTMP connection so far). */
  onProgress?: (outTimeSeconds: number) => void;
}

export interface Camera {
  proc: ChildProcess;
  /** Resolves with ffmpeg's exit code and its stderr. */
  done: Promise<{ code: number | null; stderr: string }>;
  stop(): void;
}

/**
 * A synthetic camera: ffmpeg lavfi testsrc2 (+ sine), H.264 (+ AAC), encoded live in real time
 * (-re) and pushed over RTMP, as a real camera would.
 */
export function startCamera(o: CameraOptions): Camera {
  const gop = o.gop ?? 25;
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', `testsrc2=size=${o.size ?? '320x240'}:rate=25`];
  if (o.audio !== false) args.push('-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000');
  args.push('-t', String(o.seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p',
    '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-b:v', '400k');
  if (o.audio !== false) args.push('-c:a', 'aac', '-b:a', '64k', '-ac', '1');
  if (o.onProgress) args.push('-progress', 'pipe:1', '-stats_period', '0.1');
  args.push('-flvflags', 'no_duration_filesize', '-f', 'flv', o.url);
  const proc = spawn(process.env.FFMPEG_PATH ?? 'ffmpeg', args, { stdio: ['ignore', o.onProgress ? 'pipe' : 'ignore', 'pipe'] });
  if (o.onProgress) {
    const cb = o.onProgress;
    proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
      for (const m of s.matchAll(/out_time_us=(\d+)/g)) cb(Number(m[1]) / 1e6);
    });
  }
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => proc.once('close', (code) => resolve({ code, stderr })));
  return { proc, done, stop: () => { if (proc.exitCode === null) proc.kill('SIGKILL'); } };
}
