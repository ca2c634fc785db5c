/**
 * docker-compose.yml, checked without a Docker engine: Debian's `docker-compose config` validates
 * and resolves the file, then every service's command and mounted config is run through the real
 * tool that will read it — our CLI (`validate`, `serve-oss`, `--help`), promtool — and the names that
 * tie the services together (endpoint, bucket, scrape target, datasource URL, dashboard path) are
 * checked against each other.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { logLine } from '../helpers/log-lines.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const run = promisify(execFile);
const EMPTY_ENV_FILE = join(mkdtempSync(join(tmpdir(), 'apc-compose-env-')), 'empty.env');
writeFileSync(EMPTY_ENV_FILE, '');
const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const CLI = join(ROOT, 'src/cli.ts');
const TSX = import.meta.resolve('tsx');

/** What an operator puts in .env (the compose file refuses to start without the three secrets). */
const OPERATOR_ENV = {
  CAM1_KEY: 'compose-test-cam1-key',
  APPENDCAST_API_TOKEN: 'compose-test-token-0123456789',
  OSS_ACCESS_KEY_SECRET: 'compose-test-secret',
};

interface Service {
  build?: { context: string; dockerfile?: string };
  image?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: Array<string | { published: number | string; target: number; host_ip?: string }>;
  expose?: string[];
  depends_on?: Record<string, unknown>;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/** `docker-compose config` on the repo's file: validated, interpolated, paths made absolute. */
async function composeConfig(env: Record<string, string>): Promise<Compose> {
  // An empty --env-file: a developer's .env must not change what the test sees.
  const { stdout } = await run('docker-compose', ['--env-file', EMPTY_ENV_FILE, '-f', join(ROOT, 'docker-compose.yml'), 'config'], {
    cwd: ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, timeout: 30_000,
  });
  return parse(stdout) as Compose;
}

/** The host path mounted at `target` in a service (bind mounts only), or undefined. */
function hostPathOf(svc: Service, target: string): string | undefined {
  for (const v of svc.volumes ?? []) {
    const [src, dst] = v.split(':');
    if (dst === target && src?.startsWith('/')) return src;
  }
  return undefined;
}

function flagValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

function withFlag(args: readonly string[], flag: string, value: string): string[] {
  const out = [...args];
  const i = out.indexOf(flag);
  if (i >= 0) out[i + 1] = value;
  else out.push(flag, value);
  return out;
}

/** Dockerfile instructions (continuation lines joined, comments dropped), with the stage they are in. */
function dockerfile(): Array<{ stage: string; op: string; args: string }> {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const out: Array<{ stage: string; op: string; args: string }> = [];
  let stage = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') stage = /\bAS\s+(\S+)/i.exec(m[2]!)?.[1] ?? m[2]!;
    out.push({ stage, op, args: m[2]!.replace(/\s+/g, ' ') });
  }
  return out;
}

async function cliHelp(): Promise<string> {
  return (await run(process.execPath, ['--import', TSX, CLI, '--help'], { cwd: ROOT, timeout: 30_000 })).stdout;
}

let compose: Compose;
const tmp: string[] = [];
beforeAll(async () => {
  compose = await composeConfig(OPERATOR_ENV);
}, 30_000);
afterAll(async () => {
  await rm(dirname(EMPTY_ENV_FILE), { recursive: true, force: true });
  for (const d of tmp) await rm(d, { recursive: true, force: true });
});

