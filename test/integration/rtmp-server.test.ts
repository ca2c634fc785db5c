/**
 * Our publish-only RTMP server on its own (no gateway): what real encoders see, the veto before
 * Publish.Start, and every limit and time-out. Each hostile case ends its own connection only; an
 * honest publisher is served afterwards.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { encodeAmf0 } from '../../src/media/amf/amf0.js';
import { ChunkReader } from '../../src/ingest/rtmp/chunk-reader.js';
import { ChunkWriter } from '../../src/ingest/rtmp/chunk-writer.js';
import { abort, parseAcknowledgement, parseUserControl, pingRequest, windowAckSize } from '../../src/ingest/rtmp/control.js';
import { RtmpServer, type RtmpServerEvents } from '../../src/ingest/rtmp/rtmp-server.js';
import type { RtmpServerLimits } from '../../src/ingest/rtmp/server-limits.js';
import type { PublishInfo, PublishRequest } from '../../src/ingest/types.js';
import type { MediaPacket } from '../../src/media/types.js';
import { createLogger } from '../../src/util/logger.js';
import { readFlv } from '../../src/media/flv/flv-file.js';
import { prng } from '../../src/util/prng.js';
import { startCamera } from '../helpers/camera.js';
import { remuxCorpus } from '../helpers/remux-corpus.js';
import { waitFor } from '../helpers/wait.js';
import { PublishRefused, RtmpTestPublisher } from '../helpers/rtmp-publisher.js';

interface Publish {
  info: PublishInfo;
  packets: MediaPacket[];
  ended: boolean;
}

interface Harness {
  server: RtmpServer;
  port: number;
  requests: PublishRequest[];
  publishes: Publish[];
  errors: RtmpServerEvents['protocolError'][0][];
  rejected: RtmpServerEvents['rejected'][0][];
  refused: RtmpServerEvents['connectionRefused'][0][];
}

async function startServer(limits: Partial<RtmpServerLimits> = {}): Promise<Harness> {
  const h: Omit<Harness, 'server' | 'port'> = { requests: [], publishes: [], errors: [], rejected: [], refused: [] };
  const server = new RtmpServer({
    host: '127.0.0.1', port: 0, logger: createLogger('silent'), limits,
    authorize: (req) => {
      h.requests.push(req);
      if (req.app !== 'live') return { ok: false, reason: 'wrong-app' };
      if (!req.stream.startsWith('cam')) return { ok: false, reason: 'unknown-stream' };
      if (h.publishes.some((p) => !p.ended && p.info.stream === req.stream)) return { ok: false, reason: 'already-publishing' };
      return req.key === 'k1' ? { ok: true } : { ok: false, reason: 'bad-key' };
    },
    onPublish: (info) => {
      const p: Publish = { info, packets: [], ended: false };
      h.publishes.push(p);
      return { packet: (pkt) => p.packets.push(pkt), end: () => { p.ended = true; } };
    },
  });
  server.on('protocolError', (e) => h.errors.push(e));
  server.on('rejected', (r) => h.rejected.push(r));
  server.on('connectionRefused', (r) => h.refused.push(r));
  const addr = await server.listen();
  return { ...h, server, port: addr.port };
}

/** A raw TCP client: collects what the server sends, resolves `closed` when the server closes. */
function raw(port: number): { socket: Socket; received: () => Buffer; closed: Promise<number> } {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  const t0 = Date.now();
  socket.on('data', (b) => chunks.push(b));
  socket.on('error', () => {});
  const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - t0)));
  return { socket, received: () => Buffer.concat(chunks), closed };
}

/** C0+C1, wait for S0+S1+S2, send C2: the socket is then in the chunk stream. */
async function handshake(c: ReturnType<typeof raw>): Promise<void> {
  c.socket.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(8), randomBytes(1528)]));
  await waitFor('S0+S1+S2', () => c.received().length >= 3073, 3000, 5);
  c.socket.write(c.received().subarray(1, 1537));
}

