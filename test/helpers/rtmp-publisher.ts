/**
 * A small RTMP publisher of our own, for what no Debian tool does: H.265 as enhanced RTMP and as the
 * legacy codec id 12, keys in the tcUrl, hand-made command objects, and raw bytes after a valid
 * handshake (fuzzing). Plain handshake; ffmpeg's command sequence (connect, releaseStream,
 * FCPublish, createStream, publish on the returned stream id).
 */
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { AmfEcmaArray, decodeAmf0, encodeAmf0 } from '../../src/media/amf/amf0.js';
import type { AmfEncodable } from '../../src/media/amf/amf0.js';
import { ChunkReader, type RtmpMessage } from '../../src/ingest/rtmp/chunk-reader.js';
import { ChunkWriter } from '../../src/ingest/rtmp/chunk-writer.js';
import type { AmfObject, AmfValue, FlvTag } from '../../src/media/types.js';

export { AmfEcmaArray };

export interface PublisherOptions {
  host?: string;
  port: number;
  app?: string;
  /** tcUrl sent in connect; default rtmp://host:port/app */
  tcUrl?: string;
  /** Our outgoing chunk size (announced with Set Chunk Size); default 128 like ffmpeg's first messages. */
  chunkSize?: number;
  /** Replace the whole connect command object (hostile tests). */
  connectObject?: AmfEncodable;
}

export interface StatusInfo {
  level: string;
  code: string;
  description: string;
}

export class PublishRefused extends Error {
  constructor(readonly status: StatusInfo) {
    super(`${status.code}: ${status.description}`);
  }
}

export class RtmpTestPublisher {
  readonly socket: Socket;
  private readonly reader = new ChunkReader({ maxMessageBytes: 1 << 20 });
  private readonly writer: ChunkWriter;
  private readonly o: PublisherOptions;
  private buffered = Buffer.alloc(0);
  private handshakeDone = false;
  private readonly waiters: Array<{ test: (m: AmfValue[]) => boolean; resolve: (m: AmfValue[]) => void }> = [];
  private txn = 1;
  private streamId = 0;
  /** Every command/status message the server sent, decoded. */
  readonly received: AmfValue[][] = [];
  closed: Promise<void>;
  private handshakeResolve!: () => void;
  private handshakeReject!: (e: Error) => void;

  private constructor(o: PublisherOptions) {
    this.o = o;
    this.writer = new ChunkWriter(128);
    this.socket = tcpConnect({ host: o.host ?? '127.0.0.1', port: o.port });
    this.socket.setNoDelay(true);
    this.socket.on('error', () => {});
    this.closed = new Promise((r) => this.socket.once('close', () => {
      for (const w of this.waiters.splice(0)) w.resolve([]);
      this.handshakeReject?.(new Error('connection closed during the handshake'));
      r();
    }));
    this.socket.on('data', (b: Buffer) => this.onData(b));
  }

  /** Connects and completes the handshake (plain C1). */
  static async open(o: PublisherOptions): Promise<RtmpTestPublisher> {
    const p = new RtmpTestPublisher(o);
    const done = new Promise<void>((resolve, reject) => { p.handshakeResolve = resolve; p.handshakeReject = reject; });
    await new Promise<void>((resolve, reject) => {
      p.socket.once('connect', resolve);
      p.socket.once('error', reject);
    });
    const c1 = Buffer.concat([Buffer.alloc(8), randomBytes(1528)]);
    p.socket.write(Buffer.concat([Buffer.from([3]), c1]));
    await done;
    return p;
  }

  private onData(b: Buffer): void {
    if (!this.handshakeDone) {
      this.buffered = Buffer.concat([this.buffered, b]);
      if (this.buffered.length < 1 + 1536 * 2) return;
      const s1 = this.buffered.subarray(1, 1537);
      const rest = this.buffered.subarray(1 + 1536 * 2);
      this.handshakeDone = true;
      this.socket.write(s1); // C2 = S1
      this.handshakeResolve();
      if (rest.length === 0) return;
      b = Buffer.from(rest);
    }
    let msgs: RtmpMessage[];
    try {
      msgs = this.reader.push(b);
    } catch {
      this.socket.destroy();
      return;
    }
    for (const m of msgs) {
      if (m.type !== 20) continue;
      const values = decodeAmf0(m.payload);
      this.received.push(values);
      for (let i = 0; i < this.waiters.length; i++) {
        const w = this.waiters[i]!;
        if (w.test(values)) {
          this.waiters.splice(i, 1);
          w.resolve(values);
          break;
        }
      }
    }
  }

