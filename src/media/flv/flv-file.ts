/**
 * FLV files (and FLV byte streams such as ffmpeg's `-f flv` on a pipe):
 *
 * - FlvFileReader: push/flush stage, bytes in any chunking → FlvTag[]. Holds at most one incomplete
 *   tag (a tag body is at most 16 MiB − 1 by its 24-bit size field; `maxTagBytes` can lower that).
 *   Tag bodies are views of the pushed chunks when a tag sits in one chunk, else one copy.
 * - FlvWriter: the 13-byte file header and tags with their PreviousTagSize, for the ffmpeg fallback
 *   path (FlvTags piped into `ffmpeg -f flv -i pipe:0`) and for test fixtures.
 *
 * Layout (FLV 10.1 §E.2–E.3): "FLV" u8 version, u8 flags (0x04 audio | 0x01 video), u32 DataOffset
 * (9), then PreviousTagSize0 = 0 and per tag: u8 [2 reserved][1 filter][5 type], u24 DataSize,
 * u24 Timestamp, u8 TimestampExtended (bits 31–24), u24 StreamID (0), the body, u32 PreviousTagSize
 * (11 + DataSize).
 */
import { ChunkList, joinViews } from '../../container/fmp4/chunk-list.js';
import { MediaError } from '../errors.js';
import type { FlvTag, FlvTagType } from '../types.js';

export const FLV_HEADER_BYTES = 9;
export const FLV_TAG_HEADER_BYTES = 11;
export const FLV_MAX_BODY_BYTES = 0xffffff;
/** DataOffset values beyond this are not an FLV header we believe (the spec's is 9). */
const MAX_DATA_OFFSET = 1024;

export interface FlvFileHeader {
  version: number;
  hasAudio: boolean;
  hasVideo: boolean;
}

export interface FlvFileReaderOptions {
  /** Largest tag body accepted (default: the format's own limit, 16 MiB − 1). */
  maxTagBytes?: number;
  /** Refuse a PreviousTagSize that is not 11 + the previous DataSize (default true; 0 is accepted, some writers leave it). */
  checkPreviousTagSize?: boolean;
}

type ReaderPhase = 'header' | 'tags' | 'ended' | 'failed';

export class FlvFileReader {
  private readonly pending = new ChunkList();
  private readonly maxTagBytes: number;
  private readonly checkPrevious: boolean;
  private phase: ReaderPhase = 'header';
  /** Stream offset of the first pending byte (for error messages). */
  private offset = 0;
  private failure: MediaError | null = null;
  private fileHeader: FlvFileHeader | null = null;
  /** Tags of types other than 8/9/18 that were passed over. */
  skippedTags = 0;

  constructor(options: FlvFileReaderOptions = {}) {
    const max = options.maxTagBytes ?? FLV_MAX_BODY_BYTES;
    if (!Number.isSafeInteger(max) || max < 0) throw new RangeError('maxTagBytes must be a non-negative integer');
    this.maxTagBytes = Math.min(max, FLV_MAX_BODY_BYTES);
    this.checkPrevious = options.checkPreviousTagSize ?? true;
  }

  /** The file header once its 13 bytes (header + PreviousTagSize0) were read. */
  get header(): FlvFileHeader | null {
    return this.fileHeader;
  }

  /** Bytes held while waiting for the rest of a header or tag. */
  get bufferedBytes(): number {
    return this.pending.length;
  }

  push(chunk: Uint8Array): FlvTag[] {
    if (this.failure !== null) throw this.failure;
    if (this.phase === 'ended') throw new MediaError('flv-file-invalid', 'FLV push after flush');
    const out: FlvTag[] = [];
    if (chunk.byteLength === 0) return out;
    this.pending.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    try {
      this.drain(out);
    } catch (err) {
      this.failure = err instanceof MediaError ? err : new MediaError('flv-file-invalid', `FLV reader failed: ${String(err)}`, { cause: err });
      this.phase = 'failed';
      this.pending.clear();
      // Tags completed before the problem are returned; the next call reports it.
      if (out.length === 0) throw this.failure;
    }
    return out;
  }

  /** End of input: throws MediaError if it ended inside the header or a tag. */
  flush(): FlvTag[] {
    if (this.failure !== null) throw this.failure;
    const held = this.pending.length;
    const phase = this.phase;
    this.phase = 'ended';
    this.pending.clear();
    if (phase === 'header' && held > 0) throw new MediaError('flv-file-invalid', `FLV ended inside its header (${held} bytes)`);
    if (held > 0) throw new MediaError('flv-file-invalid', `FLV ended inside a tag at offset ${this.offset} (${held} bytes dropped)`);
    return [];
  }

  private drain(out: FlvTag[]): void {
    for (;;) {
      if (this.phase === 'header') {
        if (!this.readHeader()) return;
        continue;
      }
      const head = this.pending.peek(FLV_TAG_HEADER_BYTES);
      if (head === null) return;
      const typeByte = head[0] as number;
      if (typeByte & 0x20) throw this.bad(`encrypted (filtered) tag`);
      const type = typeByte & 0x1f;
      const size = head.readUIntBE(1, 3);
      if (size > this.maxTagBytes) throw this.bad(`tag of ${size} bytes, over maxTagBytes ${this.maxTagBytes}`);
      const timestamp = (head.readUIntBE(4, 3) + (head[7] as number) * 0x1000000) >>> 0;
      const total = FLV_TAG_HEADER_BYTES + size + 4;
      if (this.pending.length < total) return;
      const views = this.pending.take(total);
      const whole = joinViews(views, total);
      const previous = whole.readUInt32BE(FLV_TAG_HEADER_BYTES + size);
      if (this.checkPrevious && previous !== FLV_TAG_HEADER_BYTES + size && previous !== 0) {
        throw this.bad(`PreviousTagSize ${previous} after a ${FLV_TAG_HEADER_BYTES + size}-byte tag`);
      }
      this.offset += total;
      if (type === 8 || type === 9 || type === 18) {
        out.push({ type: type as FlvTagType, timestamp, body: whole.subarray(FLV_TAG_HEADER_BYTES, FLV_TAG_HEADER_BYTES + size) });
      } else {
        this.skippedTags++;
      }
    }
  }

