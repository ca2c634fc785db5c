import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { parseConfig } from '../../src/config/index.js';
import { ErrorCode } from '../../src/errors.js';
import { Gateway } from '../../src/gateway.js';
import { DROP_REASONS, REJECT_REASONS, RESTART_REASONS, ROLLOVER_REASONS } from '../../src/metrics/label-values.js';
import { GatewayMetrics } from '../../src/metrics/metrics.js';
import { SpoolDiskUsage } from '../../src/metrics/spool-disk-usage.js';
import type { SessionSpool } from '../../src/spool/session-spool.js';
import type { Spool } from '../../src/spool/spool.js';
import { createLogger } from '../../src/util/logger.js';
import { spoolOptions, startSpool } from '../helpers/appender-fixture.js';
import { metricValue } from '../helpers/gateway-process.js';
import { promtoolComplaints } from '../helpers/promtool.js';
import { waitFor } from '../helpers/wait.js';

const cleanup = cleanupAfterEach('apc-metrics-');
const tempDir = (): Promise<string> => cleanup.tempDir();

function gatewayConfig(dir: string): string {
  return `
dataDir: ${join(dir, 'data')}
server: { rtmp: { host: 127.0.0.1, port: 0 }, http: { host: 127.0.0.1, port: 0 } }
storage: { kind: fs, root: ${join(dir, 'objects')}, fsync: never }
spool: { quotaBytesPerStream: 1000000, quotaBytesTotal: 5000000 }
streams:
  - { id: cam1, key: k1 }
  - { id: cam2, key: k2, enabled: false }
  - { id: pulled, source: { rtsp: "rtsp://127.0.0.1:1/x" } }
`;
}

/** A fragment entry that arrived at `at` (wall clock, ms). */
function fragmentAt(s: SessionSpool, at: number, size = 100): number {
  return s.append({ kind: 'fragment', receivedAt: at, mediaTime: 0, duration: 1, keyframe: true }, Buffer.alloc(size, 1));
}

async function ack(s: SessionSpool, upto: number): Promise<void> {
  await waitFor('entries readable', () => s.readableSeq >= upto, 5_000, 5);
  await s.commit({ fromSeq: s.cursor.nextSeq, uptoSeq: upto, fence: {} }, { landed: true, state: {} });
}

describe('metrics: every series exists from the start, and promtool accepts the exposition', () => {
  it('has each counter of each configured stream at 0 for every reason, code and outcome before any event', async () => {
    const dir = await tempDir();
    const gateway = new Gateway(parseConfig(gatewayConfig(dir), 'metrics.yaml', {}), createLogger('silent'));
    cleanup.push(() => gateway.close());
    const text = (await gateway.metrics.render()).body;
    for (const stream of ['cam1', 'cam2', 'pulled']) {
      for (const reason of REJECT_REASONS) expect(metricValue(text, 'appendcast_rejected_publishes_total', { stream, reason }), `${stream} ${reason}`).toBe(0);
      for (const reason of DROP_REASONS) expect(metricValue(text, 'appendcast_dropped_bytes_total', { stream, reason })).toBe(0);
      for (const reason of ROLLOVER_REASONS) expect(metricValue(text, 'appendcast_rollovers_total', { stream, reason })).toBe(0);
      for (const outcome of ['landed', 'absent', 'foreign']) expect(metricValue(text, 'appendcast_reconciliations_total', { stream, outcome })).toBe(0);
      expect(metricValue(text, 'appendcast_append_errors_total', { stream, code: ErrorCode.StoreTransport })).toBe(0);
      expect(metricValue(text, 'appendcast_append_errors_total', { stream, code: 'other' })).toBe(0);
      for (const name of ['appendcast_appends_total', 'appendcast_fragments_total', 'appendcast_ingest_bytes_total', 'appendcast_objects_opened_total', 'appendcast_append_duration_seconds_count']) {
        expect(metricValue(text, name, { stream }), `${name} ${stream}`).toBe(0);
      }
      // Lag is there from the start (0: nothing waits), so a stuck stream can never be a missing series.
      expect(metricValue(text, 'appendcast_lag_seconds', { stream })).toBe(0);
      expect(metricValue(text, 'appendcast_lag_bytes', { stream })).toBe(0);
      expect(metricValue(text, 'appendcast_spool_quota_bytes', { stream })).toBe(1_000_000);
    }
    for (const reason of RESTART_REASONS) expect(metricValue(text, 'appendcast_ffmpeg_restarts_total', { stream: 'cam1', reason })).toBe(0);
    expect(metricValue(text, 'appendcast_source_reconnects_total', { stream: 'pulled', reason: 'auth' })).toBe(0);
    expect(metricValue(text, 'appendcast_rejected_publishes_total', { stream: '_unknown', reason: 'unknown-stream' })).toBe(0);
    expect(metricValue(text, 'appendcast_rtmp_protocol_errors_total', { reason: 'max-connections' })).toBe(0);
    expect(metricValue(text, 'appendcast_stream_enabled', { stream: 'cam1' })).toBe(1);
    expect(metricValue(text, 'appendcast_stream_enabled', { stream: 'cam2' })).toBe(0);
    expect(metricValue(text, 'appendcast_spool_quota_all_streams_bytes')).toBe(5_000_000);
    expect(metricValue(text, 'appendcast_store_requests_in_flight')).toBe(0);
    expect(await promtoolComplaints(text)).toBe('');
  });

  it('the promtool check can fail', async () => {
    expect(await promtoolComplaints('# HELP x_total a gauge\n# TYPE x_total gauge\nx_total 1\n')).toContain('non-counter metrics should not have "_total" suffix');
  });

  it('folds unknown remuxer exit reasons and error codes into a finite label set', () => {
    const m = new GatewayMetrics();
    m.initStream('s', { enabled: true, pulled: false });
    m.remuxerRestarted('s', 'signal-SIGKILL');
    m.remuxerRestarted('s', 'signal-SIGUSR2');
    m.remuxerRestarted('s', 'exit-137');
    m.appendFailed('s', 'ECONNRESET');
    m.appendFailed('s', ErrorCode.StoreService);
    return m.render().then(({ body }) => {
      expect(metricValue(body, 'appendcast_ffmpeg_restarts_total', { stream: 's', reason: 'signal-SIGKILL' })).toBe(1);
      expect(metricValue(body, 'appendcast_ffmpeg_restarts_total', { stream: 's', reason: 'signal-other' })).toBe(1);
      expect(metricValue(body, 'appendcast_ffmpeg_restarts_total', { stream: 's', reason: 'exit-other' })).toBe(1);
      expect(metricValue(body, 'appendcast_append_errors_total', { stream: 's', code: 'other' })).toBe(1);
      expect(metricValue(body, 'appendcast_append_errors_total', { stream: 's', code: ErrorCode.StoreService })).toBe(1);
      expect(body).not.toContain('ECONNRESET');
    });
  });
});

