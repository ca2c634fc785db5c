import { mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { ErrorCode } from '../../src/errors.js';
import { Gateway } from '../../src/gateway.js';
import type { SessionSpool } from '../../src/spool/session-spool.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { createLogger } from '../../src/util/logger.js';
import { metricValue } from '../helpers/gateway-process.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { readObject } from '../helpers/objects.js';
import { appenderFor, feed, fixture, leaveUnfinishedSession, spoolOptions, startSpool } from '../helpers/appender-fixture.js';

const log = createLogger('silent');
const RETRY = { baseDelayMs: 40, maxDelayMs: 200, haltedProbeSeconds: 0.2 };

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('appender supervision', () => {
  it('an unexpected error in one session is reported and retried with backoff while the other session drains; then it drains too', async () => {
    const { bytes, init, fragments } = await fixture();
    const dir = await mkdtemp(join(tmpdir(), 'apc-supervise-'));
    dirs.push(dir);
    const store = new FsStore({ root: join(dir, 'objects'), fsync: 'never' });
    const { spool } = await startSpool(spoolOptions(dir), { logger: log });
    const sick = await spool.openSession('cam1', 'sick');
    const healthy = await spool.openSession('cam2', 'healthy');
    // A real fault the appender has no policy for: the spool cannot write this session's cursor
    // (a directory stands where its log file goes: EISDIR), until the directory is removed.
    const blocker = join(sick.dir, 'cursor.log');
    await mkdir(blocker);

    const make = (session: SessionSpool, stream: string) => appenderFor(session, store, { stream, flush: { maxBytes: 64 * 1024, maxDelayMs: 0 }, retry: RETRY });
    const a = make(sick, 'cam1');
    const b = make(healthy, 'cam2');
    const failures: Array<{ code: string; failures: number; retryInMs: number; at: number }> = [];
    a.on('failed', (f) => failures.push({ code: f.error.code, failures: f.failures, retryInMs: f.retryInMs, at: Date.now() }));
    let aFinished = false;
    let bFinished = false;
    a.on('finished', () => { aFinished = true; });
    b.on('finished', () => { bFinished = true; });
    b.on('failed', () => { throw new Error('the healthy session must not fail'); });

    feed(sick, init, fragments);
    feed(healthy, init, fragments);
    await Promise.all([sick.seal(), healthy.seal()]);
    const started = Date.now();
    a.start();
    b.start();

    // The healthy session drains to its end while the sick one keeps failing.
    expect(await b.whenDone()).toBe('finished');
    expect(bFinished).toBe(true);
    await waitFor('three failures in a row', () => failures.length >= 3, 10_000, 5);
    expect(aFinished).toBe(false);
    const elapsed = Date.now() - started;
    // Reported with the stable code, counted in a row, and never a tight loop: each wait is a
    // jittered backoff between a quarter of the base delay and the maximum.
    for (const [i, f] of failures.entries()) {
      expect(f.code).toBe(ErrorCode.AppenderFailed);
      expect(f.failures).toBe(i + 1);
      expect(f.retryInMs).toBeGreaterThanOrEqual(RETRY.baseDelayMs / 4);
      expect(f.retryInMs).toBeLessThanOrEqual(RETRY.maxDelayMs);
    }
    expect(failures.length).toBeLessThanOrEqual(elapsed / (RETRY.baseDelayMs / 4) + 1);

    // The fault clears: the same run resumes and drains, nothing lost, nothing twice.
    await rmdir(blocker);
    await withTimeout(a.whenDone(), 15_000, 'the sick appender to recover');
    expect(aFinished).toBe(true);
    expect((await readObject(store, 'cam1/object.mp4')).equals(bytes)).toBe(true);
    expect((await readObject(store, 'cam2/object.mp4')).equals(bytes)).toBe(true);
    expect(spool.sessions()).toEqual([]);
    await spool.close();
    await store.close();
  }, 40_000);
});

describe('appender supervision in the gateway', () => {
  it('counts each failure in appendcast_append_errors_total{code="APC_ERR_APPENDER_FAILED"}; the session drains once the fault is gone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'apc-supervise-gw-'));
    dirs.push(dir);
    const left = await leaveUnfinishedSession(join(dir, 'data'));
    // The recovered session's cursor cannot be written (a real EISDIR fault).
    const blocker = join(left.dir, 'cursor.log');
    await mkdir(blocker);
    const gateway = new Gateway(parseConfig(`
dataDir: ${join(dir, 'data')}
server: { rtmp: { host: 127.0.0.1, port: 0 }, http: { host: 127.0.0.1, port: 0 } }
storage: { kind: fs }
retry: { baseDelayMs: 20, maxDelayMs: 100 }
streams: [{ id: cam1, key: k }]
`, 'supervise.yaml', {}), log);
    await gateway.start();
    try {
      const failures = async () => metricValue((await gateway.metrics.render()).body, 'appendcast_append_errors_total', { stream: 'cam1', code: ErrorCode.AppenderFailed }) ?? 0;
      await waitFor('failures counted', async () => (await failures()) >= 3, 10_000, 20);
      const sessions = () => (gateway.describe() as { streams: Array<{ sessions: Array<{ draining: boolean; objects: string[] }> }> }).streams[0]!.sessions;
      expect(sessions()).toMatchObject([{ draining: true }]);
      await rmdir(blocker);
      await waitFor('drained', () => sessions()[0]?.draining === false, 10_000, 20);
      const key = sessions()[0]!.objects[0]!;
      expect((await readObject(gateway.store, key)).equals(left.expected)).toBe(true);
    } finally {
      await gateway.close();
    }
  }, 30_000);
});
