/**
 * Protocol control messages (types 1, 2, 3, 5, 6) and User Control events (type 4): parsers that
 * throw RtmpProtocolError('control-malformed' | 'chunk-size'), and builders that return an
 * OutMessage on csid 2, message stream 0, timestamp 0, as the spec places them.
 */
import { RtmpProtocolError } from './errors.js';
import type { OutMessage } from './chunk-writer.js';

export const MessageType = {
  SetChunkSize: 1,
  Abort: 2,
  Acknowledgement: 3,
  UserControl: 4,
  WindowAckSize: 5,
  SetPeerBandwidth: 6,
  Audio: 8,
  Video: 9,
  DataAmf3: 15,
  SharedObjectAmf3: 16,
  CommandAmf3: 17,
  DataAmf0: 18,
  SharedObjectAmf0: 19,
  CommandAmf0: 20,
  Aggregate: 22,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export const UserControlEvent = {
  StreamBegin: 0,
  StreamEof: 1,
  StreamDry: 2,
  SetBufferLength: 3,
  StreamIsRecorded: 4,
  PingRequest: 6,
  PingResponse: 7,
} as const;

/** The csid protocol control travels on. */
export const CONTROL_CSID = 2;

/** Set Peer Bandwidth limit types. */
export type PeerBandwidthLimit = 0 | 1 | 2;

export type UserControl =
  | { event: 'stream-begin' | 'stream-eof' | 'stream-dry' | 'stream-is-recorded'; eventType: number; streamId: number; value: number }
  | { event: 'set-buffer-length'; eventType: number; streamId: number; bufferMs: number; value: number }
  | { event: 'ping-request' | 'ping-response'; eventType: number; timestamp: number; value: number }
  /** Non-spec events (SWF verification 26/27, NMS 31/32…): passed through, not interpreted; `value` is 0. */
  | { event: 'unknown'; eventType: number; data: Buffer; value: number };

export type ControlMessage =
  | { kind: 'set-chunk-size'; chunkSize: number }
  | { kind: 'abort'; csid: number }
  | { kind: 'acknowledgement'; sequence: number }
  | { kind: 'window-ack-size'; windowSize: number }
  | { kind: 'set-peer-bandwidth'; windowSize: number; limitType: PeerBandwidthLimit }
  | { kind: 'user-control'; control: UserControl };

function need(payload: Buffer, n: number, what: string): void {
  if (payload.length < n) {
    throw new RtmpProtocolError('control-malformed', `${what} needs ${n} bytes, got ${payload.length}`);
  }
}

// Parsers: extra trailing bytes are tolerated, as other stacks do; missing ones are not.

/**
 * A Set Chunk Size value: 1..maxChunkSize with the MSB clear (the MSB is reserved, and 0 would make
 * no progress). Values above 0xFFFFFF simply mean "no splitting".
 */
export function parseSetChunkSize(payload: Buffer, maxChunkSize = 0x7fffffff): number {
  need(payload, 4, 'Set Chunk Size');
  const v = payload.readUInt32BE(0);
  if (v === 0 || v > 0x7fffffff || v > maxChunkSize) {
    throw new RtmpProtocolError('chunk-size', `Set Chunk Size ${v} outside 1..${Math.min(maxChunkSize, 0x7fffffff)}`);
  }
  return v;
}

/** The csid an Abort message names. */
export function parseAbort(payload: Buffer): number {
  need(payload, 4, 'Abort');
  return payload.readUInt32BE(0);
}

/** Acknowledgement: the bytes the peer has received, mod 2^32. */
export function parseAcknowledgement(payload: Buffer): number {
  need(payload, 4, 'Acknowledgement');
  return payload.readUInt32BE(0);
}

/** Window Acknowledgement Size: ack after this many bytes. 0 is returned as is (the caller decides). */
export function parseWindowAckSize(payload: Buffer): number {
  need(payload, 4, 'Window Acknowledgement Size');
  return payload.readUInt32BE(0);
}

export function parseSetPeerBandwidth(payload: Buffer): { windowSize: number; limitType: PeerBandwidthLimit } {
  need(payload, 5, 'Set Peer Bandwidth');
  const limitType = payload[4] as number;
  if (limitType > 2) throw new RtmpProtocolError('control-malformed', `Set Peer Bandwidth limit type ${limitType}`);
  return { windowSize: payload.readUInt32BE(0), limitType: limitType as PeerBandwidthLimit };
}

/** Parses a control message (types 1–6); null for any other type. */
export function parseControl(msg: { type: number; payload: Buffer }, maxChunkSize?: number): ControlMessage | null {
  const p = msg.payload;
  switch (msg.type) {
    case MessageType.SetChunkSize:
      return { kind: 'set-chunk-size', chunkSize: parseSetChunkSize(p, maxChunkSize) };
    case MessageType.Abort:
      return { kind: 'abort', csid: parseAbort(p) };
    case MessageType.Acknowledgement:
      return { kind: 'acknowledgement', sequence: parseAcknowledgement(p) };
    case MessageType.WindowAckSize:
      return { kind: 'window-ack-size', windowSize: parseWindowAckSize(p) };
    case MessageType.SetPeerBandwidth:
      return { kind: 'set-peer-bandwidth', ...parseSetPeerBandwidth(p) };
    case MessageType.UserControl:
      return { kind: 'user-control', control: parseUserControl(p) };
    default:
      return null;
  }
}

/** User Control: u16 event type + data. `value` is the first u32 (stream id or ping timestamp). */
export function parseUserControl(p: Buffer): UserControl {
  need(p, 2, 'User Control');
  const eventType = p.readUInt16BE(0);
  switch (eventType) {
    case UserControlEvent.StreamBegin:
    case UserControlEvent.StreamEof:
    case UserControlEvent.StreamDry:
    case UserControlEvent.StreamIsRecorded: {
      need(p, 6, 'User Control stream event');
      const event =
        eventType === UserControlEvent.StreamBegin
          ? 'stream-begin'
          : eventType === UserControlEvent.StreamEof
            ? 'stream-eof'
            : eventType === UserControlEvent.StreamDry
              ? 'stream-dry'
              : 'stream-is-recorded';
      const streamId = p.readUInt32BE(2);
      return { event, eventType, streamId, value: streamId };
    }
    case UserControlEvent.SetBufferLength: {
      need(p, 10, 'User Control SetBufferLength');
      const streamId = p.readUInt32BE(2);
      return { event: 'set-buffer-length', eventType, streamId, bufferMs: p.readUInt32BE(6), value: streamId };
    }
    case UserControlEvent.PingRequest:
    case UserControlEvent.PingResponse: {
      need(p, 6, 'User Control ping');
      const timestamp = p.readUInt32BE(2);
      return { event: eventType === UserControlEvent.PingRequest ? 'ping-request' : 'ping-response', eventType, timestamp, value: timestamp };
    }
    default:
      return { event: 'unknown', eventType, data: p.subarray(2), value: 0 };
  }
}

// ---------- builders ----------

function u32(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${name} must be a u32, got ${n}`);
  return n;
}

function control(type: number, payload: Buffer): OutMessage {
  return { csid: CONTROL_CSID, type, streamId: 0, timestamp: 0, payload };
}

function u32Payload(n: number, name: string): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(u32(n, name), 0);
  return b;
}

/** Set Chunk Size. Right after encoding it, switch the ChunkWriter to the same size. */
export function setChunkSize(chunkSize: number): OutMessage {
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > 0x7fffffff) {
    throw new RangeError(`chunk size must be 1..0x7fffffff, got ${chunkSize}`);
  }
  return control(MessageType.SetChunkSize, u32Payload(chunkSize, 'chunkSize'));
}

export function abort(csid: number): OutMessage {
  return control(MessageType.Abort, u32Payload(csid, 'csid'));
}

/** Acknowledgement of `bytesReceived` (taken mod 2^32, as the field wraps). */
export function acknowledgement(bytesReceived: number): OutMessage {
  return control(MessageType.Acknowledgement, u32Payload(bytesReceived % 2 ** 32, 'bytesReceived'));
}

export function windowAckSize(windowSize: number): OutMessage {
  return control(MessageType.WindowAckSize, u32Payload(windowSize, 'windowSize'));
}

export function setPeerBandwidth(windowSize: number, limitType: PeerBandwidthLimit): OutMessage {
  const b = Buffer.allocUnsafe(5);
  b.writeUInt32BE(u32(windowSize, 'windowSize'), 0);
  b[4] = limitType;
  return control(MessageType.SetPeerBandwidth, b);
}

function userControl(eventType: number, ...fields: number[]): OutMessage {
  const b = Buffer.allocUnsafe(2 + 4 * fields.length);
  b.writeUInt16BE(eventType, 0);
  fields.forEach((f, i) => b.writeUInt32BE(u32(f, 'user control field'), 2 + 4 * i));
  return control(MessageType.UserControl, b);
}

export const streamBegin = (streamId: number): OutMessage => userControl(UserControlEvent.StreamBegin, streamId);
export const streamEof = (streamId: number): OutMessage => userControl(UserControlEvent.StreamEof, streamId);
export const streamDry = (streamId: number): OutMessage => userControl(UserControlEvent.StreamDry, streamId);
export const streamIsRecorded = (streamId: number): OutMessage => userControl(UserControlEvent.StreamIsRecorded, streamId);
export const setBufferLength = (streamId: number, bufferMs: number): OutMessage =>
  userControl(UserControlEvent.SetBufferLength, streamId, bufferMs);
/** Ping request/response: the timestamp is taken mod 2^32. */
export const pingRequest = (timestamp: number): OutMessage => userControl(UserControlEvent.PingRequest, timestamp % 2 ** 32);
export const pingResponse = (timestamp: number): OutMessage => userControl(UserControlEvent.PingResponse, timestamp % 2 ** 32);
