/**
 * Clean starts and stops of `appendcast run`, as an operator sees them: a busy port ends the process
 * at once with the reason (never a half-started gateway that records without metrics and never
 * exits), and Ctrl-C on a gateway with live cameras is a quiet, complete stop.
 */
import { spawn } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { startCamera, type Camera } from '../helpers/camera.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { freePort } from '../helpers/net.js';
import { isIndexKey } from '../helpers/objects.js';
import { startRtspServer } from '../helpers/rtsp-server.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const TSX = import.meta.resolve('tsx');

const cleanup = cleanupAfterEach('apc-clean-stop-');
const tempDir = (): Promise<string> => cleanup.tempDir();

/** A port held by someone else for the duration of the test. */
async function occupy(): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise((r) => server.close(r)));
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : 0;
}

/** Can we listen on it now (nobody holds it)? */
async function free(port: number): Promise<boolean> {
  const s = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise((r) => s.close(r));
  return ok;
}

/** Pino lines at warn (40) or above. */
function warnings(out: string): string[] {
  return out.split('\n').filter((l) => {
    try {
      return (JSON.parse(l) as { level?: number }).level! >= 40;
    } catch {
      return false;
    }
  });
}

/** `appendcast run` on a config whose ports are given; resolves its exit code and output. */
async function runToExit(dir: string, ports: { rtmp: number; http: number }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const config = join(dir, 'appendcast.yaml');
  await writeFile(config, `
dataDir: ${join(dir, 'data')}
log: { level: info }
server: { rtmp: { host: 127.0.0.1, port: ${ports.rtmp} }, http: { host: 127.0.0.1, port: ${ports.http} } }
storage: { kind: fs }
streams: [{ id: cam1, key: a-key-for-this-test }]
`);
  const proc = spawn(process.execPath, ['--import', TSX, join(ROOT, 'src/cli.ts'), 'run', '--config', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.push(async () => { if (proc.exitCode === null) proc.kill('SIGKILL'); });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  proc.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const exited = new Promise<number | null>((resolve) => proc.once('close', (c) => resolve(c)));
  // A few seconds (tsx compiles the CLI first); a half-started gateway would never exit.
  const code = await withTimeout(exited, 15_000, 'appendcast run to exit').catch((err: Error) => {
    throw new Error(`${err.message}:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`);
  });
  return { code, stdout, stderr };
}

describe('appendcast run with a busy port exits at once, with the reason, and holds no port', () => {
  it('HTTP port busy: exit 1, APC_ERR_HTTP_PORT_IN_USE on stderr, the RTMP port free', async () => {
    const dir = await tempDir();
    const http = await occupy();
    const rtmp = await freePort(); // named, not 0: the test checks nothing holds it afterwards
    const r = await runToExit(dir, { rtmp, http });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^appendcast: HTTP port 127\\.0\\.0\\.1:${http} is already in use \\(APC_ERR_HTTP_PORT_IN_USE\\)$`, 'm'));
    expect(r.stdout).toContain('"code":"APC_ERR_HTTP_PORT_IN_USE"');
    expect(r.stdout).not.toContain('gateway started');
    expect(await free(rtmp)).toBe(true);
  }, 30_000);

  it('RTMP port busy: exit 1, APC_ERR_INGEST_PORT_IN_USE on stderr, the HTTP port free again', async () => {
    const dir = await tempDir();
    const rtmp = await occupy();
    const http = await freePort();
    const r = await runToExit(dir, { rtmp, http });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^appendcast: RTMP port 127\\.0\\.0\\.1:${rtmp} is already in use \\(APC_ERR_INGEST_PORT_IN_USE\\)$`, 'm'));
    expect(r.stdout).toContain('"code":"APC_ERR_INGEST_PORT_IN_USE"');
    expect(await free(http)).toBe(true);
  }, 30_000);
});

