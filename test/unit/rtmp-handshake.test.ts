import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { ServerHandshake } from '../../src/ingest/rtmp/handshake.js';
import { RtmpProtocolError } from '../../src/ingest/rtmp/errors.js';
import { prng } from '../../src/util/prng.js';
import { thrown } from '../helpers/expect-error.js';

const SIZE = 1536;

// ---------- a validator written from the reference's facts, independent of the module ----------

const TAIL = Buffer.from('F0EEC24A8068BEE82E00D0D1029E7E576EEC5D2D29806FAB93B8E636CFEB31AE', 'hex');
const FP_KEY = Buffer.concat([Buffer.from('Genuine Adobe Flash Player 001'), TAIL]); // 62 bytes
const FMS_KEY = Buffer.concat([Buffer.from('Genuine Adobe Flash Media Server 001'), TAIL]); // 68 bytes
type Base = 8 | 772;

const sum4 = (b: Buffer, at: number): number => (b[at] as number) + (b[at + 1] as number) + (b[at + 2] as number) + (b[at + 3] as number);
/** Digest offset: (sum of the 4 bytes at base) mod 728 + base + 4, i.e. +12 for base 8, +776 for base 772. */
const offsetOf = (block: Buffer, base: Base): number => (sum4(block, base) % 728) + base + 4;
const hmac = (key: Buffer, ...parts: Buffer[]): Buffer => {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
};
/** The digest at the scheme's offset, if it is the HMAC of the other 1504 bytes under `key`. */
function digestAt(block: Buffer, base: Base, key: Buffer): Buffer | null {
  const off = offsetOf(block, base);
  const want = hmac(key, block.subarray(0, off), block.subarray(off + 32));
  return want.equals(block.subarray(off, off + 32)) ? want : null;
}

function seededFill(seed: number): (b: Buffer) => void {
  const r = prng(seed);
  return (b) => {
    for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
  };
}

/** A Flash-style C1: time, version 09 00 7C 02 (ffmpeg's), random, and an FP digest placed per `base`. */
function digestC1(base: Base, seed: number): Buffer {
  const c1 = Buffer.alloc(SIZE);
  seededFill(seed)(c1);
  c1.writeUInt32BE(0, 0);
  Buffer.from([9, 0, 0x7c, 2]).copy(c1, 4);
  const off = offsetOf(c1, base);
  hmac(FP_KEY.subarray(0, 30), c1.subarray(0, off), c1.subarray(off + 32)).copy(c1, off);
  return c1;
}

function plainC1(seed: number): Buffer {
  const c1 = Buffer.alloc(SIZE);
  seededFill(seed)(c1);
  c1.fill(0, 0, 8);
  return c1;
}

describe('ServerHandshake: version', () => {
  it.each([0, 1, 2, 6, 8, 0x47 /* 'G' of GET */, 255])('C0 = %i is refused with handshake-version on the first byte', (v) => {
    const err = thrown(() => new ServerHandshake().push(Buffer.from([v])));
    expect(err).toBeInstanceOf(RtmpProtocolError);
    expect((err as RtmpProtocolError).reason).toBe('handshake-version');
    expect((err as RtmpProtocolError).code).toBe(ErrorCode.RtmpProtocol);
  });
});

