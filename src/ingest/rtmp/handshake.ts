/**
 * The server side of the RTMP handshake (C0 C1 C2 in, S0 S1 S2 out), plain and with the Flash
 * Player 9 digest scheme. Pure: bytes in, bytes out, no socket and no timer (the server owns the
 * deadline). Holds at most C0+C1 (1537 bytes); C2 is counted, not kept.
 */
import { createHmac, randomFillSync } from 'node:crypto';
import { RtmpProtocolError } from './errors.js';

export const RTMP_VERSION = 3;
export const HANDSHAKE_SIZE = 1536;

const KEY_TAIL = Buffer.from('f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae', 'hex');
/** "Genuine Adobe Flash Player 001" + tail (62 bytes); C1 digests use its first 30 bytes. */
export const FP_KEY = Buffer.concat([Buffer.from('Genuine Adobe Flash Player 001', 'ascii'), KEY_TAIL]);
/** "Genuine Adobe Flash Media Server 001" + tail (68 bytes); S1 digests use its first 36 bytes. */
export const FMS_KEY = Buffer.concat([Buffer.from('Genuine Adobe Flash Media Server 001', 'ascii'), KEY_TAIL]);

/**
 * S1 bytes 4..7 under the digest scheme: "FMS 3.0.1.123", as our connect reply's fmsVer says. FFmpeg
 * checks a server's digest only when S1[4] >= 3, so this version is one that gets verified.
 */
const SERVER_VERSION = Buffer.from([3, 0, 1, 123]);

/** Where the 32-byte digest sits in a 1536-byte C1/S1. */
export type DigestScheme = 'digest-first' | 'key-first';

/** Offset of the digest: `(b[base]+…+b[base+3]) mod 728 + base + 4`, base 8 or 772. */
export function digestOffset(block: Buffer, scheme: DigestScheme): number {
  const base = scheme === 'digest-first' ? 8 : 772;
  const sum = (block[base] as number) + (block[base + 1] as number) + (block[base + 2] as number) + (block[base + 3] as number);
  return (sum % 728) + base + 4;
}

/** HMAC-SHA256 over the block minus its 32 digest bytes at `offset`. */
export function blockDigest(block: Buffer, offset: number, key: Buffer): Buffer {
  return createHmac('sha256', key)
    .update(block.subarray(0, offset))
    .update(block.subarray(offset + 32))
    .digest();
}

/** The scheme whose digest validates C1 (key-first tried first, as SRS and nginx do), or null. */
export function validateClientDigest(c1: Buffer): DigestScheme | null {
  const key = FP_KEY.subarray(0, 30);
  for (const scheme of ['key-first', 'digest-first'] as const) {
    const off = digestOffset(c1, scheme);
    if (blockDigest(c1, off, key).equals(c1.subarray(off, off + 32))) return scheme;
  }
  return null;
}

export interface ServerHandshakeOptions {
  /** Fills a buffer with random bytes (tests pass a seeded source). */
  randomFill?: (buf: Buffer) => void;
  /** The 4-byte time written into S1, in ms. */
  now?: () => number;
}

export interface HandshakeStep {
  /** S0+S1+S2 (3073 bytes) once C0+C1 are in; null otherwise. */
  send: Buffer | null;
  /** True once all of C2 has been read. */
  done: boolean;
  /** Bytes after C2: the first chunks of the chunk stream. Empty until done. */
  rest: Buffer;
}

const EMPTY = Buffer.alloc(0);

export class ServerHandshake {
  private readonly c0c1 = Buffer.alloc(1 + HANDSHAKE_SIZE);
  private c0c1Len = 0;
  private c2Len = 0;
  private sent = false;
  private finished = false;
  private scheme: DigestScheme | null = null;
  private readonly randomFill: (buf: Buffer) => void;
  private readonly now: () => number;

  constructor(options?: ServerHandshakeOptions) {
    this.randomFill = options?.randomFill ?? ((b) => randomFillSync(b));
    this.now = options?.now ?? (() => Math.floor(performance.now()));
  }

  /** The client used the Flash digest scheme (and got a digest S1/S2). */
  get digest(): boolean {
    return this.scheme !== null;
  }

  /** Which digest scheme C1 used, null for a plain handshake. */
  get digestScheme(): DigestScheme | null {
    return this.scheme;
  }

  get done(): boolean {
    return this.finished;
  }

  /**
   * Feed bytes. Returns what to send back (S0+S1+S2 once C0+C1 are in), whether the handshake is
   * complete (C2 read), and any bytes after C2. Throws RtmpProtocolError('handshake-version') unless C0 == 3.
   * After completion every byte is returned as `rest`.
   */
  push(buf: Buffer): HandshakeStep {
    if (this.finished) return { send: null, done: true, rest: buf };
    let pos = 0;
    let send: Buffer | null = null;
    if (this.c0c1Len < this.c0c1.length && buf.length > 0) {
      if (this.c0c1Len === 0 && buf[0] !== RTMP_VERSION) {
        // 6 is RTMPE, a printable byte is usually HTTP: neither is spoken here.
        throw new RtmpProtocolError('handshake-version', `RTMP handshake version ${buf[0]} (only ${RTMP_VERSION} is served)`);
      }
      const n = Math.min(buf.length, this.c0c1.length - this.c0c1Len);
      buf.copy(this.c0c1, this.c0c1Len, 0, n);
      this.c0c1Len += n;
      pos = n;
      if (this.c0c1Len === this.c0c1.length) send = this.reply();
    }
    if (this.sent && pos < buf.length && this.c2Len < HANDSHAKE_SIZE) {
      // C2 echoes S1 (or is signed with S1's digest); clients differ, so it is read and ignored.
      const n = Math.min(buf.length - pos, HANDSHAKE_SIZE - this.c2Len);
      this.c2Len += n;
      pos += n;
      if (this.c2Len === HANDSHAKE_SIZE) this.finished = true;
    }
    const rest = this.finished && pos < buf.length ? buf.subarray(pos) : EMPTY;
    return { send, done: this.finished, rest };
  }

  private reply(): Buffer {
    this.sent = true;
    const c1 = this.c0c1.subarray(1);
    this.scheme = validateClientDigest(c1);
    const out = Buffer.allocUnsafe(1 + 2 * HANDSHAKE_SIZE);
    out[0] = RTMP_VERSION;
    const s1 = out.subarray(1, 1 + HANDSHAKE_SIZE);
    const s2 = out.subarray(1 + HANDSHAKE_SIZE);
    this.randomFill(s1);
    s1.writeUInt32BE(this.now() >>> 0, 0);
    if (this.scheme === null) {
      s1.fill(0, 4, 8);
      c1.copy(s2);
      return out;
    }
    SERVER_VERSION.copy(s1, 4);
    const s1Off = digestOffset(s1, this.scheme);
    blockDigest(s1, s1Off, FMS_KEY.subarray(0, 36)).copy(s1, s1Off);
    // S2 = random + HMAC(HMAC(full FMS key, C1's digest), S2 without its last 32 bytes).
    const c1Off = digestOffset(c1, this.scheme);
    const key = createHmac('sha256', FMS_KEY).update(c1.subarray(c1Off, c1Off + 32)).digest();
    this.randomFill(s2);
    createHmac('sha256', key)
      .update(s2.subarray(0, HANDSHAKE_SIZE - 32))
      .digest()
      .copy(s2, HANDSHAKE_SIZE - 32);
    return out;
  }
}