function command(values: Parameters<typeof encodeAmf0>[0], streamId = 0, csid = 3): Buffer {
  return new ChunkWriter(128).encode({ csid, type: 20, streamId, timestamp: 0, payload: encodeAmf0(values) });
}

const CONNECT = ['connect', 1, { app: 'live', type: 'nonprivate', flashVer: 'FMLE/3.0', tcUrl: 'rtmp://127.0.0.1/live' }] as const;

async function honestPublish(h: Harness, stream = 'cam9'): Promise<void> {
  const pub = await RtmpTestPublisher.open({ port: h.port });
  await pub.connect();
  const status = await pub.publish(`${stream}?key=k1`);
  expect(status.code).toBe('NetStream.Publish.Start');
  await pub.unpublish();
}

describe('RTMP server: real encoders and the publish veto', () => {
  let h: Harness;
  beforeAll(async () => { h = await startServer(); });
  afterAll(async () => { await h.server.close(); });

  it('takes a publish from ffmpeg: metadata, sequence headers, media in order; unpublish ends it', async () => {
    const before = h.publishes.length;
    const cam = startCamera({ url: `rtmp://127.0.0.1:${h.port}/live/cam1?key=k1`, seconds: 2 });
    const { code, stderr } = await cam.done;
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const p = await waitFor('the publish to end', () => h.publishes.slice(before).find((x) => x.info.stream === 'cam1' && x.ended));
    const kinds = p.packets.map((x) => (x.kind === 'metadata' ? 'meta' : `${x.kind}:${x.packetType}`));
    expect(kinds[0]).toBe('meta');
    expect(kinds.indexOf('video:config')).toBeLessThan(kinds.indexOf('video:frame'));
    expect(kinds.indexOf('audio:config')).toBeLessThan(kinds.indexOf('audio:frame'));
    const frames = p.packets.filter((x) => x.kind === 'video' && x.packetType === 'frame');
    expect(frames.length).toBeGreaterThanOrEqual(48); // 2 s at 25 fps
    expect(frames[0]).toMatchObject({ codec: 'avc', keyframe: true });
    expect(h.requests.at(-1)).toMatchObject({ app: 'live', stream: 'cam1', key: 'k1' });
  });

  it('refuses before Publish.Start with the reason: ffmpeg prints it and exits, nothing is published', async () => {
    const before = h.publishes.length;
    const rejectedBefore = h.rejected.length;
    const cam = startCamera({ url: `rtmp://127.0.0.1:${h.port}/live/cam1?key=wrong`, seconds: 2 });
    const { code, stderr } = await cam.done;
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/wrong or missing key/);
    const unknown = startCamera({ url: `rtmp://127.0.0.1:${h.port}/live/nosuch?key=k1`, seconds: 2 });
    const u = await unknown.done;
    expect(u.code).not.toBe(0);
    expect(u.stderr).toMatch(/no such stream is configured/);
    expect(h.publishes.length).toBe(before);
    expect(h.rejected.slice(rejectedBefore).map((r) => r.reason)).toEqual(['bad-key', 'unknown-stream']);
  });

  it('answers refusals with the documented onStatus codes', async () => {
    const cases: Array<[string, string, string]> = [
      ['cam2?key=nope', 'NetStream.Publish.Unauthorized', 'wrong or missing key'],
      ['other?key=k1', 'NetStream.Publish.BadName', 'no such stream'],
    ];
    for (const [name, code, text] of cases) {
      const pub = await RtmpTestPublisher.open({ port: h.port });
      await pub.connect();
      const err = await pub.publish(name).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PublishRefused);
      expect((err as PublishRefused).status).toMatchObject({ level: 'error', code });
      expect((err as PublishRefused).status.description).toContain(text);
      await pub.closed; // the server closes after a refusal
    }
  });

  it('finds the key in the stream name, the tcUrl or the app, and refuses a second publisher of a live stream', async () => {
    const viaTcUrl = await RtmpTestPublisher.open({ port: h.port, tcUrl: `rtmp://127.0.0.1:${h.port}/live?key=k1` });
    await viaTcUrl.connect();
    expect((await viaTcUrl.publish('cam3')).code).toBe('NetStream.Publish.Start');
    expect(h.requests.at(-1)).toMatchObject({ stream: 'cam3', key: 'k1' });

    const second = await RtmpTestPublisher.open({ port: h.port, app: 'live?key=k1' });
    await second.connect();
    const err = await second.publish('cam3').catch((e: unknown) => e);
    expect((err as PublishRefused).status.code).toBe('NetStream.Publish.BadName');
    expect(h.requests.at(-1)).toMatchObject({ app: 'live', stream: 'cam3', key: 'k1' });
    expect(h.rejected.at(-1)?.reason).toBe('already-publishing');
    // The first one is still publishing.
    expect(h.publishes.find((p) => p.info.stream === 'cam3')?.ended).toBe(false);
    expect(viaTcUrl.socket.destroyed).toBe(false);
    await viaTcUrl.unpublish();
    await waitFor('cam3 ended', () => h.publishes.find((p) => p.info.stream === 'cam3')?.ended);
  });

  it('refuses plays (ffmpeg as a player fails) and counts them', async () => {
    const errorsBefore = h.errors.length;
    const { spawn } = await import('node:child_process');
    const ff = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-rw_timeout', '5000000', '-i', `rtmp://127.0.0.1:${h.port}/live/cam1`, '-f', 'null', '-'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    ff.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    const code = await new Promise<number | null>((r) => ff.once('close', r));
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/publishes only|Play\.Failed/);
    expect(h.errors.slice(errorsBefore).map((e) => e.reason)).toContain('play');
  });

  it('refuses an unsupported codec at its sequence header with a status and ends the publish', async () => {
    const pub = await RtmpTestPublisher.open({ port: h.port });
    await pub.connect();
    await pub.publish('cam4?key=k1');
    // Enhanced RTMP VP9 SequenceStart: IsExHeader | key frame | PacketType 0, FourCC vp09.
    pub.sendTag({ type: 9, timestamp: 0, body: Buffer.concat([Buffer.from([0x90]), Buffer.from('vp09'), Buffer.alloc(8)]) });
    const status = await pub.nextStatus();
    expect(status).toMatchObject({ level: 'error', code: 'NetStream.Publish.Rejected' });
    expect(status?.description).toMatch(/vp09/);
    await pub.closed;
    expect(h.rejected.at(-1)).toMatchObject({ stream: 'cam4', reason: 'unsupported-codec' });
    expect(h.publishes.find((p) => p.info.stream === 'cam4')?.ended).toBe(true);
  });
});

