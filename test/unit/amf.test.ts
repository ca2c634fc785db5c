import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { AmfEcmaArray, decodeAmf0, encodeAmf0, type AmfEncodable } from '../../src/media/amf/amf0.js';
import { decodeAmf3 } from '../../src/media/amf/amf3.js';
import { AmfError, type AmfErrorReason } from '../../src/media/amf/errors.js';
import { DEFAULT_AMF_LIMITS } from '../../src/ingest/rtmp/limits.js';
import type { AmfObject, AmfValue } from '../../src/media/types.js';
import { FFMPEG_ON_METADATA, FFMPEG_PLAY_CONNECT, FFMPEG_PUBLISH_CONNECT } from '../helpers/ffmpeg-amf-captures.js';
import { thrownAs } from '../helpers/expect-error.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const amfError = (fn: () => unknown): AmfError => thrownAs(fn, AmfError);

function expectReason(fn: () => unknown, reason: AmfErrorReason): void {
  const err = amfError(fn);
  expect(err.reason).toBe(reason);
  expect(err.code).toBe(ErrorCode.MediaInvalid);
}

/** AMF0 building blocks for hand-made payloads. */
const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const str0 = (s: string): Buffer => Buffer.concat([Buffer.from([0x02]), u16(Buffer.byteLength(s)), Buffer.from(s)]);
const key0 = (s: string): Buffer => Buffer.concat([u16(Buffer.byteLength(s)), Buffer.from(s)]);
const num0 = (n: number): Buffer => {
  const b = Buffer.alloc(9);
  b.writeDoubleBE(n, 1);
  return b;
};
const END = hex('000009');
const obj0 = (...props: Buffer[]): Buffer => Buffer.concat([Buffer.from([0x03]), ...props, END]);

function nestedObjects(depth: number): Buffer {
  // {a:{a:{…{}}}}: depth objects.
  const open = Buffer.concat([Buffer.from([0x03]), key0('a')]);
  const parts: Buffer[] = [];
  for (let i = 0; i < depth - 1; i++) parts.push(open);
  parts.push(Buffer.from([0x03]), END);
  for (let i = 0; i < depth - 1; i++) parts.push(END);
  return Buffer.concat(parts);
}

function depthOf(v: AmfValue): number {
  if (v === null || typeof v !== 'object' || v instanceof Date) return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + Math.max(0, ...children.map(depthOf));
}

