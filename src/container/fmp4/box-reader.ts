/**
 * ISO BMFF box headers and child iteration over a buffer that holds whole boxes.
 * Offsets in errors are stream offsets: `base` is where `buf[0]` sits in the stream.
 */
import { ContainerError } from '../types.js';

export interface BoxHeader {
  type: string;
  /** Total box size in bytes, header included; null when size==0 ("extends to the end"). */
  size: number | null;
  /** 8, or 16 with a 64-bit largesize. */
  headerSize: number;
}

/** Longest header we need to see before we know a top-level box's size. */
export const MAX_HEADER_BYTES = 16;

function isPrintableFourcc(b: Uint8Array, at: number): boolean {
  for (let i = at; i < at + 4; i++) {
    const c = b[i] as number;
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

export function fourcc(b: Uint8Array, at: number): string {
  return String.fromCharCode(b[at] as number, b[at + 1] as number, b[at + 2] as number, b[at + 3] as number);
}

/** A printable rendering of 4 bytes for error messages, whatever they hold. */
function describeType(b: Uint8Array, at: number): string {
  return isPrintableFourcc(b, at) ? fourcc(b, at) : `0x${Buffer.from(b.subarray(at, at + 4)).toString('hex')}`;
}

/**
 * Parses the header at `buf[at]`. Returns null when more bytes are needed to know the size.
 * Throws ContainerError on a size smaller than its header, a largesize beyond 2^53, or a type that is
 * not four printable ASCII characters (garbage).
 */
export function readBoxHeader(buf: Uint8Array, at: number, streamOffset: number): BoxHeader | null {
  if (buf.length - at < 8) return null;
  const view = new DataView(buf.buffer, buf.byteOffset + at);
  const size32 = view.getUint32(0);
  if (!isPrintableFourcc(buf, at + 4)) {
    throw new ContainerError(`invalid box type ${describeType(buf, at + 4)} at offset ${streamOffset}`, {
      offset: streamOffset,
      unit: describeType(buf, at + 4),
    });
  }
  const type = fourcc(buf, at + 4);
  if (size32 === 0) return { type, size: null, headerSize: 8 };
  if (size32 === 1) {
    if (buf.length - at < 16) return null;
    const large = view.getBigUint64(8);
    if (large > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new ContainerError(`box ${type} at offset ${streamOffset} declares ${large} bytes`, { offset: streamOffset, unit: type });
    }
    const size = Number(large);
    if (size < 16) {
      throw new ContainerError(`box ${type} at offset ${streamOffset} has 64-bit size ${size} < 16`, { offset: streamOffset, unit: type });
    }
    return { type, size, headerSize: 16 };
  }
  if (size32 < 8) {
    throw new ContainerError(`box ${type} at offset ${streamOffset} has size ${size32} < 8`, { offset: streamOffset, unit: type });
  }
  return { type, size: size32, headerSize: 8 };
}

export interface BoxRange {
  type: string;
  /** Index of the box's first byte in the buffer. */
  start: number;
  /** Index of the first payload byte (after the header). */
  payload: number;
  /** Index one past the box's last byte. */
  end: number;
}

/** The child boxes laid out in `buf[start, end)`; each must fit inside the parent. */
export function childBoxes(buf: Buffer, start: number, end: number, base: number): BoxRange[] {
  const out: BoxRange[] = [];
  let at = start;
  while (at < end) {
    const h = end - at >= 8 ? readBoxHeader(buf.subarray(0, end), at, base + at) : null;
    if (h === null) {
      throw new ContainerError(`truncated box header at offset ${base + at}`, { offset: base + at });
    }
    const size = h.size ?? end - at;
    if (at + size > end) {
      throw new ContainerError(`box ${h.type} at offset ${base + at} (${size} bytes) overruns its parent`, { offset: base + at, unit: h.type });
    }
    out.push({ type: h.type, start: at, payload: at + h.headerSize, end: at + size });
    at += size;
  }
  return out;
}

export function findChild(buf: Buffer, parent: BoxRange, type: string, base: number): BoxRange | undefined {
  return childBoxes(buf, parent.payload, parent.end, base).find((b) => b.type === type);
}

/**
 * Bounds-checked big-endian reads inside one box, so a short or lying box becomes a ContainerError
 * naming the box rather than a RangeError.
 */
export class BoxFieldReader {
  private at: number;
  constructor(
    private readonly buf: Buffer,
    private readonly box: BoxRange,
    private readonly base: number,
  ) {
    this.at = box.payload;
  }

  private need(n: number): number {
    if (this.at + n > this.box.end) {
      throw new ContainerError(`box ${this.box.type} at offset ${this.base + this.box.start} is too short for its fields`, {
        offset: this.base + this.box.start,
        unit: this.box.type,
      });
    }
    const at = this.at;
    this.at += n;
    return at;
  }

  u8(): number {
    return this.buf.readUInt8(this.need(1));
  }
  u24(): number {
    return this.buf.readUIntBE(this.need(3), 3);
  }
  u32(): number {
    return this.buf.readUInt32BE(this.need(4));
  }
  i32(): number {
    return this.buf.readInt32BE(this.need(4));
  }
  /** 64-bit unsigned as a number (exact below 2^53, which media times stay under). */
  u64(): number {
    return Number(this.buf.readBigUInt64BE(this.need(8)));
  }
  fourcc(): string {
    return fourcc(this.buf, this.need(4));
  }
  skip(n: number): void {
    this.need(n);
  }
  /** Full-box version and flags. */
  fullBox(): { version: number; flags: number } {
    const version = this.u8();
    return { version, flags: this.u24() };
  }
  remaining(): number {
    return this.box.end - this.at;
  }
}
