/**
 * Bounded fuzzing of the real gateway's RTMP port while an honest camera publishes: random bytes,
 * every handshake stage truncated or corrupted, every AMF0 marker malformed in `connect`, mutations
 * of a valid publish, chunk and message limits, thousands of chunk stream ids, and slowloris
 * clients. The gateway must stay up (no `internal` errors), its memory bounded, the honest camera's
 * recording clean — and a camera that publishes afterwards too. Seeded: a failure names its seed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkWriter } from '../../src/ingest/rtmp/chunk-writer.js';
import { encodeAmf0 } from '../../src/media/amf/amf0.js';
import { readFlv } from '../../src/media/flv/flv-file.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { prng } from '../../src/util/prng.js';
import { startCamera } from '../helpers/camera.js';
import { metricValue, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { decodeErrors, probe } from '../helpers/media.js';
import { waitFor } from '../helpers/wait.js';
import { listStreamObjects } from '../helpers/objects.js';
import { remuxCorpus } from '../helpers/remux-corpus.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
const FUZZ_BUDGET_MS = 25_000;

function rssBytes(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((s) => Number(/VmRSS:\s+(\d+) kB/.exec(s)?.[1] ?? 0) * 1024, () => 0);
}

/** Opens a connection, writes the parts (with optional pauses), waits until the server closes it or `holdMs` passes. */
function attack(port: number, parts: Buffer[], opts: { gapMs?: number; holdMs?: number } = {}): Promise<'closed' | 'held'> {
  return new Promise((resolve) => {
    const s: Socket = connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    s.on('data', () => {});
    let done = false;
    const finish = (r: 'closed' | 'held') => {
      if (done) return;
      done = true;
      clearTimeout(hold);
      s.destroy();
      resolve(r);
    };
    s.once('close', () => finish('closed'));
    const hold = setTimeout(() => finish('held'), opts.holdMs ?? 3000);
    s.once('connect', async () => {
      for (const p of parts) {
        if (s.destroyed) return;
        s.write(p);
        if (opts.gapMs) await delay(opts.gapMs); // slowloris pacing
      }
    });
  });
}

const C0C1 = () => Buffer.concat([Buffer.from([3]), Buffer.alloc(8), randomBytes(1528)]);
/** A client handshake that does not read S1: the server ignores C2's content, so any 1536 bytes do. */
const HANDSHAKE = () => [C0C1(), randomBytes(1536)];

function cmd(w: ChunkWriter, values: Parameters<typeof encodeAmf0>[0], streamId = 0, csid = 3): Buffer {
  return w.encode({ csid, type: 20, streamId, timestamp: 0, payload: encodeAmf0(values) });
}

