/**
 * A full disk under the spool is not a quota: journal writes that fail with ENOSPC are dropped as
 * `disk-full` (metric label, drop record, log line), other write errors stay `write-error`, and
 * recording goes on once there is room again. The disk is the real one; only the journal's file
 * handles are wrapped to fail their writes (no full filesystem to be had here).
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { parseConfig } from '../../src/config/index.js';
import { Gateway } from '../../src/gateway.js';
import { dropLogMessage, writeFailureReason, type SpoolDroppedRange } from '../../src/spool/drop-ledger.js';
import { Spool } from '../../src/spool/spool.js';
import type { JournalIo, SpoolEntryMeta } from '../../src/spool/types.js';
import { createLogger, type Logger } from '../../src/util/logger.js';
import { startCamera } from '../helpers/camera.js';
import { metricValue } from '../helpers/gateway-process.js';
import { waitFor } from '../helpers/wait.js';

const cleanup = cleanupAfterEach('apc-disk-full-');
const tempDir = (): Promise<string> => cleanup.tempDir();

/** An fs error as Node makes it (code, errno, syscall). */
function errnoError(code: 'ENOSPC' | 'EIO', syscall: string): NodeJS.ErrnoException {
  const text = code === 'ENOSPC' ? 'no space left on device' : 'i/o error';
  return Object.assign(new Error(`${code}: ${text}, ${syscall}`), { code, errno: code === 'ENOSPC' ? -28 : -5, syscall });
}