describe('ServerHandshake: plain', () => {
  it('S0 = 3, S1 = time + 4 zero bytes + random, S2 = C1; done after exactly 1536 bytes of C2; the rest is returned', () => {
    const hs = new ServerHandshake({ randomFill: seededFill(1), now: () => 0x01020304 });
    const c1 = plainC1(2);
    const r1 = hs.push(Buffer.concat([Buffer.from([3]), c1]));
    expect(r1.done).toBe(false);
    const send = r1.send as Buffer;
    expect(send).toHaveLength(1 + 2 * SIZE);
    expect(send[0]).toBe(3);
    const s1 = send.subarray(1, 1 + SIZE);
    expect(s1.readUInt32BE(0)).toBe(0x01020304);
    expect(s1.subarray(4, 8)).toEqual(Buffer.alloc(4));
    expect(s1.subarray(8).equals(Buffer.alloc(SIZE - 8))).toBe(false);
    expect(send.subarray(1 + SIZE).equals(c1)).toBe(true);
    expect(hs.digest).toBe(false);

    // C2 content is not checked; 1535 bytes are not enough.
    const c2 = Buffer.alloc(SIZE, 0xee);
    const r2 = hs.push(c2.subarray(0, SIZE - 1));
    expect(r2).toMatchObject({ send: null, done: false });
    expect(r2.rest).toHaveLength(0);
    const r3 = hs.push(Buffer.concat([c2.subarray(SIZE - 1), Buffer.from('chunks')]));
    expect(r3.send).toBeNull();
    expect(r3.done).toBe(true);
    expect(r3.rest.toString()).toBe('chunks');
    // After completion everything is passed through.
    expect(hs.push(Buffer.from('more'))).toMatchObject({ send: null, done: true, rest: Buffer.from('more') });
  });

  it('gives the same answer whatever the segmentation, and sends S0S1S2 exactly once', () => {
    const input = Buffer.concat([Buffer.from([3]), plainC1(3), Buffer.alloc(SIZE, 1), Buffer.from([9, 9, 9])]);
    const whole = new ServerHandshake({ randomFill: seededFill(4), now: () => 7 }).push(input);
    const hs = new ServerHandshake({ randomFill: seededFill(4), now: () => 7 });
    const sends: Buffer[] = [];
    const rests: Buffer[] = [];
    let done = false;
    for (let i = 0; i < input.length; i++) {
      const r = hs.push(input.subarray(i, i + 1));
      if (r.send) sends.push(r.send);
      rests.push(r.rest);
      done = r.done;
    }
    expect(sends).toHaveLength(1);
    expect(sends[0]).toEqual(whole.send);
    expect(done).toBe(true);
    expect(Buffer.concat(rests)).toEqual(Buffer.from([9, 9, 9]));
    expect(whole.rest).toEqual(Buffer.from([9, 9, 9]));
  });

  it('answers plain when C1 claims a version but its digest does not validate', () => {
    const c1 = digestC1(8, 5);
    c1[100] = (c1[100] as number) ^ 1; // breaks the digest (byte 100 is outside both offset sums)
    const hs = new ServerHandshake();
    const send = hs.push(Buffer.concat([Buffer.from([3]), c1])).send as Buffer;
    expect(hs.digest).toBe(false);
    expect(send.subarray(5, 9)).toEqual(Buffer.alloc(4));
    expect(send.subarray(1 + SIZE).equals(c1)).toBe(true);
  });
});

describe('ServerHandshake: digest (Flash Player 9) scheme', () => {
  it.each([8, 772] as const)('C1 digest at base %i: S1 is FMS-signed with the same scheme, S2 carries the C1-derived signature', (base) => {
    for (let seed = 10; seed < 20; seed++) {
      const c1 = digestC1(base, seed);
      expect(digestAt(c1, base, FP_KEY.subarray(0, 30))).not.toBeNull(); // the test's own C1 is right
      const hs = new ServerHandshake({ randomFill: seededFill(seed * 7) });
      const send = hs.push(Buffer.concat([Buffer.from([3]), c1])).send as Buffer;
      expect(hs.digest).toBe(true);
      const s1 = send.subarray(1, 1 + SIZE);
      const s2 = send.subarray(1 + SIZE);
      // FFmpeg verifies only when S1[4] >= 3.
      expect(s1[4]).toBeGreaterThanOrEqual(3);
      expect(digestAt(s1, base, FMS_KEY.subarray(0, 36))).not.toBeNull();
      // S2 = random + HMAC(HMAC(full FMS key, C1's digest), S2[0..1504)).
      const c1Digest = c1.subarray(offsetOf(c1, base), offsetOf(c1, base) + 32);
      const key = hmac(FMS_KEY, c1Digest);
      expect(hmac(key, s2.subarray(0, SIZE - 32)).equals(s2.subarray(SIZE - 32))).toBe(true);
      // And it is not simply an echo of C1.
      expect(s2.equals(c1)).toBe(false);
    }
  });
});
