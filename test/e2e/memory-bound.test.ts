import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { parseConfig } from '../../src/config/index.js';
import { Gateway } from '../../src/gateway.js';
import { OssLocalServer } from '../../src/serve-oss/server.js';
import { createLogger } from '../../src/util/logger.js';
import { metricSum, metricValue } from '../helpers/gateway-process.js';
import { waitFor } from '../helpers/wait.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const run = promisify(execFile);

const MEMORY_BOUND = 2 * 1024 * 1024; // spool.memoryBytesPerStream
const FLUSH_MAX = 4 * 1024 * 1024; // flush.maxBytes (the default): the batch an appender holds while it retries
// Per stream the gateway holds at most the spool's window plus one batch; 2 MiB more for allocator
// and GC noise. 60 s of 2 Mbps is ~15 MB: an unbounded queue would blow through this.
const SLACK = FLUSH_MAX + 2 * 1024 * 1024;
const BLOCK_MS = 60_000;
const CREDS = { accessKeyId: 'mem-id', accessKeySecret: 'mem-secret' };

function memory(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/**
 * The store is unreachable for 60 s while a 2 Mbps camera streams: the gateway's memory stays
 * within the per-stream bound (the rest waits in the on-disk spool), and once the store is back the
 * backlog drains. Runs the gateway in this process to measure its heap after forced GCs.
 */
describe('bounded memory while the store is down', () => {
  let dir: string;
  let source: string;
  let server: OssLocalServer;
  let gateway: Gateway | undefined;
  let camera: ReturnType<typeof spawn> | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-mem-'));
    // A 2 Mbps, 1 s GOP source, encoded once and looped by the camera without re-encoding.
    source = join(dir, 'source.flv');
    await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-f', 'lavfi', '-i', 'sine=sample_rate=48000',
      '-t', '10', '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '2M', '-minrate', '2M', '-maxrate', '2M', '-bufsize', '1M', '-x264-params', 'nal-hrd=cbr',
      '-g', '25', '-keyint_min', '25', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', source]);
    server = new OssLocalServer({ root: join(dir, 'oss'), port: 0, buckets: ['cams'], credentials: [CREDS], fsync: 'never' });
  }, 60_000);

  afterAll(async () => {
    if (camera && camera.exitCode === null) camera.kill('SIGKILL');
    await gateway?.close();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it(`heap + external memory grows less than the per-stream bound during a ${BLOCK_MS / 1000} s outage; the backlog then drains`, async () => {
    const { url } = await server.start();
    const config = parseConfig(`
dataDir: ${join(dir, 'data')}
server: { rtmp: { host: 127.0.0.1, port: 0 }, http: { host: 127.0.0.1, port: 0 } }
storage:
  kind: oss
  endpoint: ${url}
  bucket: cams
  region: cn-hangzhou
  pathStyle: true
  accessKeyId: ${CREDS.accessKeyId}
  accessKeySecret: ${CREDS.accessKeySecret}
  timeouts: { connectMs: 1000, headersMs: 2000, bodyMs: 5000 }
spool: { fsync: always, memoryBytesPerStream: ${MEMORY_BOUND} }
streamDefaults: { flush: { maxBytes: ${FLUSH_MAX} } }
retry: { baseDelayMs: 100, maxDelayMs: 2000 }
streams: [{ id: cam1, key: k }]
`, 'memory.yaml', {});
    gateway = new Gateway(config, createLogger('silent'));
    const rtmp = (await gateway.start()).rtmp.port;
    const seconds = BLOCK_MS / 1000 + 25;
    camera = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', source, '-t', String(seconds), '-c', 'copy', '-f', 'flv',
      `rtmp://127.0.0.1:${rtmp}/live/cam1?key=k`], { stdio: 'ignore' });
    const metrics = async () => (await gateway!.metrics.render()).body;
    await waitFor('appends flowing', async () => (metricValue(await metrics(), 'appendcast_appends_total', { stream: 'cam1' }) ?? 0) >= 3, 15_000, 200);
    // Steady state before the baseline: the object has grown by another ~3 s of the 2 Mbps camera.
    const position = async () => metricValue(await metrics(), 'appendcast_object_position_bytes', { stream: 'cam1' }) ?? 0;
    const grownFrom = await position();
    await waitFor('the object grown by 3 s of media', async () => (await position()) >= grownFrom + 3 * 250_000, 15_000, 100);

    // Baseline: the median of five forced-GC measurements before the outage (GC noise is ±MiBs).
    const before: number[] = [];
    for (let i = 0; i < 5; i++) {
      before.push(memory());
      await delay(400); // samples spread in time (GC noise)
    }
    const baseline = before.sort((a, b) => a - b)[2]!;
    const outage = server.outage(BLOCK_MS);
    let peak = 0;
    let spoolPeak = 0;
    const samples: Array<[number, number, number]> = [];
    const started = Date.now();
    // Sample only while the store is down (the in-process serve-oss buffers request bodies once it
    // is back, which is not the gateway's memory).
    for (;;) {
      const remaining = BLOCK_MS - 1500 - (Date.now() - started);
      if (remaining < 500) break;
      await delay(Math.min(4000, remaining)); // a sample every 4 s of the outage
      const grown = memory() - baseline;
      const spooled = metricValue(await metrics(), 'appendcast_spool_bytes', { stream: 'cam1' }) ?? 0;
      samples.push([Math.round((Date.now() - started) / 1000), +(grown / 2 ** 20).toFixed(2), +(spooled / 1e6).toFixed(2)]);
      peak = Math.max(peak, grown);
      spoolPeak = Math.max(spoolPeak, spooled);
    }
    // The backlog as the outage ends: the lag sampled until the store is back.
    let backlog = 0;
    let ended = false;
    void outage.then(() => { ended = true; });
    await waitFor('the end of the outage', async () => {
      backlog = metricValue(await metrics(), 'appendcast_lag_bytes', { stream: 'cam1' }) ?? 0;
      return ended;
    }, BLOCK_MS, 20);
    const drainStart = Date.now();
    await waitFor('backlog drained', async () => (metricValue(await metrics(), 'appendcast_lag_bytes', { stream: 'cam1' }) ?? 0) < 256 * 1024, 60_000, 20);
    const drainMs = Date.now() - drainStart;
    const report = {
      samples: samples.map(([t, mib, mb]) => `${t}s:+${mib}MiB/${mb}MB`).join(' '),
      growthMiB: +(peak / 2 ** 20).toFixed(2), baselineMiB: +(baseline / 2 ** 20).toFixed(1), boundMiB: MEMORY_BOUND / 2 ** 20, spoolPeakMB: +(spoolPeak / 1e6).toFixed(2),
      backlogMB: +(backlog / 1e6).toFixed(2), drainMs, drainMBps: +(backlog / 1e6 / (drainMs / 1000)).toFixed(1),
      drainTimesRealTime: +((BLOCK_MS / 1000) / (drainMs / 1000)).toFixed(1),
    };
    console.log('memory-bound report', JSON.stringify(report));
    // The spool held the outage on disk: about 60 s of 2 Mbps.
    expect(spoolPeak).toBeGreaterThan(10e6);
    expect(peak).toBeLessThan(MEMORY_BOUND + SLACK);
    // ...and it does not grow with the backlog: flat from the first sample of the outage to the end.
    expect(Math.max(...samples.map((x) => x[1])) - samples[0]![1]).toBeLessThan(MEMORY_BOUND / 2 ** 20);
    expect(metricSum(await metrics(), 'appendcast_dropped_bytes_total', { stream: 'cam1' })).toBe(0);
    camera.kill('SIGINT');
  }, 180_000);
});