describe('docker-compose.yml', () => {
  it('docker-compose config accepts it, with the four services, volumes for the spool and the objects, and the ports', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['appendcast', 'grafana', 'prometheus', 'serve-oss']);
    expect(Object.keys(compose.volumes ?? {})).toEqual(expect.arrayContaining(['spool', 'objects']));
    const published = Object.values(compose.services).flatMap((s) => (s.ports ?? []).map((p) => String(typeof p === 'string' ? p : `${p.host_ip ?? ''}:${p.published}:${p.target}`)));
    // RTMP for the cameras on every address; the API, Prometheus and Grafana on loopback by default.
    expect(published).toEqual(expect.arrayContaining([':1935:1935', '127.0.0.1:8080:8080/tcp', '127.0.0.1:9090:9090/tcp', '127.0.0.1:3000:3000/tcp']));
    expect(compose.services['serve-oss']!.ports).toBeUndefined();
  });

  it('refuses to start without the secrets, naming each', async () => {
    for (const missing of Object.keys(OPERATOR_ENV)) {
      const env = Object.fromEntries(Object.entries(OPERATOR_ENV).filter(([k]) => k !== missing));
      const err = await composeConfig(env).then(() => undefined, (e: { stderr?: string }) => e);
      expect(err?.stderr, missing).toContain(`set ${missing}`);
    }
  }, 60_000);

  it('the gateway and serve-oss are the image built from the repo Dockerfile, whose entrypoint is our CLI', async () => {
    const help = await cliHelp();
    const steps = dockerfile();
    const runtime = steps.filter((s) => s.stage === 'runtime');
    expect(steps.filter((s) => s.op === 'FROM').map((s) => s.args.split(' ')[0])).toEqual(['node:20-bookworm-slim', 'node:20-bookworm-slim', 'node:20-bookworm-slim']);
    // Build: npm ci then tsc; deps: production only; runtime: Debian's ffmpeg, dist, config, not root.
    expect(steps.filter((s) => s.stage === 'build' && s.op === 'RUN').map((s) => s.args)).toEqual([expect.stringMatching(/^npm ci\b/), 'npm run build']);
    expect(steps.some((s) => s.stage === 'deps' && s.op === 'RUN' && /npm ci --omit=dev\b/.test(s.args))).toBe(true);
    expect(runtime.some((s) => s.op === 'RUN' && /apt-get install -y --no-install-recommends ffmpeg\b/.test(s.args))).toBe(true);
    expect(runtime.map((s) => s.args)).toEqual(expect.arrayContaining(['--from=deps /app/node_modules ./node_modules', '--from=build /app/dist ./dist', 'package.json ./']));
    // Everything the package ships (package.json "files": dist, config, the web page…) is in the image.
    const shipped = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] }).files;
    for (const f of shipped) expect(runtime.map((s) => s.args), f).toContain(f === 'dist' ? '--from=build /app/dist ./dist' : `${f} ./${f}`);
    expect(runtime.find((s) => s.op === 'USER')?.args).toBe('node');
    expect(runtime.find((s) => s.op === 'WORKDIR')?.args).toBe('/app');
    const entrypoint = JSON.parse(runtime.find((s) => s.op === 'ENTRYPOINT')!.args) as string[];
    const cmd = JSON.parse(runtime.find((s) => s.op === 'CMD')!.args) as string[];
    expect(entrypoint).toEqual(['node', 'dist/cli.js']);
    // dist/cli.js is what `npm run build` makes of src/cli.ts (and the package's bin).
    const tsBuild = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { rootDir: string; outDir: string } };
    expect(tsBuild.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
    expect((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin.appendcast).toBe('dist/cli.js');
    // The image's default command validates too (it is config/compose/appendcast.yaml, copied in).
    expect(cmd.slice(0, 2)).toEqual(['run', '--config']);
    expect(cmd[2]).toBe('/app/config/compose/appendcast.yaml');
    for (const name of ['appendcast', 'serve-oss']) {
      const svc = compose.services[name]!;
      expect(svc.build?.context, name).toBe(ROOT);
      expect(svc.build?.dockerfile ?? 'Dockerfile').toBe('Dockerfile');
      expect(svc.entrypoint, name).toBeUndefined();
      expect(help, `${name}: ${svc.command![0]} is a command of our CLI`).toContain(`appendcast ${svc.command![0]} `);
    }
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git', 'data']));
  }, 30_000);

  it('the gateway\'s config passes `appendcast validate` with exactly the environment compose gives it, and points at serve-oss', async () => {
    const gw = compose.services['appendcast']!;
    const target = flagValue(gw.command!, '--config')!;
    const file = hostPathOf(gw, target);
    expect(file).toBe(join(ROOT, 'config/compose/appendcast.yaml'));
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...gw.environment };
    const { stdout } = await run(process.execPath, ['--import', TSX, CLI, 'validate', file!], { cwd: ROOT, env, timeout: 30_000 });
    expect(stdout).toContain('ok (1 stream, storage oss)');
    // Without compose's environment the same file does not validate (the secrets come from there).
    const bare = await run(process.execPath, ['--import', TSX, CLI, 'validate', file!], { cwd: ROOT, env: { PATH: env.PATH }, timeout: 30_000 })
      .then(() => undefined, (e: { stderr?: string }) => e.stderr ?? '');
    expect(bare).toMatch(/CAM1_KEY/);

    const { loadConfigFile } = await import('../../src/config/index.js');
    const saved = { ...process.env };
    Object.assign(process.env, gw.environment);
    const config = await loadConfigFile(file!).finally(() => {
      for (const k of Object.keys(gw.environment ?? {})) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    });
    const oss = compose.services['serve-oss']!.command!;
    expect(config.storage).toMatchObject({
      kind: 'oss', endpoint: `http://serve-oss:${flagValue(oss, '--port')}`, bucket: flagValue(oss, '--bucket'), pathStyle: true,
      accessKeyId: compose.services['serve-oss']!.environment!.OSS_ACCESS_KEY_ID,
      accessKeySecret: compose.services['serve-oss']!.environment!.OSS_ACCESS_KEY_SECRET,
    });
    expect(config.server.http.apiToken).toBe(OPERATOR_ENV.APPENDCAST_API_TOKEN);
    // The spool is on the volume, the ports are the ones published.
    expect(gw.volumes).toContain(`spool:${config.dataDir}:rw`);
    expect(config.server.rtmp.port).toBe(1935);
    expect(config.server.http.port).toBe(8080);
  }, 60_000);

  it('serve-oss starts with exactly its compose arguments (on 127.0.0.1, port 0, a temp root) and stops cleanly', async () => {
    const svc = compose.services['serve-oss']!;
    const root = await mkdtemp(join(tmpdir(), 'apc-compose-oss-'));
    tmp.push(root);
    expect(svc.volumes).toContain(`objects:${flagValue(svc.command!, '--root')}:rw`);
    // Only the listening address and the directory differ from the container's.
    const args = withFlag(withFlag(withFlag(svc.command!, '--root', root), '--host', '127.0.0.1'), '--port', '0');
    expect(args.length).toBe(svc.command!.length);
    const proc = spawn(process.execPath, ['--import', TSX, CLI, ...args], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...svc.environment },
    });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
    proc.stderr.setEncoding('utf8').on('data', (s: string) => { out += s; });
    const exited = new Promise<number | null>((resolve) => proc.once('close', (c) => resolve(c)));
    try {
      const listening = await waitFor('serve-oss listening', () => {
        if (proc.exitCode !== null) throw new Error(`serve-oss exited ${proc.exitCode}: ${out}`);
        return logLine<{ url?: string }>(out, 'serve-oss listening');
      }, 20_000, 50);
      // Signed requests only (credentials from compose's environment): an unsigned GET is refused.
      const res = await fetch(`${listening.url}/appendcast/nothing`);
      expect(res.status).toBe(403);
      expect(existsSync(join(root, 'appendcast'))).toBe(true); // --bucket made the bucket
    } finally {
      if (proc.exitCode === null) proc.kill('SIGTERM');
    }
    expect(await withTimeout(exited, 15_000, 'serve-oss to exit')).toBe(0);
  }, 40_000);

  it('Prometheus runs config/prometheus/prometheus.yml (promtool passes), scraping the gateway service, with the alert rules mounted', async () => {
    const svc = compose.services['prometheus']!;
    const configTarget = svc.command!.find((a) => a.startsWith('--config.file='))!.split('=')[1]!;
    const file = hostPathOf(svc, configTarget);
    expect(file).toBe(join(ROOT, 'config/prometheus/prometheus.yml'));
    const check = await run('promtool', ['check', 'config', file!], { timeout: 30_000 });
    expect(check.stdout).toMatch(/SUCCESS/);
    const prom = parse(readFileSync(file!, 'utf8')) as { rule_files?: string[]; scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }> };
    const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    expect(targets).toEqual(['appendcast:8080']);
    expect(compose.services['appendcast']!.ports).toEqual(expect.arrayContaining([expect.stringMatching(/:8080:8080\b/)]));
    // The alert rules (config/prometheus/alerts.yml) are mounted beside the config; every rule file
    // the config names must be one that is mounted.
    const alerts = hostPathOf(svc, posix.join(dirname(configTarget), 'alerts.yml'));
    expect(alerts).toBe(join(ROOT, 'config/prometheus/alerts.yml'));
    for (const rf of prom.rule_files ?? []) {
      expect(hostPathOf(svc, posix.resolve(dirname(configTarget), rf)), `rule file ${rf}`).toBeDefined();
    }
    if (existsSync(alerts!)) {
      const rules = await run('promtool', ['check', 'rules', alerts!], { timeout: 30_000 });
      expect(rules.stdout).toMatch(/SUCCESS/);
    }
  }, 60_000);

  it('Grafana gets the provisioned datasource (the prometheus service) and the dashboard where the provider looks', () => {
    const svc = compose.services['grafana']!;
    const mounts = (svc.volumes ?? []).map((v) => v.split(':')).filter(([src]) => src!.startsWith('/'));
    expect(mounts.length).toBe(3);
    for (const [src] of mounts) expect(existsSync(src!), src).toBe(true);
    const ds = hostPathOf(svc, '/etc/grafana/provisioning/datasources')!;
    const dash = hostPathOf(svc, '/etc/grafana/provisioning/dashboards')!;
    expect([ds, dash]).toEqual([join(ROOT, 'config/grafana/provisioning/datasources'), join(ROOT, 'config/grafana/provisioning/dashboards')]);
    const datasource = parse(readFileSync(join(ds, 'prometheus.yaml'), 'utf8')) as { datasources: Array<{ url: string }> };
    expect(datasource.datasources[0]!.url).toBe('http://prometheus:9090');
    expect(compose.services['prometheus']!.ports).toEqual(expect.arrayContaining([expect.stringMatching(/:9090:9090\b/)]));
    const provider = parse(readFileSync(join(dash, 'appendcast.yaml'), 'utf8')) as { providers: Array<{ options: { path: string } }> };
    const dashboardTarget = posix.join(provider.providers[0]!.options.path, 'appendcast-dashboard.json');
    expect(hostPathOf(svc, dashboardTarget)).toBe(join(ROOT, 'config/grafana/appendcast-dashboard.json'));
  });
});