describe('AMF0 decode: every marker', () => {
  it('number, boolean, string, null, undefined, long string, XML document, date', () => {
    const date = Buffer.alloc(11);
    date[0] = 0x0b;
    date.writeDoubleBE(1_700_000_000_123, 1);
    date.writeInt16BE(-60, 9);
    const long = Buffer.concat([Buffer.from([0x0c]), u32(3), Buffer.from('abc')]);
    const xml = Buffer.concat([Buffer.from([0x0f]), u32(4), Buffer.from('<a/>')]);
    const values = decodeAmf0(
      Buffer.concat([num0(-1.5), hex('0100 0101 0102'), str0('héllo'), hex('05 06'), long, xml, date, str0('')]),
    );
    expect(values).toEqual([-1.5, false, true, true, 'héllo', null, undefined, 'abc', '<a/>', new Date(1_700_000_000_123), '']);
  });

  it('0x0D "unsupported" is a valid marker and decodes as undefined', () => {
    expect(decodeAmf0(hex('0d 05'))).toEqual([undefined, null]);
  });

  it('object, ECMA array (count ignored, whatever it says), strict array, typed object', () => {
    const ecma = (count: number) => Buffer.concat([Buffer.from([0x08]), u32(count), key0('x'), num0(1), END]);
    expect(decodeAmf0(ecma(0))).toEqual([{ x: 1 }]);
    expect(decodeAmf0(ecma(1))).toEqual([{ x: 1 }]);
    expect(decodeAmf0(ecma(0xffffffff))).toEqual([{ x: 1 }]);
    const strict = Buffer.concat([Buffer.from([0x0a]), u32(3), str0('hvc1'), num0(2), hex('05')]);
    expect(decodeAmf0(strict)).toEqual([['hvc1', 2, null]]);
    const typed = Buffer.concat([Buffer.from([0x10]), u16(3), Buffer.from('Foo'), key0('k'), str0('v'), END]);
    expect(decodeAmf0(typed)).toEqual([{ k: 'v' }]);
    expect(decodeAmf0(obj0())).toEqual([{}]);
  });

  it('decodes real ffmpeg connect commands (publish and play) and its onMetaData', () => {
    expect(decodeAmf0(FFMPEG_PUBLISH_CONNECT)).toEqual([
      'connect',
      1,
      { app: 'live', type: 'nonprivate', flashVer: 'FMLE/3.0 (compatible; Lavf59.27.100)', tcUrl: 'rtmp://127.0.0.1:41409/live' },
    ]);
    const play = decodeAmf0(FFMPEG_PLAY_CONNECT);
    expect(play[2]).toMatchObject({ app: 'live', fpad: false, capabilities: 15, audioCodecs: 4071, videoCodecs: 252, videoFunction: 1 });
    const [name, meta] = decodeAmf0(FFMPEG_ON_METADATA);
    expect(name).toBe('onMetaData');
    expect(meta).toMatchObject({ width: 64, height: 64, framerate: 5, videocodecid: 7, audiocodecid: 10, stereo: false, encoder: 'Lavf59.27.100' });
    expect(Object.keys(meta as AmfObject)).toHaveLength(13);
  });

  it('creates objects and ECMA arrays with a null prototype: __proto__ and constructor are plain keys', () => {
    const payload = obj0(key0('__proto__'), obj0(key0('polluted'), hex('0101')), key0('constructor'), str0('x'));
    const [o] = decodeAmf0(payload) as [AmfObject];
    expect(Object.getPrototypeOf(o)).toBeNull();
    expect(Object.keys(o)).toEqual(['__proto__', 'constructor']);
    expect(o['__proto__']).toEqual({ polluted: true });
    expect(o['constructor']).toBe('x');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    const [meta] = decodeAmf0(FFMPEG_ON_METADATA).slice(1) as [AmfObject];
    expect(Object.getPrototypeOf(meta)).toBeNull();
  });

  it('0x11 (AVM+) decodes one AMF3 value only when allowed', () => {
    const payload = hex('11 04 7f 02 0003 616263');
    expectReason(() => decodeAmf0(payload), 'amf3-unsupported');
    expect(decodeAmf0(payload, { allowAmf3: true })).toEqual([127, 'abc']);
  });

  it('an empty buffer is no values', () => {
    expect(decodeAmf0(Buffer.alloc(0))).toEqual([]);
  });
});

describe('AMF0 decode: references (0x07)', () => {
  it('resolves to an earlier, completed complex value (objects, ECMA and strict arrays are indexed)', () => {
    // [ {a:1}, [2], ecma{b:3}, ref 0, ref 1, ref 2 ]
    const payload = Buffer.concat([
      obj0(key0('a'), num0(1)),
      Buffer.concat([Buffer.from([0x0a]), u32(1), num0(2)]),
      Buffer.concat([Buffer.from([0x08]), u32(1), key0('b'), num0(3), END]),
      hex('07 0000 07 0001 07 0002'),
    ]);
    const v = decodeAmf0(payload);
    expect(v).toEqual([{ a: 1 }, [2], { b: 3 }, { a: 1 }, [2], { b: 3 }]);
    expect(v[3]).toBe(v[0]);
  });

  it('refuses a reference to nothing or to an object still being decoded (a cycle)', () => {
    expectReason(() => decodeAmf0(hex('07 0000')), 'amf-bad-reference');
    expectReason(() => decodeAmf0(Buffer.concat([obj0(), hex('07 0001')])), 'amf-bad-reference');
    // {self: ref 0} inside object 0.
    expectReason(() => decodeAmf0(Buffer.concat([Buffer.from([0x03]), key0('self'), hex('07 0000'), END])), 'amf-bad-reference');
  });

  it('charges a reference with the size of what it points to (no exponential expansion)', () => {
    // Object i holds two references to object i-1: 2^n leaves for a walker, from a few bytes.
    const parts: Buffer[] = [obj0(key0('x'), num0(0))];
    for (let i = 1; i < 20; i++) parts.push(obj0(key0('l'), Buffer.concat([hex('07'), u16(i - 1)]), key0('r'), Buffer.concat([hex('07'), u16(i - 1)])));
    expectReason(() => decodeAmf0(Buffer.concat(parts)), 'amf-too-many-values');
    // The first few levels are fine: 2 + 5 + 11 + 23 values.
    expect(decodeAmf0(Buffer.concat(parts.slice(0, 4)))).toHaveLength(4);
  });
});

