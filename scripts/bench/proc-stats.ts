/**
 * Linux /proc readings for the ingest benchmark: CPU time of a process tree (the process, its
 * living descendants, and what its reaped children used), RSS and PSS, and the whole machine's busy
 * time. All CPU times are in seconds.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** utime + stime of the process itself (all its threads), s */
  self: number;
  /** cutime + cstime: children it has waited for, s */
  reaped: number;
}

/** The main thread alone (its utime+stime; the process's other threads are V8's and libuv's), s. */
export function mainThreadCpu(pid: number): number | undefined {
  return procStat(pid, `/proc/${pid}/task/${pid}/stat`)?.self;
}

/** /proc/<pid>/stat, or undefined when the process is gone. */
export function procStat(pid: number, path = `/proc/${pid}/stat`): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  // Fields after the comm start at field 3 (state): ppid is 4, utime 14, stime 15, cutime 16, cstime 17.
  const f = text.slice(close + 2).split(' ');
  const n = (i: number) => Number(f[i - 3]);
  return { pid, comm, ppid: n(4), self: (n(14) + n(15)) / CLK_TCK, reaped: (n(16) + n(17)) / CLK_TCK };
}

/** Every living descendant of `root` (not root itself), from one scan of /proc. */
export function descendants(root: number): ProcStat[] {
  const all: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(Number(name));
    if (s) all.push(s);
  }
  const byParent = new Map<number, ProcStat[]>();
  for (const s of all) {
    const list = byParent.get(s.ppid);
    if (list) list.push(s);
    else byParent.set(s.ppid, [s]);
  }
  const out: ProcStat[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const c of byParent.get(queue.shift()!) ?? []) {
      out.push(c);
      queue.push(c.pid);
    }
  }
  return out;
}

export interface TreeCpu {
  at: number;
  /** the root process alone, s */
  root: number;
  /**
   * its descendants: the living ones' own time plus everything reaped (root's cutime/cstime, which
   * holds every child it waited for and, through them, their reaped children), s
   */
  children: number;
  childPids: number[];
  childComms: string[];
}

/**
 * CPU used so far by a process tree. The difference of two readings is exact for the window even
 * when children start or exit in between, as long as the root reaps its children (Node and
 * ffmpeg do): an exited child moves from "living" to the root's cutime/cstime.
 */
export function treeCpu(root: number): TreeCpu | undefined {
  const r = procStat(root);
  if (!r) return undefined;
  const kids = descendants(root);
  // Living descendants' own time plus what each of them reaped (grandchildren that exited).
  const living = kids.reduce((s, k) => s + k.self + k.reaped, 0);
  return { at: Date.now(), root: r.self, children: r.reaped + living, childPids: kids.map((k) => k.pid), childComms: kids.map((k) => k.comm) };
}

/** Several independent processes (bare ffmpegs): the sum of their own times; exited ones keep their last reading. */
export class ProcessSetCpu {
  private readonly last = new Map<number, number>();
  read(pids: readonly number[]): number {
    for (const pid of pids) {
      const s = procStat(pid);
      if (s) this.last.set(pid, s.self + s.reaped);
    }
    let sum = 0;
    for (const pid of pids) sum += this.last.get(pid) ?? 0;
    return sum;
  }
}

export interface Mem {
  rssBytes: number;
  pssBytes: number;
}

/** VmRSS (status) and Pss (smaps_rollup), or zeros when the process is gone. */
export function memOf(pid: number): Mem {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const kb = (text: string, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
    return { rssBytes: kb(status, 'VmRSS'), pssBytes: kb(rollup, 'Pss') };
  } catch {
    return { rssBytes: 0, pssBytes: 0 };
  }
}

/** Whole-machine CPU counters from /proc/stat (all cores), s. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'latin1').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}