describe('RTMP server: protocol control, aggregates, AMF3 messages and command coverage', () => {
  let h: Harness;
  beforeAll(async () => { h = await startServer(); });
  afterAll(async () => { await h.server.close(); });

  /** The server's messages on a raw connection, parsed with our own reader (after S0+S1+S2). */
  const serverMessages = (c: ReturnType<typeof raw>) => new ChunkReader().push(c.received().subarray(3073));

  it('acknowledges per the peer\'s window, answers pings, applies Abort, and ignores unknown commands', async () => {
    const c = raw(h.port);
    await handshake(c);
    const w = new ChunkWriter(128);
    c.socket.write(w.encode(windowAckSize(5000)));
    c.socket.write(command([...CONNECT]));
    c.socket.write(command(['_checkbw', 2, null]));
    c.socket.write(command(['someVendorCommand', 3, null, 'x']));
    c.socket.write(w.encode(pingRequest(123_456)));
    // Half a message on csid 9, aborted, then a complete createStream: the partial one is gone.
    const partial = w.encode({ csid: 9, type: 20, streamId: 0, timestamp: 0, payload: encodeAmf0(['createStream', 7, null, 'x'.repeat(300)]) });
    c.socket.write(partial.subarray(0, 140));
    c.socket.write(w.encode(abort(9)));
    c.socket.write(command(['createStream', 4, null]));
    c.socket.write(w.encode({ csid: 4, type: 8, streamId: 1, timestamp: 0, payload: Buffer.alloc(6000) })); // > window: an ack is due
    await waitFor('ack, pong and createStream result', () => {
      const m = serverMessages(c);
      return m.some((x) => x.type === 3) && m.some((x) => x.type === 4 && parseUserControl(x.payload).event === 'ping-response')
        && m.some((x) => x.type === 20 && x.payload.includes(Buffer.from('_result')) && x.payload.readDoubleBE(11) === 4);
    }, 3000, 10);
    const m = serverMessages(c);
    const ack = parseAcknowledgement(m.find((x) => x.type === 3)!.payload);
    expect(ack).toBeGreaterThan(3073 + 5000);
    expect(parseUserControl(m.find((x) => x.type === 4 && parseUserControl(x.payload).event === 'ping-response')!.payload).value).toBe(123_456);
    // Only connect and createStream 4 were answered (no reply to the aborted createStream 7, none to unknown commands).
    const results = m.filter((x) => x.type === 20).map((x) => x.payload.readDoubleBE(11));
    expect(results).toEqual([1, 4]);
    expect(c.socket.destroyed).toBe(false);
    c.socket.destroy();
  });

  it('AMF3 command and data messages, aggregates of media, and closeStream ending the publish', async () => {
    const c = raw(h.port);
    await handshake(c);
    const w = new ChunkWriter(128);
    const amf3 = (type: 15 | 17, values: Parameters<typeof encodeAmf0>[0], streamId = 0, csid = 3) =>
      w.encode({ csid, type, streamId, timestamp: 0, payload: Buffer.concat([Buffer.from([0]), encodeAmf0(values)]) });
    c.socket.write(amf3(17, [...CONNECT]));
    c.socket.write(amf3(17, ['createStream', 2, null]));
    c.socket.write(amf3(17, ['publish', 3, null, 'cam-agg?key=k1', 'live'], 1, 8));
    await waitFor('publishing', () => h.publishes.find((p) => p.info.stream === 'cam-agg'), 3000, 10);
    c.socket.write(amf3(15, ['@setDataFrame', 'onMetaData', { width: 320 }], 1, 4));
    // An aggregate of two AAC frames (sub-message: type, size u24, ts u24 + ext u8, stream id u24, data, back-pointer).
    const sub = (ts: number, data: Buffer) => {
      const hdr = Buffer.alloc(11);
      hdr[0] = 8;
      hdr.writeUIntBE(data.length, 1, 3);
      hdr.writeUIntBE(ts, 4, 3);
      const back = Buffer.alloc(4);
      back.writeUInt32BE(11 + data.length);
      return Buffer.concat([hdr, data, back]);
    };
    const asc = Buffer.from([0xaf, 0x00, 0x11, 0x90]);
    const frame = Buffer.from([0xaf, 0x01, 0x21, 0x10, 0x04]);
    c.socket.write(w.encode({ csid: 4, type: 8, streamId: 1, timestamp: 0, payload: asc }));
    c.socket.write(w.encode({ csid: 5, type: 22, streamId: 1, timestamp: 1000, payload: Buffer.concat([sub(500, frame), sub(521, frame)]) }));
    const p = await waitFor('metadata and both aggregated frames', () => {
      const x = h.publishes.find((q) => q.info.stream === 'cam-agg')!;
      return x.packets.filter((k) => k.kind === 'audio' && k.packetType === 'frame').length === 2 ? x : undefined;
    }, 3000, 10);
    expect(p.packets.map((k) => k.kind)).toEqual(['metadata', 'audio', 'audio', 'audio']);
    // Sub-message timestamps are renormalised to the aggregate's: 1000, 1021.
    expect(p.packets.slice(2).map((k) => k.tag.timestamp)).toEqual([1000, 1021]);
    c.socket.write(command(['closeStream', 4, null], 1, 8));
    await waitFor('closeStream ended the publish', () => p.ended, 3000, 10);
    c.socket.destroy();
  });

  it('refuses legacy unsupported codecs too (Speex audio, H.263 video)', async () => {
    const rejectedBefore = h.rejected.length;
    for (const [name, tag] of [['cam-spx', { type: 8 as const, body: Buffer.from([0xb2, 0x00, 0x00]) }], ['cam-263', { type: 9 as const, body: Buffer.from([0x12, 0x00, 0x00]) }]] as const) {
      const pub = await RtmpTestPublisher.open({ port: h.port });
      await pub.connect();
      await pub.publish(`${name}?key=k1`);
      pub.sendTag({ ...tag, timestamp: 0 });
      const status = await pub.nextStatus();
      expect(status, name).toMatchObject({ level: 'error', code: 'NetStream.Publish.Rejected' });
      await pub.closed;
    }
    expect(h.rejected.slice(rejectedBefore).map((r) => r.reason)).toEqual(['unsupported-codec', 'unsupported-codec']);
  });

  it('caps connections in total', async () => {
    const small = await startServer({ maxConnections: 3 });
    try {
      const conns = Array.from({ length: 3 }, () => raw(small.port));
      await waitFor('3 connections', () => small.server.connectionCount === 3, 3000, 10);
      await raw(small.port).closed;
      expect(small.refused.at(-1)?.reason).toBe('max-connections');
      for (const c of conns) c.socket.destroy();
    } finally {
      await small.server.close();
    }
  });
});