describe('AMF0 decode: limits, each exactly at and beyond the bound', () => {
  it('maxDepth (default 16): 16 nested containers decode, 17 do not', () => {
    expect(DEFAULT_AMF_LIMITS.maxDepth).toBe(16);
    const [ok] = decodeAmf0(nestedObjects(16));
    expect(depthOf(ok as AmfValue)).toBe(16);
    expectReason(() => decodeAmf0(nestedObjects(17)), 'amf-depth');
    expect(decodeAmf0(nestedObjects(4), { maxDepth: 4 })).toHaveLength(1);
    expectReason(() => decodeAmf0(nestedObjects(5), { maxDepth: 4 }), 'amf-depth');
  });

  it('10,000 nested objects, arrays or ECMA arrays give amf-depth, not a stack overflow', () => {
    expectReason(() => decodeAmf0(nestedObjects(10_000)), 'amf-depth');
    const arrays = Buffer.concat(Array.from({ length: 10_000 }, () => Buffer.concat([Buffer.from([0x0a]), u32(1)])));
    expectReason(() => decodeAmf0(arrays), 'amf-depth');
    const ecma = Buffer.concat(Array.from({ length: 10_000 }, () => Buffer.concat([Buffer.from([0x08]), u32(0), key0('a')])));
    expectReason(() => decodeAmf0(ecma, { maxDepth: 256 }), 'amf-depth');
  });

  it('maxStringBytes (default 64 KiB) for strings, long strings and keys', () => {
    const limits = { maxStringBytes: 10 };
    expect(decodeAmf0(str0('x'.repeat(10)), limits)).toEqual(['x'.repeat(10)]);
    expectReason(() => decodeAmf0(str0('x'.repeat(11)), limits), 'amf-too-long');
    const long = (n: number) => Buffer.concat([Buffer.from([0x0c]), u32(n), Buffer.alloc(n, 0x61)]);
    expect(decodeAmf0(long(10), limits)).toEqual(['a'.repeat(10)]);
    expectReason(() => decodeAmf0(long(11), limits), 'amf-too-long');
    expect(decodeAmf0(obj0(key0('k'.repeat(10)), hex('05')), limits)).toHaveLength(1);
    expectReason(() => decodeAmf0(obj0(key0('k'.repeat(11)), hex('05')), limits), 'amf-too-long');
    // Default: a 64 KiB long string decodes, one byte more does not; a declared 4 GiB one is refused unread.
    expect(decodeAmf0(long(64 * 1024))[0]).toHaveLength(64 * 1024);
    expectReason(() => decodeAmf0(long(64 * 1024 + 1)), 'amf-too-long');
    expectReason(() => decodeAmf0(Buffer.concat([Buffer.from([0x0c]), u32(0xffffffff)])), 'amf-too-long');
  });

  it('maxValues (default 4096): nested values and properties count', () => {
    expect(decodeAmf0(Buffer.concat(Array.from({ length: 4096 }, () => hex('05'))))).toHaveLength(4096);
    expectReason(() => decodeAmf0(Buffer.concat(Array.from({ length: 4097 }, () => hex('05')))), 'amf-too-many-values');
    // An object with 2 properties is 3 values.
    const o = obj0(key0('a'), hex('05'), key0('b'), hex('05'));
    expect(decodeAmf0(o, { maxValues: 3 })).toHaveLength(1);
    expectReason(() => decodeAmf0(o, { maxValues: 2 }), 'amf-too-many-values');
  });

  it('a strict array count larger than the bytes left is refused before any loop', () => {
    expectReason(() => decodeAmf0(Buffer.concat([Buffer.from([0x0a]), u32(0xffffffff), hex('05')])), 'amf-truncated');
  });
});

