/**
 * ServerHandshake against a real peer: ffmpeg, playing (so it verifies S1 and S2) and publishing,
 * completes our handshake and sends its connect; tampered digests make it fail the way it should.
 * The handshake's own rules are in test/unit/rtmp-handshake.test.ts.
 */
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ServerHandshake } from '../../src/ingest/rtmp/handshake.js';
import { ChunkReader } from '../../src/ingest/rtmp/chunk-reader.js';
import { decodeAmf0 } from '../../src/media/amf/amf0.js';
import type { AmfValue } from '../../src/media/types.js';

const FFMPEG = process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg';
const SIZE = 1536;

// ---------- against a real peer: ffmpeg verifies S1/S2 when it plays ----------

interface PeerRun {
  log: string;
  commands: AmfValue[][];
  digest: boolean;
  exitCode: number | null;
}

/**
 * A server that does only our handshake (optionally tampering with what it sends), then reads chunks
 * until the first command, then closes. ffmpeg is run against it and killed (by pid) if it lingers.
 */
async function runFfmpeg(args: (url: string) => string[], tamper?: (send: Buffer) => void): Promise<PeerRun> {
  const commands: AmfValue[][] = [];
  let digest = false;
  const server: Server = createServer((sock) => {
    const hs = new ServerHandshake();
    const reader = new ChunkReader();
    let shaken = false;
    sock.on('error', () => {});
    sock.on('data', (b: Buffer) => {
      try {
        let input = b;
        if (!shaken) {
          const r = hs.push(b);
          if (r.send) {
            tamper?.(r.send);
            sock.write(r.send);
          }
          if (!r.done) return;
          shaken = true;
          digest = hs.digest;
          input = r.rest;
        }
        for (const m of reader.push(input)) {
          if (m.type === 20) {
            commands.push(decodeAmf0(m.payload));
            sock.destroy();
          }
        }
      } catch {
        sock.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const child = spawn(FFMPEG, ['-hide_banner', '-nostdin', '-v', 'debug', ...args(`rtmp://127.0.0.1:${port}/live/x`)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const killer = setTimeout(() => {
    if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, 15_000);
  const exitCode = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  clearTimeout(killer);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return { log, commands, digest, exitCode };
}

const play = (url: string): string[] => ['-rw_timeout', '5000000', '-i', url];
const publish = (url: string): string[] => ['-re', '-f', 'lavfi', '-i', 'testsrc=size=32x32:rate=5', '-t', '1', '-f', 'flv', url];

describe('ServerHandshake against ffmpeg', () => {
  it('ffmpeg (playing, so it verifies S1 and S2) accepts our digest handshake and sends connect', async () => {
    const run = await runFfmpeg(play);
    expect(run.digest).toBe(true);
    expect(run.log).toContain('Handshaking...');
    expect(run.log).toMatch(/Server version 3\.0\.1\.123/);
    expect(run.log).not.toContain('Server response validating failed');
    expect(run.log).not.toContain('Signature mismatch');
    // The proof it got past the handshake: its connect, decoded by our chunk reader and AMF0 decoder.
    expect(run.commands).toHaveLength(1);
    expect(run.commands[0]?.[0]).toBe('connect');
    expect(run.commands[0]?.[2]).toMatchObject({ app: 'live', fpad: false, capabilities: 15 });
  });

  it('control: a corrupted S1 digest makes ffmpeg fail with "Server response validating failed"', async () => {
    const run = await runFfmpeg(play, (send) => {
      send[1 + SIZE - 1] = (send[1 + SIZE - 1] as number) ^ 0xff; // last byte of S1: covered by the digest
    });
    expect(run.log).toContain('Server response validating failed');
    expect(run.commands).toHaveLength(0);
    expect(run.exitCode).not.toBe(0);
  });

  it('control: a corrupted S2 signature makes ffmpeg fail with "Signature mismatch"', async () => {
    const run = await runFfmpeg(play, (send) => {
      send[send.length - 1] = (send[send.length - 1] as number) ^ 0xff; // last byte of S2's signature
    });
    expect(run.log).toContain('Signature mismatch');
    expect(run.commands).toHaveLength(0);
  });

  it('ffmpeg publishing completes the handshake and sends its connect (FMLE flashVer, type nonprivate)', async () => {
    const run = await runFfmpeg(publish);
    expect(run.commands[0]?.[0]).toBe('connect');
    expect(run.commands[0]?.[2]).toMatchObject({ app: 'live', type: 'nonprivate', flashVer: expect.stringMatching(/^FMLE\/3\.0/) });
  });
});
