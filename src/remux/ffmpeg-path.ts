import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { AppendcastError, ErrorCode } from '../errors.js';

export interface FfmpegLocation {
  path: string;
  source: 'config' | 'FFMPEG_PATH' | 'ffmpeg-static' | 'PATH';
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function fromFfmpegStatic(): string | undefined {
  try {
    // Optional dependency: its install downloads a binary and fails offline, leaving it absent.
    const p = createRequire(import.meta.url)('ffmpeg-static') as unknown;
    return typeof p === 'string' && isExecutable(p) ? p : undefined;
  } catch {
    return undefined;
  }
}

function fromPath(name: string, envPath: string | undefined): string | undefined {
  for (const dir of (envPath ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

/**
 * Finds ffmpeg (or ffprobe) as: the config's path, else FFMPEG_PATH (FFPROBE_PATH), else the
 * optional ffmpeg-static package, else PATH. Throws APC_ERR_FFMPEG_NOT_FOUND naming all of them.
 */
export function locateFfmpeg(opts: { configured?: string | null; env?: NodeJS.ProcessEnv; tool?: 'ffmpeg' | 'ffprobe' } = {}): FfmpegLocation {
  const env = opts.env ?? process.env;
  const tool = opts.tool ?? 'ffmpeg';
  const envVar = tool === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH';
  if (opts.configured) {
    if (isExecutable(opts.configured)) return { path: opts.configured, source: 'config' };
    throw new AppendcastError(ErrorCode.FfmpegNotFound, `ffmpeg.path in the config is ${opts.configured}, which is not an executable file`);
  }
  const fromEnv = env[envVar];
  if (fromEnv) {
    if (isExecutable(fromEnv)) return { path: fromEnv, source: 'FFMPEG_PATH' };
    throw new AppendcastError(ErrorCode.FfmpegNotFound, `${envVar} is ${fromEnv}, which is not an executable file`);
  }
  if (tool === 'ffmpeg') {
    const s = fromFfmpegStatic();
    if (s) return { path: s, source: 'ffmpeg-static' };
  }
  const p = fromPath(tool, env.PATH);
  if (p) return { path: p, source: 'PATH' };
  throw new AppendcastError(
    ErrorCode.FfmpegNotFound,
    `${tool} not found: set ${envVar} (or ffmpeg.path in the config), install the optional npm package ffmpeg-static, ` +
      `or put ${tool} on PATH (Debian: apt-get install -y ffmpeg)`,
  );
}
