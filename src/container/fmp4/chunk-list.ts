/**
 * Received bytes not yet cut into boxes, kept as the list of chunks they arrived in so nothing is
 * copied until a box is complete (appending to one growing buffer would be O(n^2) on small chunks).
 */
export class ChunkList {
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already taken. */
  private headOffset = 0;
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** The first `n` bytes (a view when they sit in one chunk, else a small copy), or null if fewer are held. */
  peek(n: number): Buffer | null {
    if (n > this.total) return null;
    const first = this.chunks[0];
    if (first === undefined) return n === 0 ? Buffer.alloc(0) : null;
    if (first.length - this.headOffset >= n) return first.subarray(this.headOffset, this.headOffset + n);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    for (let i = 0; filled < n; i++) {
      const c = this.chunks[i] as Buffer;
      const from = i === 0 ? this.headOffset : 0;
      filled += c.copy(out, filled, from, Math.min(c.length, from + n - filled));
    }
    return out;
  }

  /** Removes the first `n` bytes and returns them as views of the received chunks (no copy). */
  take(n: number): Buffer[] {
    if (n > this.total) throw new RangeError(`take(${n}) with only ${this.total} bytes held`);
    const out: Buffer[] = [];
    let left = n;
    let used = 0;
    while (left > 0) {
      const c = this.chunks[used] as Buffer;
      const avail = c.length - this.headOffset;
      if (avail <= left) {
        out.push(this.headOffset === 0 ? c : c.subarray(this.headOffset));
        left -= avail;
        this.headOffset = 0;
        used++;
      } else {
        out.push(c.subarray(this.headOffset, this.headOffset + left));
        this.headOffset += left;
        left = 0;
      }
    }
    if (used > 0) this.chunks.splice(0, used);
    this.total -= n;
    return out;
  }

  /** Overwrites the byte `index` bytes past the first held one (false when fewer are held). */
  setByte(index: number, value: number): boolean {
    let i = index + this.headOffset;
    for (const c of this.chunks) {
      if (i < c.length) {
        c[i] = value;
        return true;
      }
      i -= c.length;
    }
    return false;
  }

  clear(): void {
    this.chunks = [];
    this.headOffset = 0;
    this.total = 0;
  }
}

/** Joins views into one Buffer; a single view is returned as is (no copy). */
export function joinViews(views: readonly Buffer[], totalLength: number): Buffer {
  if (views.length === 1) return views[0] as Buffer;
  return Buffer.concat(views, totalLength);
}
