import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCamera } from '../helpers/camera.js';
import { metricValue, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { waitFor } from '../helpers/wait.js';
import { startServeOss, type ServeOssProcess } from '../helpers/serve-oss-process.js';

interface AliOssClient {
  get(name: string): Promise<{ content: Buffer; res: { headers: Record<string, string> } }>;
  head(name: string): Promise<{ res: { headers: Record<string, string> } }>;
  listV2(q: { prefix: string }): Promise<{ objects?: Array<{ name: string; size: number }> }>;
}
const OSS = createRequire(import.meta.url)('ali-oss') as new (o: Record<string, unknown>) => AliOssClient;

const CREDS = { id: 'e2e-key-id', secret: 'e2e-secret-never-logged' };

/** The skeleton's end-to-end camera test with the real client path: storage.kind oss → serve-oss. */
describe('end to end over the OSS path: camera → gateway (oss store, V4) → serve-oss', () => {
  let dir: string;
  let oss: ServeOssProcess;
  let gw: GatewayProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-e2e-oss-'));
    oss = await startServeOss(join(dir, 'oss'), 'cams', CREDS);
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage:
  kind: oss
  endpoint: ${oss.url}
  bucket: cams
  region: cn-hangzhou
  pathStyle: true
spool: { sessionSha256: true }
streams:
  - { id: cam1, key: k1 }
`, { OSS_ACCESS_KEY_ID: CREDS.id, OSS_ACCESS_KEY_SECRET: CREDS.secret });
  });

  afterAll(async () => {
    await gw?.kill();
    await oss?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('records into an appendable object that ali-oss downloads and ffmpeg decodes', async () => {
    const cam = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam1?key=k1`, seconds: 6 });
    expect((await cam.done).code).toBe(0);
    const api = await waitFor('session finished', async () => {
      const s = (await gw.streams())[0]!.sessions[0];
      return s?.endedAt && !s.draining ? s : undefined;
    }, 15_000);
    expect(api.objects).toHaveLength(1);
    const obj = { key: api.objects[0]! };

    // The official SDK, V4-signed, as the reader.
    const client = new OSS({
      endpoint: oss.url, bucket: 'cams', region: 'oss-cn-hangzhou', sldEnable: true, authorizationV4: true,
      accessKeyId: CREDS.id, accessKeySecret: CREDS.secret,
    });
    const head = await client.head(obj.key);
    expect(head.res.headers['x-oss-object-type']).toBe('Appendable');
    expect(Number(head.res.headers['x-oss-next-append-position'])).toBe(api.remuxBytes);
    const { content } = await client.get(obj.key);
    expect(content.length).toBe(api.remuxBytes);
    expect(createHash('sha256').update(content).digest('hex')).toBe(api.remuxSha256);
    const file = join(dir, 'downloaded.mp4');
    await writeFile(file, content);
    expect(await decodeErrors(file)).toBe('');
    expect(Math.abs((await probe(file)).duration - 6)).toBeLessThan(0.5);

    const m = await gw.metrics();
    expect(metricValue(m, 'appendcast_object_position_bytes', { stream: 'cam1' })).toBe(api.remuxBytes);
    // Secrets never reach logs or metrics.
    for (const text of [gw.logs(), m, oss.logs()]) expect(text).not.toContain(CREDS.secret);
    expect(await gw.stop()).toBe(0);
  });
});

/** Non-retryable store errors halt appends, loudly, while the spool keeps recording and the camera stays connected. */
describe('a non-retryable store error (wrong secret): appends halt, recording goes on', () => {
  let dir: string;
  let oss: ServeOssProcess;
  let gw: GatewayProcess;
  const WRONG = 'not-the-secret-either';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-e2e-halt-'));
    oss = await startServeOss(join(dir, 'oss'), 'cams', CREDS);
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage: { kind: oss, endpoint: ${oss.url}, bucket: cams, region: cn-hangzhou, pathStyle: true }
retry: { haltedProbeSeconds: 1 }
streams:
  - { id: cam1, key: k1 }
`, { OSS_ACCESS_KEY_ID: CREDS.id, OSS_ACCESS_KEY_SECRET: WRONG });
  });

  afterAll(async () => {
    await gw?.kill();
    await oss?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports the halt in a metric and a log line; the spool grows; the camera is not disconnected', async () => {
    const cam = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam1?key=k1`, seconds: 5 });
    const halted = await waitFor('appender halted', async () => metricValue(await gw.metrics(), 'appendcast_appender_halted', { stream: 'cam1' }) === 1, 15_000, 200);
    expect(halted).toBe(true);
    expect((await cam.done).code).toBe(0);
    await waitFor('spool holds the recording', async () => (metricValue(await gw.metrics(), 'appendcast_spool_bytes', { stream: 'cam1' }) ?? 0) > 100_000, 10_000, 200);
    expect(gw.logs()).toContain('appends halted by a non-retryable store error');
    expect(gw.logs()).toContain('SignatureDoesNotMatch');
    for (const text of [gw.logs(), await gw.metrics()]) {
      expect(text).not.toContain(WRONG);
      expect(text).not.toContain(CREDS.secret);
    }
    // Nothing reached the store.
    expect(metricValue(await gw.metrics(), 'appendcast_appends_total', { stream: 'cam1' }) ?? 0).toBe(0);
  });
});
