import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SessionSummary } from '../../src/stream/session-recorder.js';
import { logLine } from './log-lines.js';
import { waitFor } from './wait.js';

const ROOT = new URL('../..', import.meta.url).pathname;
// The tsx loader, resolved from the repo (the gateway runs with its cwd in a temp dir).
const TSX = import.meta.resolve('tsx');

/** A session as GET /api/v1/streams shows it (the summary fields once the session has them). */
export interface ApiSession extends Partial<Omit<SessionSummary, 'id'>> {
  id: string;
  recovered: boolean;
  /** Not everything this session recorded is in the store yet. */
  draining: boolean;
  remuxerPid: number | null;
  halted: boolean;
  objects: string[];
  currentObject: string | null;
  position: number;
}

/** A stream as GET /api/v1/streams shows it. */
export interface ApiStream {
  id: string;
  configured: boolean;
  enabled: boolean;
  publishing: boolean;
  sessions: ApiSession[];
}

export interface GatewayProcess {
  proc: ChildProcess;
  /** The ports the gateway bound (read from its `gateway started` line). */
  rtmpPort: number;
  httpPort: number;
  configFile: string;
  logs(): string;
  get<T = unknown>(path: string): Promise<T>;
  /** GET /api/v1/streams. */
  streams(): Promise<ApiStream[]>;
  metrics(): Promise<string>;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL (crash) and wait. */
  kill(): Promise<void>;
}

interface Bound {
  rtmp: number;
  http: number;
}

/** The ports in the gateway's `gateway started` log line (pino JSON on stdout), once it has printed it. */
export function boundPorts(stdout: string): Bound | undefined {
  const j = logLine<{ rtmp?: { port?: unknown }; http?: { port?: unknown } }>(stdout, 'gateway started');
  const rtmp = j?.rtmp?.port;
  const http = j?.http?.port;
  return typeof rtmp === 'number' && typeof http === 'number' && rtmp > 0 && http > 0 ? { rtmp, http } : undefined;
}

/**
 * Runs the real CLI (`appendcast run`) from source in a child process, as an operator would. The
 * config's ports are 0 unless `ports` names them (a restart on the same ports): the gateway binds
 * what it gets and reports it in its `gateway started` line, which is read here (so the config must
 * log at info or below).
 */
export async function startGateway(
  dir: string,
  yamlBody: (ports: { rtmp: number; http: number }) => string,
  env: NodeJS.ProcessEnv = {},
  ports: { rtmp: number; http: number } = { rtmp: 0, http: 0 },
  opts: { apiToken?: string } = {},
): Promise<GatewayProcess> {
  const configFile = join(dir, 'appendcast.yaml');
  await writeFile(configFile, yamlBody(ports));
  const proc = spawn(process.execPath, ['--import', TSX, join(ROOT, 'src/cli.ts'), 'run', '--config', configFile], {
    cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  let out = '';
  let stdout = ''; // until the started line has been read
  let bound: Bound | undefined;
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    if (bound === undefined) stdout += s;
  });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  const kill = async (): Promise<void> => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    await exited;
  };
  try {
    bound = await waitFor('the gateway started line (its bound ports)', () => {
      if (proc.exitCode !== null) throw new Error(`gateway exited with ${proc.exitCode}:\n${out}`);
      return boundPorts(stdout);
    }, 20_000, 20);
  } catch (err) {
    await kill();
    throw err;
  }
  stdout = '';
  const base = `http://127.0.0.1:${bound.http}`;
  const get = async <T>(path: string): Promise<T> => {
    const r = await fetch(base + path, opts.apiToken ? { headers: { authorization: `Bearer ${opts.apiToken}` } } : {});
    if (!r.ok) throw new Error(`GET ${path}: ${r.status}`);
    return (await r.json()) as T;
  };
  const g: GatewayProcess = {
    proc, rtmpPort: bound.rtmp, httpPort: bound.http, configFile,
    logs: () => out,
    get,
    async streams() {
      return (await get<{ streams: ApiStream[] }>('/api/v1/streams')).streams;
    },
    async metrics() {
      return (await fetch(base + '/metrics')).text();
    },
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
    kill,
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
  return metricSamples(text, name, labels)[0];
}

/** The sum of every sample of `name` that has `labels` (e.g. all reasons of one stream: each exists from the start, at 0). */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  return metricSamples(text, name, labels).reduce((a, b) => a + b, 0);
}

function metricSamples(text: string, name: string, labels: Record<string, string>): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const kv of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) got[kv[1]!] = kv[2]!;
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) out.push(Number(m[4]));
  }
  return out;
}
