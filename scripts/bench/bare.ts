/**
 * The baseline the gateway is compared with: N × `ffmpeg -re -stream_loop -1 -i src.flv -c copy`
 * to fragmented MP4 files — what remuxing N cameras costs with nothing else (no network, no spool,
 * no store). Started staggered like the cameras, measured over the same window from /proc.
 */
import { closeSync, openSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeCheck, type DecodeResult } from './decode.js';
import { MemSampler, type MemStats } from './mem-sampler.js';
import { round, sleep, tick } from './num.js';
import { exited, stopProcess, track } from './procs.js';
import { machineCpu, ProcessSetCpu } from './proc-stats.js';

export const BARE_DESCRIPTION = 'N × ffmpeg -re -stream_loop -1 -i src.flv -c copy -f mp4 -movflags +frag_keyframe+empty_moov+default_base_moof <file>';

export interface BareOptions {
  ffmpeg: string;
  /** the source FLV */
  flv: string;
  /** one ffmpeg per id; its file is <dir>/objects/<id>/<id>.mp4 */
  ids: readonly string[];
  staggerMs: number;
  warmupSeconds: number;
  windowSeconds: number;
  dir: string;
  /** ids whose files are decoded afterwards */
  decodeIds: readonly string[];
}

export interface BareRun {
  /** the window as it was, s */
  wallSeconds: number;
  /** ffmpegs still running at the end of the window */
  alive: number;
  /** CPU of all the ffmpegs, % of one core */
  cpuPct: number;
  /** the whole machine, % of one core */
  machineBusyPct: number;
  mem: MemStats;
  decode: DecodeResult[];
  notes: string[];
}

export async function runBare(o: BareOptions): Promise<BareRun> {
  const n = o.ids.length;
  await mkdir(join(o.dir, 'objects'), { recursive: true });
  const notes: string[] = [];
  // Long enough to outlast the window; each then ends by itself.
  const seconds = o.staggerMs / 1000 + o.warmupSeconds + o.windowSeconds + 5;
  const procs: ChildProcess[] = [];
  const outs: string[] = [];
  const logFd = openSync(join(o.dir, 'ffmpeg.log'), 'a');
  const tStart = performance.now();
  for (let i = 0; i < n; i++) {
    await sleep(Math.max(0, tStart + (i * o.staggerMs) / n - performance.now()));
    const id = o.ids[i]!;
    await mkdir(join(o.dir, 'objects', id), { recursive: true });
    const out = join(o.dir, 'objects', id, `${id}.mp4`);
    outs.push(out);
    procs.push(track(spawn(o.ffmpeg, ['-hide_banner', '-nostdin', '-v', 'error', '-re', '-stream_loop', '-1', '-i', o.flv, '-t', String(seconds),
      '-c', 'copy', '-f', 'mp4', '-movflags', '+frag_keyframe+empty_moov+default_base_moof', '-y', out], { stdio: ['ignore', 'ignore', logFd] })));
  }
  closeSync(logFd);
  const pids = procs.map((p) => p.pid!);
  await sleep(o.warmupSeconds * 1000);
  const S = o.windowSeconds;
  const cpu = new ProcessSetCpu();
  const mem = new MemSampler(null, () => pids);
  const c0 = cpu.read(pids);
  const k0 = machineCpu();
  const t0 = performance.now();
  while (performance.now() - t0 < S * 1000 - 1000) {
    await Promise.race([tick(), sleep(Math.max(0, S * 1000 - (performance.now() - t0)))]);
    if (performance.now() - t0 >= S * 1000) break;
    mem.sample();
  }
  await sleep(Math.max(0, S * 1000 - (performance.now() - t0)));
  const alive = procs.filter((p) => p.exitCode === null).length;
  const c1 = cpu.read(pids);
  const k1 = machineCpu();
  const wall = (performance.now() - t0) / 1000;
  if (alive < n) notes.push(`${n - alive} ffmpeg exited before the end of the window`);
  notes.push(...(await reap(procs)));
  const decode: DecodeResult[] = [];
  for (const id of o.decodeIds) decode.push(await decodeCheck(o.ffmpeg, id, outs[o.ids.indexOf(id)] ?? null));
  return {
    wallSeconds: wall, alive, cpuPct: round((100 * (c1 - c0)) / wall, 2), machineBusyPct: round((100 * (k1.busy - k0.busy)) / wall, 2),
    mem: mem.stats(), decode, notes,
  };
}

/** Waits for the ffmpegs to end by themselves (-t), bounded: late ones are stopped. Returns notes. */
async function reap(procs: readonly ChildProcess[]): Promise<string[]> {
  const notes: string[] = [];
  // unref: a timer left over from a race must not hold the benchmark's exit for 20 s.
  const late = () => new Promise<boolean>((r) => setTimeout(() => r(true), 20_000).unref());
  const ends = await Promise.all(procs.map((p) => Promise.race([exited(p).then(() => false), late()])));
  let killed = 0;
  for (const [i, wasLate] of ends.entries()) if (wasLate) {
    killed++;
    await stopProcess(procs[i]!, 5000);
  }
  if (killed) notes.push(`${killed} ffmpeg did not end by -t and were stopped`);
  const codes = procs.map((p) => p.exitCode);
  if (codes.some((c) => c !== 0)) notes.push(`ffmpeg exit codes: ${JSON.stringify(codes)}`);
  return notes;
}
