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
  fieldConfig?: { defaults: { unit?: string; thresholds?: { steps: Array<{ color: string; value: number | null }> } } };
}

interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string }> };
  annotations: { list: Array<{ name: string; expr?: string }> };
}

const DASHBOARD = new URL('../../config/grafana/appendcast-dashboard.json', import.meta.url);

/** The shipped Grafana dashboard must query exactly the metrics the gateway exports. */
describe('Grafana dashboard', () => {
  it('queries only metrics the gateway exports, and shows every metric of its own', async () => {
    const dash = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
    expect(dash.uid).toBe('appendcast');
    // Several gateways (instances, jobs) must not mix: every query selects on them.
    expect(dash.templating.list.map((v) => v.name)).toEqual(['datasource', 'job', 'instance', 'stream']);
    const exported = new Map((await new GatewayMetrics({ quota: { perStream: 1, total: 1 } }).registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]));
    const used = new Set<string>();
    const panels = dash.panels.filter((p) => p.type !== 'row');
    for (const p of panels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) {
        expect(promqlErrors(t.expr), `${p.title}: ${t.expr}`).toBe(0);
        expect(t.expr, `${p.title}: select on $job and $instance`).toMatch(/job=~"\$job", instance=~"\$instance"/);
        // One range window everywhere: Grafana's, which is never shorter than four scrapes.
        for (const [w] of t.expr.matchAll(/\[[^\]]*\]/g)) expect(w, `${p.title}: ${t.expr}`).toBe('[$__rate_interval]');
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
    expect(dash.annotations.list.map((a) => a.name)).toEqual(['Remuxer restarts', 'Rollovers']);
    for (const a of dash.annotations.list) expect(promqlErrors(a.expr ?? ''), a.name).toBe(0);
  });

  it('gives every panel a unit, and the status stats thresholds that turn red on trouble', async () => {
    const dash = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
    const panels = dash.panels.filter((p) => p.type !== 'row');
    for (const p of panels) expect(p.fieldConfig?.defaults.unit, p.title).toBeTruthy();
    const steps = (title: string) => dash.panels.find((p) => p.title === title)!.fieldConfig!.defaults.thresholds!.steps;
    // The first step is the colour below every threshold.
    expect(steps('Publishing')).toEqual([{ color: 'red', value: null }, { color: 'green', value: 1 }]);
    expect(steps('Appends halted')).toEqual([{ color: 'green', value: null }, { color: 'red', value: 1 }]);
    expect(steps('Lag (oldest unacknowledged fragment)').at(-1)).toEqual({ color: 'red', value: 10 });
    expect(steps('Gateway up')[0]!.color).toBe('red');
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
