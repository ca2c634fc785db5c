/** Memory of a process tree (or of a set of independent processes), sampled through a measurement window. */
import { mb, mean } from './num.js';
import { descendants, memOf } from './proc-stats.js';

export interface MemStats {
  samples: number;
  gatewayRssMB: number;
  gatewayPssMB: number;
  childrenPssMB: number;
  childrenRssMB: number;
  totalPssMB: number;
  maxTotalPssMB: number;
  children: number;
}

/** Means over the samples (max for maxTotalPssMB): one sample says little, memory moves with GC and fragment cadence. */
export class MemSampler {
  private readonly rows: Array<{ gwRss: number; gwPss: number; chPss: number; chRss: number; n: number }> = [];
  /** `root`: the gateway (its descendants are its children); or a set of independent pids (bare). */
  constructor(private readonly root: number | null, private readonly pids: () => number[] = () => []) {}
  sample(): void {
    const gw = this.root === null ? { rssBytes: 0, pssBytes: 0 } : memOf(this.root);
    const kids = this.root === null ? this.pids() : descendants(this.root).map((d) => d.pid);
    let chPss = 0;
    let chRss = 0;
    let n = 0;
    for (const pid of kids) {
      const m = memOf(pid);
      if (m.pssBytes === 0) continue;
      chPss += m.pssBytes;
      chRss += m.rssBytes;
      n++;
    }
    this.rows.push({ gwRss: gw.rssBytes, gwPss: gw.pssBytes, chPss, chRss, n });
  }
  stats(): MemStats {
    const r = this.rows;
    return {
      samples: r.length,
      gatewayRssMB: mb(mean(r.map((x) => x.gwRss))),
      gatewayPssMB: mb(mean(r.map((x) => x.gwPss))),
      childrenPssMB: mb(mean(r.map((x) => x.chPss))),
      childrenRssMB: mb(mean(r.map((x) => x.chRss))),
      totalPssMB: mb(mean(r.map((x) => x.gwPss + x.chPss))),
      maxTotalPssMB: mb(Math.max(0, ...r.map((x) => x.gwPss + x.chPss))),
      children: Math.round(mean(r.map((x) => x.n))),
    };
  }
}
