import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCamera } from '../helpers/camera.js';
import { metricValue, startGateway, type ApiSession, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { startRtspServer } from '../helpers/rtsp-server.js';
import { waitFor } from '../helpers/wait.js';

/** The gateway's config: ports 0 (they are never changed here, except on purpose), an fs store under `dir`. */
function configYaml(dir: string, streams: string, extra = ''): string {
  return `dataDir: ${join(dir, 'data')}
log: { level: info }
server:
  rtmp: { host: 127.0.0.1, port: 0 }
  http: { host: 127.0.0.1, port: 0 }
storage: { kind: fs, root: ${join(dir, 'objects')} }
streamDefaults: { reconnectGraceSeconds: 0 }
${extra}streams:
${streams}`;
}

const OLD = '  - { id: lobby, key: old-key }\n';
const GONE = '  - { id: gone, key: gone-key }\n';
const CHANGED = '  - { id: lobby, key: new-key }\n';
const ADDED = '  - { id: fresh, key: fresh-key }\n';

/** pino lines of the gateway's output whose msg starts with `prefix`. */
function logLines(text: string, prefix: string): Array<Record<string, unknown> & { msg: string }> {
  const out: Array<Record<string, unknown> & { msg: string }> = [];
  for (const line of text.split('\n')) {
    if (!line.includes(prefix)) continue;
    try {
      const j = JSON.parse(line) as { msg?: unknown };
      if (typeof j.msg === 'string' && j.msg.startsWith(prefix)) out.push(j as Record<string, unknown> & { msg: string });
    } catch {
      // a line still being written
    }
  }
  return out;
}

/** The first such line, once the gateway has written it (its logger is asynchronous: it may trail the metric). */
const logLineOf = (gw: GatewayProcess, prefix: string) => waitFor(`log line "${prefix}"`, () => logLines(gw.logs(), prefix)[0], 5000);

const reloads = (metrics: string, result: string): number | undefined => metricValue(metrics, 'appendcast_config_reloads_total', { result });

/**
 * Hot reload on the real gateway process: the YAML is rewritten under it (by an atomic rename, as
 * editors save, so the watch must survive the inode changing; or in place, followed by SIGHUP).
 */
describe('config reload: SIGHUP and file changes', () => {
  let dir: string;
  let gw: GatewayProcess;
  const url = (stream: string, key: string) => `rtmp://127.0.0.1:${gw.rtmpPort}/live/${stream}?key=${key}`;
  /** The stream's newest session once it has ended and is fully in the store. */
  const finished = (stream: string, after: number) => waitFor(`${stream}: a finished, drained session`, async () => {
    const s = (await gw.streams()).find((x) => x.id === stream);
    const last = s?.sessions.at(-1);
    return s && s.sessions.length > after && last?.endedAt && !last.draining ? last : undefined;
  }, 15_000);
  const sessions = async (stream: string) => (await gw.streams()).find((x) => x.id === stream)?.sessions.length ?? 0;
  /** Saves like an editor does: a new file renamed over the old one (a new inode). */
  const saveAtomically = async (text: string) => {
    const tmp = `${gw.configFile}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, gw.configFile);
  };
  const checkRecording = async (session: ApiSession, seconds: number) => {
    expect(session.objects).toHaveLength(1);
    const file = join(dir, 'objects', session.objects[0]!);
    expect(await decodeErrors(file)).toBe('');
    const p = await probe(file);
    expect(Math.abs(p.duration - p.startTime - seconds), `${file}: ${p.duration - p.startTime} s, expected ≈ ${seconds} s`).toBeLessThan(1.5);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-reload-'));
    gw = await startGateway(dir, () => configYaml(dir, OLD + GONE));
  });

  afterAll(async () => {
    await gw?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts with every reload result at 0', async () => {
    const m = await gw.metrics();
    for (const result of ['applied', 'refused', 'invalid']) expect(reloads(m, result), result).toBe(0);
  });

  it('a saved file applies: the removed stream is disconnected and its recording completed, the added one records, the changed key refuses the old one', async () => {
    // `gone` publishes (long enough to outlast the test) until the reload removes it.
    let sent = 0;
    const gone = startCamera({ url: url('gone', 'gone-key'), seconds: 60, onProgress: (s) => { sent = s; } });
    try {
      await waitFor('gone: 2 s published', () => sent >= 2, 15_000);
      await saveAtomically(configYaml(dir, CHANGED + ADDED));
      await waitFor('reload applied', async () => reloads(await gw.metrics(), 'applied') === 1, 10_000);
      const applied = await logLineOf(gw, 'config reload applied');
      expect(applied).toMatchObject({ trigger: 'file-change', started: ['fresh'], stopped: ['gone'], changed: ['lobby'] });
      // The removed stream's publisher is disconnected; what it sent is in its object, to the end.
      expect((await gone.done).code).not.toBe(0);
      const sentSeconds = sent;
      const last = await finished('gone', 0);
      await checkRecording(last, sentSeconds);
      // Nothing of it waits in the spool; it is no longer an enabled stream, the added one is.
      const m = await gw.metrics();
      expect(metricValue(m, 'appendcast_lag_bytes', { stream: 'gone' }) ?? 0).toBe(0);
      expect(metricValue(m, 'appendcast_stream_enabled', { stream: 'gone' })).toBeUndefined();
      expect(metricValue(m, 'appendcast_stream_enabled', { stream: 'fresh' })).toBe(1);
      expect(metricValue(m, 'appendcast_appends_total', { stream: 'fresh' })).toBe(0); // its series exist from the reload on
    } finally {
      gone.stop();
    }

    const freshBefore = await sessions('fresh');
    const lobbyBefore = await sessions('lobby');
    const metricsBefore = await gw.metrics();
    const fresh = startCamera({ url: url('fresh', 'fresh-key'), seconds: 4 });
    const oldKey = startCamera({ url: url('lobby', 'old-key'), seconds: 2 });
    expect((await oldKey.done).code).not.toBe(0);
    expect((await fresh.done).code).toBe(0);
    await checkRecording(await finished('fresh', freshBefore), 4);
    const m = await gw.metrics();
    const badKey = (text: string) => metricValue(text, 'appendcast_rejected_publishes_total', { stream: 'lobby', reason: 'bad-key' }) ?? 0;
    expect(badKey(m) - badKey(metricsBefore)).toBe(1);
    expect(await sessions('lobby')).toBe(lobbyBefore);
    expect((await startCamera({ url: url('lobby', 'new-key'), seconds: 1 }).done).code).toBe(0);
    expect(gw.logs()).not.toContain('new-key'); // keys never reach the log, reloaded or not
  });

  it('a port change is refused as a whole (SIGHUP): named in the log, the stream added with it not taken', async () => {
    const before = await gw.metrics();
    await writeFile(gw.configFile, configYaml(dir, CHANGED + ADDED + '  - { id: extra, key: extra-key }\n').replace('http: { host: 127.0.0.1, port: 0 }', 'http: { host: 127.0.0.1, port: 1 }'));
    gw.proc.kill('SIGHUP');
    await waitFor('reload refused', async () => reloads(await gw.metrics(), 'refused') === 1, 10_000);
    const line = await logLineOf(gw, 'config reload refused');
    // The signal was handled: it made the reload, or (had the file's watch come first) found nothing new.
    await waitFor('a reload by SIGHUP', () => logLines(gw.logs(), 'config reload').find((l) => l.trigger === 'SIGHUP'), 5000);
    expect(line.needsRestart).toEqual(['server.http.port']);
    expect(line.msg).toContain('server.http.port');
    expect(line.msg).toContain('nothing of this reload was applied');
    expect(line.level).toBe(50);
    const unknown = (text: string) => metricValue(text, 'appendcast_rejected_publishes_total', { stream: '_unknown', reason: 'unknown-stream' }) ?? 0;
    expect((await startCamera({ url: url('extra', 'extra-key'), seconds: 1 }).done).code).not.toBe(0);
    const m = await gw.metrics();
    expect(unknown(m) - unknown(before)).toBe(1);
    expect(reloads(m, 'applied')).toBe(1);
  });

  it('an invalid file is named with file:line and the running config keeps working', async () => {
    await saveAtomically(configYaml(dir, CHANGED + ADDED).replace('streams:', 'strams:'));
    await waitFor('reload invalid', async () => reloads(await gw.metrics(), 'invalid') === 1, 10_000);
    const line = await logLineOf(gw, 'config reload: invalid config');
    const problems = line.problems as string[];
    expect(problems).toContain(`${gw.configFile}:8:1: strams: unknown key "strams" (did you mean "streams"?)`);
    expect(line.msg).toContain(`${gw.configFile}:8:1`);
    const before = await sessions('fresh');
    expect((await startCamera({ url: url('fresh', 'fresh-key'), seconds: 2 }).done).code).toBe(0);
    await checkRecording(await finished('fresh', before), 2);
    const m = await gw.metrics();
    expect([reloads(m, 'applied'), reloads(m, 'refused'), reloads(m, 'invalid')]).toEqual([1, 1, 1]);
  });

  it('a pulled stream added by a reload starts pulling; removed by the next, its recording is complete', async () => {
    const server = await startRtspServer({ maxSeconds: 60 });
    try {
      const door = `  - { id: door, source: { rtsp: "${server.url('/h264aac')}", stallTimeoutSeconds: 3 } }\n`;
      await saveAtomically(configYaml(dir, CHANGED + ADDED + door));
      await waitFor('reload applied', async () => reloads(await gw.metrics(), 'applied') === 2, 10_000);
      // Recording: its first object has grown past 2 s of media before the stream is removed.
      const key = await waitFor('door: an object', async () => (await gw.streams()).find((x) => x.id === 'door')?.sessions.at(-1)?.currentObject, 20_000);
      await waitFor('door: 2 s recorded', async () => {
        try {
          const p = await probe(join(dir, 'objects', key));
          return p.duration - p.startTime >= 2;
        } catch {
          return false; // no complete header yet
        }
      }, 20_000);
      await saveAtomically(configYaml(dir, CHANGED + ADDED));
      await waitFor('reload applied', async () => reloads(await gw.metrics(), 'applied') === 3, 10_000);
      const last = await finished('door', 0);
      expect(last.objects).toEqual([key]);
      const file = join(dir, 'objects', key);
      expect(await decodeErrors(file)).toBe('');
      const p = await probe(file);
      expect(p.duration - p.startTime).toBeGreaterThanOrEqual(2);
      expect(p.streams.map((x) => x.codec_name).sort()).toEqual(['aac', 'h264']);
      expect((await gw.streams()).find((x) => x.id === 'door')?.publishing).toBe(false);
    } finally {
      await server.stop();
    }
  });

  it('logged no error or warning besides the reloads\' own (the tests above run first)', () => {
    const loud = logLines(gw.logs(), '').filter((l) => (l.level as number) >= 40 && !l.msg.startsWith('config reload'));
    const expected = (l: { msg: string }) => l.msg === 'publish refused' || l.msg.startsWith('publisher disconnected') || l.msg === 'ffmpeg';
    expect(loud.filter((l) => !expected(l)).map((l) => JSON.stringify(l))).toEqual([]);
    // By design: the old key and the stream not taken with the refused reload are refused; the removed stream's publisher is disconnected.
    expect(loud.filter((l) => l.msg === 'publish refused').map((l) => l.reason).sort()).toEqual(['bad-key', 'unknown-stream']);
    expect(loud.filter((l) => l.msg.startsWith('publisher disconnected')).map((l) => [l.stream, l.msg])).toEqual([
      ['gone', 'publisher disconnected: the stream was removed from the config or disabled'],
    ]);
  });
});