describe('RTMP fuzzing against the running gateway (bounded)', () => {
  let dir: string;
  let gw: GatewayProcess;
  let root: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apc-fuzz-'));
    root = join(dir, 'objects');
    gw = await startGateway(dir, (p) => `
dataDir: ${join(dir, 'data')}
# info: the gateway reports the ports it bound in its "gateway started" line (the fuzz cases then log a warn line each)
log: { level: info }
server:
  rtmp:
    host: 127.0.0.1
    port: ${p.rtmp}
    limits: { handshakeTimeoutSeconds: 1, publishTimeoutSeconds: 2, mediaTimeoutSeconds: 2, maxConnectionsPerAddress: 400 }
  http: { host: 127.0.0.1, port: ${p.http} }
storage: { kind: fs, root: ${root}, fsync: never }
streams:
  - { id: cam1, key: k1 }
  - { id: cam2, key: k2 }
  - { id: fuzz, key: kf }
`);
  });

  afterAll(async () => {
    await gw?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('survives every class of hostile input with bounded memory; the honest cameras record cleanly', async () => {
    const rand = prng(SEED);
    const int = (n: number) => Math.floor(rand() * n);
    const pid = gw.proc.pid!;
    const port = gw.rtmpPort;
    const corpus = await remuxCorpus();
    const tags = readFlv(await readFile(corpus.find((c) => c.name === 'h264-aac48k-stereo')!.flv)).tags.slice(0, 40);

    // A valid publish, as bytes after the handshake (chunk size 128, like ffmpeg before our Set Chunk Size).
    const validPublish = (): Buffer => {
      const w = new ChunkWriter(128);
      const parts = [
        cmd(w, ['connect', 1, { app: 'live', type: 'nonprivate', flashVer: 'FMLE/3.0', tcUrl: `rtmp://127.0.0.1:${port}/live` }]),
        cmd(w, ['releaseStream', 2, null, 'fuzz']), cmd(w, ['FCPublish', 3, null, 'fuzz']), cmd(w, ['createStream', 4, null]),
        cmd(w, ['publish', 5, null, 'fuzz?key=kf', 'live'], 1, 8),
      ];
      for (const t of tags) parts.push(w.encode({ csid: t.type === 9 ? 6 : 4, type: t.type, streamId: 1, timestamp: t.timestamp, payload: t.body }));
      return Buffer.concat(parts);
    };
    const valid = validPublish();

    const rss0 = await rssBytes(pid);
    let rssMax = rss0;
    const sampler = setInterval(() => { void rssBytes(pid).then((r) => { rssMax = Math.max(rssMax, r); }); }, 100);
    const honest = startCamera({ url: `rtmp://127.0.0.1:${port}/live/cam1?key=k1`, seconds: 24 });
    await waitFor('cam1 publishing', async () => (await gw.streams()).find((s) => s.id === 'cam1')?.publishing, 10_000);

    const counts: Record<string, number> = {};
    const t0 = Date.now();
    const inBudget = () => Date.now() - t0 < FUZZ_BUDGET_MS;
    const run = async (name: string, n: number, make: (i: number) => Promise<unknown>, concurrency = 16) => {
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < n && inBudget(); i = next++) {
          await make(i);
          counts[name] = (counts[name] ?? 0) + 1;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
    };

    // 1. Random bytes of many sizes, raw and after a valid handshake.
    const sizes = [1, 2, 7, 100, 1536, 1537, 3073, 4096, 65_536, 1 << 20];
    await run('random bytes', 200, (i) => {
      const size = sizes[i % sizes.length]!;
      return attack(port, i % 2 ? [randomBytes(size)] : [...HANDSHAKE(), randomBytes(size)], { holdMs: 2500 });
    });
    // 2. Each handshake stage truncated or corrupted.
    await run('handshake', 150, (i) => {
      const c0c1 = C0C1();
      switch (i % 5) {
        case 0: return attack(port, [Buffer.from([int(256)]), randomBytes(1536 + int(3000))]); // any C0
        case 1: return attack(port, [c0c1.subarray(0, 1 + int(1536))], { holdMs: 2500 }); // C1 cut short
        case 2: return attack(port, [c0c1, randomBytes(int(1536))], { holdMs: 2500 }); // C2 cut short
        case 3: { const c = Buffer.from(c0c1); c[5 + int(1530)]! ^= 0xff; return attack(port, [c, randomBytes(1536), randomBytes(int(500))]); }
        default: return attack(port, [c0c1, randomBytes(1536), Buffer.from([0xc3]), randomBytes(int(200))]);
      }
    });
    // 3. Every AMF0 marker (and unknown ones) malformed as connect's command object.
    const markers = [...Array.from({ length: 0x12 }, (_, m) => m), 0x12, 0x50, 0x7f, 0xff];
    await run('amf', markers.length * 6, (i) => {
      const marker = markers[i % markers.length]!;
      const w = new ChunkWriter(128);
      const body = Buffer.concat([encodeAmf0(['connect', 1]), Buffer.from([marker]), randomBytes(int(64))]);
      const truncated = i % 2 ? body.subarray(0, body.length - int(8)) : body;
      return attack(port, [...HANDSHAKE(), w.encode({ csid: 3, type: 20, streamId: 0, timestamp: 0, payload: truncated })], { holdMs: 2500 });
    });
    // 4. Mutations of a valid publish (bit flips, truncation, insertion, length corruption).
    await run('mutated publish', 400, () => {
      const b = Buffer.from(valid);
      const k = 1 + int(8);
      for (let j = 0; j < k; j++) {
        const at = int(b.length);
        switch (int(3)) {
          case 0: b[at]! ^= 1 << int(8); break;
          case 1: b[at] = int(256); break;
          default: b.fill(0xff, at, Math.min(b.length, at + 1 + int(6)));
        }
      }
      const cut = int(4) === 0 ? b.subarray(0, int(b.length)) : b;
      return attack(port, [...HANDSHAKE(), cut], { holdMs: 2500 });
    });
    // 5. Chunk and message limits, thousands of chunk stream ids, aggregates.
    await run('limits', 60, (i) => {
      const w = new ChunkWriter(128);
      switch (i % 6) {
        case 0: return attack(port, [...HANDSHAKE(), Buffer.from([0x04, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0])]); // 16 MiB message
        case 1: { const p = Buffer.alloc(4); p.writeUInt32BE([0, 0x80000000, 0x7fffffff, 1][int(4)]!); return attack(port, [...HANDSHAKE(), w.encode({ csid: 2, type: 1, streamId: 0, timestamp: 0, payload: p })]); }
        case 2: { // thousands of chunk stream ids (3-byte basic headers)
          const parts = [];
          for (let c = 0; c < 3000; c++) { const id = 64 + c * 21; parts.push(Buffer.from([0x01, (id - 64) & 0xff, (id - 64) >> 8, 0, 0, 0, 0, 0, 10, 9, 1, 0, 0, 0]), randomBytes(10)); }
          return attack(port, [...HANDSHAKE(), Buffer.concat(parts)]);
        }
        case 3: return attack(port, [...HANDSHAKE(), w.encode({ csid: 5, type: 22, streamId: 1, timestamp: 0, payload: randomBytes(100 + int(3000)) })]);
        case 4: { const p = Buffer.alloc(4); p.writeUInt32BE(65_536); return attack(port, [...HANDSHAKE(), w.encode({ csid: 2, type: 1, streamId: 0, timestamp: 0, payload: p }), Buffer.from([0x06, 0, 0, 0, 0x7f, 0xff, 0xff, 9, 1, 0, 0, 0]), randomBytes(60_000)], { holdMs: 2500 }); }
        default: return attack(port, [...HANDSHAKE(), cmd(w, ['connect', 1, { app: 'x'.repeat(70_000) }])]);
      }
    });
    // 6. Slowloris: one byte at a time, in the handshake and inside a message.
    await run('slowloris', 60, (i) => {
      const bytes = i % 2 ? C0C1() : Buffer.concat([...HANDSHAKE(), valid.subarray(0, 400)]);
      const parts = Array.from({ length: 40 }, (_, j) => bytes.subarray(j, j + 1));
      return attack(port, i % 2 ? parts : [bytes.subarray(0, 3073 + 200), ...parts.map((_, j) => bytes.subarray(3273 + j, 3274 + j))], { gapMs: 150, holdMs: 8000 });
    }, 60);
    clearInterval(sampler);
    const fuzzMs = Date.now() - t0;
    const total = Object.values(counts).reduce((a, b) => a + b, 0);

    // Still up and serving; nothing was an internal error (an exception we did not type).
    expect((await fetch(`http://127.0.0.1:${gw.httpPort}/healthz`)).status).toBe(200);
    const m = await gw.metrics();
    expect(metricValue(m, 'appendcast_rtmp_protocol_errors_total', { reason: 'internal' }) ?? 0).toBe(0);
    // Every reason exists from the start at 0: the ones that closed connections are the nonzero ones.
    const reasons = [...m.matchAll(/appendcast_rtmp_protocol_errors_total\{reason="([^"]+)"\} (\d+)/g)].filter((x) => x[2] !== '0').map((x) => `${x[1]}=${x[2]}`);
    expect(reasons.length).toBeGreaterThanOrEqual(8);
    const growth = rssMax - rss0;
    console.log(`rtmp fuzz (seed ${SEED}): ${total} cases in ${(fuzzMs / 1000).toFixed(1)} s ${JSON.stringify(counts)}; gateway crashes 0; `
      + `RSS ${(rss0 / 2 ** 20).toFixed(0)} MiB → max ${(rssMax / 2 ** 20).toFixed(0)} MiB (+${(growth / 2 ** 20).toFixed(1)} MiB); closed by reason: ${reasons.join(' ')}`);
    expect(total).toBeGreaterThan(500);
    expect(growth).toBeLessThan(200 * 2 ** 20);

    // The camera that published through it all, and one that publishes afterwards, record cleanly.
    expect((await honest.done).code).toBe(0);
    const after = startCamera({ url: `rtmp://127.0.0.1:${port}/live/cam2?key=k2`, seconds: 4 });
    expect((await after.done).code).toBe(0);
    const store = new FsStore({ root });
    for (const [id, seconds] of [['cam1', 24], ['cam2', 4]] as const) {
      const objects = await waitFor(`${id} recorded`, async () => {
        const o = await listStreamObjects(store, id);
        const done = (await gw.streams()).find((s) => s.id === id)!.sessions.every((s) => s.endedAt && !s.draining);
        return done && o.length > 0 ? o : undefined;
      }, 20_000, 200);
      expect(objects, id).toHaveLength(1);
      const file = join(root, objects[0]!.key);
      expect(await decodeErrors(file), id).toBe('');
      const p = await probe(file, true);
      expect(Math.abs(p.duration - p.startTime - seconds), id).toBeLessThan(0.6);
      expect(Number(p.streams.find((s) => s.codec_type === 'video')?.nb_read_frames), id).toBe(seconds * 25);
    }
  }, 120_000);

  it('memory one connection can make the gateway hold: a maximal partial message each, bounded by the limits', async () => {
    const pid = gw.proc.pid!;
    const N = 16;
    const before = await rssBytes(pid);
    const sockets: Socket[] = [];
    for (let i = 0; i < N; i++) {
      const s = connect({ host: '127.0.0.1', port: gw.rtmpPort });
      s.on('error', () => {});
      s.on('data', () => {});
      await new Promise((r) => s.once('connect', r));
      const w = new ChunkWriter();
      const size = Buffer.alloc(4);
      size.writeUInt32BE(65_536);
      const connectCmd = cmd(w, ['connect', 1, { app: 'live' }]);
      const setSize = w.encode({ csid: 2, type: 1, streamId: 0, timestamp: 0, payload: size });
      w.setChunkSize(65_536);
      // An 8 MiB video message (the default maxMessageBytes) sent all but its last byte.
      const big = w.encode({ csid: 6, type: 9, streamId: 1, timestamp: 0, payload: randomBytes(8 * 2 ** 20) });
      s.write(Buffer.concat([...HANDSHAKE(), connectCmd, setSize, big.subarray(0, big.length - 1)]));
      sockets.push(s);
    }
    const held = await waitFor('all partial messages held', async () => {
      const v = metricValue(await gw.metrics(), 'appendcast_rtmp_held_bytes');
      return v !== undefined && v >= N * 8 * 2 ** 20 - N * 65_536 ? v : undefined;
    }, 10_000, 100);
    const during = await rssBytes(pid);
    for (const s of sockets) s.destroy();
    const released = await waitFor('held bytes released', async () => metricValue(await gw.metrics(), 'appendcast_rtmp_held_bytes') === 0, 5000, 100);
    const perConnection = (during - before) / N;
    console.log(`memory per connection holding a maximal partial message: held ${(held / N / 2 ** 20).toFixed(2)} MiB each by the parser; `
      + `RSS +${((during - before) / 2 ** 20).toFixed(0)} MiB for ${N} → ${(perConnection / 2 ** 20).toFixed(2)} MiB per connection (limit ${(9).toFixed(0)} MiB per connection, 256 MiB in all)`);
    expect(released).toBe(true);
    expect(held / N).toBeLessThanOrEqual(9 * 2 ** 20);
    expect(perConnection).toBeLessThan(12 * 2 ** 20);
    expect((await fetch(`http://127.0.0.1:${gw.httpPort}/healthz`)).status).toBe(200);
  });
});
