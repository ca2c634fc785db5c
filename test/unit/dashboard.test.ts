import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parser } from '@prometheus-io/lezer-promql';
import { GatewayMetrics } from '../../src/metrics/metrics.js';

/** Syntax errors in a PromQL expression, as Prometheus' own grammar (lezer-promql) sees it. */
function promqlErrors(expr: string): number {
  // Grafana substitutes its variables before Prometheus sees the query.
  const q = expr.replaceAll('$__rate_interval', '5m').replaceAll('$__interval', '1m');
  let errors = 0;
  parser.parse(q).iterate({ enter: (n) => { if (n.type.isError) errors++; } });
  return errors;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Array<{ expr: string; refId: string }>;
}

const DASHBOARD = new URL('../../config/grafana/appendcast-dashboard.json', import.meta.url);

/** The shipped Grafana dashboard must query exactly the metrics the gateway exports. */
describe('Grafana dashboard', () => {
  it('queries only metrics the gateway exports, and shows every metric of its own', async () => {
    const dash = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { uid: string; panels: Panel[]; templating: { list: Array<{ name: string }> } };
    expect(dash.uid).toBe('appendcast');
    expect(dash.templating.list.map((v) => v.name)).toEqual(['datasource', 'stream']);
    const exported = new Map((await new GatewayMetrics().registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]));
    const used = new Set<string>();
    const panels = dash.panels.filter((p) => p.type !== 'row');
    for (const p of panels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) {
        expect(promqlErrors(t.expr), `${p.title}: ${t.expr}`).toBe(0);
        for (const [name] of t.expr.matchAll(/appendcast_[a-z0-9_]+/g)) {
          const base = name.replace(/_(bucket|sum|count)$/, '');
          const known = exported.has(name) || exported.get(base) === 'histogram';
          expect(known, `${p.title}: ${name} is not exported`).toBe(true);
          used.add(exported.has(name) ? name : base);
        }
      }
    }
    const own = [...exported.keys()].filter((n) => !/^appendcast_(process|nodejs)_/.test(n));
    for (const n of own) expect(used.has(n), `${n} is on no panel`).toBe(true);
  });

  it('the PromQL check can fail', () => {
    expect(promqlErrors('rate(appendcast_appends_total[1m) *')).toBeGreaterThan(0);
    expect(promqlErrors('sum by (stream) (rate(appendcast_appends_total{stream=~"$stream"}[$__rate_interval]))')).toBe(0);
  });

  it('lays panels out without overlaps and with unique ids', async () => {
    const dash = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Panel[] };
    const ids = dash.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [i, a] of dash.panels.entries()) {
      expect(a.gridPos.x + a.gridPos.w).toBeLessThanOrEqual(24);
      for (const b of dash.panels.slice(i + 1)) {
        const overlap = a.gridPos.x < b.gridPos.x + b.gridPos.w && b.gridPos.x < a.gridPos.x + a.gridPos.w &&
          a.gridPos.y < b.gridPos.y + b.gridPos.h && b.gridPos.y < a.gridPos.y + a.gridPos.h;
        expect(overlap, `${a.title} overlaps ${b.title}`).toBe(false);
      }
    }
  });
});
