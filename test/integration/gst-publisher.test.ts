/**
 * Proves test/helpers/gst-publisher.ts against a real RTMP server we do not write: ffmpeg's one-shot
 * listener (`ffmpeg -listen 1 -i rtmp://…`), recording what it receives to FLV. Each sink, with the key
 * in the stream name and in the app/tcUrl, must publish media that decodes cleanly, and ffmpeg's own
 * warnings must show the key where the helper's doc comment says it travels.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { aacEncoder, gstElementsAvailable, startGstPublisher } from '../helpers/gst-publisher.js';
import type { GstRtmpSink } from '../helpers/gst-publisher.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { freePort } from '../helpers/net.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'appendcast-gst-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECONDS = 3;

/** True once something LISTENs on 127.0.0.1:port (read from /proc: a probe connection would use up ffmpeg's one-shot listener). */
async function listening(port: number): Promise<boolean> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const table = await readFile('/proc/net/tcp', 'utf8');
  return table.split('\n').some((l) => {
    const f = l.trim().split(/\s+/);
    return f[1] === `0100007F:${hexPort}` && f[3] === '0A';
  });
}

/**
 * ffmpeg's RTMP listener recording to `out`; bounded by its own listen timeout and our kill timer.
 * ffmpeg must be given its port (it cannot report one it picked): a free one is taken, and should
 * another process grab it first (ffmpeg then exits at once), another.
 */
async function startListener(out: string): Promise<{ port: number; done: Promise<{ code: number | null; stderr: string }> }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const proc = spawn(process.env.FFMPEG_PATH ?? 'ffmpeg', [
      '-hide_banner', '-nostdin', '-loglevel', 'warning',
      '-listen', '1', '-timeout', '20', '-i', `rtmp://127.0.0.1:${port}/live/cam1`,
      '-c', 'copy', '-f', 'flv', out,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    const killer = setTimeout(() => { if (proc.exitCode === null) proc.kill('SIGKILL'); }, 30_000);
    const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
      proc.once('close', (code) => { clearTimeout(killer); resolve({ code, stderr }); }));
    const up = await waitFor(`ffmpeg listening on ${port}`, async () => {
      if (proc.exitCode !== null) return 'exited';
      return (await listening(port)) ? 'listening' : undefined;
    }, 10_000, 50);
    if (up === 'listening') return { port, done };
    await done;
    if (!/address already in use/i.test(stderr) || attempt === 3) throw new Error(`ffmpeg exited early: ${stderr}`);
  }
}

describe('GStreamer publisher elements', () => {
  it('has every element the helper uses, and an AAC encoder', () => {
    const has = gstElementsAvailable(['videotestsrc', 'audiotestsrc', 'x264enc', 'h264parse', 'aacparse', 'flvmux', 'rtmp2sink', 'rtmpsink']);
    expect(has).toEqual(Object.fromEntries(Object.keys(has).map((k) => [k, true])));
    expect(aacEncoder()).toMatch(/^(avenc_aac|voaacenc|fdkaacenc)$/);
  });
});

// Concurrent: each case is ~3 s of real-time media; four at once stay light (320x240 ultrafast).
describe.concurrent('GStreamer RTMP publish into ffmpeg\'s RTMP listener', () => {
  const cases: Array<{ sink: GstRtmpSink; keyIn: 'stream' | 'app' }> = [
    { sink: 'rtmp2sink', keyIn: 'stream' },
    { sink: 'rtmpsink', keyIn: 'stream' },
    { sink: 'rtmp2sink', keyIn: 'app' },
    { sink: 'rtmpsink', keyIn: 'app' },
  ];
  for (const { sink, keyIn } of cases) {
    it(`${sink}, key in the ${keyIn === 'stream' ? 'stream name' : 'app / tcUrl'}: clean H.264+AAC of the right length`, async () => {
      const out = join(dir, `${sink}-${keyIn}.flv`);
      const key = `K-${sink}-${keyIn}`;
      const listener = await startListener(out);
      const port = listener.port;
      const url = keyIn === 'stream'
        ? `rtmp://127.0.0.1:${port}/live/cam1?key=${key}`
        : `rtmp://127.0.0.1:${port}/live?key=${key}/cam1`;
      const pub = startGstPublisher({ url, seconds: SECONDS, sink });
      try {
        const g = await pub.done;
        expect(g.stderr, 'gst-launch stderr').not.toMatch(/ERROR/);
        expect(g.code).toBe(0);
        const ff = await listener.done;
        expect(ff.code, ff.stderr).toBe(0);
        // ffmpeg expects app "live" and stream "cam1" and says so when they differ: proof of where the key went.
        if (keyIn === 'stream') expect(ff.stderr).toContain(`Unexpected stream cam1?key=${key}, expecting cam1`);
        else expect(ff.stderr).toContain(`App field don't match up: live?key=${key} <-> live`);
      } finally {
        pub.stop();
      }
      expect(await decodeErrors(out)).toBe('');
      const p = await probe(out);
      expect(p.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort()).toEqual(['audio:aac', 'video:h264']);
      expect(p.duration).toBeGreaterThan(SECONDS - 0.25);
      expect(p.duration).toBeLessThan(SECONDS + 0.25);
    });
  }

  it('reports a refused connection as a failed publish (exit 1, the sink\'s error), promptly', async () => {
    const port = await freePort(); // a port nothing listens on: the point of the test
    for (const sink of ['rtmp2sink', 'rtmpsink'] as const) {
      const pub = startGstPublisher({ url: `rtmp://127.0.0.1:${port}/live/cam1`, seconds: 2, sink, audio: false });
      try {
        // Promptly: it ends with the error instead of retrying or hanging (bounded, not timed).
        const g = await withTimeout(pub.done, 15_000, `${sink} to give up`);
        expect(g.code, sink).toBe(1);
        expect(g.stderr).toMatch(sink === 'rtmp2sink' ? /Connection refused/ : /Could not connect to RTMP stream/);
      } finally {
        pub.stop();
      }
    }
  });
});
