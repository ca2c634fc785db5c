/**
 * The receiving half of the RTMP chunk stream: bytes in, whole messages out. Written for hostile
 * peers (the node-media-server failure was 16 MiB pre-allocated per csid on any of 65 599 csids):
 *
 * - memory follows received bytes, not declared lengths: a partial message holds at most
 *   max(4 KiB, 2 × its received bytes), and everything held is capped by `maxHeldBytes`;
 * - unparsed input is only a split chunk header (≤ 18 bytes): payload bytes are consumed as they come;
 * - csids, message sizes and Set Chunk Size are bounded; a length change mid-message is refused;
 * - one rule for extended timestamps, the spec's and ffmpeg's: a type-3 chunk carries the 4 bytes
 *   whenever the latest fmt 0/1/2 header on its csid did.
 *
 * After a throw the reader is dead: the connection must close, and later pushes rethrow.
 */
import { RtmpProtocolError } from './errors.js';
import { resolveChunkLimits, type ChunkLimits } from './limits.js';
import { MessageType, parseAbort, parseSetChunkSize } from './control.js';

export interface RtmpMessage {
  csid: number;
  type: number;
  streamId: number;
  /** Absolute, u32 ms, wraps at 2^32. */
  timestamp: number;
  payload: Buffer;
}

export const DEFAULT_CHUNK_SIZE = 128;

/** First allocation for a message that is not complete in the current input. */
const INITIAL_ALLOC = 4096;
/** Largest chunk header: 3-byte basic header + 11-byte message header + 4-byte extended timestamp. */
const MAX_HEADER = 18;
const EXT_TS = 0xffffff;

/** Header state and assembly of one chunk stream. */
interface ChunkStream {
  readonly csid: number;
  /** Absolute timestamp of the message in progress or the last one. */
  timestamp: number;
  /** What a type-3 chunk starting a new message adds (after fmt 0: its absolute timestamp). */
  delta: number;
  length: number;
  type: number;
  streamId: number;
  /** The latest fmt 0/1/2 header used 0xFFFFFF, so type-3 chunks carry 4 more bytes. */
  extended: boolean;
  /** The extended value type-3 continuations must repeat. */
  extValue: number;
  inProgress: boolean;
  /** Assembly buffer; its length is its capacity, which is what heldBytes counts. */
  buf: Buffer | null;
  filled: number;
}

const EMPTY = Buffer.alloc(0);

export class ChunkReader {
  private readonly limits: ChunkLimits;
  private readonly streams = new Map<number, ChunkStream>();
  private inChunkSize = DEFAULT_CHUNK_SIZE;
  private held = 0;
  /** A chunk header split across pushes. */
  private readonly scratch = Buffer.alloc(MAX_HEADER);
  private scratchLen = 0;
  /** The chunk whose payload is being read, and how many of its bytes are still to come. */
  private cur: ChunkStream | null = null;
  private chunkLeft = 0;
  private out: RtmpMessage[] = [];
  private failure: unknown = null;

  constructor(limits?: Partial<ChunkLimits>) {
    this.limits = resolveChunkLimits(limits);
  }

  /** The peer's chunk size (128 until it sends Set Chunk Size). */
  get chunkSize(): number {
    return this.inChunkSize;
  }

  /** Bytes currently held for partial messages and unparsed input (for memory accounting). */
  get heldBytes(): number {
    return this.held;
  }

  /** Distinct chunk stream ids seen on this connection. */
  get chunkStreamCount(): number {
    return this.streams.size;
  }

  /**
   * Bytes in, complete messages out in order. Set Chunk Size (1) and Abort (2) are applied here,
   * before the next chunk is read, and also returned. Throws RtmpProtocolError.
   */
  push(input: Buffer): RtmpMessage[] {
    if (this.failure !== null) throw this.failure;
    this.out = [];
    try {
      this.consume(input);
    } catch (err) {
      this.failure = err;
      // Nothing more will be read: give the memory back now rather than when the socket is collected.
      this.streams.clear();
      this.cur = null;
      this.held = 0;
      this.scratchLen = 0;
      throw err;
    }
    const out = this.out;
    this.out = [];
    return out;
  }

