/**
 * The sending half of the chunk stream. Header compression as FFmpeg does it: fmt 0 on a csid's
 * first message, when the message stream id changes or the timestamp goes backwards; otherwise a
 * delta in fmt 1 (type or length changed), fmt 2 (same type and length) or fmt 3 (same delta too).
 * Extended timestamps are written on type-3 continuations as well (spec §5.3.1.3, FFmpeg), which is
 * the rule our ChunkReader enforces.
 */
export interface OutMessage {
  csid: number;
  type: number;
  streamId: number;
  /** u32 ms. */
  timestamp: number;
  payload: Buffer;
}

interface Sent {
  streamId: number;
  type: number;
  length: number;
  timestamp: number;
  /** What a type-3 header would add: after fmt 0, the absolute timestamp (as readers compute it). */
  delta: number;
  /** The latest fmt 0/1/2 header used an extended timestamp. */
  extended: boolean;
}

const EXT_TS = 0xffffff;
const MESSAGE_HEADER = [11, 7, 3, 0] as const;

function basicHeaderSize(csid: number): number {
  return csid < 64 ? 1 : csid < 320 ? 2 : 3;
}

function writeBasicHeader(buf: Buffer, at: number, fmt: number, csid: number): number {
  if (csid < 64) {
    buf[at] = (fmt << 6) | csid;
    return at + 1;
  }
  if (csid < 320) {
    buf[at] = fmt << 6;
    buf[at + 1] = csid - 64;
    return at + 2;
  }
  buf[at] = (fmt << 6) | 1;
  buf[at + 1] = (csid - 64) & 0xff;
  buf[at + 2] = (csid - 64) >> 8;
  return at + 3;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new RangeError(what);
}

export class ChunkWriter {
  private size: number;
  private readonly sent = new Map<number, Sent>();

  constructor(chunkSize = 128) {
    this.size = 128;
    this.setChunkSize(chunkSize);
  }

  get chunkSize(): number {
    return this.size;
  }

  /** Switch to a new chunk size, right after encoding the Set Chunk Size message that announces it. */
  setChunkSize(n: number): void {
    check(Number.isInteger(n) && n >= 1 && n <= 0x7fffffff, `chunk size must be 1..0x7fffffff, got ${n}`);
    this.size = n;
  }

  /** One message as chunk-stream bytes (one allocation). */
  encode(msg: OutMessage): Buffer {
    return this.write(msg, null);
  }

  /** The same bytes as encode(), cut at chunk boundaries (views of one buffer): for interleaving. */
  encodeChunks(msg: OutMessage): Buffer[] {
    const starts: number[] = [];
    const buf = this.write(msg, starts);
    return starts.map((s, i) => buf.subarray(s, starts[i + 1] ?? buf.length));
  }

  private write(msg: OutMessage, starts: number[] | null): Buffer {
    const { csid, type, streamId, timestamp, payload } = msg;
    check(Number.isInteger(csid) && csid >= 2 && csid <= 65599, `csid must be 2..65599, got ${csid}`);
    check(Number.isInteger(type) && type >= 0 && type <= 255, `message type must be a byte, got ${type}`);
    check(Number.isInteger(streamId) && streamId >= 0 && streamId <= 0xffffffff, `stream id must be a u32, got ${streamId}`);
    check(Number.isInteger(timestamp) && timestamp >= 0 && timestamp <= 0xffffffff, `timestamp must be a u32, got ${timestamp}`);
    check(payload.length <= 0xffffff, `message of ${payload.length} bytes exceeds the 24-bit length`);

    const prev = this.sent.get(csid);
    let fmt: 0 | 1 | 2 | 3;
    let value: number;
    if (prev === undefined || prev.streamId !== streamId || timestamp < prev.timestamp) {
      fmt = 0;
      value = timestamp;
    } else {
      value = timestamp - prev.timestamp;
      if (type !== prev.type || payload.length !== prev.length) fmt = 1;
      else if (value !== prev.delta) fmt = 2;
      else fmt = 3;
    }
    // For fmt 3 the delta equals the previous one, so its extended-ness is the previous header's.
    const extended = fmt === 3 ? (prev as Sent).extended : value >= EXT_TS;
    const bh = basicHeaderSize(csid);
    const ext = extended ? 4 : 0;
    const chunks = Math.max(1, Math.ceil(payload.length / this.size));
    const total = bh + MESSAGE_HEADER[fmt] + ext + payload.length + (chunks - 1) * (bh + ext);
    const buf = Buffer.allocUnsafe(total);

    starts?.push(0);
    let at = writeBasicHeader(buf, 0, fmt, csid);
    if (fmt <= 2) {
      buf.writeUIntBE(extended ? EXT_TS : value, at, 3);
      at += 3;
    }
    if (fmt <= 1) {
      buf.writeUIntBE(payload.length, at, 3);
      buf[at + 3] = type;
      at += 4;
    }
    if (fmt === 0) at = buf.writeUInt32LE(streamId, at);
    if (extended) at = buf.writeUInt32BE(value, at);
    let off = 0;
    for (;;) {
      const n = Math.min(this.size, payload.length - off);
      at += payload.copy(buf, at, off, off + n);
      off += n;
      if (off >= payload.length) break;
      starts?.push(at);
      at = writeBasicHeader(buf, at, 3, csid);
      if (extended) at = buf.writeUInt32BE(value, at);
    }

    this.sent.set(csid, {
      streamId,
      type,
      length: payload.length,
      timestamp,
      delta: fmt === 3 ? (prev as Sent).delta : value,
      extended,
    });
    return buf;
  }
}
