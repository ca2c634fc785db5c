/**
 * The cameras: ONE child Node process (./loadgen.ts, run through tsx) publishing every stream, and
 * what it tells us over IPC (publish outcomes, counters, the moment it stopped).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { waitFor } from '../../test/helpers/wait.js';
import type { LoadgenMessage, LoadgenOptions } from './loadgen.js';
import { sleep } from './num.js';
import { exited, stopProcess, track, type Stopped } from './procs.js';

const ROOT = new URL('../..', import.meta.url).pathname;
type Stats = Extract<LoadgenMessage, { event: 'stats' }>;

export class Loadgen {
  readonly proc: ChildProcess;
  readonly msgs: LoadgenMessage[] = [];

  constructor(opts: LoadgenOptions, o: { cwd: string; logFile: string }) {
    const logFd = openSync(o.logFile, 'a');
    const tsx = createRequire(join(ROOT, 'package.json')).resolve('tsx');
    this.proc = track(spawn(process.execPath, ['--import', tsx, join(ROOT, 'scripts/bench/loadgen.ts'), JSON.stringify(opts)], { cwd: o.cwd, stdio: ['ignore', logFd, logFd, 'ipc'] }));
    closeSync(logFd);
    this.proc.on('message', (m: LoadgenMessage) => this.msgs.push(m));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Waits (bounded) until every stream's publish was answered, accepted or not. */
  async published(n: number, timeoutMs: number): Promise<{ accepted: Map<string, number>; refused: string[] }> {
    const answered = () => this.msgs.filter((m) => m.event === 'published' || m.event === 'refused' || m.event === 'error').length;
    await waitFor('every publish answered', () => answered() >= n || this.proc.exitCode !== null, timeoutMs, 50).catch(() => undefined);
    const accepted = new Map<string, number>();
    const refused: string[] = [];
    for (const m of this.msgs) {
      if (m.event === 'published') accepted.set(m.stream, m.at);
      else if (m.event === 'refused') refused.push(`${m.stream}: ${m.code} ${m.description}`);
      else if (m.event === 'error') refused.push(`${m.stream}: ${m.message}`);
    }
    return { accepted, refused };
  }

  /** Starts a new event-loop-utilization interval (reported by the next stats). */
  mark(): void {
    if (this.proc.connected) this.proc.send('mark');
  }

  /** Its counters now (undefined if it does not answer within 1 s). */
  async stats(): Promise<Stats | undefined> {
    const before = this.msgs.length;
    if (this.proc.connected) this.proc.send('stats');
    for (let i = 0; i < 50 && !this.newStats(before); i++) await sleep(20);
    return this.newStats(before);
  }

  /**
   * Stops publishing: it unpublishes every stream (FCUnpublish, deleteStream, close) and exits.
   * Resolves with the stats it sent at the moment it stopped (their `at` is when the last media
   * could have been sent) and how it ended; killed if it does not end within `graceMs`.
   */
  async stop(graceMs: number): Promise<{ atStop: Stats | undefined; ended: Stopped }> {
    const before = this.msgs.length;
    const t0 = performance.now();
    if (this.proc.connected) this.proc.send('stop');
    // unref: the losing timer of the race must not hold the benchmark's exit.
    const late = new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref());
    const inTime = await Promise.race([exited(this.proc).then(() => true), late]);
    const ended = inTime
      ? { code: this.proc.exitCode, signal: this.proc.signalCode, seconds: +((performance.now() - t0) / 1000).toFixed(2), killed: false }
      : await stopProcess(this.proc, 2000);
    return { atStop: this.newStats(before), ended };
  }

  /** Connections the gateway closed while we were still publishing. */
  closedEarly(): string[] {
    return this.msgs.filter((m): m is Extract<LoadgenMessage, { event: 'closed' }> => m.event === 'closed' && !m.byUs).map((m) => m.stream);
  }

  private newStats(from: number): Stats | undefined {
    return this.msgs.slice(from).find((m): m is Stats => m.event === 'stats');
  }
}
