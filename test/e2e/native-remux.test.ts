/**
 * The native remux path end to end, on what cameras really do to timestamps and parameters: a
 * resolution change mid-publish (a new sequence header → a new init → a new object), the 32-bit
 * RTMP timestamp wrap (2^32 ms ≈ 49.7 days of uptime), and a camera clock that jumps back to 0.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFlv } from '../../src/media/flv/flv-file.js';
import type { FlvTag } from '../../src/media/types.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { metricValue, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors } from '../helpers/media.js';
import { waitFor } from '../helpers/wait.js';
import { listStreamObjects } from '../helpers/objects.js';
import { RtmpTestPublisher } from '../helpers/rtmp-publisher.js';

const run = promisify(execFile);
const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg';

async function clip(file: string, size: string, seconds: number): Promise<FlvTag[]> {
  await run(FFMPEG, ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25`,
    '-f', 'lavfi', '-i', 'sine=frequency=800:sample_rate=48000', '-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0',
    '-g', '25', '-keyint_min', '25', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', file]);
  return readFlv(await readFile(file)).tags;
}

const shift = (tags: FlvTag[], by: number, from = 0): FlvTag[] =>
  tags.filter((t) => t.type !== 18 || from === 0).map((t) => ({ ...t, timestamp: (t.timestamp + by) % 2 ** 32 }));

interface FrameInfo { width: number; height: number; frames: number; dtsMonotonic: boolean; seconds: number }

async function videoInfo(file: string): Promise<FrameInfo> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height:packet=dts_time',
    '-of', 'json', file], { maxBuffer: 64 << 20 });
  const j = JSON.parse(stdout) as { streams: Array<{ width: number; height: number }>; packets: Array<{ dts_time: string }> };
  const dts = j.packets.map((p) => Number(p.dts_time));
  return {
    width: j.streams[0]!.width, height: j.streams[0]!.height, frames: dts.length,
    dtsMonotonic: dts.every((d, i) => i === 0 || d > dts[i - 1]!), seconds: dts.length ? dts.at(-1)! - dts[0]! + 0.04 : 0,
  };
}

describe('native remux end to end: resolution change, timestamp wrap, clock jump', () => {
  let dir: string;
  let gw: GatewayProcess;
  let root: string;
  let small: FlvTag[];
  let large: FlvTag[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-native-'));
    root = join(dir, 'objects');
    [small, large] = await Promise.all([clip(join(dir, 'small.flv'), '320x240', 3), clip(join(dir, 'large.flv'), '640x360', 3)]);
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
server:
  rtmp: { host: 127.0.0.1, port: ${p.rtmp} }
  http: { host: 127.0.0.1, port: ${p.http} }
storage: { kind: fs, root: ${root}, fsync: never }
streams:
  - { id: res, key: k }
  - { id: wrap, key: k }
  - { id: jump, key: k }
`);
  });

  afterAll(async () => {
    await gw?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  async function publish(stream: string, tags: FlvTag[]): Promise<void> {
    const pub = await RtmpTestPublisher.open({ port: gw.rtmpPort });
    await pub.connect();
    await pub.publish(`${stream}?key=k`);
    await pub.sendTags(tags, { realtime: true, speed: 3 });
    await pub.unpublish();
  }

  it('all three publish at once; each recording decodes with 0 errors and monotonic timestamps', async () => {
    await Promise.all([
      // 320x240 for 3 s, then the encoder switches to 640x360 (a new AVC sequence header) for 3 s.
      publish('res', [...small, ...shift(large, 3000, 1)]),
      // Starts 1.5 s before the 32-bit wrap and crosses it (extended timestamps on the wire, then small ones).
      publish('wrap', [...shift(small, 2 ** 32 - 1500), ...shift(small, 2 ** 32 + 1500, 1)]),
      // The camera's clock jumps back to 0 after 3 s (a reboot of its encoder, same parameters).
      publish('jump', [...small, ...shift(small, 0, 1)]),
    ]);
    await waitFor('all drained', async () => {
      return (await gw.streams()).every((s) => s.sessions.length === 1 && s.sessions[0]!.endedAt && !s.sessions[0]!.draining);
    }, 20_000, 100);
    const store = new FsStore({ root });

    const res = await listStreamObjects(store, 'res');
    expect(res).toHaveLength(2); // the init changed: the appender rolled over to a new object
    const parts = await Promise.all(res.map((o) => videoInfo(join(root, o.key))));
    expect(parts.map((p) => `${p.width}x${p.height}`)).toEqual(['320x240', '640x360']);
    expect(parts.map((p) => p.frames)).toEqual([75, 75]);
    for (const o of res) expect(await decodeErrors(join(root, o.key))).toBe('');
    expect(metricValue(await gw.metrics(), 'appendcast_rollovers_total', { stream: 'res', reason: 'init-change' })).toBe(1);

    for (const id of ['wrap', 'jump']) {
      const objects = await listStreamObjects(store, id);
      expect(objects, id).toHaveLength(1);
      const file = join(root, objects[0]!.key);
      expect(await decodeErrors(file), id).toBe('');
      const v = await videoInfo(file);
      expect(v.frames, id).toBe(150);
      expect(v.dtsMonotonic, id).toBe(true);
      // 6 s of media, continuous: neither 49 days nor a step back.
      expect(Math.abs(v.seconds - 6), id).toBeLessThan(0.2);
    }
  });
});
