/**
 * One RTMP connection, publish only, written for hostile input: handshake → connect → createStream →
 * publish (the key is checked here, before NetStream.Publish.Start) → media. Every byte goes through
 * bounded parsers; any error ends this connection only, with one log line and a counted reason.
 * Nothing thrown leaves `onData`.
 */
import type { Socket } from 'node:net';
import { AmfError } from '../../media/amf/errors.js';
import { decodeAmf0 } from '../../media/amf/amf0.js';
import { MediaError } from '../../media/errors.js';
import { parseFlvTag } from '../../media/flv/flv-tag.js';
import type { FlvTag, FlvTagType } from '../../media/types.js';
import { LogBudget, suppressedField } from '../../util/log-budget.js';
import type { Logger } from '../../util/logger.js';
import type { PublishDecision, PublishInfo, PublishRequest, PublishSink, RejectReason } from '../types.js';
import { splitAggregate } from './aggregate.js';
import { ChunkReader, type RtmpMessage } from './chunk-reader.js';
import { ChunkWriter, type OutMessage } from './chunk-writer.js';
import { connectRejected, connectResult, onStatus, readCommand, result, type Command } from './commands.js';
import {
  acknowledgement, parseUserControl, parseWindowAckSize, pingResponse, setChunkSize, setPeerBandwidth, streamBegin, windowAckSize,
} from './control.js';
import { RtmpProtocolError, type RtmpErrorReason } from './errors.js';
import { ServerHandshake } from './handshake.js';
import type { RtmpServerLimits } from './server-limits.js';
import { appName, MAX_TCURL_CHARS, publishTarget } from './publish-target.js';

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly limits: RtmpServerLimits;
  readonly log: Logger;
  /** Thins peer-caused log lines (one budget per server, keyed by reason). */
  readonly logBudget: LogBudget;
  authorize(req: PublishRequest): PublishDecision;
  /** Called for an accepted publish, before Publish.Start is sent. */
  onPublish(info: PublishInfo, connection: RtmpConnection): PublishSink;
  /** Reports a publish refused (before or, for an unsupported codec, just after it started). */
  onRejected(r: { app: string; stream: string; remote: string; reason: RejectReason }): void;
  onProtocolError(reason: RtmpErrorReason, remote: string, err: unknown): void;
  onHeldBytes(delta: number): void;
  onClose(connection: RtmpConnection): void;
  newPublishId(): string;
}

type State = 'handshake' | 'connect' | 'connected' | 'publishing' | 'closed';

// Message types (reference §2).
const SET_CHUNK_SIZE = 1, ABORT = 2, ACK = 3, USER_CONTROL = 4, WINDOW_ACK_SIZE = 5, SET_PEER_BANDWIDTH = 6;
const AUDIO = 8, VIDEO = 9, DATA_AMF3 = 15, SHARED_OBJECT_AMF3 = 16, COMMAND_AMF3 = 17, DATA_AMF0 = 18, SHARED_OBJECT_AMF0 = 19, COMMAND_AMF0 = 20, AGGREGATE = 22;

/** Chunk stream ids for what we send (ffmpeg's and MediaMTX's choices). */
const CSID_COMMAND = 3, CSID_STATUS = 5;
/** What we announce after connect (the SRS/MediaMTX values). ffmpeg adopts our chunk size as its own: fewer, larger chunks to parse. */
const OUR_WINDOW = 2_500_000;
export const OUR_CHUNK_SIZE = 65_536;
/** createStream calls allowed per connection (a publisher needs one). */
const MAX_STREAMS = 8;
/** After a refusal, how long the peer gets to read our onStatus before the socket is destroyed. */
const CLOSE_GRACE_MS = 1000;
/** `@setDataFrame` as an AMF0 string: 0x02, u16 length 13, the name. Stripped so metadata is an FLV script tag. */
const SET_DATA_FRAME = Buffer.from('02000d40736574446174614672616d65', 'hex');

