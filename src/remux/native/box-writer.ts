/**
 * Big-endian writes into a preallocated buffer, with ISO BMFF box open/close (the size is patched at
 * close). The caller sizes the buffer; writing past it is a bug, reported as a RangeError by Buffer.
 */
export class ByteWriter {
  private pos = 0;
  constructor(readonly buf: Buffer) {}

  get position(): number {
    return this.pos;
  }

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }
  u24(v: number): void {
    this.buf.writeUIntBE(v, this.pos, 3);
    this.pos += 3;
  }
  u32(v: number): void {
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }
  i32(v: number): void {
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
  }
  /** 64-bit unsigned from a safe integer. */
  u64(v: number): void {
    this.buf.writeUInt32BE(Math.floor(v / 0x100000000), this.pos);
    this.buf.writeUInt32BE(v % 0x100000000, this.pos + 4);
    this.pos += 8;
  }
  fourcc(s: string): void {
    this.buf.write(s, this.pos, 4, 'latin1');
    this.pos += 4;
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  zeros(n: number): void {
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
  }

  /** Writes a box header with a placeholder size; returns the box start for `close`. */
  open(type: string): number {
    const start = this.pos;
    this.u32(0);
    this.fourcc(type);
    return start;
  }
  /** A full box: header + version + flags. */
  openFull(type: string, version: number, flags: number): number {
    const start = this.open(type);
    this.u8(version);
    this.u24(flags);
    return start;
  }
  close(start: number): void {
    this.buf.writeUInt32BE(this.pos - start, start);
  }
}

/** The 3x3 unity matrix of mvhd/tkhd (16.16, 16.16, 2.30). */
export const UNITY_MATRIX = [0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000] as const;
