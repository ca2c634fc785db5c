/**
 * Aggregate messages (type 22): FLV-tag-like sub-messages back to back, each
 * type (1) size (3) timestamp (3, low bits) timestamp-extended (1, high bits) stream id (3) data
 * back-pointer (4). Sub-payloads are views of the aggregate's payload, which the chunk reader owns.
 */
import { RtmpProtocolError } from './errors.js';
import type { RtmpMessage } from './chunk-reader.js';
import { MessageType } from './control.js';

const SUB_HEADER = 11;
const BACK_POINTER = 4;
export const DEFAULT_MAX_AGGREGATE_PARTS = 4096;

/**
 * Splits an aggregate into its sub-messages. Timestamps are renormalised to the aggregate's:
 * sub_ts + (aggregate_ts − first_sub_ts), mod 2^32; the aggregate's stream id and csid win.
 * Throws RtmpProtocolError('aggregate-malformed') on a truncated sub-header, a sub-size beyond the
 * remaining bytes, more than `maxParts` parts, or a control or aggregate message inside (the chunk
 * reader would not apply the one, and nesting the other is an amplification path).
 * The back-pointer is checked leniently: read when present, never compared.
 */
export function splitAggregate(msg: RtmpMessage, maxParts = DEFAULT_MAX_AGGREGATE_PARTS): RtmpMessage[] {
  const body = msg.payload;
  const out: RtmpMessage[] = [];
  let first = 0;
  let pos = 0;
  while (pos < body.length) {
    if (body.length - pos < SUB_HEADER) {
      throw new RtmpProtocolError('aggregate-malformed', `aggregate sub-header truncated at byte ${pos}`);
    }
    const type = body[pos] as number;
    const size = body.readUIntBE(pos + 1, 3);
    // Low 24 bits, then the high 8: the FLV layout, not the spec drawing's.
    const ts = (body.readUIntBE(pos + 4, 3) | ((body[pos + 7] as number) << 24)) >>> 0;
    pos += SUB_HEADER;
    if (size > body.length - pos) {
      throw new RtmpProtocolError('aggregate-malformed', `aggregate sub-message of ${size} bytes with ${body.length - pos} left`);
    }
    if (type === MessageType.Aggregate || (type >= MessageType.SetChunkSize && type <= MessageType.SetPeerBandwidth)) {
      throw new RtmpProtocolError('aggregate-malformed', `message type ${type} inside an aggregate`);
    }
    if (out.length >= maxParts) {
      throw new RtmpProtocolError('aggregate-malformed', `aggregate of more than ${maxParts} parts`);
    }
    if (out.length === 0) first = ts;
    out.push({
      csid: msg.csid,
      type,
      streamId: msg.streamId,
      timestamp: (ts - first + msg.timestamp) >>> 0,
      payload: body.subarray(pos, pos + size),
    });
    pos += size;
    // The back-pointer (size + 11) may be missing after the last part; its value is not trusted.
    pos = Math.min(body.length, pos + BACK_POINTER);
  }
  return out;
}