describe('RTMP server: a valid publish cut into random TCP segments parses identically', () => {
  let h: Harness;
  beforeAll(async () => { h = await startServer(); });
  afterAll(async () => { await h.server.close(); });

  it('the same bytes, written whole or in 1 B…8 KiB pieces with pauses, give the same packets', async () => {
    const corpus = await remuxCorpus();
    const tags = readFlv(await (await import('node:fs/promises')).readFile(corpus.find((c) => c.name === 'h264-bframes-aac48k')!.flv)).tags;
    // Everything a publisher sends after the handshake, with ffmpeg's header compression at 128-byte chunks
    // (extended timestamps too: the clip is shifted past 0xFFFFFF ms), then our own Set Chunk Size mid-stream.
    const stream = (name: string) => {
      const w = new ChunkWriter(128);
      const parts = [command([...CONNECT]), command(['createStream', 2, null]), command(['publish', 3, null, `${name}?key=k1`, 'live'], 1, 8)];
      tags.forEach((t, i) => {
        if (i === Math.floor(tags.length / 2)) {
          const size = Buffer.alloc(4);
          size.writeUInt32BE(1000);
          parts.push(w.encode({ csid: 2, type: 1, streamId: 0, timestamp: 0, payload: size }));
          w.setChunkSize(1000);
        }
        parts.push(w.encode({ csid: t.type === 9 ? 6 : 4, type: t.type, streamId: 1, timestamp: t.timestamp + 0xfffff0, payload: t.body }));
      });
      return Buffer.concat(parts);
    };
    const send = async (name: string, seed: number | null) => {
      const c = raw(h.port);
      await handshake(c);
      const bytes = stream(name);
      if (seed === null) c.socket.write(bytes);
      else {
        const rand = prng(seed);
        for (let at = 0; at < bytes.length;) {
          const n = 1 + Math.floor(rand() ** 3 * 8192);
          c.socket.write(bytes.subarray(at, at + n));
          at += n;
          if (rand() < 0.05) await delay(1); // a pause between segments: separate reads on the server
        }
      }
      const p = await waitFor(`${name} packets`, () => {
        const x = h.publishes.find((q) => q.info.stream === name);
        return x && x.packets.filter((k) => k.kind !== 'metadata').length === tags.filter((t) => t.type !== 18).length ? x : undefined;
      }, 10_000, 10);
      c.socket.destroy();
      return p.packets.map((k) => `${k.kind}:${k.tag.type}:${k.tag.timestamp}:${k.tag.body.toString('base64')}`);
    };
    const whole = await send('cam-whole', null);
    expect(whole.length).toBeGreaterThan(150);
    for (const seed of [1, 2, 3]) expect(await send(`cam-seg${seed}`, seed), `seed ${seed}`).toEqual(whole);
  });
});

