/**
 * The gateway as its own process (`node [--cpu-prof] dist/cli.js run --config FILE`), and what the
 * benchmark asks it over HTTP: /healthz, /metrics, /api/v1/streams.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { waitFor } from '../../test/helpers/wait.js';
import { parseProm, type Sample } from './prom.js';
import { track } from './procs.js';

/** A session as GET /api/v1/streams shows it (the fields the benchmark reads). */
export interface ApiSession {
  id: string;
  /** Present once the session ended (its summary): bytes of whole boxes that reached the spool. */
  spooledBytes?: number;
  endedAt?: string | null;
  /** Not everything it recorded is in the store yet. */
  draining: boolean;
  halted: boolean;
  recovered: boolean;
  objects: string[];
}

export interface ApiStream {
  id: string;
  publishing: boolean;
  sessions: ApiSession[];
}

export class GatewayProcess {
  readonly proc: ChildProcess;
  readonly baseUrl: string;

  /** Spawns it; stdout and stderr go to `logFile`. `env` adds to (or, as undefined, removes from) ours. */
  constructor(o: { cli: string; config: string; cwd: string; httpPort: number; logFile: string; nodeArgs?: string[]; env?: Record<string, string | undefined> }) {
    const logFd = openSync(o.logFile, 'a');
    const env = { ...process.env, ...o.env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    this.proc = track(spawn(process.execPath, [...(o.nodeArgs ?? []), o.cli, 'run', '--config', o.config], { cwd: o.cwd, env, stdio: ['ignore', logFd, logFd] }));
    closeSync(logFd);
    this.baseUrl = `http://127.0.0.1:${o.httpPort}`;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Resolves once /healthz answers 200; rejects if the process exits first or after `timeoutMs`. */
  async ready(timeoutMs: number, logFile: string): Promise<void> {
    await waitFor('gateway /healthz', async () => {
      if (this.proc.exitCode !== null) throw new Error(`gateway exited with ${this.proc.exitCode}; see ${logFile}`);
      try {
        return (await fetch(`${this.baseUrl}/healthz`, { signal: AbortSignal.timeout(2000) })).status === 200;
      } catch {
        return false;
      }
    }, timeoutMs, 100);
  }

  async get(path: string): Promise<string> {
    const r = await fetch(this.baseUrl + path, { signal: AbortSignal.timeout(5000) });
    if (!r.ok) throw new Error(`GET ${path}: ${r.status}`);
    return r.text();
  }

  async metrics(): Promise<Sample[]> {
    return parseProm(await this.get('/metrics'));
  }

  async streams(): Promise<ApiStream[]> {
    return (JSON.parse(await this.get('/api/v1/streams')) as { streams: ApiStream[] }).streams;
  }
}

/**
 * Whether every stream is done: not publishing, and each of its sessions ended (its summary is
 * there) and left nothing in the spool. Returns what is still pending, for the report.
 */
export function pendingOf(streams: readonly ApiStream[]): { publishing: number; draining: number; unfinished: number } {
  let publishing = 0;
  let draining = 0;
  let unfinished = 0;
  for (const s of streams) {
    if (s.publishing) publishing++;
    for (const x of s.sessions) {
      if (x.draining) draining++;
      if (x.spooledBytes === undefined || !x.endedAt) unfinished++;
    }
  }
  return { publishing, draining, unfinished };
}