  private consume(input: Buffer): void {
    const end = input.length;
    let pos = 0;
    for (;;) {
      if (this.chunkLeft === 0) {
        if (pos >= end) return;
        if (this.scratchLen > 0) {
          const take = Math.min(MAX_HEADER - this.scratchLen, end - pos);
          input.copy(this.scratch, this.scratchLen, pos, pos + take);
          const n = this.header(this.scratch, 0, this.scratchLen + take);
          if (n < 0) {
            // Still incomplete, so all of `take` was header bytes and the input is used up.
            this.holdScratch(take);
            return;
          }
          pos += n - this.scratchLen;
          this.held -= this.scratchLen;
          this.scratchLen = 0;
        } else {
          const n = this.header(input, pos, end);
          if (n < 0) {
            input.copy(this.scratch, 0, pos, end);
            this.holdScratch(end - pos);
            return;
          }
          pos += n;
        }
        if (this.chunkLeft === 0) continue; // a zero-length message, already emitted
      }
      if (pos >= end) return;
      pos = this.payload(input, pos, end);
    }
  }

  private holdScratch(n: number): void {
    this.scratchLen += n;
    this.held += n;
    if (this.held > this.limits.maxHeldBytes) {
      throw new RtmpProtocolError('buffer-limit', `RTMP input held over ${this.limits.maxHeldBytes} bytes`);
    }
  }

  /**
   * Parses one chunk header at src[start..end). Returns the bytes it took, or -1 (and changes
   * nothing) when it is incomplete. On success the chunk is set up in cur/chunkLeft.
   */
  private header(src: Buffer, start: number, end: number): number {
    let p = start;
    const b0 = src[p++] as number;
    const fmt = b0 >> 6;
    let csid = b0 & 0x3f;
    if (csid === 0) {
      if (end - p < 1) return -1;
      csid = 64 + (src[p++] as number);
    } else if (csid === 1) {
      if (end - p < 2) return -1;
      // b2 is the high byte.
      csid = 64 + (src[p] as number) + 256 * (src[p + 1] as number);
      p += 2;
    }
    const hlen = fmt === 0 ? 11 : fmt === 1 ? 7 : fmt === 2 ? 3 : 0;
    if (end - p < hlen) return -1;
    const cs = this.streams.get(csid);
    let field = 0;
    let length = 0;
    let type = 0;
    let streamId = 0;
    if (fmt <= 2) field = ((src[p] as number) << 16) | ((src[p + 1] as number) << 8) | (src[p + 2] as number);
    if (fmt <= 1) {
      length = ((src[p + 3] as number) << 16) | ((src[p + 4] as number) << 8) | (src[p + 5] as number);
      type = src[p + 6] as number;
    }
    // The message stream id is the one little-endian field.
    if (fmt === 0) streamId = src.readUInt32LE(p + 7);
    p += hlen;
    const hasExt = fmt <= 2 ? field === EXT_TS : cs !== undefined && cs.extended;
    let ext = 0;
    if (hasExt) {
      if (end - p < 4) return -1;
      ext = src.readUInt32BE(p);
      p += 4;
    }
    this.apply(fmt, csid, cs, hasExt ? ext : field, hasExt, length, type, streamId);
    return p - start;
  }

