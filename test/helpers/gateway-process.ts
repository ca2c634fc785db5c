import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, waitFor } from './net.js';

const ROOT = new URL('../..', import.meta.url).pathname;
// The tsx loader, resolved from the repo (the gateway runs with its cwd in a temp dir).
const TSX = import.meta.resolve('tsx');

export interface GatewayProcess {
  proc: ChildProcess;
  rtmpPort: number;
  httpPort: number;
  configFile: string;
  logs(): string;
  get<T = unknown>(path: string): Promise<T>;
  metrics(): Promise<string>;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL (crash) and wait. */
  kill(): Promise<void>;
}

/** Runs the real CLI (`appendcast run`) from source in a child process, as an operator would. */
export async function startGateway(
  dir: string,
  yamlBody: (ports: { rtmp: number; http: number }) => string,
  env: NodeJS.ProcessEnv = {},
  ports?: { rtmp: number; http: number },
): Promise<GatewayProcess> {
  const rtmpPort = ports?.rtmp ?? (await freePort());
  const httpPort = ports?.http ?? (await freePort());
  const configFile = join(dir, 'appendcast.yaml');
  await writeFile(configFile, yamlBody({ rtmp: rtmpPort, http: httpPort }));
  const proc = spawn(process.execPath, ['--import', TSX, join(ROOT, 'src/cli.ts'), 'run', '--config', configFile], {
    cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  const base = `http://127.0.0.1:${httpPort}`;
  const g: GatewayProcess = {
    proc, rtmpPort, httpPort, configFile,
    logs: () => out,
    async get<T>(path: string) {
      const r = await fetch(base + path);
      if (!r.ok) throw new Error(`GET ${path}: ${r.status}`);
      return (await r.json()) as T;
    },
    async metrics() {
      return (await fetch(base + '/metrics')).text();
    },
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
  try {
    await waitFor('gateway /healthz', async () => {
      if (proc.exitCode !== null) throw new Error(`gateway exited with ${proc.exitCode}:\n${out}`);
      try {
        return (await fetch(base + '/healthz')).status === 200;
      } catch {
        return false;
      }
    }, 20_000, 100);
  } catch (err) {
    await g.kill();
    throw err;
  }
  return g;
}

/** The value of one Prometheus sample, e.g. metric('appendcast_appends_total', {stream: 'cam1'}). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const kv of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) got[kv[1]!] = kv[2]!;
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}
