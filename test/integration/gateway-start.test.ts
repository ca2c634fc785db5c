import { spawn } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { parseConfig } from '../../src/config/index.js';
import { ErrorCode } from '../../src/errors.js';
import { Gateway } from '../../src/gateway.js';
import { OssLocalServer } from '../../src/serve-oss/server.js';
import { createLogger } from '../../src/util/logger.js';
import { freePort } from '../helpers/net.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { leaveUnfinishedSession, spoolOptions, startSpool } from '../helpers/appender-fixture.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const TSX = import.meta.resolve('tsx');
const CREDS = { accessKeyId: 'start-id', accessKeySecret: 'start-secret' };
const log = createLogger('silent');

const cleanup = cleanupAfterEach('apc-gw-start-');
const tempDir = (): Promise<string> => cleanup.tempDir();

/** A port held by someone else for the duration of the test. */
async function occupy(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise((r) => server.close(r)));
  const addr = server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : 0, server };
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

function yaml(dir: string, ports: { rtmp: number; http: number }, storage: string): string {
  return `
dataDir: ${join(dir, 'data')}
log: { level: info }
server: { rtmp: { host: 127.0.0.1, port: ${ports.rtmp} }, http: { host: 127.0.0.1, port: ${ports.http} } }
${storage}
retry: { baseDelayMs: 50, maxDelayMs: 200 }
streamDefaults: { flush: { maxDelayMs: 0 } }
streams: [{ id: cam1, key: k }]
`;
}

/** An OSS store nobody answers: a port that was free a moment ago (no server can bind 0 for this). */
function ossAt(port: number): string {
  return `storage:
  kind: oss
  endpoint: http://127.0.0.1:${port}
  bucket: cams
  region: cn-hangzhou
  pathStyle: true
  accessKeyId: ${CREDS.accessKeyId}
  accessKeySecret: ${CREDS.accessKeySecret}
  timeouts: { connectMs: 500, headersMs: 1000, bodyMs: 1000 }`;
}

/** A previous run left an unfinished session (not sealed) in the spool under `dir`. */
async function leaveSessionInSpool(dir: string): Promise<number> {
  return (await leaveUnfinishedSession(join(dir, 'data'))).bytes;
}

describe('Gateway.start() is all or nothing', () => {
  it('the HTTP port is taken: start fails with the cause, nothing keeps running, RTMP never listened, the spool is untouched', async () => {
    const dir = await tempDir();
    const spooled = await leaveSessionInSpool(dir);
    const http = await occupy();
    const rtmp = await freePort(); // named, not 0: the test checks that nothing ever listened on it
    const gateway = new Gateway(parseConfig(yaml(dir, { rtmp, http: http.port }, 'storage: { kind: fs }'), 'start.yaml', {}), log);
    await expect(gateway.start()).rejects.toMatchObject({ code: ErrorCode.HttpPortInUse, message: expect.stringMatching(/HTTP port .* is already in use/) });
    expect(await free(rtmp)).toBe(true);
    // Rolled back before any appender ran: the recovered session is still all in the spool.
    const { spool, sessions } = await startSpool(spoolOptions(join(dir, 'data')));
    expect(sessions.map((s) => [s.sessionId, s.bytes, s.sealed])).toEqual([['previous-run', spooled, true]]);
    await spool.close();
    expect(await readdir(join(dir, 'data'))).not.toContain('objects');
    await gateway.close(); // after a failed start: resolves at once
    await expect(gateway.start()).rejects.toMatchObject({ code: ErrorCode.GatewayState });
  });

  it('the RTMP port is taken: start fails with APC_ERR_INGEST_PORT_IN_USE and the HTTP port is free again', async () => {
    const dir = await tempDir();
    const rtmp = await occupy();
    const http = await freePort(); // named, not 0: the test checks that it is free again after the failed start
    const gateway = new Gateway(parseConfig(yaml(dir, { rtmp: rtmp.port, http }, 'storage: { kind: fs }'), 'start.yaml', {}), log);
    await expect(gateway.start()).rejects.toMatchObject({ code: ErrorCode.IngestPortInUse });
    expect(await free(http)).toBe(true);
    await gateway.close();
  });

  it('a store that is down does not hold start up: recovered sessions drain in the background once it is back', async () => {
    const dir = await tempDir();
    const spooled = await leaveSessionInSpool(dir);
    const storePort = await freePort(); // named, not 0: the store comes up on it later, where the gateway looks
    const gateway = new Gateway(parseConfig(yaml(dir, { rtmp: 0, http: 0 }, ossAt(storePort)), 'start.yaml', {}), log);
    cleanup.push(() => gateway.close());
    const t0 = Date.now();
    await gateway.start();
    expect(Date.now() - t0).toBeLessThan(3_000);
    const draining = () => (gateway.describe() as { streams: Array<{ sessions: Array<{ draining: boolean; recovered: boolean }> }> }).streams[0]!.sessions;
    expect(draining()).toMatchObject([{ recovered: true, draining: true }]);
    // The store comes up: the session drains on its own.
    const server = new OssLocalServer({ root: join(dir, 'oss'), port: storePort, buckets: ['cams'], credentials: [CREDS], fsync: 'never' });
    await server.start();
    cleanup.push(() => server.close());
    await waitFor('the recovered session drained', () => draining()[0]?.draining === false, 20_000, 50);
    const metrics = (await gateway.metrics.render()).body;
    expect(metrics).toMatch(/appendcast_appends_total\{stream="cam1"\} [1-9]/);
    expect(spooled).toBeGreaterThan(0);
  }, 40_000);

  it('the CLI exits by itself when start fails while the store is down (no appender keeps it alive)', async () => {
    const dir = await tempDir();
    await leaveSessionInSpool(dir);
    const http = await occupy();
    const config = join(dir, 'appendcast.yaml');
    await writeFile(config, yaml(dir, { rtmp: 0, http: http.port }, ossAt(await freePort())));
    const proc = spawn(process.execPath, ['--import', TSX, join(ROOT, 'src/cli.ts'), 'run', '--config', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    cleanup.push(async () => { if (proc.exitCode === null) proc.kill('SIGKILL'); });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
    proc.stderr.setEncoding('utf8').on('data', (s: string) => { out += s; });
    const exited = new Promise<number | null>((resolve) => proc.once('close', (c) => resolve(c)));
    const code = await withTimeout(exited, 15_000, 'the gateway to exit after a failed start').catch((err: Error) => {
      throw new Error(`${err.message}:\n${out.slice(-2000)}`);
    });
    // A typed error: one line for the operator and exit 1, not a stack trace and 70.
    expect(code).toBe(1);
    expect(out).toContain('gateway failed to start');
    expect(out).toMatch(/appendcast: HTTP port 127\.0\.0\.1:\d+ is already in use/);
  }, 30_000);
});