  /** Applies a complete chunk header: `value` is the timestamp or delta (extended already resolved). */
  private apply(
    fmt: number,
    csid: number,
    existing: ChunkStream | undefined,
    value: number,
    hasExt: boolean,
    length: number,
    type: number,
    streamId: number,
  ): void {
    let cs = existing;
    if (cs === undefined) {
      // There is no previous header to inherit from. fmt 1 is tolerated (a zero base timestamp and
      // stream 0), as SRS does for librtmp, which sends its first ping responses that way.
      if (fmt >= 2) throw new RtmpProtocolError('bad-chunk-header', `fmt ${fmt} chunk opens chunk stream ${csid}`);
      if (this.streams.size >= this.limits.maxChunkStreams) {
        throw new RtmpProtocolError('too-many-chunk-streams', `more than ${this.limits.maxChunkStreams} chunk streams`);
      }
      cs = { csid, timestamp: 0, delta: 0, length: 0, type: 0, streamId: 0, extended: false, extValue: 0, inProgress: false, buf: null, filled: 0 };
      this.streams.set(csid, cs);
    }
    if (cs.inProgress) {
      if (fmt === 3) {
        // A continuation. Its extended timestamp must repeat the header's; anything else means the
        // peer follows another rule and we would be reading payload as timestamp.
        if (cs.extended && value !== cs.extValue) {
          throw new RtmpProtocolError('bad-chunk-header', `chunk stream ${csid}: continuation extended timestamp ${value} != ${cs.extValue}`);
        }
        this.cur = cs;
        this.chunkLeft = Math.min(this.inChunkSize, cs.length - cs.filled);
        return;
      }
      if (fmt <= 1 && length !== cs.length) {
        throw new RtmpProtocolError('length-mismatch', `chunk stream ${csid}: length ${length} != ${cs.length} mid-message`);
      }
      throw new RtmpProtocolError('bad-chunk-header', `chunk stream ${csid}: fmt ${fmt} header mid-message`);
    }
    if (fmt <= 1 && length > this.limits.maxMessageBytes) {
      throw new RtmpProtocolError('message-too-large', `message of ${length} bytes (limit ${this.limits.maxMessageBytes})`);
    }
    switch (fmt) {
      case 0:
        cs.timestamp = value;
        cs.delta = value;
        cs.streamId = streamId;
        break;
      case 3:
        // A new message reusing the header. With an extended timestamp the 4 bytes are its delta:
        // ffmpeg writes a type-3 header whenever the 24-bit field (0xFFFFFF) repeats, even when the
        // extended delta differs.
        if (cs.extended) {
          cs.delta = value;
          cs.extValue = value;
        }
        cs.timestamp = (cs.timestamp + cs.delta) >>> 0;
        break;
      default:
        cs.delta = value;
        cs.timestamp = (cs.timestamp + value) >>> 0;
    }
    if (fmt <= 1) {
      cs.length = length;
      cs.type = type;
    }
    if (fmt <= 2) {
      cs.extended = hasExt;
      cs.extValue = value;
    }
    if (cs.length === 0) {
      this.emit(cs, EMPTY);
      return;
    }
    cs.inProgress = true;
    cs.filled = 0;
    this.cur = cs;
    this.chunkLeft = Math.min(this.inChunkSize, cs.length);
  }

  /** Reads payload bytes of the current chunk from input[pos..end); returns the new position. */
  private payload(input: Buffer, pos: number, end: number): number {
    const cs = this.cur as ChunkStream;
    if (cs.filled === 0) {
      // A message's first chunk: take it whole from this input when it is all here.
      if (this.chunkLeft === cs.length) {
        if (end - pos >= cs.length) {
          this.finish(cs, detach(input, pos, cs.length));
          return pos + cs.length;
        }
      } else {
        const taken = this.gatherContiguous(cs, input, pos, end);
        if (taken > 0) return pos + taken;
      }
    }
    const n = Math.min(this.chunkLeft, end - pos);
    this.reserve(cs, cs.filled + n);
    const buf = cs.buf as Buffer;
    input.copy(buf, cs.filled, pos, pos + n);
    cs.filled += n;
    this.chunkLeft -= n;
    if (cs.filled === cs.length) {
      // Capacity never exceeds the length, so the buffer is exactly the message.
      cs.buf = null;
      this.held -= buf.length;
      this.finish(cs, buf);
    }
    return pos + n;
  }

