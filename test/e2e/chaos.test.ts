import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Fmp4Splitter, type MediaFragment } from '../../src/container/index.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import type { FaultKind } from '../../src/serve-oss/faults.js';
import { OssLocalServer } from '../../src/serve-oss/server.js';
import { startCamera, type Camera } from '../helpers/camera.js';
import { metricSum, metricValue, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { waitFor } from '../helpers/wait.js';
import { groupBySession, listStreamObjects, readObject, stitch } from '../helpers/objects.js';
import { retainedSessions } from '../helpers/spool-journal.js';

const CREDS = { accessKeyId: 'chaos-id', accessKeySecret: 'chaos-secret' };
const CAMERA_SECONDS = 60;
const OUTAGE_AT_S = 8;
const OUTAGE_MS = 15_000;
const KILL_AT_S = 32;
const FAULT_KINDS: FaultKind[] = ['drop-response', '503', '500-after-commit', 'delay', 'reset-mid-body'];

/**
 * The chaos run of the reliability issue: a camera streams 60 s; the store injects faults on 5 % of
 * appends (commits then drops the response, 503, 500 after commit, delays past the client timeout,
 * resets mid-body), goes away for 15 s, and the gateway is killed with SIGKILL and restarted once
 * (the camera publishes again). Then, per remuxer session, its objects stitched in order (the
 * repeated init dropped) must be byte-identical to what reached the spool: no byte twice, none lost.
 */
describe('chaos: faults, a store outage and a kill -9, exactly once', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  it('every session is recorded byte-exact, decodable, with the duration the camera sent', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'apc-chaos-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const server = new OssLocalServer({
      root: join(dir, 'oss'), port: 0, buckets: ['cams'], credentials: [CREDS], fsync: 'never',
      faults: { random: { rate: 0.05, faults: FAULT_KINDS, seed: 20261125 }, delayMs: 2500 },
    });
    const { url } = await server.start();
    cleanup.push(() => server.close());
    const spoolDir = join(dir, 'data', 'spool');
    const yaml = (p: { rtmp: number; http: number }) => `
dataDir: ${join(dir, 'data')}
log: { level: info }
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage:
  kind: oss
  endpoint: ${url}
  bucket: cams
  region: cn-hangzhou
  pathStyle: true
  accessKeyId: ${CREDS.accessKeyId}
  accessKeySecret: ${CREDS.accessKeySecret}
  timeouts: { connectMs: 1000, headersMs: 1500, bodyMs: 2000 }
spool: { fsync: always, retainAcked: true }
retry: { baseDelayMs: 100, maxDelayMs: 1000 }
streamDefaults:
  fragmentDurationMs: 200
  flush: { maxDelayMs: 200 }
streams:
  - { id: cam1, key: chaos-key }
`;
    let gw: GatewayProcess = await startGateway(dir, yaml);
    cleanup.push(() => gw.kill());
    const ports = { rtmp: gw.rtmpPort, http: gw.httpPort };
    const t0 = Date.now();
    let sentA = 0;
    const camA: Camera = startCamera({
      url: `rtmp://127.0.0.1:${ports.rtmp}/live/cam1?key=chaos-key`, seconds: CAMERA_SECONDS, onProgress: (s) => { sentA = s; },
    });
    cleanup.push(async () => camA.stop());

    // The store goes away for 15 s while the camera streams: the spool takes it all.
    await delay(OUTAGE_AT_S * 1000); // the schedule is the subject: the outage starts at t = 8 s
    const outage = server.outage(OUTAGE_MS);
    let backlogAtOutageEnd = -1;
    await outage;
    const outageEnd = Date.now();
    // For the report only: how fast the backlog drains (not asserted; -1 if it takes over 5 s).
    const drainedAfterMs = await waitFor('the backlog drained', async () => {
      const lag = metricValue(await gw.metrics(), 'appendcast_lag_bytes', { stream: 'cam1' }) ?? 0;
      if (backlogAtOutageEnd < 0) backlogAtOutageEnd = lag;
      return lag < 64 * 1024 ? { ms: Date.now() - outageEnd } : undefined;
    }, 5_000, 50).then((d) => d.ms, () => -1);

    // kill -9 while the camera streams; restart on the same ports; the camera publishes again.
    await delay(Math.max(0, t0 + KILL_AT_S * 1000 - Date.now())); // the schedule: the kill comes at t = 32 s
    const metricsBeforeKill = await gw.metrics();
    await gw.kill();
    const killedAt = Date.now();
    const sentAtKill = sentA;
    const resultA = await camA.done;
    expect(resultA.code).not.toBe(0); // the camera lost its server
    gw = await startGateway(dir, yaml, {}, ports);
    const secondsB = Math.max(5, Math.round(CAMERA_SECONDS - (Date.now() - t0) / 1000));
    const camB = startCamera({ url: `rtmp://127.0.0.1:${ports.rtmp}/live/cam1?key=chaos-key`, seconds: secondsB });
    cleanup.push(async () => camB.stop());
    expect((await camB.done).code).toBe(0);

    // Everything drains: both sessions (the recovered one and the new one) are fully appended.
    const sessions = await waitFor('all sessions drained', async () => {
      const s = (await gw.streams()).find((x) => x.id === 'cam1')!.sessions;
      return s.length === 2 && s.every((x) => !x.draining) && s.some((x) => x.recovered) && s.some((x) => x.endedAt) ? s : undefined;
    }, 60_000, 200);
    const metrics = await gw.metrics();
    expect(await gw.stop()).toBe(0);
    const faults = server.faults!.stats();

    // Ground truth: what reached the spool, per session (the journals were retained).
    const truth = await retainedSessions(spoolDir);
    expect(truth.size).toBe(2);
    // The store: media objects grouped by session, in object order.
    const fs = new FsStore({ root: join(dir, 'oss', 'cams') });
    cleanup.push(() => fs.close());
    const bySession = groupBySession(await listStreamObjects(fs, 'cam1'));
    expect([...bySession.keys()].sort()).toEqual([...truth.keys()].sort());

    const report: Record<string, unknown> = {};
    for (const [sid, entries] of truth) {
      const objs = await Promise.all(bySession.get(sid)!.map(async (o) => ({ seq: o.seq, bytes: await readObject(fs, o.key) })));
      const init = entries[0]!;
      // Every object starts with the init segment; stitched, the repeats dropped.
      const stitched = stitch(objs.map((o) => o.bytes), init);
      const expected = Buffer.concat(entries);
      // Byte-identical: zero duplicated bytes, zero lost bytes.
      expect(stitched.length).toBe(expected.length);
      expect(stitched.equals(expected)).toBe(true);
      // No fragment twice (belt and braces: mfhd sequence numbers strictly increase).
      const seqs = entries.slice(1).map((b) => {
        const out = new Fmp4Splitter().push(Buffer.concat([init, b]));
        return (out.find((o) => o.type === 'fragment') as MediaFragment | undefined)?.sequence;
      });
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);
      // Every object plays on its own.
      for (const o of objs) {
        const f = join(dir, `obj-${sid}-${o.seq}.mp4`);
        await writeFile(f, o.bytes);
        expect(await decodeErrors(f)).toBe('');
      }
      const whole = join(dir, `session-${sid}.mp4`);
      await writeFile(whole, stitched);
      expect(await decodeErrors(whole)).toBe('');
      const p = await probe(whole);
      const recorded = p.duration - Math.max(0, p.startTime);
      const recovered = sessions.find((s) => s.id === sid)!.recovered;
      const sent = recovered ? sentAtKill : secondsB;
      expect(Math.abs(recorded - sent)).toBeLessThan(0.5);
      report[sid] = { recovered, objects: objs.length, bytes: stitched.length, sentSeconds: sent, recordedSeconds: +recorded.toFixed(3) };
    }
    expect(metricSum(metrics, 'appendcast_dropped_bytes_total', { stream: 'cam1' })).toBe(0);
    expect(faults.totalInjected).toBeGreaterThan(0);
    console.log('chaos report', JSON.stringify({
      sessions: report, faults, outageMs: OUTAGE_MS, backlogBytesAtOutageEnd: backlogAtOutageEnd, drainedAfterMs,
      drainMBps: drainedAfterMs > 0 ? +(backlogAtOutageEnd / 1e6 / (drainedAfterMs / 1000)).toFixed(2) : null,
      killAfterS: (killedAt - t0) / 1000,
      // Both lives of the gateway: the first one's counters as scraped just before the kill.
      reconciliations: Object.fromEntries(['landed', 'absent', 'foreign'].map((o) => [o,
        [metricsBeforeKill, metrics].reduce((n, m) => n + (metricValue(m, 'appendcast_reconciliations_total', { stream: 'cam1', outcome: o }) ?? 0), 0)])),
      appendErrors: [metricsBeforeKill, metrics].map((m) => m.split('\n').filter((l) => l.startsWith('appendcast_append_errors_total{')).join('; ')),
      rollovers: [metricsBeforeKill, metrics].map((m) => m.split('\n').filter((l) => l.startsWith('appendcast_rollovers_total{')).join('; ')),
    }, null, 1));
  }, 180_000);
});