describe('RTMP server: hostile commands end one connection, never the server', () => {
  let h: Harness;
  beforeAll(async () => { h = await startServer({ publishTimeoutMs: 2000 }); });
  afterAll(async () => { await h.server.close(); });

  // The inputs that crashed node-media-server (10 of 74 crafted cases), and a few more.
  const deep = (n: number): Record<string, unknown> => (n === 0 ? {} : { a: deep(n - 1) });
  const nested = (() => {
    // 10,000 nested objects, hand-encoded (our encoder would recurse as deep).
    const open = Buffer.concat([Buffer.from([0x03, 0x00, 0x01]), Buffer.from('a')]);
    const parts = [encodeAmf0(['connect', 1])];
    for (let i = 0; i < 10_000; i++) parts.push(open);
    parts.push(Buffer.from([0x03]));
    for (let i = 0; i <= 10_000; i++) parts.push(Buffer.from([0x00, 0x00, 0x09]));
    return Buffer.concat(parts);
  })();
  /** reason: the protocol error counted; 'refused': a publish refused with a status; 'published': accepted (no crash). */
  const cases: Array<{ name: string; bytes: () => Buffer[]; reason: string }> = [
    { name: 'connect with a null command object', bytes: () => [command(['connect', 1, null])], reason: 'command' },
    { name: 'connect with no command object', bytes: () => [command(['connect', 1])], reason: 'command' },
    { name: 'connect without tcUrl (then publish)', bytes: () => [command(['connect', 1, { app: 'live' }]), command(['createStream', 2, null]), command(['publish', 3, null, 'cam5?key=k1', 'live'], 1, 8)], reason: 'published' },
    { name: 'connect with tcUrl "not a url" (then publish)', bytes: () => [command(['connect', 1, { app: 'live', tcUrl: 'not a url' }]), command(['createStream', 2, null]), command(['publish', 3, null, 'cam6?key=k1', 'live'], 1, 8)], reason: 'published' },
    { name: 'AMF0 marker 0x0d (unsupported) as the command object', bytes: () => [new ChunkWriter().encode({ csid: 3, type: 20, streamId: 0, timestamp: 0, payload: Buffer.concat([encodeAmf0(['connect', 1]), Buffer.from([0x0d])]) })], reason: 'command' },
    { name: 'AMF0 marker 0x11 (AVM+) in an AMF0 command', bytes: () => [new ChunkWriter().encode({ csid: 3, type: 20, streamId: 0, timestamp: 0, payload: Buffer.concat([encodeAmf0(['connect', 1]), Buffer.from([0x11, 0x06, 0x03, 0x61])]) })], reason: 'amf' },
    { name: 'an object that is never terminated', bytes: () => [new ChunkWriter().encode({ csid: 3, type: 20, streamId: 0, timestamp: 0, payload: Buffer.concat([encodeAmf0(['connect', 1]), Buffer.from([0x03, 0x00, 0x03]), Buffer.from('app'), encodeAmf0(['live'])]) })], reason: 'amf' },
    { name: '10,000 nested objects', bytes: () => [new ChunkWriter().encode({ csid: 3, type: 20, streamId: 0, timestamp: 0, payload: nested })], reason: 'amf' },
    { name: '17 nested objects (one past the depth limit)', bytes: () => [command(['connect', 1, deep(17) as never])], reason: 'amf' },
    { name: 'publish without a stream name', bytes: () => [command([...CONNECT]), command(['createStream', 2, null]), command(['publish', 3, null], 1, 8)], reason: 'refused' },
    { name: 'publish with a number as the stream name', bytes: () => [command([...CONNECT]), command(['createStream', 2, null]), command(['publish', 3, null, 42, 'live'], 1, 8)], reason: 'refused' },
    { name: 'publish before connect', bytes: () => [command(['publish', 3, null, 'cam1?key=k1', 'live'], 1, 8)], reason: 'command' },
    { name: 'a command that is not a name', bytes: () => [command([1, 2, 3])], reason: 'command' },
    { name: 'a 300-character stream name', bytes: () => [command([...CONNECT]), command(['createStream', 2, null]), command(['publish', 3, null, `cam${'x'.repeat(300)}?key=k1`, 'live'], 1, 8)], reason: 'refused' },
  ];

  for (const c of cases) {
    it(`${c.name}: that connection ends (or is refused), the server keeps serving`, async () => {
      const errorsBefore = h.errors.length;
      const rejectedBefore = h.rejected.length;
      const conn = raw(h.port);
      await handshake(conn);
      for (const b of c.bytes()) conn.socket.write(b);
      if (c.reason === 'published') {
        await waitFor('Publish.Start', () => conn.received().toString('latin1').includes('NetStream.Publish.Start'), 2000, 10);
        conn.socket.destroy();
      }
      const ms = await conn.closed;
      expect(ms).toBeLessThan(2500);
      if (c.reason === 'refused') {
        // A publish with a missing or odd name is refused like any bad name, with a status.
        expect(conn.received().toString('latin1')).toContain('NetStream.Publish.BadName');
        expect(h.rejected.length).toBe(rejectedBefore + 1);
      } else if (c.reason !== 'published') {
        expect(h.errors.slice(errorsBefore).map((e) => e.reason)).toEqual([c.reason]);
      }
      await honestPublish(h);
    });
  }

  it('publish(false) from Wirecast is an unpublish', async () => {
    const pub = await RtmpTestPublisher.open({ port: h.port });
    await pub.connect();
    await pub.publish('cam7?key=k1');
    pub.sendCommand(['publish', 9, null, false], 1, 8);
    await waitFor('cam7 ended', () => h.publishes.find((p) => p.info.stream === 'cam7')?.ended);
    await pub.end();
  });
});

