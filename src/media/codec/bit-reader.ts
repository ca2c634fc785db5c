/**
 * MSB-first bit reader for parameter sets and AudioSpecificConfig. Every read is checked against the
 * end of the buffer and throws MediaError with the reason given at construction, so a truncated or
 * lying record can never become a RangeError.
 */
import { MediaError, type MediaErrorReason } from '../errors.js';

export class BitReader {
  /** Position in bits from the start of `buf`. */
  private pos = 0;
  private readonly totalBits: number;

  constructor(
    private readonly buf: Uint8Array,
    private readonly reason: MediaErrorReason,
    private readonly what: string,
  ) {
    this.totalBits = buf.length * 8;
  }

  get bitsLeft(): number {
    return this.totalBits - this.pos;
  }

  get bitPosition(): number {
    return this.pos;
  }

  private fail(detail: string): MediaError {
    return new MediaError(this.reason, `${this.what}: ${detail} at bit ${this.pos}`);
  }

  /** An unsigned value of `n` bits, 0 ≤ n ≤ 32. */
  u(n: number): number {
    if (n === 0) return 0;
    if (n > this.bitsLeft) throw this.fail(`truncated (wanted ${n} bits, ${this.bitsLeft} left)`);
    let v = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.buf[this.pos >>> 3] as number;
      v = v * 2 + ((byte >>> (7 - (this.pos & 7))) & 1);
      this.pos++;
    }
    return v;
  }

  flag(): boolean {
    return this.u(1) === 1;
  }

  skip(n: number): void {
    if (n > this.bitsLeft) throw this.fail(`truncated (skipping ${n} bits, ${this.bitsLeft} left)`);
    this.pos += n;
  }

  /** Exp-Golomb ue(v); values beyond 2^32 - 2 (over 31 leading zeros) are refused. */
  ue(): number {
    let zeros = 0;
    while (this.u(1) === 0) {
      if (++zeros > 31) throw this.fail('exp-Golomb code longer than 32 bits');
    }
    return 2 ** zeros - 1 + this.u(zeros);
  }

  /** Exp-Golomb se(v). */
  se(): number {
    const k = this.ue();
    return k % 2 === 1 ? (k + 1) / 2 : -(k / 2);
  }

  /** ue(v) that must lie in [min, max]; `field` names it in the error. */
  ueIn(field: string, min: number, max: number): number {
    const v = this.ue();
    if (v < min || v > max) throw this.fail(`${field} = ${v} outside [${min}, ${max}]`);
    return v;
  }

  /** se(v) that must lie in [min, max]. */
  seIn(field: string, min: number, max: number): number {
    const v = this.se();
    if (v < min || v > max) throw this.fail(`${field} = ${v} outside [${min}, ${max}]`);
    return v;
  }
}

/**
 * NAL unit payload → RBSP: drops the emulation-prevention byte of every 00 00 03 sequence. Returns
 * the input itself when there is none (the common case), else one copy.
 */
export function unescapeRbsp(nal: Uint8Array): Uint8Array {
  let first = -1;
  for (let i = 2; i < nal.length; i++) {
    if (nal[i] === 3 && nal[i - 1] === 0 && nal[i - 2] === 0) {
      first = i;
      break;
    }
  }
  if (first < 0) return nal;
  const out = new Uint8Array(nal.length);
  let n = 0;
  let zeros = 0;
  for (let i = 0; i < nal.length; i++) {
    const b = nal[i] as number;
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    out[n++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out.subarray(0, n);
}