  /** Reads the 9+ byte header and PreviousTagSize0; false when more bytes are needed. */
  private readHeader(): boolean {
    const head = this.pending.peek(FLV_HEADER_BYTES);
    if (head === null) {
      // Fail fast on a wrong signature even before 9 bytes arrived.
      const some = this.pending.peek(Math.min(3, this.pending.length));
      if (some !== null && !Buffer.from('FLV').subarray(0, some.length).equals(some)) throw this.bad('not an FLV file (signature)');
      return false;
    }
    if (head.toString('latin1', 0, 3) !== 'FLV') throw this.bad('not an FLV file (signature)');
    const version = head[3] as number;
    if (version !== 1) throw this.bad(`FLV version ${version}`);
    const flags = head[4] as number;
    const dataOffset = head.readUInt32BE(5);
    if (dataOffset < FLV_HEADER_BYTES || dataOffset > MAX_DATA_OFFSET) throw this.bad(`FLV DataOffset ${dataOffset}`);
    if (this.pending.length < dataOffset + 4) return false;
    this.pending.take(dataOffset + 4); // header (+ any extension bytes) and PreviousTagSize0
    this.offset += dataOffset + 4;
    this.fileHeader = { version, hasAudio: (flags & 0x04) !== 0, hasVideo: (flags & 0x01) !== 0 };
    this.phase = 'tags';
    return true;
  }

  private bad(message: string): MediaError {
    return new MediaError('flv-file-invalid', `${message} at offset ${this.offset}`);
  }
}

/** Reads a whole FLV held in memory. */
export function readFlv(bytes: Uint8Array, options?: FlvFileReaderOptions): { header: FlvFileHeader; tags: FlvTag[] } {
  const reader = new FlvFileReader(options);
  const tags = reader.push(bytes);
  tags.push(...reader.flush());
  const header = reader.header;
  if (header === null) throw new MediaError('flv-file-invalid', 'FLV has no header');
  return { header, tags };
}

/**
 * FLV writer. Each call returns one freshly allocated Buffer: `tag()` costs one allocation of
 * 11 + body + 4 bytes and one copy of the body; `tagHeader()` + body + `previousTagSize()` let a
 * caller that can write vectors avoid even that copy. The timestamp is written as given, all 32 bits
 * (FFmpeg's writer masks bit 31 away; we do not).
 */
export class FlvWriter {
  /** The 13 bytes before the first tag: signature, version 1, flags, DataOffset 9, PreviousTagSize0. */
  header(flags: { audio: boolean; video: boolean }): Buffer {
    const b = Buffer.alloc(FLV_HEADER_BYTES + 4);
    b.write('FLV', 0, 'latin1');
    b[3] = 1;
    b[4] = (flags.audio ? 0x04 : 0) | (flags.video ? 0x01 : 0);
    b.writeUInt32BE(FLV_HEADER_BYTES, 5);
    return b;
  }

  /** Tag header + body + PreviousTagSize, in one buffer. */
  tag(tag: FlvTag): Buffer {
    const size = checkedSize(tag);
    const b = Buffer.allocUnsafe(FLV_TAG_HEADER_BYTES + size + 4);
    writeTagHeader(b, tag, size);
    tag.body.copy(b, FLV_TAG_HEADER_BYTES);
    b.writeUInt32BE(FLV_TAG_HEADER_BYTES + size, FLV_TAG_HEADER_BYTES + size);
    return b;
  }

  /** The 11-byte tag header alone (write the body and `previousTagSize(tag)` after it). */
  tagHeader(tag: FlvTag): Buffer {
    const size = checkedSize(tag);
    const b = Buffer.allocUnsafe(FLV_TAG_HEADER_BYTES);
    writeTagHeader(b, tag, size);
    return b;
  }

  previousTagSize(tag: FlvTag): Buffer {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(FLV_TAG_HEADER_BYTES + checkedSize(tag));
    return b;
  }
}

function checkedSize(tag: FlvTag): number {
  const size = tag.body.length;
  if (size > FLV_MAX_BODY_BYTES) throw new MediaError('flv-tag-too-large', `FLV tag body of ${size} bytes (max ${FLV_MAX_BODY_BYTES})`);
  if (!Number.isInteger(tag.timestamp) || tag.timestamp < 0) {
    throw new MediaError('flv-tag-invalid', `FLV tag timestamp ${tag.timestamp} is not a non-negative integer`);
  }
  return size;
}

function writeTagHeader(b: Buffer, tag: FlvTag, size: number): void {
  const ts = tag.timestamp % 0x100000000; // wraps like the wire format
  b[0] = tag.type;
  b.writeUIntBE(size, 1, 3);
  b.writeUIntBE(ts % 0x1000000, 4, 3);
  b[7] = Math.floor(ts / 0x1000000);
  b.writeUIntBE(0, 8, 3);
}
