/**
 * `appendcast serve-oss` as a separate process: the stand-in for the remote OSS in `--store oss`
 * runs. It is not part of the gateway's cost, so it is its own process (not the gateway's child)
 * and measured apart. It binds port 0 and logs its URL in its 'serve-oss listening' line (pino JSON
 * on stdout), which is where we learn the port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { track } from './procs.js';

export interface ServeOss {
  proc: ChildProcess;
  /** http://127.0.0.1:PORT */
  url: string;
}

export interface ServeOssOptions {
  cli: string;
  /** one sub-directory per bucket */
  root: string;
  bucket: string;
  accessKeyId: string;
  accessKeySecret: string;
  logFile: string;
  timeoutMs: number;
}

export function startServeOss(o: ServeOssOptions): Promise<ServeOss> {
  // Credentials through the environment, not argv (ps shows argv); default durability (fsync always).
  const env = { ...process.env, OSS_ACCESS_KEY_ID: o.accessKeyId, OSS_ACCESS_KEY_SECRET: o.accessKeySecret };
  const proc = track(spawn(process.execPath, [o.cli, 'serve-oss', '--root', o.root, '--port', '0', '--host', '127.0.0.1', '--bucket', o.bucket, '--log-level', 'info'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const log = createWriteStream(o.logFile, { flags: 'a' });
  // Keep draining both pipes for its whole life (a full pipe would stall the server) into the log.
  proc.stderr!.pipe(log, { end: false });
  const lines = createInterface({ input: proc.stdout! });
  return new Promise<ServeOss>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve-oss did not log its URL within ${o.timeoutMs} ms; see ${o.logFile}`)), o.timeoutMs);
    let found = false;
    lines.on('line', (line) => {
      log.write(line + '\n');
      if (found) return;
      const url = listeningUrl(line);
      if (url === undefined) return;
      found = true;
      clearTimeout(timer);
      resolve({ proc, url });
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`serve-oss exited (${code ?? signal}) before listening; see ${o.logFile}`));
      lines.close();
      log.end();
    });
  });
}

/** The URL from serve-oss's `{"msg":"serve-oss listening","url":…}` line, if this is that line. */
function listeningUrl(line: string): string | undefined {
  try {
    const j = JSON.parse(line) as { msg?: unknown; url?: unknown };
    return j.msg === 'serve-oss listening' && typeof j.url === 'string' ? j.url : undefined;
  } catch {
    return undefined;
  }
}