describe('RTMP server: limits and time-outs (each closes the connection, counted by reason)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer({
      handshakeTimeoutMs: 400, publishTimeoutMs: 600, mediaTimeoutMs: 600, maxMessageBytes: 64 * 1024, maxChunkStreams: 8,
      maxHeldBytesPerConnection: 80 * 1024, maxHeldBytesTotal: 200 * 1024, maxConnections: 12, maxConnectionsPerAddress: 10,
    });
  });
  afterAll(async () => { await h.server.close(); });

  // What this test's connections caused, not an earlier test's.
  let errorsMark = 0;
  let refusedMark = 0;
  beforeEach(() => {
    errorsMark = h.errors.length;
    refusedMark = h.refused.length;
  });
  const lastReason = () => h.errors.slice(errorsMark).at(-1)?.reason;

  it('handshake time-out: a silent client, and one that stops half-way through C1', async () => {
    const silent = raw(h.port);
    expect(await silent.closed).toBeGreaterThanOrEqual(390);
    expect(lastReason()).toBe('handshake-timeout');
    const half = raw(h.port);
    half.socket.write(Buffer.concat([Buffer.from([3]), randomBytes(700)]));
    const ms = await half.closed;
    expect(ms).toBeGreaterThanOrEqual(390);
    expect(ms).toBeLessThan(1500);
    expect(lastReason()).toBe('handshake-timeout');
  });

  it('a wrong C0 (RTMPE, or HTTP on the RTMP port) closes at once', async () => {
    for (const first of [Buffer.from([6]), Buffer.from('GET / HTTP/1.1\r\n\r\n')]) {
      const c = raw(h.port);
      c.socket.write(Buffer.concat([first, randomBytes(1536)]));
      expect(await c.closed).toBeLessThan(300);
      expect(lastReason()).toBe('handshake-version');
    }
  });

  it('connect→publish time-out, and media time-out after publish', async () => {
    const c = raw(h.port);
    await handshake(c);
    c.socket.write(command([...CONNECT]));
    const ms = await c.closed;
    expect(ms).toBeGreaterThanOrEqual(590);
    expect(lastReason()).toBe('publish-timeout');

    const pub = await RtmpTestPublisher.open({ port: h.port });
    await pub.connect();
    await pub.publish('cam1?key=k1');
    const t0 = Date.now();
    await pub.closed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
    expect(lastReason()).toBe('media-timeout');
    expect(h.publishes.at(-1)?.ended).toBe(true);
  });

  it('a message longer than maxMessageBytes is refused at its header', async () => {
    const c = raw(h.port);
    await handshake(c);
    // fmt 0 header on csid 4 declaring 64 KiB + 1 of video; only the header is sent.
    const hdr = Buffer.from([0x04, 0, 0, 0, 0x01, 0x00, 0x01, 9, 1, 0, 0, 0]);
    c.socket.write(hdr);
    expect(await c.closed).toBeLessThan(1000);
    expect(lastReason()).toBe('message-too-large');
  });

  it('more chunk stream ids than maxChunkStreams', async () => {
    const c = raw(h.port);
    await handshake(c);
    const w = new ChunkWriter(128);
    for (let csid = 3; csid < 3 + 9; csid++) c.socket.write(w.encode({ csid, type: 9, streamId: 1, timestamp: 0, payload: Buffer.alloc(200) }));
    await c.closed;
    expect(lastReason()).toBe('too-many-chunk-streams');
  });

  it('Set Chunk Size 0 and with the MSB set', async () => {
    for (const size of [0, 0x80000000]) {
      const c = raw(h.port);
      await handshake(c);
      const b = Buffer.alloc(4);
      b.writeUInt32BE(size);
      c.socket.write(new ChunkWriter().encode({ csid: 2, type: 1, streamId: 0, timestamp: 0, payload: b }));
      await c.closed;
      expect(lastReason()).toBe('chunk-size');
    }
  });

  it('connections in total and per address', async () => {
    const conns = Array.from({ length: 10 }, () => raw(h.port));
    await waitFor('10 connections', () => h.server.connectionCount >= 10, 3000, 10);
    const over = raw(h.port);
    await over.closed;
    expect(h.refused.slice(refusedMark).at(-1)?.reason).toBe('max-connections-per-address');
    for (const c of conns) c.socket.destroy();
    await Promise.all(conns.map((c) => c.closed));
    await waitFor('connections released', () => h.server.connectionCount === 0, 3000, 10);
  });

  it('the server-wide budget for partial messages: the connection that asks for more is closed', async () => {
    // Three connections each hold a 60 KiB partial message: 180 KiB < 200 KiB; the fourth goes over.
    const conns = [];
    for (let i = 0; i < 4; i++) {
      const c = raw(h.port);
      await handshake(c);
      const w = new ChunkWriter();
      const size = Buffer.alloc(4);
      size.writeUInt32BE(128 * 1024);
      c.socket.write(w.encode({ csid: 2, type: 1, streamId: 0, timestamp: 0, payload: size }));
      w.setChunkSize(128 * 1024);
      const full = w.encode({ csid: 4, type: 9, streamId: 1, timestamp: 0, payload: randomBytes(60 * 1024) });
      c.socket.write(full.subarray(0, full.length - 10)); // all but the last 10 bytes
      conns.push(c);
      // One at a time: this partial message is held before the next connection sends its own.
      if (i < 3) await waitFor(`partial message ${i + 1} held`, () => h.server.heldBytes >= (i + 1) * 60 * 1024, 3000, 5);
    }
    await conns[3]!.closed;
    expect(lastReason()).toBe('buffer-limit');
    expect(h.server.heldBytes).toBeLessThanOrEqual(200 * 1024);
    expect(conns.slice(0, 3).every((c) => !c.socket.destroyed)).toBe(true);
    for (const c of conns) c.socket.destroy();
    await Promise.all(conns.map((c) => c.closed));
    await waitFor('held bytes released', () => h.server.heldBytes === 0, 3000, 10);
  });
});