  private waitFor(test: (m: AmfValue[]) => boolean, timeoutMs = 5000): Promise<AmfValue[]> {
    const seen = this.received.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timed out waiting for the server')), timeoutMs);
      this.waiters.push({ test, resolve: (m) => { clearTimeout(t); resolve(m); } });
    });
  }

  /** Sends one message on a chunk stream. */
  send(csid: number, type: number, streamId: number, timestamp: number, payload: Buffer): void {
    this.socket.write(this.writer.encode({ csid, type, streamId, timestamp, payload }));
  }

  sendCommand(values: AmfEncodable[], streamId = 0, csid = 3): void {
    this.send(csid, 20, streamId, 0, encodeAmf0(values));
  }

  /** Bytes as they are, after the handshake (hostile tests). */
  sendRaw(buf: Buffer): boolean {
    return this.socket.write(buf);
  }

  setChunkSize(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    this.send(2, 1, 0, 0, b);
    this.writer.setChunkSize(n);
  }

  async connect(): Promise<AmfValue[]> {
    const host = this.o.host ?? '127.0.0.1';
    const app = this.o.app ?? 'live';
    const obj = this.o.connectObject ?? { app, type: 'nonprivate', flashVer: 'FMLE/3.0 (compatible; appendcast-test)', tcUrl: this.o.tcUrl ?? `rtmp://${host}:${this.o.port}/${app}` };
    if (this.o.chunkSize) this.setChunkSize(this.o.chunkSize);
    const txn = this.txn++;
    this.sendCommand(['connect', txn, obj]);
    return this.waitFor((m) => (m[0] === '_result' || m[0] === '_error') && m[1] === txn);
  }

  /** releaseStream, FCPublish, createStream, publish; resolves on Publish.Start, rejects with PublishRefused on an error status. */
  async publish(name: string): Promise<StatusInfo> {
    this.sendCommand(['releaseStream', this.txn++, null, name]);
    this.sendCommand(['FCPublish', this.txn++, null, name]);
    const txn = this.txn++;
    this.sendCommand(['createStream', txn, null]);
    const r = await this.waitFor((m) => m[0] === '_result' && m[1] === txn);
    this.streamId = typeof r[3] === 'number' ? r[3] : 1;
    this.sendCommand(['publish', this.txn++, null, name, 'live'], this.streamId, 8);
    const status = await this.waitFor((m) => m[0] === 'onStatus');
    const info = (status[3] ?? {}) as AmfObject;
    const s: StatusInfo = { level: String(info['level']), code: String(info['code']), description: String(info['description']) };
    if (s.level === 'error') throw new PublishRefused(s);
    return s;
  }

  /** Waits for the next onStatus after those seen so far (e.g. a refusal after Publish.Start). */
  async nextStatus(timeoutMs = 5000): Promise<StatusInfo | undefined> {
    const before = this.received.filter((m) => m[0] === 'onStatus').length;
    const m = await this.waitFor(() => this.received.filter((x) => x[0] === 'onStatus').length > before, timeoutMs).catch(() => undefined);
    if (!m || m.length === 0) return undefined;
    const last = this.received.filter((x) => x[0] === 'onStatus').at(-1)!;
    const info = (last[3] ?? {}) as AmfObject;
    return { level: String(info['level']), code: String(info['code']), description: String(info['description']) };
  }

  /** One FLV tag as an RTMP message on the published stream (ffmpeg's chunk streams: 4 audio/data, 6 video). */
  sendTag(tag: FlvTag): void {
    const csid = tag.type === 9 ? 6 : 4;
    const body = tag.type === 18 ? Buffer.concat([encodeAmf0(['@setDataFrame']), tag.body]) : tag.body;
    this.send(csid, tag.type, this.streamId, tag.timestamp, body);
  }

  /**
   * Sends tags in order; `realtime` paces them by their timestamps (like a camera), else as fast as
   * the socket takes them. Resolves when all are written (or the connection closed).
   */
  async sendTags(tags: readonly FlvTag[], opts: { realtime?: boolean; speed?: number } = {}): Promise<number> {
    const start = Date.now();
    const t0 = tags.find((t) => t.type !== 18)?.timestamp ?? 0;
    let sent = 0;
    for (const tag of tags) {
      if (this.socket.destroyed) break;
      if (opts.realtime) {
        const due = start + (tag.timestamp - t0) / (opts.speed ?? 1);
        const wait = due - Date.now();
        if (wait > 2) await delay(wait); // pacing: the tag is due then
      }
      this.sendTag(tag);
      sent++;
      if (this.socket.writableLength > 1 << 20) await new Promise((r) => this.socket.once('drain', r));
    }
    return sent;
  }

  /** FCUnpublish + deleteStream, then close (ffmpeg's ending). */
  async unpublish(): Promise<void> {
    this.sendCommand(['FCUnpublish', this.txn++, null, 'x']);
    this.sendCommand(['deleteStream', this.txn++, null, this.streamId]);
    await this.end();
  }

  async end(): Promise<void> {
    this.socket.end();
    await Promise.race([this.closed, delay(2000)]); // the server's close, or give up on it after 2 s
    this.socket.destroy();
  }
}

/** onMetaData as an FLV script tag body (an ECMA array, as ffmpeg writes it). */
export function metadataTag(values: Record<string, AmfValue>, timestamp = 0): FlvTag {
  return { type: 18, timestamp, body: encodeAmf0(['onMetaData', new AmfEcmaArray(values)]) };
}
