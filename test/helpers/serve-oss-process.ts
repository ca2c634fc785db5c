import { spawn, type ChildProcess } from 'node:child_process';
import { freePort, waitFor } from './net.js';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const TSX = import.meta.resolve('tsx');

export interface ServeOssProcess {
  proc: ChildProcess;
  port: number;
  url: string;
  logs(): string;
  stop(): Promise<number | null>;
}

/** `appendcast serve-oss` in its own process, as docker-compose or a developer would run it. */
export async function startServeOss(root: string, bucket: string, creds: { id: string; secret: string }, extra: string[] = []): Promise<ServeOssProcess> {
  const port = await freePort();
  const proc = spawn(process.execPath, ['--import', TSX, CLI, 'serve-oss', '--root', root, '--port', String(port), '--bucket', bucket, '--log-level', 'warn', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, OSS_ACCESS_KEY_ID: creds.id, OSS_ACCESS_KEY_SECRET: creds.secret },
  });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  await waitFor('serve-oss listening', async () => {
    if (proc.exitCode !== null) throw new Error(`serve-oss exited ${proc.exitCode}: ${out}`);
    try {
      await fetch(url + '/');
      return true;
    } catch {
      return false;
    }
  }, 20_000, 100);
  return {
    proc, port, url, logs: () => out,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}
