import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { OssStorageConfig, OssTimeouts } from '../../src/config/schema.js';
import { crc64 } from '../../src/store/crc64.js';
import { PositionNotEqualToLengthError } from '../../src/store/errors.js';
import { OssServiceError, OssTransportError } from '../../src/store/oss/oss-errors.js';
import { OssStore } from '../../src/store/oss/oss-store.js';
import { ServeOssUsageError, parseServeOssArgs, startServeOss } from '../../src/serve-oss/cli.js';
import { FaultInjector, FaultPlanError, parseFaultSpec } from '../../src/serve-oss/faults.js';
import type { FaultKind, FaultPlan } from '../../src/serve-oss/faults.js';
import { OssLocalServer } from '../../src/serve-oss/server.js';
import { rejectionOf } from '../helpers/expect-error.js';
import { readAll } from '../helpers/objects.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const AK = 'faults-ak';
const SECRET = 'faults-secret-0123456789';
const BUCKET = 'faults';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  // Stores before servers before directories.
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Running {
  server: OssLocalServer;
  url: string;
  port: number;
}

async function startServer(faults?: FaultPlan): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), 'apc-faults-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const server = new OssLocalServer({
    root: dir, port: 0, buckets: [BUCKET], credentials: [{ accessKeyId: AK, accessKeySecret: SECRET }],
    anonymous: true, fsync: 'never', ...(faults !== undefined ? { faults } : {}),
  });
  const addr = await server.start();
  cleanups.push(() => server.close());
  return { server, url: addr.url, port: addr.port };
}

function storeFor(url: string, timeouts: Partial<OssTimeouts> = {}): OssStore {
  const cfg: OssStorageConfig = {
    kind: 'oss', endpoint: url, bucket: BUCKET, region: 'cn-hangzhou', accessKeyId: AK, accessKeySecret: SECRET,
    signatureVersion: 'v4', pathStyle: true, timeouts: { connectMs: 2000, headersMs: 5000, bodyMs: 5000, ...timeouts },
  };
  const store = new OssStore(cfg);
  cleanups.push(() => store.close());
  return store;
}

/** The error of a fetch that could not connect (undici puts the socket error in `cause`). */
async function fetchFailure(url: string): Promise<string | undefined> {
  try {
    await fetch(url, { method: 'HEAD' });
    return undefined;
  } catch (err) {
    return (err as { cause?: { code?: string } }).cause?.code ?? 'unknown';
  }
}