  /**
   * When all chunks of cs's new multi-chunk message follow each other in this input (the usual case:
   * publishers write a message's chunks back to back), copies them into one exact-size buffer and
   * emits it: one copy, no growth. Returns the bytes taken, or 0 (nothing changed) when the message is
   * interleaved with other csids, ends beyond the input, or has a continuation the slow path must judge.
   */
  private gatherContiguous(cs: ChunkStream, input: Buffer, pos: number, end: number): number {
    const size = this.inChunkSize;
    const extLen = cs.extended ? 4 : 0;
    // Validate first: walk the continuation headers without copying.
    let p = pos + this.chunkLeft;
    let left = cs.length - this.chunkLeft;
    while (left > 0) {
      if (p >= end) return 0;
      const b0 = input[p] as number;
      if (b0 >> 6 !== 3) return 0;
      let csid = b0 & 0x3f;
      let h = 1;
      if (csid === 0) {
        if (end - p < 2) return 0;
        csid = 64 + (input[p + 1] as number);
        h = 2;
      } else if (csid === 1) {
        if (end - p < 3) return 0;
        csid = 64 + (input[p + 1] as number) + 256 * (input[p + 2] as number);
        h = 3;
      }
      if (csid !== cs.csid) return 0;
      if (extLen > 0 && (end - p - h < 4 || input.readUInt32BE(p + h) !== cs.extValue)) return 0;
      const n = Math.min(size, left);
      if (end - p - h - extLen < n) return 0;
      p += h + extLen + n;
      left -= n;
    }
    const out = Buffer.allocUnsafe(cs.length);
    let q = pos;
    let filled = input.copy(out, 0, q, q + this.chunkLeft);
    q += this.chunkLeft;
    while (filled < cs.length) {
      const low = (input[q] as number) & 0x3f;
      q += (low === 0 ? 2 : low === 1 ? 3 : 1) + extLen;
      const n = Math.min(size, cs.length - filled);
      filled += input.copy(out, filled, q, q + n);
      q += n;
    }
    this.finish(cs, out);
    return q - pos;
  }

  /**
   * Makes room for `needed` bytes of cs's message. Capacity is at most max(4 KiB, 2 × needed) and
   * never more than the declared length, so a peer cannot make us hold much more than it has sent;
   * the growth is geometric, so a message is copied O(1) times on average.
   */
  private reserve(cs: ChunkStream, needed: number): void {
    const cap = cs.buf === null ? 0 : cs.buf.length;
    if (needed <= cap) return;
    let want = Math.min(cs.length, Math.max(INITIAL_ALLOC, 2 * needed));
    // Near the budget, take only what fits: the limit is then hit exactly when the data does not fit.
    const budget = this.limits.maxHeldBytes - this.held + cap;
    if (want > budget) want = budget;
    if (want < needed) {
      throw new RtmpProtocolError('buffer-limit', `partial RTMP messages would hold over ${this.limits.maxHeldBytes} bytes`);
    }
    const next = Buffer.allocUnsafe(want);
    if (cs.buf !== null) cs.buf.copy(next, 0, 0, cs.filled);
    cs.buf = next;
    this.held += want - cap;
  }

  private finish(cs: ChunkStream, payload: Buffer): void {
    cs.inProgress = false;
    cs.filled = 0;
    this.chunkLeft = 0;
    this.cur = null;
    this.emit(cs, payload);
  }

  private emit(cs: ChunkStream, payload: Buffer): void {
    this.out.push({ csid: cs.csid, type: cs.type, streamId: cs.streamId, timestamp: cs.timestamp, payload });
    // Applied before the next chunk header is read, since that chunk is already cut to the new size.
    // By type alone, wherever it arrives (FFmpeg does the same); the spec puts them on csid 2, msid 0.
    if (cs.type === MessageType.SetChunkSize) {
      this.inChunkSize = parseSetChunkSize(payload, this.limits.maxChunkSize);
    } else if (cs.type === MessageType.Abort) {
      this.abort(parseAbort(payload));
    }
  }

  private abort(csid: number): void {
    const cs = this.streams.get(csid);
    if (cs === undefined || !cs.inProgress) return;
    if (cs.buf !== null) this.held -= cs.buf.length;
    cs.buf = null;
    cs.inProgress = false;
    cs.filled = 0;
  }
}

/**
 * The payload of a message that arrived whole in one input buffer. A view would pin the input's
 * entire ArrayBuffer (a socket read can be 64 KiB) for as long as the consumer keeps the message
 * (a GOP cache, a spool queue), unaccounted. So a view is taken only when the payload is at least
 * half of that memory, which bounds the waste at 2×; smaller payloads (most audio and P-frames)
 * are copied, which for < 4 KiB lands in Node's shared allocation pool.
 */
function detach(input: Buffer, pos: number, length: number): Buffer {
  if (2 * length >= input.buffer.byteLength) return input.subarray(pos, pos + length);
  const out = Buffer.allocUnsafe(length);
  input.copy(out, 0, pos, pos + length);
  return out;
}
