import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const DIR = new URL('../../config/prometheus/', import.meta.url).pathname;

/** Runs promtool; resolves with its exit code and output (never rejects on a non-zero exit). */
function promtool(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('promtool', args, { cwd, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: stdout + stderr });
    });
  });
}

interface RuleFile { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> }
interface TestFile { rule_files: string[]; tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> }

const temps: string[] = [];
afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

/** config/prometheus/alerts.yml: Prometheus' own tools check it and run its unit tests. */
describe('alert rules (promtool)', () => {
  it('prometheus.yml loads alerts.yml, and the rules are valid', async () => {
    const r = await promtool(['check', 'config', 'prometheus.yml'], DIR);
    expect(r.out).toContain('SUCCESS: 1 rule files found');
    expect(r.code, r.out).toBe(0);
  });

  it('every alert has a firing and a not-firing case in alerts.test.yml', async () => {
    const rules = parse(await readFile(join(DIR, 'alerts.yml'), 'utf8')) as RuleFile;
    const tests = parse(await readFile(join(DIR, 'alerts.test.yml'), 'utf8')) as TestFile;
    expect(tests.rule_files).toEqual(['alerts.yml']);
    const names = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(names.length).toBe(13);
    const cases = tests.tests.flatMap((t) => t.alert_rule_test);
    for (const name of names) {
      const mine = cases.filter((c) => c.alertname === name);
      expect(mine.some((c) => c.exp_alerts.length > 0), `${name} fires somewhere`).toBe(true);
      expect(mine.some((c) => c.exp_alerts.length === 0), `${name} stays quiet somewhere`).toBe(true);
    }
  });

  it('promtool test rules passes', async () => {
    const r = await promtool(['test', 'rules', 'alerts.test.yml'], DIR);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
  });

  it('the unit tests catch a broken rule', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'apc-alerts-'));
    temps.push(dir);
    const rules = await readFile(join(DIR, 'alerts.yml'), 'utf8');
    expect(rules).toContain('expr: appendcast_lag_seconds > 10');
    await writeFile(join(dir, 'alerts.yml'), rules.replace('expr: appendcast_lag_seconds > 10', 'expr: appendcast_lag_seconds > 100'));
    await copyFile(join(DIR, 'alerts.test.yml'), join(dir, 'alerts.test.yml'));
    const r = await promtool(['test', 'rules', 'alerts.test.yml'], dir);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('AppendcastLagHigh');
  });
});