describe('injected faults on AppendObject, seen through OssStore', () => {
  it('drop-response: the append is applied, the client sees an ambiguous transport error', async () => {
    const { server, url } = await startServer({ rules: [{ op: 'append', nth: 1, fault: 'drop-response' }] });
    const store = storeFor(url);
    const data = randomBytes(3000);
    const err = await rejectionOf(store.append('a/drop.mp4', 0, [data]));
    expect(err).toBeInstanceOf(OssTransportError);
    expect((err as OssTransportError).ambiguous).toBe(true);
    const head = await store.head('a/drop.mp4');
    expect(head?.size).toBe(3000);
    expect(head?.crc64).toBe(crc64(data));
    expect(server.faults?.stats().injected['drop-response']).toBe(1);
    expect(server.faults?.stats().committed['drop-response']).toBe(1);
    // Only the first append matched nth: 1.
    expect((await store.append('a/drop.mp4', 3000, [data])).nextPosition).toBe(6000);
  });

  it('503: nothing applied, a retryable OssServiceError', async () => {
    const { server, url } = await startServer({ rules: [{ op: 'append', key: 'a/503.mp4', fault: '503' }] });
    const store = storeFor(url);
    const err = await rejectionOf(store.append('a/503.mp4', 0, [randomBytes(100)]));
    expect(err).toBeInstanceOf(OssServiceError);
    expect((err as OssServiceError).status).toBe(503);
    expect((err as OssServiceError).ossCode).toBe('ServiceUnavailable');
    expect((err as OssServiceError).retryable).toBe(true);
    expect(await store.head('a/503.mp4')).toBeNull();
    // A string key matches exactly: another key is not faulted.
    expect((await store.append('a/503.mp4x', 0, [randomBytes(10)])).nextPosition).toBe(10);
    expect(server.faults?.stats()).toMatchObject({ injected: { '503': 1 }, committed: { '503': 0 }, totalInjected: 1 });
  });

  it('500-after-commit: a retryable 500 although the append was applied', async () => {
    const { url } = await startServer({ rules: [{ op: 'append', key: /500/, nth: 2, fault: '500-after-commit' }] });
    const store = storeFor(url);
    const a = randomBytes(500);
    const b = randomBytes(700);
    await store.append('x/500.mp4', 0, [a]);
    const err = await rejectionOf(store.append('x/500.mp4', 500, [b]));
    expect(err).toBeInstanceOf(OssServiceError);
    expect((err as OssServiceError).status).toBe(500);
    expect((err as OssServiceError).retryable).toBe(true);
    const head = await store.head('x/500.mp4');
    expect(head?.size).toBe(1200);
    expect(head?.crc64).toBe(crc64(Buffer.concat([a, b])));
  });

  it('delay: the client times out (ambiguous), the append lands afterwards, and the position fence refuses a resend', async () => {
    const delayMs = 1500;
    const { server, url } = await startServer({ delayMs, rules: [{ op: 'append', key: 'd/delay.mp4', nth: 1, fault: 'delay' }] });
    const store = storeFor(url, { headersMs: 300 });
    const data = randomBytes(2048);
    const started = Date.now();
    const err = await rejectionOf(store.append('d/delay.mp4', 0, [data]));
    expect(err).toBeInstanceOf(OssTransportError);
    expect((err as OssTransportError).ambiguous).toBe(true);
    expect((err as OssTransportError).causeCode).toBe('UND_ERR_HEADERS_TIMEOUT');
    // Not landed yet (the hold is not over)...
    expect(await store.head('d/delay.mp4')).toBeNull();
    // ...but it does once the hold is over, although nobody is listening for the answer.
    const head = await waitFor('delayed append to land', async () => (await store.head('d/delay.mp4')) ?? undefined, 5000, 50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(delayMs - 50);
    expect(head.size).toBe(2048);
    expect(head.crc64).toBe(crc64(data));
    const resend = await rejectionOf(store.append('d/delay.mp4', 0, [data]));
    expect(resend).toBeInstanceOf(PositionNotEqualToLengthError);
    expect((resend as PositionNotEqualToLengthError).currentLength).toBe(2048);
    expect(server.faults?.stats().committed.delay).toBe(1);
  });

  it('delay-no-commit: held, then cut, nothing applied', async () => {
    const { url } = await startServer({ delayMs: 300, rules: [{ op: 'append', nth: 1, fault: 'delay-no-commit' }] });
    const store = storeFor(url);
    const started = Date.now();
    const err = await rejectionOf(store.append('d/nocommit.mp4', 0, [randomBytes(100)]));
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(err).toBeInstanceOf(OssTransportError);
    expect((err as OssTransportError).ambiguous).toBe(true);
    expect(await store.head('d/nocommit.mp4')).toBeNull();
  });

  it('reset-mid-body: the connection is cut while the body arrives; nothing applied, no partial bytes', async () => {
    const { server, url } = await startServer({ rules: [{ op: 'append', nth: 2, fault: 'reset-mid-body' }] });
    const store = storeFor(url);
    const first = randomBytes(1000);
    await store.append('r/reset.mp4', 0, [first]);
    const err = await rejectionOf(store.append('r/reset.mp4', 1000, [randomBytes(8 * 1024 * 1024)]));
    expect(err).toBeInstanceOf(OssTransportError);
    const head = await store.head('r/reset.mp4');
    expect(head?.size).toBe(1000);
    expect(head?.crc64).toBe(crc64(first));
    expect((await readAll(await store.read('r/reset.mp4'))).equals(first)).toBe(true);
    const next = randomBytes(10);
    expect((await store.append('r/reset.mp4', 1000, [next])).crc64).toBe(crc64(Buffer.concat([first, next])));
    expect(server.faults?.stats()).toMatchObject({ injected: { 'reset-mid-body': 1 }, committed: { 'reset-mid-body': 0 } });
  });

  it('HEAD can be faulted too (503 on the 1st HEAD of a key)', async () => {
    const { url } = await startServer({ rules: [{ op: 'head', key: 'h/obj', nth: 1, fault: '503' }] });
    const store = storeFor(url);
    await store.append('h/obj', 0, [randomBytes(5)]);
    const err = await rejectionOf(store.head('h/obj'));
    expect((err as OssServiceError).status).toBe(503);
    expect((await store.head('h/obj'))?.size).toBe(5);
  });
});

describe('outage', () => {
  it('refuses connections (non-ambiguous) for its duration, then serves on the same port with the data intact', async () => {
    const { server, url, port } = await startServer();
    const store = storeFor(url);
    const a = randomBytes(400);
    await store.append('o/obj', 0, [a]);
    const back = server.outage(700);
    await waitFor('the outage to start', async () => (await fetchFailure(`${url}/${BUCKET}/o/obj`)) !== undefined, 2000, 10);
    const err = await rejectionOf(store.append('o/obj', 400, [randomBytes(10)]));
    expect(err).toBeInstanceOf(OssTransportError);
    expect((err as OssTransportError).phase).toBe('connect');
    expect((err as OssTransportError).ambiguous).toBe(false);
    expect((err as OssTransportError).causeCode).toBe('ECONNREFUSED');
    expect(await fetchFailure(`${url}/${BUCKET}/o/obj`)).toBe('ECONNREFUSED');
    await back;
    expect(new URL(url).port).toBe(String(port));
    const head = await store.head('o/obj');
    expect(head?.size).toBe(400);
    expect(head?.crc64).toBe(crc64(a));
    expect((await store.append('o/obj', 400, [randomBytes(10)])).nextPosition).toBe(410);
  });

  it('close() during an outage ends it at once and does not listen again', async () => {
    const { server, url } = await startServer();
    const back = server.outage(60_000);
    await waitFor('the outage to start', async () => (await fetchFailure(`${url}/${BUCKET}/k`)) !== undefined, 2000, 10);
    // Ends the 60 s outage at once: bounded well below it, not timed.
    await withTimeout(Promise.all([server.close(), back]), 10_000, 'close() to end the outage');
    expect(await fetchFailure(`${url}/${BUCKET}/k`)).toBe('ECONNREFUSED');
  });
});

describe('control endpoints', () => {
  it('with faults: GET /_appendcast/faults reports stats, POST /_appendcast/outage?ms=N starts an outage', async () => {
    const { server, url } = await startServer({ rules: [{ op: 'append', nth: 1, fault: '503' }] });
    const store = storeFor(url);
    await rejectionOf(store.append('c/obj', 0, [randomBytes(10)]));
    const stats = (await (await fetch(`${url}/_appendcast/faults`)).json()) as { injected: Record<FaultKind, number>; seen: { append: number }; events: unknown[] };
    expect(stats.injected['503']).toBe(1);
    expect(stats.seen.append).toBe(1);
    expect(stats.events).toEqual([{ seq: 1, op: 'append', key: 'c/obj', fault: '503' }]);

    expect((await fetch(`${url}/_appendcast/outage?ms=abc`, { method: 'POST' })).status).toBe(400);
    expect((await fetch(`${url}/_appendcast/nope`)).status).toBe(404);
    const r = await fetch(`${url}/_appendcast/outage?ms=500`, { method: 'POST' });
    expect(r.status).toBe(202);
    await waitFor('the outage to start', async () => (await fetchFailure(`${url}/${BUCKET}/c/obj`)) !== undefined, 2000, 10);
    expect(await fetchFailure(`${url}/${BUCKET}/c/obj`)).toBe('ECONNREFUSED');
    await waitFor('server back', async () => (await fetchFailure(`${url}/${BUCKET}/c/obj`)) === undefined, 5000, 50);
    expect(server.faults?.stats().outages).toBe(1);
  });

  it('without faults they do not exist (400 like any invalid bucket), and setFaults turns them on and off', async () => {
    const { server, url } = await startServer();
    expect(server.faults).toBeUndefined();
    for (const [path, method] of [['/_appendcast/outage?ms=100000', 'POST'], ['/_appendcast/faults', 'GET']] as const) {
      const r = await fetch(url + path, { method });
      expect(r.status).toBe(400);
      expect(await r.text()).toContain('<Code>InvalidBucketName</Code>');
    }
    // No outage happened.
    expect(await fetchFailure(`${url}/${BUCKET}/k`)).toBeUndefined();

    const injector = server.setFaults({ rules: [{ op: 'append', nth: 1, fault: '503' }] });
    expect(injector).toBe(server.faults);
    expect((await fetch(`${url}/_appendcast/faults`)).status).toBe(200);
    server.setFaults(null);
    expect((await fetch(`${url}/_appendcast/faults`)).status).toBe(400);
    // And appends are no longer faulted.
    expect((await storeFor(url).append('s/obj', 0, [randomBytes(3)])).nextPosition).toBe(3);
  });
});

describe('random faults', () => {
  const kinds: FaultKind[] = ['drop-response', '503', '500-after-commit', 'delay', 'delay-no-commit', 'reset-mid-body'];

  it('are a pure function of the seed and the request order', () => {
    const seq = (seed: number): Array<FaultKind | undefined> => {
      const inj = new FaultInjector({ random: { rate: 0.2, faults: kinds, seed } });
      return Array.from({ length: 1000 }, (_, i) => inj.decide(i % 3 === 0 ? 'head' : 'append', `k${i}`));
    };
    expect(seq(42)).toEqual(seq(42));
    expect(seq(42)).not.toEqual(seq(43));
    // HEADs are not eligible by default.
    expect(seq(42).filter((_, i) => i % 3 === 0).every((k) => k === undefined)).toBe(true);
  });

  it('over 400 appends with reconciliation: rate roughly right, every kind seen, the object exactly once', async () => {
    const plan: FaultPlan = { delayMs: 40, random: { rate: 0.1, faults: kinds, seed: 7 } };
    const { server, url } = await startServer(plan);
    const store = storeFor(url);
    const key = 'rand/obj.mp4';
    const chunks: Buffer[] = [];
    let pos = 0;
    let requests = 0;
    for (let i = 0; i < 400; i++) {
      const chunk = randomBytes(64 + (i % 50));
      for (let attempt = 0; ; attempt++) {
        expect(attempt).toBeLessThan(10);
        requests++;
        try {
          pos = (await store.append(key, pos, [chunk])).nextPosition;
          break;
        } catch {
          const size = (await store.head(key))?.size ?? 0;
          if (size === pos + chunk.length) {
            pos = size; // it landed
            break;
          }
          expect(size).toBe(pos); // else nothing of it did
        }
      }
      chunks.push(chunk);
    }
    const expected = Buffer.concat(chunks);
    expect((await readAll(await store.read(key))).equals(expected)).toBe(true);
    expect((await store.head(key))?.crc64).toBe(crc64(expected));

    const stats = server.faults!.stats();
    expect(stats.seen.append).toBe(requests);
    expect(stats.totalInjected).toBeGreaterThanOrEqual(0.05 * requests);
    expect(stats.totalInjected).toBeLessThanOrEqual(0.2 * requests);
    for (const k of kinds) expect(stats.injected[k]).toBeGreaterThan(0);
    expect(stats.committed['503'] + stats.committed['delay-no-commit'] + stats.committed['reset-mid-body']).toBe(0);
    for (const k of ['drop-response', '500-after-commit', 'delay'] as const) expect(stats.committed[k]).toBe(stats.injected[k]);

    // The server's choices are exactly the pure sequence for that seed.
    const replay = new FaultInjector(plan);
    const pure = Array.from({ length: requests }, (_, i) => replay.decide('append', key)).filter((k) => k !== undefined);
    expect(server.faults!.events().map((e) => e.fault)).toEqual(pure);
  }, 30_000);
});

describe('serve-oss --faults', () => {
  const base = ['--root', '/tmp/x', '--port', '0', '--anonymous'];

  it('parses the short spec with seed and delay', () => {
    const { options } = parseServeOssArgs([...base, '--faults', 'rate=0.05:drop-response,503,500-after-commit,delay,reset-mid-body', '--fault-seed', '9', '--fault-delay-ms', '20000'], {});
    expect(options.faults).toEqual({
      random: { rate: 0.05, faults: ['drop-response', '503', '500-after-commit', 'delay', 'reset-mid-body'], seed: 9 },
      delayMs: 20000,
    });
    expect(parseServeOssArgs([...base, '--faults', 'nth=3:503;rate=0.5:delay'], {}).options.faults).toEqual({
      rules: [{ op: 'append', nth: 3, fault: '503' }],
      random: { rate: 0.5, faults: ['delay'], seed: 1 },
    });
    expect(parseServeOssArgs(base, {}).options.faults).toBeUndefined();
  });

  it('parses JSON plans, with keyRegExp', () => {
    const plan = parseServeOssArgs([...base, '--faults', JSON.stringify({
      rules: [{ op: 'append', keyRegExp: '^cam1/', nth: 2, fault: 'drop-response' }, { op: 'head', key: 'x', fault: '503' }],
      random: { rate: 0.1, faults: ['503'], seed: 3, ops: ['append', 'get'] },
      delayMs: 100,
    })], {}).options.faults!;
    expect(plan.rules![0]!.key).toBeInstanceOf(RegExp);
    expect((plan.rules![0]!.key as RegExp).source).toBe('^cam1\\/');
    expect(plan.rules![1]).toEqual({ op: 'head', key: 'x', fault: '503' });
    expect(plan.random).toEqual({ rate: 0.1, faults: ['503'], seed: 3, ops: ['append', 'get'] });
    expect(plan.delayMs).toBe(100);
    expect(parseServeOssArgs([...base, '--faults', '{}'], {}).options.faults).toEqual({});
  });

  it('refuses bad fault flags with a usage error', () => {
    for (const args of [
      ['--faults', 'rate=0.1:explode'],
      ['--faults', 'rate=2:503'],
      ['--faults', 'nth=0:503'],
      ['--faults', 'often'],
      ['--faults', '{"rules":[{"op":"put","fault":"503"}]}'],
      ['--faults', '{"bogus":1}'],
      ['--faults', 'nth=1:503', '--fault-seed', '3'],
      ['--faults', 'rate=0.1:503', '--fault-seed', 'x'],
      ['--faults', 'rate=0.1:503', '--fault-delay-ms', '-1'],
      ['--fault-seed', '3'],
    ]) {
      expect(() => parseServeOssArgs([...base, ...args], {}), args.join(' ')).toThrow(ServeOssUsageError);
    }
    expect(() => parseFaultSpec('rate=0.1:')).toThrow(FaultPlanError);
    expect(() => new FaultInjector({ random: { rate: 0.1, faults: [], seed: 1 } })).toThrow(FaultPlanError);
  });

  it('startServeOss with --faults warns loudly and serves the control endpoints', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'apc-faults-cli-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const lines: string[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(chunk.toString('utf8')); done(); } });
    const logger = pino({ level: 'warn' }, sink);
    const { server, address } = await startServeOss(
      ['--root', dir, '--port', '0', '--anonymous', '--bucket', BUCKET, '--faults', 'rate=0.5:503', '--fault-seed', '5'],
      { env: {}, logger },
    );
    cleanups.push(() => server.close());
    expect(lines.join('')).toContain('FAULT INJECTION IS ON');
    const r = await fetch(`${address.url}/_appendcast/faults`);
    expect(r.status).toBe(200);
    expect(((await r.json()) as { totalInjected: number }).totalInjected).toBe(0);
  });
});