/** Real journal files whose writes (and new files) fail with `fault.code` while it is set. */
function faultyIo(fault: { code: 'ENOSPC' | 'EIO' | null; hits: number }): JournalIo {
  return {
    async open(path, flags) {
      if (fault.code) {
        fault.hits++;
        throw errnoError(fault.code, 'open');
      }
      const fh = await open(path, flags);
      return new Proxy(fh, {
        get(target, prop) {
          if ((prop === 'writev' || prop === 'write') && fault.code) {
            const code = fault.code;
            return () => {
              fault.hits++;
              return Promise.reject(errnoError(code, 'write'));
            };
          }
          const v: unknown = Reflect.get(target, prop, target);
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    },
  };
}

/** A JSON logger into a file, and its lines once flushed. */
function fileLogger(file: string): { log: Logger; lines(): Promise<Array<Record<string, unknown>>> } {
  const log = createLogger('info', file, 'json');
  return {
    log,
    async lines() {
      await new Promise<void>((r) => log.flush(() => r()));
      return (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
}

const frag = (i: number): SpoolEntryMeta => ({ kind: 'fragment', keyframe: true, mediaTime: i, duration: 1, receivedAt: i });

describe('a full disk under the spool', () => {
  it('writeFailureReason / dropLogMessage: ENOSPC and EDQUOT (also as a cause) are disk-full, the rest write-error; only quotas say quota', () => {
    expect(writeFailureReason(errnoError('ENOSPC', 'write'))).toBe('disk-full');
    expect(writeFailureReason(Object.assign(new Error('x'), { code: 'EDQUOT' }))).toBe('disk-full');
    expect(writeFailureReason(new Error('wrapped', { cause: errnoError('ENOSPC', 'fdatasync') }))).toBe('disk-full');
    expect(writeFailureReason(errnoError('EIO', 'write'))).toBe('write-error');
    expect(writeFailureReason('?')).toBe('write-error');
    expect(dropLogMessage('disk-full')).not.toMatch(/quota/);
    expect(dropLogMessage('write-error')).not.toMatch(/quota/);
    expect(dropLogMessage('quota-total')).toMatch(/quota/);
  });

  it('spool: ENOSPC drops are disk-full (drop record, log), EIO ones write-error, and writing resumes once there is room', async () => {
    const dir = await tempDir();
    const fault: { code: 'ENOSPC' | 'EIO' | null; hits: number } = { code: null, hits: 0 };
    const logs = fileLogger(join(dir, 'log.jsonl'));
    const drops: SpoolDroppedRange[] = [];
    const spool = new Spool({ dir: join(dir, 'spool'), fsync: 'always', fsyncIntervalMs: 1000, quotaBytesPerStream: 1 << 30, quotaBytesTotal: 1 << 30, memoryBytesPerStream: 1 << 20, segmentBytes: 1 << 20 },
      { logger: logs.log, onDrop: (d) => drops.push(d), io: faultyIo(fault) });
    cleanup.push(() => spool.close());
    await spool.start();
    const s = await spool.openSession('cam', 's1');
    s.on('error', () => undefined); // counted in drops; the test reads those
    const readable = (n: number) => waitFor(`seq ${n} settled`, () => s.readableSeq >= n, 5_000, 5);

    s.append(frag(0), Buffer.alloc(100, 0));
    await readable(1);
    fault.code = 'ENOSPC';
    s.append(frag(1), Buffer.alloc(200, 1));
    await readable(2);
    fault.code = 'EIO';
    s.append(frag(2), Buffer.alloc(300, 2));
    await readable(3);
    fault.code = null;
    s.append(frag(3), Buffer.alloc(400, 3));
    await readable(4);

    expect(fault.hits).toBeGreaterThanOrEqual(2);
    expect(drops.map((d) => [d.fromSeq, d.bytes, d.reason])).toEqual([[1, 200, 'disk-full'], [2, 300, 'write-error']]);
    expect(s.bytes).toBe(500); // seq 0 and 3 are in the spool
    const lines = await logs.lines();
    expect(lines.filter((l) => l.msg === 'spool journal write failed: disk full').map((l) => l.code)).toEqual(['ENOSPC']);
    expect(lines.filter((l) => l.msg === 'spool journal write failed').map((l) => l.code)).toEqual(['EIO']);
    expect(lines.filter((l) => /quota/i.test(JSON.stringify(l)))).toEqual([]);
  });

  it('gateway: a camera recording while the spool disk is full counts dropped_bytes_total{reason="disk-full"}, logs "disk full" (never "quota"), and records again after', async () => {
    const dir = await tempDir();
    const fault: { code: 'ENOSPC' | 'EIO' | null; hits: number } = { code: null, hits: 0 };
    const logs = fileLogger(join(dir, 'gateway.jsonl'));
    const config = parseConfig(`
dataDir: ${join(dir, 'data')}
server: { rtmp: { host: 127.0.0.1, port: 0 }, http: { host: 127.0.0.1, port: 0 } }
storage: { kind: fs, fsync: never }
spool: { fsync: always }
streamDefaults: { flush: { maxDelayMs: 0 } }
streams: [{ id: cam1, key: disk-full-key-0123 }]
`, 'disk-full.yaml', {});
    const gateway = new Gateway(config, logs.log, { spoolIo: faultyIo(fault) });
    cleanup.push(() => gateway.close());
    const addrs = await gateway.start();
    const cam = startCamera({ url: `rtmp://127.0.0.1:${addrs.rtmp.port}/live/cam1?key=disk-full-key-0123`, seconds: 30, gop: 10 });
    cleanup.push(async () => cam.stop());
    const metric = async (name: string, labels: Record<string, string>) => metricValue((await gateway.metrics.render()).body, name, labels) ?? 0;
    await waitFor('appends before the disk fills', async () => (await metric('appendcast_appends_total', { stream: 'cam1' })) >= 2, 20_000, 50);
    fault.code = 'ENOSPC';
    await waitFor('disk-full drops', async () => (await metric('appendcast_dropped_bytes_total', { stream: 'cam1', reason: 'disk-full' })) > 0, 20_000, 50);
    fault.code = null;
    const appendsAfter = await metric('appendcast_appends_total', { stream: 'cam1' });
    await waitFor('appends again once there is room', async () => (await metric('appendcast_appends_total', { stream: 'cam1' })) > appendsAfter + 2, 20_000, 50);
    const body = (await gateway.metrics.render()).body;
    expect(body).not.toMatch(/appendcast_dropped_bytes_total\{[^}]*reason="(quota-stream|quota-total|write-error)"[^}]*\} [1-9]/);
    cam.stop();
    await gateway.close();
    const lines = await logs.lines();
    const dropLines = lines.filter((l) => l.msg === 'spool disk full: dropped fragments that could not be written');
    expect(dropLines.length).toBeGreaterThan(0);
    expect(dropLines.every((l) => l.reason === 'disk-full' && l.stream === 'cam1')).toBe(true);
    expect(lines.filter((l) => /quota/i.test(String(l.msg)))).toEqual([]);
  }, 60_000);
});