describe('lag: the age of the oldest unacknowledged fragment', () => {
  async function spoolIn(dir: string, retainAcked = false): Promise<Spool> {
    const { spool } = await startSpool(spoolOptions(dir, { retainAcked }));
    cleanup.push(() => spool.close());
    return spool;
  }

  it('follows the oldest fragment neither acknowledged nor dropped, across sessions, and is undefined when all are', async () => {
    const spool = await spoolIn(await tempDir());
    const a = await spool.openSession('cam1', 'a');
    expect(spool.oldestUnackedAt('cam1')).toBeUndefined();
    a.append({ kind: 'init', receivedAt: 500 }, Buffer.alloc(10)); // an init is no fragment: not lag
    expect(spool.oldestUnackedAt('cam1')).toBeUndefined();
    fragmentAt(a, 1000);
    fragmentAt(a, 2000);
    fragmentAt(a, 3000);
    // Before the store acknowledged anything: the very first fragment's age (no waiting for an ack).
    expect(spool.oldestUnackedAt('cam1')).toBe(1000);
    await ack(a, 2); // init + first fragment
    expect(spool.oldestUnackedAt('cam1')).toBe(2000);
    const b = await spool.openSession('cam1', 'b'); // a replacement remuxer's session
    fragmentAt(b, 1500);
    expect(spool.oldestUnackedAt('cam1')).toBe(1500);
    await ack(b, 1);
    expect(spool.oldestUnackedAt('cam1')).toBe(2000);
    await ack(a, 4);
    expect(spool.oldestUnackedAt('cam1')).toBeUndefined();
    expect(spool.oldestUnackedAt('other')).toBeUndefined();
  });

  it('skips dropped fragments (they will never be acknowledged)', async () => {
    const dir = await tempDir();
    const { spool } = await startSpool(spoolOptions(dir, { quotaBytesPerStream: 250 }));
    cleanup.push(() => spool.close());
    const s = await spool.openSession('cam1', 's');
    fragmentAt(s, 1000);
    fragmentAt(s, 2000);
    fragmentAt(s, 3000); // 300 bytes > 250: the oldest goes
    expect(spool.oldestUnackedAt('cam1')).toBe(2000);
  });

  it('is exported per stream as appendcast_lag_seconds, and lag_bytes (unacknowledged) differs from spool_bytes (on disk, retained included)', async () => {
    const dir = await tempDir();
    const spool = await spoolIn(dir, true);
    const s = await spool.openSession('cam1', 's');
    const metrics = new GatewayMetrics({
      streams: () => ['cam1', 'cam2'], spoolStreams: () => spool.streamNames(), spoolDir: spool.opts.dir,
      unackedBytes: (x) => spool.streamBytes(x), oldestUnackedAt: (x) => spool.oldestUnackedAt(x),
    });
    fragmentAt(s, Date.now() - 30_000, 1000);
    let text = (await metrics.render()).body;
    expect(metricValue(text, 'appendcast_lag_seconds', { stream: 'cam1' })).toBeGreaterThanOrEqual(30);
    expect(metricValue(text, 'appendcast_lag_seconds', { stream: 'cam2' })).toBe(0);
    expect(metricValue(text, 'appendcast_lag_bytes', { stream: 'cam1' })).toBe(1000);
    await ack(s, 1);
    await s.seal();
    await s.finish(); // retainAcked: the session directory stays, renamed .done
    text = (await new GatewayMetrics({ streams: () => ['cam1'], spoolDir: spool.opts.dir }).render()).body;
    expect(metricValue(text, 'appendcast_lag_bytes', { stream: 'cam1' })).toBe(0);
    expect(metricValue(text, 'appendcast_lag_seconds', { stream: 'cam1' })).toBe(0);
    // The journal frame (payload + header + CRC) is still on disk, retained.
    expect(metricValue(text, 'appendcast_spool_bytes', { stream: 'cam1' })).toBeGreaterThan(1000);
  });

  it('reads disk usage at most once per interval', async () => {
    const dir = await tempDir();
    let now = 0;
    const usage = new SpoolDiskUsage(dir, 1000, () => now);
    const first = await usage.bytesByStream();
    expect(first.size).toBe(0);
    await mkdir(join(dir, 'cam%2F1', 'sess'), { recursive: true });
    await writeFile(join(dir, 'cam%2F1', 'sess', 'x.seg'), Buffer.alloc(4096));
    expect((await usage.bytesByStream()).size).toBe(0); // cached
    now = 1000;
    expect((await usage.bytesByStream()).get('cam/1')).toBe(4096);
  });
});
