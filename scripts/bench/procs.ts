/**
 * The processes a benchmark starts: each one is tracked from spawn to exit, and whatever is still
 * running when the benchmark ends (normally, on SIGINT/SIGTERM, or on a deadline) is SIGKILLed by
 * its own PID. Nothing is ever killed by name: the machine is shared.
 */
import type { ChildProcess } from 'node:child_process';

const started = new Set<ChildProcess>();

/** Registers a child we spawned, so that killAll() reaches it; returns it. */
export function track(p: ChildProcess): ChildProcess {
  started.add(p);
  p.once('exit', () => started.delete(p));
  return p;
}

/** SIGKILL to every tracked child still running. Synchronous, so it is safe in an 'exit' handler. */
export function killAll(): void {
  for (const p of started) {
    if (p.pid === undefined || p.exitCode !== null || p.signalCode !== null) continue;
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * Kills what we started when this process ends, however it ends. `onSignal` runs first on
 * SIGINT/SIGTERM (synchronous cleanup, e.g. removing a temp dir once the children are dead).
 */
export function killAllOnExit(onSignal: () => void = () => undefined): void {
  const bye = (code: number) => () => {
    killAll();
    onSignal();
    process.exit(code);
  };
  process.on('SIGINT', bye(130));
  process.on('SIGTERM', bye(143));
  process.on('exit', killAll);
}

export interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function exited(p: ChildProcess): Promise<Ended> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve({ code: p.exitCode, signal: p.signalCode });
  return new Promise((r) => p.once('exit', (code, signal) => r({ code, signal })));
}

export interface Stopped extends Ended {
  /** how long it took to exit, s */
  seconds: number;
  /** true when it had to be SIGKILLed after the grace */
  killed: boolean;
}

/** SIGTERM (or `first`), then SIGKILL after `graceMs`; resolves with how it ended and how long it took. */
export async function stopProcess(p: ChildProcess, graceMs: number, first: NodeJS.Signals = 'SIGTERM'): Promise<Stopped> {
  const t0 = performance.now();
  const done = exited(p);
  if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) process.kill(p.pid, first);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    if (p.pid !== undefined && p.exitCode === null) process.kill(p.pid, 'SIGKILL');
  }, graceMs);
  const r = await done;
  clearTimeout(timer);
  return { ...r, seconds: +((performance.now() - t0) / 1000).toFixed(2), killed };
}