describe('AMF0 decode: malformed input gives AmfError only', () => {
  it('reserved and unknown markers: 0x04 movieclip, 0x0E recordset, 0x12..0xFF', () => {
    for (const m of [0x04, 0x0e, ...Array.from({ length: 0xff - 0x12 + 1 }, (_, i) => 0x12 + i)]) {
      expectReason(() => decodeAmf0(Buffer.from([m, 0, 0, 0, 0, 0, 0, 0, 0])), 'amf-unknown-marker');
    }
  });

  it('an object-end marker where a value belongs, and an empty key without 0x09', () => {
    expectReason(() => decodeAmf0(hex('09')), 'amf-malformed');
    expectReason(() => decodeAmf0(Buffer.concat([Buffer.from([0x03]), u16(0), hex('05')])), 'amf-malformed');
  });

  it('every truncation of real payloads is amf-truncated (or a clean cut between values)', () => {
    for (const full of [FFMPEG_PUBLISH_CONNECT, FFMPEG_PLAY_CONNECT, FFMPEG_ON_METADATA]) {
      const valueEnds = new Set<number>([0]);
      // Offsets where a top-level value ends: decode growing prefixes that succeed.
      let cuts = 0;
      for (let n = 1; n < full.length; n++) {
        try {
          decodeAmf0(full.subarray(0, n));
          valueEnds.add(n);
        } catch (err) {
          expect(err).toBeInstanceOf(AmfError);
          expect((err as AmfError).reason).toBe('amf-truncated');
          cuts++;
        }
      }
      // Only the boundaries after the command name and the transaction id (or "onMetaData") decode.
      expect(valueEnds.size).toBeLessThanOrEqual(3);
      expect(cuts).toBeGreaterThan(full.length - 4);
    }
  });
});

describe('AMF0 encode', () => {
  it('writes the documented bytes: connect reply shapes, ECMA array vs object', () => {
    expect(encodeAmf0(['_result', 1, null, { code: 'ok' }]).toString('hex')).toBe(
      '02' + '0007' + Buffer.from('_result').toString('hex') + '00' + '3ff0000000000000' + '05' + '03' + '0004' + Buffer.from('code').toString('hex') + '02' + '0002' + '6f6b' + '000009',
    );
    expect(encodeAmf0([new AmfEcmaArray({ a: true })]).toString('hex')).toBe('08' + '00000001' + '0001' + '61' + '0101' + '000009');
    expect(encodeAmf0([undefined, false, [1]]).toString('hex')).toBe('06' + '0100' + '0a00000001' + '003ff0000000000000');
  });

  it('round-trips every encodable type, nested', () => {
    const values: AmfEncodable[] = [
      0,
      -0.5,
      Number.MAX_SAFE_INTEGER,
      true,
      false,
      '',
      'ünïcødé ✓',
      null,
      undefined,
      new Date(86_400_000),
      { a: { b: [1, 'two', null, { c: undefined }] } },
      new AmfEcmaArray({ duration: 0, width: 1920, nested: new AmfEcmaArray({ x: 1 }) }),
      [[], {}, [[[]]]],
    ];
    const decoded = decodeAmf0(encodeAmf0(values));
    expect(decoded).toEqual([
      0, -0.5, Number.MAX_SAFE_INTEGER, true, false, '', 'ünïcødé ✓', null, undefined, new Date(86_400_000),
      { a: { b: [1, 'two', null, { c: undefined }] } },
      { duration: 0, width: 1920, nested: { x: 1 } },
      [[], {}, [[[]]]],
    ]);
  });

  it('strings over 65535 bytes become long strings (0x0C); 65535 stays a string (0x02)', () => {
    const s65535 = 'a'.repeat(65535);
    const b1 = encodeAmf0([s65535]);
    expect(b1[0]).toBe(0x02);
    expect(b1.length).toBe(3 + 65535);
    const s65536 = 'é'.repeat(32768); // 65536 UTF-8 bytes
    const b2 = encodeAmf0([s65536]);
    expect(b2[0]).toBe(0x0c);
    expect(b2.readUInt32BE(1)).toBe(65536);
    expect(decodeAmf0(b2, { maxStringBytes: 65536 })).toEqual([s65536]);
  });

  it('holes in a sparse array are written as undefined', () => {
    const sparse: AmfEncodable[] = [];
    sparse[2] = 1;
    expect(decodeAmf0(encodeAmf0([sparse]))).toEqual([[undefined, undefined, 1]]);
  });

  it('refuses what cannot be encoded: a key over 65535 bytes, an empty key, a cycle', () => {
    expectReason(() => encodeAmf0([{ ['k'.repeat(65536)]: 1 }]), 'amf-too-long');
    expectReason(() => encodeAmf0([{ '': 1 }]), 'amf-malformed');
    const cyclic: { [k: string]: AmfEncodable } = {};
    cyclic['self'] = cyclic;
    expectReason(() => encodeAmf0([cyclic]), 'amf-depth');
  });
});