const REFUSAL_STATUS: Record<RejectReason, string> = {
  'unknown-stream': 'NetStream.Publish.BadName',
  'wrong-app': 'NetStream.Publish.BadName',
  disabled: 'NetStream.Publish.BadName',
  'already-publishing': 'NetStream.Publish.BadName',
  'bad-key': 'NetStream.Publish.Unauthorized',
  'unsupported-codec': 'NetStream.Publish.Rejected',
  'pulled-stream': 'NetStream.Publish.BadName',
};

const REFUSAL_TEXT: Record<RejectReason, string> = {
  'unknown-stream': 'no such stream is configured',
  'wrong-app': 'unknown application',
  disabled: 'this stream is disabled',
  'already-publishing': 'this stream is already publishing',
  'bad-key': 'wrong or missing key',
  'unsupported-codec': 'unsupported codec',
  'pulled-stream': 'this stream is pulled from its camera, not published',
};

export class RtmpConnection {
  readonly remote: string;
  private readonly socket: Socket;
  private readonly host: ConnectionHost;
  private readonly log: Logger;
  private state: State = 'handshake';
  private readonly handshake = new ServerHandshake();
  private readonly reader: ChunkReader;
  private readonly writer = new ChunkWriter();
  private held = 0;
  private bytesIn = 0;
  /** Acknowledge after this many bytes (the peer's Window Acknowledgement Size); 0 = never asked. */
  private peerWindow = 0;
  private lastAckAt = 0;
  private app: string | undefined;
  private rawApp: unknown;
  private tcUrl: string | undefined;
  private streams = 0;
  private publishStreamId = 0;
  private sink: PublishSink | undefined;
  private publish: PublishInfo | undefined;
  /** Deadline of the current state (handshake, publish); media time-out is checked against lastMediaAt. */
  private deadline: number;
  private lastMediaAt = 0;

