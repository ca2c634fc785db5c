import { spawn, type ChildProcess } from 'node:child_process';
import { logLine } from './log-lines.js';
import { waitFor } from './wait.js';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const TSX = import.meta.resolve('tsx');

export interface ServeOssProcess {
  proc: ChildProcess;
  port: number;
  url: string;
  logs(): string;
  stop(): Promise<number | null>;
}

/** The URL in serve-oss's `serve-oss listening` log line (pino JSON on stdout), once it has printed it. */
function listeningUrl(stdout: string): string | undefined {
  const url = logLine<{ url?: unknown }>(stdout, 'serve-oss listening')?.url;
  return typeof url === 'string' ? url : undefined;
}

/**
 * `appendcast serve-oss` in its own process, as docker-compose or a developer would run it: on port
 * 0, its URL read from its `serve-oss listening` line (so it logs at info).
 */
export async function startServeOss(root: string, bucket: string, creds: { id: string; secret: string }, extra: string[] = []): Promise<ServeOssProcess> {
  const proc = spawn(process.execPath, ['--import', TSX, CLI, 'serve-oss', '--root', root, '--port', '0', '--bucket', bucket, '--log-level', 'info', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, OSS_ACCESS_KEY_ID: creds.id, OSS_ACCESS_KEY_SECRET: creds.secret },
  });
  let out = '';
  let stdout = ''; // until the listening line has been read
  let url: string | undefined;
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    if (url === undefined) stdout += s;
  });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  try {
    url = await waitFor('the serve-oss listening line', () => {
      if (proc.exitCode !== null) throw new Error(`serve-oss exited ${proc.exitCode}: ${out}`);
      return listeningUrl(stdout);
    }, 20_000, 20);
  } catch (err) {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    await exited;
    throw err;
  }
  stdout = '';
  return {
    proc, port: Number(new URL(url).port), url, logs: () => out,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}
