import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startCamera, type Camera } from '../helpers/camera.js';
import { metricValue, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/net.js';
import { promtoolComplaints } from '../helpers/promtool.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const CONFIG = new URL('../../config/', import.meta.url).pathname;
const ALERTS = join(CONFIG, 'prometheus/alerts.yml');
const DASHBOARD = join(CONFIG, 'grafana/appendcast-dashboard.json');
/** Long enough for every step below; the cameras are stopped when the test is done. */
const CAMERA_SECONDS = 60;

interface Sample { metric: Record<string, string>; value: [number, string] }

/** A real Prometheus (Debian's), scraping the gateway every second and evaluating alerts.yml every second. */
async function startPrometheus(dir: string, target: string): Promise<{ proc: ChildProcess; url: string; logs: () => string }> {
  const config = join(dir, 'prometheus.yml');
  await writeFile(config, `
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [${JSON.stringify(ALERTS)}]
scrape_configs:
  - job_name: appendcast
    static_configs: [{ targets: [${JSON.stringify(target)}] }]
`);
  // Prometheus cannot report a port it bound as 0: a free one is named, and retried if taken meanwhile.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const proc = spawn('prometheus', [
      `--config.file=${config}`, `--storage.tsdb.path=${join(dir, `tsdb-${attempt}`)}`, `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h', '--log.level=warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let logs = '';
    proc.stderr!.setEncoding('utf8').on('data', (s: string) => { logs += s; });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor('Prometheus ready', async () => {
        if (proc.exitCode !== null) throw new Error(`prometheus exited with ${proc.exitCode}: ${logs}`);
        return fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
      }, 20_000, 100);
      return { proc, url, logs: () => logs };
    } catch (err) {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      if (attempt >= 3 || !/address already in use/.test(logs)) throw err;
    }
  }
}

async function stopProcess(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('close', r));
  proc.kill('SIGTERM');
  await withTimeout(exited, 10_000, 'process to stop').catch(async () => {
    proc.kill('SIGKILL');
    await exited;
  });
}

interface DashboardJson {
  panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>;
  annotations: { list: Array<{ name: string; expr: string }> };
  templating: { list: Array<{ name: string; definition?: string }> };
}

/**
 * The whole path operators rely on: a live gateway with cameras, scraped by a real Prometheus that
 * loads the shipped alert rules. Events are provoked (a refused publish, a killed remuxer, a
 * rollover), then every query of the shipped dashboard and every alert expression goes through
 * Prometheus' HTTP API and must answer with the series it is there to show.
 */
describe('a real Prometheus on a live gateway: the dashboard and the alerts see what happens', () => {
  let dir: string;
  let gw: GatewayProcess;
  let prom: Awaited<ReturnType<typeof startPrometheus>> | undefined;
  const cameras: Camera[] = [];
  let instance: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-e2e-prom-'));
    const closedPort = await freePort(); // nobody listens: the pulled stream keeps reconnecting
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
log: { level: info }
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage: { kind: fs, root: ${join(dir, 'objects')}, fsync: never }
spool: { fsync: never }
streams:
  - { id: cam1, key: k1, remux: ffmpeg }
  - { id: cam2, key: k2, rollover: { maxDurationSeconds: 3 } }
  - { id: door, source: { rtsp: "rtsp://127.0.0.1:${closedPort}/door", reconnectBaseSeconds: 1, reconnectMaxSeconds: 2 } }
`);
    instance = `127.0.0.1:${gw.httpPort}`;
    prom = await startPrometheus(dir, instance);
  }, 45_000);

  afterAll(async () => {
    for (const c of cameras) c.stop();
    await stopProcess(prom?.proc);
    if (gw) await withTimeout(gw.stop(), 15_000, 'the gateway to stop').catch(() => gw.kill());
    await rm(dir, { recursive: true, force: true });
  }, 30_000);

  const query = async (q: string): Promise<Sample[]> => {
    const r = await fetch(`${prom!.url}/api/v1/query?${new URLSearchParams({ query: q })}`);
    const body = (await r.json()) as { status: string; error?: string; data?: { resultType: string; result: Sample[] } };
    if (body.status !== 'success') throw new Error(`${q}: ${body.error ?? r.status}`);
    expect(body.data!.resultType, q).toBe('vector');
    return body.data!.result;
  };
  const value = (samples: Sample[], labels: Record<string, string>): number | undefined => {
    const s = samples.find((x) => Object.entries(labels).every(([k, v]) => x.metric[k] === v));
    return s ? Number(s.value[1]) : undefined;
  };
  const gatewayMetric = async (name: string, labels: Record<string, string>) => metricValue(await gw.metrics(), name, labels) ?? 0;

  it('provoked events show on the panels, every dashboard query and alert expression answers as expected', async () => {
    // Every series exists before any event (issue 12: a counter born at 1 is invisible to increase()).
    await waitFor('Prometheus scraped the gateway', async () => value(await query('up{job="appendcast"}'), { instance }) === 1, 15_000, 200);
    expect(value(await query('appendcast_rejected_publishes_total{stream="cam1", reason="bad-key"}'), { instance })).toBe(0);
    expect(value(await query('appendcast_ffmpeg_restarts_total{stream="cam1", reason="signal-SIGKILL"}'), { instance })).toBe(0);

    const rtmp = (stream: string, key: string) => `rtmp://127.0.0.1:${gw.rtmpPort}/live/${stream}?key=${key}`;
    cameras.push(startCamera({ url: rtmp('cam1', 'k1'), seconds: CAMERA_SECONDS }), startCamera({ url: rtmp('cam2', 'k2'), seconds: CAMERA_SECONDS }));
    await waitFor('both cameras appending', async () => (await gatewayMetric('appendcast_appends_total', { stream: 'cam1' })) >= 2 &&
      (await gatewayMetric('appendcast_appends_total', { stream: 'cam2' })) >= 2, 20_000, 100);

    // A refused publish: the wrong key.
    const intruder = startCamera({ url: rtmp('cam1', 'wrong-key'), seconds: 2 });
    cameras.push(intruder);
    await withTimeout(intruder.done, 15_000, 'the refused camera to give up');
    // A remuxer restart: cam1's ffmpeg remuxer is killed while the camera publishes.
    const first = await waitFor('cam1 remuxer pid', async () => (await gw.streams()).find((s) => s.id === 'cam1')?.sessions.find((x) => x.remuxerPid), 10_000, 100);
    process.kill(first.remuxerPid!, 'SIGKILL');
    await waitFor('the replacement remuxer', async () => (await gw.streams()).find((s) => s.id === 'cam1')?.sessions.some((x) => x.id === `${first.id}-r1`), 10_000, 100);
    // A rollover: cam2's objects last 3 s.
    await waitFor('a duration rollover of cam2', async () => (await gatewayMetric('appendcast_rollovers_total', { stream: 'cam2', reason: 'duration' })) >= 1, 15_000, 200);
    await waitFor('the pulled stream reconnecting', async () => (await gw.metrics()).split('\n')
      .some((l) => l.startsWith('appendcast_source_reconnects_total{stream="door"') && !l.endsWith(' 0')), 15_000, 200);

    // A real scrape, with all of that in it, passes Prometheus' linter.
    expect(await promtoolComplaints(await gw.metrics())).toBe('');

    // Grafana's variables, as a Grafana would fill them in (multi-value: a regex alternation).
    const substitute = (expr: string) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '1s')
      .replaceAll('$job', 'appendcast').replaceAll('$instance', instance.replaceAll('.', '\\\\.')).replaceAll('$stream', '(cam1|cam2|door)');
    const dash = JSON.parse(await readFile(DASHBOARD, 'utf8')) as DashboardJson;
    const incr = (metric: string) => `sum by (stream, reason) (increase(${metric}{job="appendcast", instance="${instance}"}[1m]))`;
    // Prometheus has scraped the events.
    await waitFor('the events in Prometheus', async () =>
      (value(await query(incr('appendcast_rejected_publishes_total')), { stream: 'cam1', reason: 'bad-key' }) ?? 0) > 0 &&
      (value(await query(incr('appendcast_ffmpeg_restarts_total')), { stream: 'cam1', reason: 'signal-SIGKILL' }) ?? 0) > 0 &&
      (value(await query(incr('appendcast_rollovers_total')), { stream: 'cam2', reason: 'duration' }) ?? 0) > 0, 10_000, 250);

    // The template variables' queries (label_values) find the gateway and the streams.
    const labelValues = async (label: string, match: string) => {
      const r = (await (await fetch(`${prom!.url}/api/v1/label/${label}/values?${new URLSearchParams({ 'match[]': match })}`)).json()) as { data: string[] };
      return r.data;
    };
    expect(await labelValues('job', 'appendcast_stream_up')).toEqual(['appendcast']);
    expect(await labelValues('instance', 'appendcast_stream_up{job=~"appendcast"}')).toEqual([instance]);
    expect(await labelValues('stream', `appendcast_stream_up{job=~"appendcast", instance=~"${instance}"}`)).toEqual(['cam1', 'cam2', 'door']);

    // Every panel query returns series, for the gateway under test only.
    const results = new Map<string, Sample[]>();
    const exprs = [
      ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr }))),
      ...dash.annotations.list.map((a) => ({ where: `annotation "${a.name}"`, expr: a.expr })),
    ];
    expect(exprs.length).toBeGreaterThan(40);
    for (const { where, expr } of exprs) {
      const r = await query(substitute(expr));
      expect(r.length, `${where}: ${expr}`).toBeGreaterThan(0);
      for (const s of r) if (s.metric.instance !== undefined) expect(s.metric.instance, where).toBe(instance);
      results.set(expr, r);
    }
    const panel = (title: string, i = 0) => results.get(dash.panels.find((p) => p.title === title)!.targets![i]!.expr)!;
    const annotation = (name: string) => results.get(dash.annotations.list.find((a) => a.name === name)!.expr)!;
    expect(value(panel('Refused publishes'), { stream: 'cam1', reason: 'bad-key' })).toBeGreaterThan(0);
    expect(value(panel('Remuxer restarts'), { stream: 'cam1', reason: 'signal-SIGKILL' })).toBeGreaterThan(0);
    expect(value(panel('Rollovers'), { stream: 'cam2', reason: 'duration' })).toBeGreaterThan(0);
    expect(annotation('Remuxer restarts').map((s) => s.metric.stream)).toEqual(['cam1']);
    expect(annotation('Rollovers').map((s) => `${s.metric.stream} ${s.metric.reason}`)).toContain('cam2 duration');
    // Lag is there for every stream, from the start; the cameras publish and the store keeps up.
    const lag = panel('Lag (seconds)');
    for (const stream of ['cam1', 'cam2', 'door']) expect(value(lag, { stream }), stream).toBeLessThan(10);
    expect(value(panel('Publishing'), { stream: 'cam1' })).toBe(1);
    expect(value(panel('Publishing'), { stream: 'door' })).toBe(0);
    expect(value(panel('Gateway up'), { instance })).toBe(1);
    expect(value(panel('Time since the last object opened'), { stream: 'cam2' })).toBeLessThan(10);

    // Every alert expression: what it finds now. Only the killed remuxer fires; the never-publishing
    // pulled stream matches the not-publishing expression (its 5 minutes are not up yet).
    const droppedAtKill = await gatewayMetric('appendcast_dropped_bytes_total', { stream: 'cam1', reason: 'truncated-remux-output' });
    const expected: Record<string, string[]> = {
      AppendcastRemuxerRestarts: ['cam1'],
      AppendcastStreamNotPublishing: ['door'],
      // A SIGKILLed ffmpeg may leave a partial box behind, which is counted as dropped.
      AppendcastBytesDropped: droppedAtKill > 0 ? ['cam1'] : [],
    };
    const rules = parse(await readFile(ALERTS, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
    const alerts = rules.groups.flatMap((g) => g.rules);
    expect(alerts.length).toBe(13);
    for (const a of alerts) {
      const found = (await query(a.expr)).map((s) => s.metric.stream ?? s.metric.instance).sort();
      expect(found, `${a.alert}: ${a.expr}`).toEqual(expected[a.alert] ?? []);
    }

    // Prometheus loaded the rules and fires the restart alert.
    const loaded = (await (await fetch(`${prom!.url}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string }> }> } };
    const loadedRules = loaded.data.groups.flatMap((g) => g.rules);
    expect(loadedRules.map((r) => r.name).sort()).toEqual(alerts.map((a) => a.alert).sort());
    for (const r of loadedRules) expect(r.health, r.name).toBe('ok');
    await waitFor('the restart alert firing', async () => {
      const r = (await (await fetch(`${prom!.url}/api/v1/alerts`)).json()) as { data: { alerts: Array<{ labels: Record<string, string>; state: string }> } };
      return r.data.alerts.some((x) => x.labels.alertname === 'AppendcastRemuxerRestarts' && x.labels.stream === 'cam1' && x.state === 'firing');
    }, 10_000, 250);
  }, 90_000);
});