  constructor(socket: Socket, host: ConnectionHost) {
    this.socket = socket;
    this.host = host;
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.log = host.log.child({ remote: this.remote });
    const l = host.limits;
    this.reader = new ChunkReader({
      maxMessageBytes: l.maxMessageBytes, maxChunkStreams: l.maxChunkStreams, maxChunkSize: l.maxChunkSize, maxHeldBytes: l.maxHeldBytesPerConnection,
    });
    this.deadline = Date.now() + l.handshakeTimeoutMs;
    socket.setNoDelay(true);
    socket.on('data', (buf: Buffer) => this.onData(buf));
    socket.on('error', () => {}); // resets are normal; 'close' follows
    socket.on('close', () => this.closed());
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  get publishing(): PublishInfo | undefined {
    return this.publish;
  }

  /** Called periodically by the server: enforces the handshake, publish and media time-outs. */
  tick(now: number): void {
    const l = this.host.limits;
    if (this.state === 'handshake' && now > this.deadline) this.fail('handshake-timeout', `no handshake within ${l.handshakeTimeoutMs} ms`);
    else if ((this.state === 'connect' || this.state === 'connected') && now > this.deadline) this.fail('publish-timeout', `no publish within ${l.publishTimeoutMs} ms`);
    else if (this.state === 'publishing' && now - this.lastMediaAt > l.mediaTimeoutMs) this.fail('media-timeout', `no audio or video for ${l.mediaTimeoutMs} ms`);
  }

  private onData(buf: Buffer): void {
    if (this.state === 'closed') return;
    try {
      this.bytesIn += buf.length;
      let input = buf;
      if (this.state === 'handshake') {
        const r = this.handshake.push(input);
        if (r.send) this.socket.write(r.send);
        if (!r.done) return;
        this.state = 'connect';
        this.deadline = Date.now() + this.host.limits.publishTimeoutMs;
        input = r.rest;
        if (input.length === 0) return;
      }
      const messages = this.reader.push(input);
      this.account();
      for (const m of messages) {
        if (this.isClosed()) return;
        this.onMessage(m);
      }
      this.maybeAck();
    } catch (err) {
      this.failWith(err);
    }
  }

  private account(): void {
    const delta = this.reader.heldBytes - this.held;
    if (delta !== 0) {
      this.held += delta;
      this.host.onHeldBytes(delta);
    }
  }

  private onMessage(m: RtmpMessage): void {
    switch (m.type) {
      case AUDIO:
      case VIDEO:
        this.onMedia(m.type, m.timestamp, m.payload);
        return;
      case DATA_AMF0:
        this.onDataMessage(m.payload, m.timestamp);
        return;
      case DATA_AMF3:
        // A format byte (0) and then AMF0 values (reference §3).
        if (m.payload.length > 0) this.onDataMessage(m.payload.subarray(1), m.timestamp);
        return;
      case COMMAND_AMF0:
        this.onCommand(m.payload, m.streamId, false);
        return;
      case COMMAND_AMF3:
        if (m.payload.length > 0) this.onCommand(m.payload.subarray(1), m.streamId, true);
        return;
      case AGGREGATE:
        for (const sub of splitAggregate(m)) this.onMessage(sub);
        return;
      case USER_CONTROL: {
        const uc = parseUserControl(m.payload);
        if (uc.event === 'ping-request') this.send(pingResponse(uc.value));
        return;
      }
      case WINDOW_ACK_SIZE:
        this.peerWindow = parseWindowAckSize(m.payload);
        return;
      case SET_CHUNK_SIZE: // applied by the reader
      case ABORT:
      case ACK:
      case SET_PEER_BANDWIDTH:
      case SHARED_OBJECT_AMF0:
      case SHARED_OBJECT_AMF3:
      default:
        return; // nothing a publish-only server needs; unknown types are ignored, not trusted
    }
  }

  private maybeAck(): void {
    if (this.peerWindow > 0 && this.bytesIn - this.lastAckAt >= this.peerWindow) {
      this.lastAckAt = this.bytesIn;
      this.send(acknowledgement(this.bytesIn % 2 ** 32));
    }
  }

  private onMedia(type: FlvTagType, timestamp: number, body: Buffer): void {
    if (this.state !== 'publishing' || !this.sink) return; // media before publish: dropped, never buffered
    const parsed = parseFlvTag({ type, timestamp, body });
    switch (parsed.kind) {
      case 'video':
      case 'audio':
        this.lastMediaAt = Date.now();
        this.sink.packet(parsed, this.lastMediaAt);
        return;
      case 'unsupported':
        this.refuseCodec(`${parsed.media} codec ${parsed.codec}`);
        return;
      default:
        return;
    }
  }

  private onDataMessage(payload: Buffer, timestamp: number): void {
    if (this.state !== 'publishing' || !this.sink) return;
    const body = payload.subarray(0, SET_DATA_FRAME.length).equals(SET_DATA_FRAME) ? payload.subarray(SET_DATA_FRAME.length) : payload;
    let parsed;
    try {
      parsed = parseFlvTag({ type: 18, timestamp, body } satisfies FlvTag);
    } catch (err) {
      // Metadata is advisory: a malformed onMetaData is ignored, not a reason to cut a camera off.
      this.log.debug({ err }, 'ignored malformed data message');
      return;
    }
    if (parsed.kind === 'metadata') this.sink.packet(parsed, Date.now());
  }

  private onCommand(payload: Buffer, streamId: number, amf3: boolean): void {
    const l = this.host.limits;
    const values = decodeAmf0(payload, { maxDepth: l.maxAmfDepth, allowAmf3: amf3 });
    const cmd = readCommand(values, streamId);
    if (!cmd) throw new RtmpProtocolError('command', 'a command message that does not start with its name');
    this.onCommand_(cmd);
  }

  private onCommand_(cmd: Command): void {
    switch (cmd.name) {
      case 'connect': {
        if (this.state !== 'connect') throw new RtmpProtocolError('command', 'connect sent twice');
        const app = appName(cmd.props?.['app']);
        if (!cmd.props || app === undefined) {
          this.sendCommand(connectRejected(cmd.txn, 'connect needs an app'), 0);
          this.fail('command', 'connect without a command object or app', false);
          return;
        }
        this.app = app;
        this.rawApp = cmd.props['app'];
        const tcUrl = cmd.props['tcUrl'] ?? cmd.props['tcurl'];
        this.tcUrl = typeof tcUrl === 'string' && tcUrl.length <= MAX_TCURL_CHARS ? tcUrl : undefined;
        const enc = cmd.props['objectEncoding'];
        this.send(windowAckSize(OUR_WINDOW));
        this.send(setPeerBandwidth(OUR_WINDOW, 2));
        this.send(setChunkSize(OUR_CHUNK_SIZE));
        this.writer.setChunkSize(OUR_CHUNK_SIZE);
        this.sendCommand(connectResult(cmd.txn, enc === 3 ? 3 : 0), 0);
        this.state = 'connected';
        return;
      }
      case 'createStream':
        this.requireConnected('createStream');
        if (++this.streams > MAX_STREAMS) throw new RtmpProtocolError('command', `more than ${MAX_STREAMS} createStream calls`);
        this.sendCommand(result(cmd.txn, this.streams), 0);
        return;
      case 'announce':
        this.requireConnected(cmd.via);
        this.sendCommand(result(cmd.txn, undefined), 0);
        return;
      case 'publish':
        this.requireConnected('publish');
        if (cmd.streamName === false) this.unpublish();
        else this.startPublish(cmd.streamName, cmd.streamId);
        return;
      case 'unpublish':
        if (this.state === 'publishing') this.unpublish();
        return;
      case 'play':
        this.sendCommand(onStatus('error', 'NetStream.Play.Failed', 'this server takes publishes only'), cmd.txn === 0 ? 1 : 0);
        this.fail('play', `${cmd.via} refused: publish only`, false);
        return;
      case 'ignored':
        return; // _checkbw, getStreamLength, _result, onStatus…: nothing to do
    }
  }

  private requireConnected(what: string): void {
    if (this.state === 'connect') throw new RtmpProtocolError('command', `${what} before connect`);
  }

  private startPublish(name: string | undefined, streamId: number): void {
    if (this.state === 'publishing') throw new RtmpProtocolError('command', 'publish while already publishing');
    const app = this.app ?? '';
    const target = typeof name === 'string' ? publishTarget(name, this.tcUrl, this.rawApp) : undefined;
    const stream = target?.stream ?? '';
    this.publishStreamId = streamId;
    const refuse = (reason: RejectReason, detail: string) => {
      this.host.onRejected({ app, stream, remote: this.remote, reason });
      this.sendStatus('error', REFUSAL_STATUS[reason], `${REFUSAL_TEXT[reason]}${detail}`);
      this.closeSoon();
    };
    if (!target) {
      refuse('unknown-stream', typeof name === 'string' ? ': the stream name is empty or too long' : ': publish without a stream name');
      return;
    }
    const decision = this.host.authorize({ app, stream: target.stream, key: target.key, remote: this.remote });
    if (!decision.ok) {
      refuse(decision.reason, '');
      return;
    }
    const info: PublishInfo = { id: this.host.newPublishId(), stream: target.stream, remote: this.remote, startedAt: Date.now() };
    this.publish = info;
    this.sink = this.host.onPublish(info, this);
    this.state = 'publishing';
    this.lastMediaAt = Date.now();
    this.send(streamBegin(streamId));
    this.sendStatus('status', 'NetStream.Publish.Start', `${target.stream} is now published`);
    this.log.info({ stream: target.stream, publish: info.id }, 'publish started');
  }

  private refuseCodec(what: string): void {
    const stream = this.publish?.stream ?? '';
    this.host.onRejected({ app: this.app ?? '', stream, remote: this.remote, reason: 'unsupported-codec' });
    this.log.warn({ stream, publish: this.publish?.id }, `publish refused: ${what} is not supported (H.264/H.265 video, AAC/G.711 audio are)`);
    this.sendStatus('error', REFUSAL_STATUS['unsupported-codec'], `${what} is not supported; send H.264 or H.265 video with AAC or G.711 audio`);
    this.endPublish();
    this.closeSoon();
  }

  private unpublish(): void {
    this.endPublish();
    this.state = 'connected';
    this.deadline = Date.now() + this.host.limits.publishTimeoutMs;
  }

  private endPublish(): void {
    const sink = this.sink;
    this.sink = undefined;
    if (this.publish) this.log.info({ stream: this.publish.stream, publish: this.publish.id }, 'publish ended');
    this.publish = undefined;
    sink?.end();
  }

  /** Disconnects a live publish (its pipeline gave up on it). */
  kick(why: string): void {
    if (this.state === 'closed') return;
    this.log.warn({ stream: this.publish?.stream, publish: this.publish?.id }, `publisher disconnected: ${why}`);
    this.sendStatus('error', 'NetStream.Failed', why);
    this.endPublish();
    this.closeSoon();
  }

  /** The server-wide budget for partial messages ran out while this connection asked for more. */
  overBudget(): void {
    this.fail('buffer-limit', 'the server-wide budget for partly received messages is used up');
  }

  /** The server is stopping: end the publish (its pipeline flushes) and close. */
  shutdown(): void {
    if (this.state === 'closed') return;
    this.endPublish();
    this.destroy();
  }

  private sendStatus(level: 'status' | 'error', code: string, description: string): void {
    this.sendCommand(onStatus(level, code, description), this.publishStreamId || 1, CSID_STATUS);
  }

  private sendCommand(payload: Buffer, streamId: number, csid = CSID_COMMAND): void {
    this.send({ csid, type: COMMAND_AMF0, streamId, timestamp: 0, payload });
  }

  private send(m: OutMessage): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    const out = this.writer.encode(m);
    // A peer that does not read what we send (we send little) is not worth buffering for.
    if (this.socket.writableLength + out.length > this.host.limits.maxWriteBufferBytes) {
      this.fail('buffer-limit', 'the peer does not read our replies');
      return;
    }
    this.socket.write(out);
  }

