/**
 * Self time per function (and per source file) from a V8 .cpuprofile (`node --cpu-prof`),
 * optionally only the samples inside a window of the monotonic clock (µs, the clock of
 * process.hrtime, which V8's profiler timestamps use on Linux).
 *
 *   npx tsx scripts/bench/cpuprof-top.ts FILE.cpuprofile [--from-us N --to-us N] [--top 25]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number } }>;
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileTop {
  /** window length, s */
  wallSeconds: number;
  /** sampled time that was not (idle), s */
  busySeconds: number;
  functions: Array<{ name: string; where: string; selfSeconds: number; pctOfBusy: number; pctOfCore: number }>;
  files: Array<{ where: string; selfSeconds: number; pctOfBusy: number; pctOfCore: number }>;
}

const ROOT = new URL('../..', import.meta.url).pathname;

function shortUrl(url: string): string {
  if (url === '') return '(native/V8)';
  let u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('/node_modules/');
  const build = /\/appendcast-bench\/build-[0-9a-f]+\/dist\//.exec(u);
  if (nm >= 0) u = u.slice(nm + 1);
  else if (build) u = `dist/${u.slice(build.index + build[0].length)}`;
  else if (u.startsWith(ROOT)) u = u.slice(ROOT.length);
  return u;
}

export function profileTop(p: CpuProfile, opts: { fromUs?: number; toUs?: number; top?: number } = {}): ProfileTop {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const from = opts.fromUs ?? p.startTime;
  const to = opts.toUs ?? p.endTime;
  const self = new Map<number, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (t < from || t > to) continue;
    // A sample stands for the time until the next one.
    const dt = p.timeDeltas[i + 1] ?? 0;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
  }
  const wall = (Math.min(to, p.endTime) - Math.max(from, p.startTime)) / 1e6;
  const fn = new Map<string, { name: string; where: string; us: number }>();
  const files = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const cf = byId.get(id)!.callFrame;
    if (cf.functionName === '(idle)') continue;
    busy += us;
    const where = cf.url ? `${shortUrl(cf.url)}:${cf.lineNumber + 1}` : shortUrl(cf.url);
    const name = cf.functionName || '(anonymous)';
    const key = `${name}@${where}`;
    const e = fn.get(key) ?? { name, where, us: 0 };
    e.us += us;
    fn.set(key, e);
    const file = cf.url ? shortUrl(cf.url) : name.startsWith('(') ? name : '(native/V8)';
    files.set(file, (files.get(file) ?? 0) + us);
  }
  const top = opts.top ?? 25;
  const pct = (us: number, of: number) => +((100 * us) / of).toFixed(2);
  return {
    wallSeconds: +wall.toFixed(2),
    busySeconds: +(busy / 1e6).toFixed(3),
    functions: [...fn.values()].sort((a, b) => b.us - a.us).slice(0, top)
      .map((e) => ({ name: e.name, where: e.where, selfSeconds: +(e.us / 1e6).toFixed(3), pctOfBusy: pct(e.us, busy), pctOfCore: pct(e.us / 1e6, wall) })),
    files: [...files].sort((a, b) => b[1] - a[1]).slice(0, top)
      .map(([where, us]) => ({ where, selfSeconds: +(us / 1e6).toFixed(3), pctOfBusy: pct(us, busy), pctOfCore: pct(us / 1e6, wall) })),
  };
}

export async function profileTopFile(path: string, opts: { fromUs?: number; toUs?: number; top?: number } = {}): Promise<ProfileTop> {
  return profileTop(JSON.parse(await readFile(path, 'utf8')) as CpuProfile, opts);
}

export function profileMarkdown(t: ProfileTop): string {
  return [
    `${t.wallSeconds} s of wall time, ${t.busySeconds} s of it on the main thread (not idle) = ${+((100 * t.busySeconds) / t.wallSeconds).toFixed(1)} % of a core.`, '',
    '| self s | % of busy | % of a core | function | where |', '|---|---|---|---|---|',
    ...t.functions.map((f) => `| ${f.selfSeconds} | ${f.pctOfBusy} | ${f.pctOfCore} | \`${f.name}\` | ${f.where} |`), '',
    '| self s | % of busy | % of a core | file |', '|---|---|---|---|',
    ...t.files.map((f) => `| ${f.selfSeconds} | ${f.pctOfBusy} | ${f.pctOfCore} | ${f.where} |`), '',
  ].join('\n');
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { 'from-us': { type: 'string' }, 'to-us': { type: 'string' }, top: { type: 'string', default: '25' } } });
  const file = positionals[0];
  if (!file) {
    process.stderr.write('usage: cpuprof-top FILE.cpuprofile [--from-us N --to-us N] [--top 25]\n');
    process.exit(2);
  }
  const t = await profileTopFile(file, {
    ...(values['from-us'] ? { fromUs: Number(values['from-us']) } : {}),
    ...(values['to-us'] ? { toUs: Number(values['to-us']) } : {}),
    top: Number(values.top),
  });
  process.stdout.write(profileMarkdown(t));
}