describe('Ctrl-C with cameras publishing', () => {
  it('SIGINT to the process group (as a terminal sends it): exit 0, no warning, every recording (ffmpeg remux, native, RTSP pull) complete and clean', async () => {
    const dir = await tempDir();
    const root = join(dir, 'objects');
    const rtsp = await startRtspServer({ maxSeconds: 120 });
    cleanup.push(() => rtsp.stop());
    let gw: GatewayProcess | undefined;
    const cams: Camera[] = [];
    cleanup.push(async () => {
      for (const c of cams) c.stop();
      await gw?.kill();
    });
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
log: { level: info }
server: { rtmp: { host: 127.0.0.1, port: ${p.rtmp} }, http: { host: 127.0.0.1, port: ${p.http} } }
storage: { kind: fs, root: ${root}, fsync: never }
spool: { fsync: never }
streams:
  - { id: viaffmpeg, key: key-ffmpeg-0123, remux: ffmpeg }
  - { id: native, key: key-native-0123 }
  - { id: pulled, source: { rtsp: "${rtsp.url('/h264aac')}" } }
`, {}, { rtmp: 0, http: 0 }, { detached: true });
    const sent = new Map<string, number>();
    for (const [id, key] of [['viaffmpeg', 'key-ffmpeg-0123'], ['native', 'key-native-0123']] as const) {
      cams.push(startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/${id}?key=${key}`, seconds: 60, onProgress: (t) => sent.set(id, t) }));
    }
    // All three recording, with a few GOPs in the store.
    await waitFor('every stream appending', async () => {
      const streams = await gw!.streams();
      return streams.every((s) => s.sessions.some((x) => (x.position ?? 0) > 50_000));
    }, 30_000, 200);
    const pids = (await gw.streams()).flatMap((s) => s.sessions.map((x) => x.remuxerPid)).filter((p): p is number => p !== null);
    expect(pids.length).toBe(2); // the remux: ffmpeg stream's ffmpeg and the RTSP pull's
    const sentAtStop = new Map(sent);
    process.kill(-gw.proc.pid!, 'SIGINT'); // the gateway and every child in its group, like Ctrl-C
    const code = await withTimeout(new Promise<number | null>((r) => {
      if (gw!.proc.exitCode !== null) r(gw!.proc.exitCode);
      else gw!.proc.once('close', (c) => r(c));
    }), 30_000, 'the gateway to exit after SIGINT');
    const out = gw.logs();
    expect(code, out.slice(-3000)).toBe(0);
    // Nothing at warn or above from Ctrl-C on. (Before it, the RTSP pull's ffmpeg may pass on a
    // warning of its own about the test server's stream: not about stopping.)
    const stop = out.indexOf('"msg":"shutting down: flushing remuxers and pending appends"');
    expect(stop).toBeGreaterThan(0);
    expect(warnings(out.slice(out.lastIndexOf('\n', stop) + 1))).toEqual([]);
    expect(warnings(out).filter((l) => !l.includes('"stream":"pulled"'))).toEqual([]);
    expect(out).toContain('"msg":"gateway stopped"');
    // Everything reached the store: nothing left in the spool for a next start.
    const spoolDir = join(dir, 'data', 'spool');
    const left: string[] = [];
    for (const s of await readdir(spoolDir)) left.push(...(await readdir(join(spoolDir, s)).catch(() => [])).map((x) => `${s}/${x}`));
    expect(left).toEqual([]);
    const store = new FsStore({ root });
    for (const id of ['viaffmpeg', 'native', 'pulled']) {
      const keys = (await store.list(`${id}/`)).map((o) => o.key).filter((k) => !isIndexKey(k));
      expect(keys.length, id).toBe(1);
      const file = join(root, keys[0]!);
      expect(await decodeErrors(file), id).toBe('');
      const p = await probe(file);
      // Complete: up to what the camera had sent when Ctrl-C came, give or take a GOP (1 s) in flight.
      expect(p.duration - p.startTime, id).toBeGreaterThan((sentAtStop.get(id) ?? 0) - 1.5);
    }
    await store.close();
  }, 90_000);
});