  private failWith(err: unknown): void {
    if (err instanceof RtmpProtocolError) this.fail(err.reason, err.message, true, err);
    else if (err instanceof AmfError) this.fail('amf', err.message, true, err);
    else if (err instanceof MediaError) this.fail('media', err.message, true, err);
    else this.fail('internal', err instanceof Error ? err.message : String(err), true, err);
  }

  /** Ends this connection for a protocol reason: one log line, one counted reason. */
  private fail(reason: RtmpErrorReason, message: string, destroy = true, err?: unknown): void {
    if (this.state === 'closed') return;
    this.host.onProtocolError(reason, this.remote, err ?? message);
    const dropped = this.host.logBudget.take(`closed:${reason}`);
    if (dropped !== undefined) {
      this.log.warn({ reason, stream: this.publish?.stream, publish: this.publish?.id, bytesIn: this.bytesIn, ...suppressedField(dropped) }, `rtmp connection closed: ${message}`);
    }
    this.endPublish();
    if (destroy) this.destroy();
    else this.closeSoon();
  }

  /** Lets our last replies go out, then closes; destroys if the peer lingers. */
  private closeSoon(): void {
    if (this.state === 'closed') return;
    this.release();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  private destroy(): void {
    this.release();
    this.socket.destroy();
  }

  /** Stops reading and gives back what the parser held. */
  private release(): void {
    this.state = 'closed';
    this.socket.removeAllListeners('data');
    if (this.held !== 0) {
      this.host.onHeldBytes(-this.held);
      this.held = 0;
    }
  }

  private closed(): void {
    this.endPublish();
    if (this.state !== 'closed') this.release();
    this.host.onClose(this);
  }
}