// ---------- AMF3 ----------

/** U29 as AMF3 writes it. */
function u29(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x4000) return Buffer.from([(n >> 7) | 0x80, n & 0x7f]);
  if (n < 0x200000) return Buffer.from([(n >> 14) | 0x80, ((n >> 7) & 0x7f) | 0x80, n & 0x7f]);
  return Buffer.from([(n >> 22) | 0x80, ((n >> 15) & 0x7f) | 0x80, ((n >> 8) & 0x7f) | 0x80, n & 0xff]);
}
const vr = (s: string): Buffer => Buffer.concat([u29((Buffer.byteLength(s) << 1) | 1), Buffer.from(s)]);
const str3 = (s: string): Buffer => Buffer.concat([Buffer.from([0x06]), vr(s)]);
const d3 = (limits = DEFAULT_AMF_LIMITS) => (b: Buffer) => decodeAmf3(b, limits);

describe('AMF3 subset (after an AVM+ switch)', () => {
  const dec = d3();

  it('scalars: undefined, null, false, true, U29 integers of 1–4 bytes (signed), double', () => {
    const dbl = Buffer.alloc(9);
    dbl[0] = 0x05;
    dbl.writeDoubleBE(2.5, 1);
    const ints = [0, 127, 128, 0x3fff, 0x4000, 0x1fffff, 0x200000, 0x0fffffff].map((n) => Buffer.concat([Buffer.from([0x04]), u29(n)]));
    expect(dec(Buffer.concat([hex('00 01 02 03'), ...ints, dbl]))).toEqual([undefined, null, false, true, 0, 127, 128, 0x3fff, 0x4000, 0x1fffff, 0x200000, 0x0fffffff, 2.5]);
    // 0x1FFFFFFF is -1 as a 29-bit two's complement; 0x10000000 is the most negative.
    expect(dec(Buffer.concat([hex('04'), u29(0x1fffffff), hex('04'), u29(0x10000000)]))).toEqual([-1, -0x10000000]);
  });

  it('strings, with the reference table (the empty string is never in it)', () => {
    const arr = (...items: Buffer[]) => Buffer.concat([hex('09'), u29((items.length << 1) | 1), hex('01'), ...items]);
    const refs = arr(str3('abc'), str3(''), str3('def'), Buffer.concat([hex('06'), u29(0 << 1)]), Buffer.concat([hex('06'), u29(1 << 1)]));
    expect(dec(refs)).toEqual([['abc', '', 'def', 'abc', 'def']]);
    expectReason(() => dec(arr(str3(''), Buffer.concat([hex('06'), u29(0)]))), 'amf-bad-reference');
    // Tables do not survive from one switched value to the next.
    expectReason(() => dec(Buffer.concat([str3('abc'), hex('06'), u29(0)])), 'amf-bad-reference');
  });

  it('date, dense array, associative array, anonymous dynamic object', () => {
    const date = Buffer.alloc(10);
    date[0] = 0x08;
    date[1] = 0x01;
    date.writeDoubleBE(1000, 2);
    const dense = Buffer.concat([hex('09'), u29((2 << 1) | 1), hex('01'), hex('04 05'), str3('x')]);
    const assoc = Buffer.concat([hex('09'), u29((1 << 1) | 1), vr('k'), hex('03'), hex('01'), hex('02')]);
    // Dynamic anonymous object: traits inline (0b1011), no sealed members, class name "".
    const obj = Buffer.concat([hex('0a'), u29(0x0b), vr(''), vr('a'), hex('04 01'), vr('__proto__'), hex('03'), hex('01')]);
    const [d, arr, mixed, o] = dec(Buffer.concat([date, dense, assoc, obj]));
    expect(d).toEqual(new Date(1000));
    expect(arr).toEqual([5, 'x']);
    expect(mixed).toEqual({ k: true, '0': false });
    expect(Object.keys(o as AmfObject)).toEqual(['a', '__proto__']);
    expect((o as AmfObject)['__proto__']).toBe(true);
    expect(Object.getPrototypeOf(o)).toBeNull();
  });

  it('sealed traits, a traits reference and an object reference; a reference into the unfinished array is refused', () => {
    const sealed = Buffer.concat([hex('0a'), u29((1 << 4) | 0x03), vr(''), vr('p'), hex('04 07')]);
    const again = Buffer.concat([hex('0a'), u29((0 << 2) | 0x01), hex('04 08')]);
    const ref = (i: number) => Buffer.concat([hex('0a'), u29(i << 1)]);
    const arr = (...items: Buffer[]) => Buffer.concat([hex('09'), u29((items.length << 1) | 1), hex('01'), ...items]);
    // Object table: 0 = the array, 1 = sealed, 2 = again.
    const [v] = dec(arr(sealed, again, ref(1))) as [AmfValue[]];
    expect(v).toEqual([{ p: 7 }, { p: 8 }, { p: 7 }]);
    expect(v[2]).toBe(v[0]);
    expectReason(() => dec(arr(ref(0))), 'amf-bad-reference');
    expectReason(() => dec(arr(ref(5))), 'amf-bad-reference');
    expectReason(() => dec(Buffer.concat([hex('0a'), u29((3 << 2) | 0x01)])), 'amf-bad-reference'); // traits 3 of none
  });

  it('refuses everything outside the subset with amf3-unsupported', () => {
    for (const m of [0x07, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0xff]) {
      expectReason(() => dec(Buffer.concat([Buffer.from([m]), u29(1), Buffer.alloc(8)])), 'amf3-unsupported');
    }
    expectReason(() => dec(Buffer.concat([hex('0a'), u29(0x07), vr('Ext')])), 'amf3-unsupported'); // externalizable
    expectReason(() => dec(Buffer.concat([hex('0a'), u29(0x0b), vr('my.Class'), vr('')])), 'amf3-unsupported'); // typed
  });

  it('truncation, depth and counts are bounded like AMF0', () => {
    expectReason(() => dec(hex('04 80 80')), 'amf-truncated');
    expectReason(() => dec(Buffer.concat([hex('06'), u29((100 << 1) | 1), Buffer.from('short')])), 'amf-truncated');
    expectReason(() => dec(Buffer.concat([hex('09'), u29((0xfffff << 1) | 1), hex('01')])), 'amf-truncated');
    const nested = (n: number) => Buffer.concat([...Array.from({ length: n }, () => Buffer.concat([hex('09'), u29((1 << 1) | 1), hex('01')])), hex('01')]);
    expect(dec(nested(16))).toHaveLength(1);
    expectReason(() => dec(nested(17)), 'amf-depth');
    expectReason(() => dec(nested(10_000)), 'amf-depth');
    expectReason(() => d3({ ...DEFAULT_AMF_LIMITS, maxStringBytes: 2 })(str3('abc')), 'amf-too-long');
    expectReason(() => d3({ ...DEFAULT_AMF_LIMITS, maxValues: 2 })(hex('01 01 01')), 'amf-too-many-values');
  });
});
