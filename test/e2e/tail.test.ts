/**
 * `appendcast tail`: a viewer follows a growing object straight from the store (fs, and oss →
 * serve-oss), while a real ffmpeg camera publishes. From the start it reproduces the object
 * byte for byte; live (the default) it writes the init segment and then everything from the newest
 * keyframe the sidecar index knows, which decodes on its own with 0 errors and ends on the same
 * last frame as the object. It ends by itself once the object stops growing.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { startCamera } from '../helpers/camera.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, packetTimes, probe } from '../helpers/media.js';
import { readObject } from '../helpers/objects.js';
import { startServeOss, type ServeOssProcess } from '../helpers/serve-oss-process.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const TSX = import.meta.resolve('tsx');
const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const CREDS = { id: 'tail-key-id', secret: 'tail-secret' };

interface TailRun { done: Promise<{ code: number | null; stderr: string }>; out: () => Buffer; pid: number | undefined }

function tail(configFile: string, args: string[], env: NodeJS.ProcessEnv): TailRun {
  const proc = spawn(process.execPath, ['--import', TSX, CLI, 'tail', ...args, '--config', configFile, '--idle-seconds', '3', '--poll-ms', '100'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  const chunks: Buffer[] = [];
  let stderr = '';
  proc.stdout.on('data', (b: Buffer) => chunks.push(b));
  proc.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  return { done: new Promise((r) => proc.once('close', (code) => r({ code, stderr }))), out: () => Buffer.concat(chunks), pid: proc.pid };
}

const videoDts = (file: string): Promise<number[]> => packetTimes(file);

describe('appendcast tail follows a growing object', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  for (const kind of ['fs', 'oss'] as const) {
    it(`${kind}: live from the newest keyframe and from the start, while the camera publishes; ends when it stops growing`, async () => {
      const dir = await mkdtemp(join(tmpdir(), `apc-tail-${kind}-`));
      cleanup.push(() => rm(dir, { recursive: true, force: true }));
      let oss: ServeOssProcess | undefined;
      if (kind === 'oss') {
        oss = await startServeOss(join(dir, 'oss'), 'cams', CREDS);
        cleanup.push(() => oss!.stop());
      }
      const storage = kind === 'fs'
        ? `storage: { kind: fs, root: ${join(dir, 'objects')} }`
        : `storage: { kind: oss, endpoint: ${oss!.url}, bucket: cams, region: cn-hangzhou, pathStyle: true }`;
      const env = { OSS_ACCESS_KEY_ID: CREDS.id, OSS_ACCESS_KEY_SECRET: CREDS.secret };
      const gw: GatewayProcess = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
${storage}
streams:
  - { id: cam1, key: k1 }
`, env);
      cleanup.push(() => gw.kill());
      // Long enough that the tails, started ~3 s in, join while it still publishes even on a loaded machine.
      const cam = startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam1?key=k1`, seconds: 14 });
      cleanup.push(async () => cam.stop());
      // The object exists with a few seconds in it (400 kbit/s: 150 kB ≈ 3 s); the camera goes on for several more.
      // (serve-oss keeps bucket `cams` as an fs store under <root>/cams)
      const reader = new FsStore({ root: kind === 'fs' ? join(dir, 'objects') : join(dir, 'oss', 'cams') });
      cleanup.push(() => reader.close());
      await waitFor('an object with a few seconds in it', async () => (await reader.list('cam1/')).some((e) => !e.key.endsWith('.jsonl') && e.size > 150_000), 30_000, 100);
      const live = tail(gw.configFile, ['cam1'], env);
      const whole = tail(gw.configFile, ['cam1', '--from-start'], env);
      // `appendcast tail cam1 | player`, a real shell pipe: the player (ffmpeg reading stdin, as ffplay
      // would) quits after 2 s of media while the camera still publishes; the tail's next write gets
      // EPIPE and it ends too. A shell pipeline ends when both sides have.
      const pipedErrFile = join(dir, 'piped-tail.err');
      const pipeline = spawn('sh', ['-c', `"${process.execPath}" --import "${TSX}" "${CLI}" tail cam1 --config "${gw.configFile}" --idle-seconds 30 2>"${pipedErrFile}" | "${process.env.FFMPEG_PATH ?? 'ffmpeg'}" -hide_banner -v error -i pipe:0 -t 2 -f null -`], {
        stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env },
      });
      let playerErr = '';
      pipeline.stderr.setEncoding('utf8').on('data', (t: string) => { playerErr += t; });
      const pipelineDone = new Promise<number | null>((r) => pipeline.once('close', r));
      cleanup.push(async () => { if (pipeline.exitCode === null) pipeline.kill('SIGKILL'); });
      expect((await cam.done).code).toBe(0);
      const [l, w] = await Promise.all([withTimeout(live.done, 40_000, 'live tail to end'), withTimeout(whole.done, 40_000, 'from-start tail to end')]);
      expect(l.code, l.stderr).toBe(0);
      expect(w.code, w.stderr).toBe(0);
      expect(l.stderr).toMatch(/ended: no growth for 3 s/);
      // Its reader gone, the tail stopped (long before its 30 s idle limit would have ended it).
      expect(await withTimeout(pipelineDone, 25_000, 'the pipeline (player and tail) to end'), playerErr).toBe(0);
      expect(await readFile(pipedErrFile, 'utf8')).toMatch(/ended: closed/);

      // The object as stored, read back through a client of the same store.
      const api = await gw.streams();
      const key = api[0]!.sessions[0]!.objects[0]!;
      const objectFile = join(dir, 'object.mp4');
      await writeFile(objectFile, await readObject(reader, key));
      const object = await readFile(objectFile);
      expect(whole.out().equals(object)).toBe(true);

      const liveFile = join(dir, 'live.mp4');
      await writeFile(liveFile, live.out());
      expect(live.out().subarray(4, 8).toString('latin1')).toBe('ftyp'); // the init segment first
      expect(live.out().length).toBeLessThan(object.length); // from a keyframe, not from the start
      expect(await decodeErrors(liveFile)).toBe('');
      const [objDts, liveDts] = await Promise.all([videoDts(objectFile), videoDts(liveFile)]);
      expect(liveDts.length).toBeGreaterThan(25); // at least a GOP
      expect(liveDts.length).toBeLessThan(objDts.length);
      expect(liveDts.at(-1)).toBeCloseTo(objDts.at(-1)!, 3); // the same last frame
      const p = await probe(liveFile, true);
      console.log(`tail ${kind}: object ${object.length} B, ${objDts.length} frames; live tail ${live.out().length} B, ${liveDts.length} frames from ${liveDts[0]} s, ${p.streams.map((s) => s.codec_name).join('+')}\n${l.stderr.trim()}`);
      await gw.stop();
    }, 120_000);
  }

  it('exits 1 for a stream with no object yet, 2 for an unknown stream or bad usage', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'apc-tail-none-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const cfg = join(dir, 'c.yaml');
    await writeFile(cfg, `dataDir: ${join(dir, 'data')}\nstorage: { kind: fs, root: ${join(dir, 'objects')} }\nstreams:\n  - { id: cam1, key: k1 }\n`);
    const none = await tail(cfg, ['cam1'], {}).done;
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/has no object in the store yet/);
    const unknown = await tail(cfg, ['nope'], {}).done;
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no stream "nope"/);
    const missing = await tail(cfg, ['cam1/none.mp4'], {}).done;
    expect(missing.code).toBe(1);
  }, 60_000);
});
