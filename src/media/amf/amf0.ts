/**
 * AMF0, the encoding of RTMP commands (type 20) and data messages (type 18, onMetaData). The decoder
 * is written for hostile input: every read is bounds-checked, nesting, string sizes and value counts
 * are capped, and it throws nothing but AmfError. Objects and ECMA arrays get a null prototype, so
 * keys like `__proto__` are plain data.
 */
import type { AmfObject, AmfValue } from '../types.js';
import { resolveAmfLimits, type AmfLimits } from '../../ingest/rtmp/limits.js';
import { AmfError } from './errors.js';
import {
  countValues,
  decodeAmf3Value,
  enterContainer,
  need,
  readUtf8,
  resolveRef,
  type AmfReadState,
  type RefEntry,
} from './amf3.js';

export const Amf0Marker = {
  Number: 0x00,
  Boolean: 0x01,
  String: 0x02,
  Object: 0x03,
  MovieClip: 0x04,
  Null: 0x05,
  Undefined: 0x06,
  Reference: 0x07,
  EcmaArray: 0x08,
  ObjectEnd: 0x09,
  StrictArray: 0x0a,
  Date: 0x0b,
  LongString: 0x0c,
  Unsupported: 0x0d,
  RecordSet: 0x0e,
  XmlDocument: 0x0f,
  TypedObject: 0x10,
  AvmPlus: 0x11,
} as const;

export interface Amf0DecodeOptions extends Partial<AmfLimits> {
  /** Decode one AMF3 value after an AVM+ switch (0x11); otherwise 0x11 is an AmfError. */
  allowAmf3?: boolean;
}

interface Amf0State extends AmfReadState {
  readonly refs: RefEntry[];
  readonly allowAmf3: boolean;
}

/** Decodes every AMF0 value until the end of `buf`. Throws AmfError, and only AmfError. */
export function decodeAmf0(buf: Buffer, limits?: Amf0DecodeOptions): AmfValue[] {
  const st: Amf0State = {
    buf,
    pos: 0,
    limits: resolveAmfLimits(limits),
    values: 0,
    depth: 0,
    refs: [],
    allowAmf3: limits?.allowAmf3 === true,
  };
  const out: AmfValue[] = [];
  while (st.pos < buf.length) out.push(value0(st));
  return out;
}

function value0(st: Amf0State): AmfValue {
  need(st, 1);
  const at = st.pos;
  const marker = st.buf[st.pos++] as number;
  switch (marker) {
    case Amf0Marker.Number:
      countValues(st, 1);
      need(st, 8);
      st.pos += 8;
      return st.buf.readDoubleBE(st.pos - 8);
    case Amf0Marker.Boolean:
      countValues(st, 1);
      need(st, 1);
      return st.buf[st.pos++] !== 0;
    case Amf0Marker.String:
      countValues(st, 1);
      return readUtf8(st, readU16(st));
    case Amf0Marker.LongString:
    case Amf0Marker.XmlDocument:
      countValues(st, 1);
      return readUtf8(st, readU32(st));
    case Amf0Marker.Null:
      countValues(st, 1);
      return null;
    // "Unsupported" is a real value meaning "this could not be serialized": decode it as undefined.
    case Amf0Marker.Undefined:
    case Amf0Marker.Unsupported:
      countValues(st, 1);
      return undefined;
    case Amf0Marker.Date: {
      countValues(st, 1);
      need(st, 10);
      // The s16 time zone that follows is reserved ("should be 0") and carries nothing we use.
      const d = new Date(st.buf.readDoubleBE(st.pos));
      st.pos += 10;
      return d;
    }
    case Amf0Marker.Object:
      return properties(st, false);
    case Amf0Marker.EcmaArray:
      // The count is advisory (ffmpeg presets it, some encoders write 0): read to the end marker.
      need(st, 4);
      st.pos += 4;
      return properties(st, false);
    case Amf0Marker.TypedObject:
      return properties(st, true);
    case Amf0Marker.StrictArray:
      return strictArray(st);
    case Amf0Marker.Reference:
      return resolveRef(st, st.refs, readU16(st));
    case Amf0Marker.AvmPlus:
      if (!st.allowAmf3) throw new AmfError('amf3-unsupported', 'AMF3 value (AVM+ switch) not allowed here', at);
      return decodeAmf3Value(st);
    case Amf0Marker.ObjectEnd:
      throw new AmfError('amf-malformed', 'AMF0 object-end marker outside an object', at);
    default:
      // 0x04 movieclip and 0x0E recordset are reserved by the spec; the rest are not AMF0.
      throw new AmfError('amf-unknown-marker', `unknown AMF0 marker 0x${marker.toString(16)}`, at);
  }
}

function readU16(st: AmfReadState): number {
  need(st, 2);
  st.pos += 2;
  return st.buf.readUInt16BE(st.pos - 2);
}

function readU32(st: AmfReadState): number {
  need(st, 4);
  st.pos += 4;
  return st.buf.readUInt32BE(st.pos - 4);
}

/** Object, ECMA array or typed object body: (key, value)* then an empty key and 0x09. */
function properties(st: Amf0State, typed: boolean): AmfObject {
  countValues(st, 1);
  enterContainer(st);
  const before = st.values;
  const obj = Object.create(null) as AmfObject;
  // Registered before its members, so the indices match the sender's serialization order.
  const entry: RefEntry = { value: obj, done: false, cost: 1 };
  st.refs.push(entry);
  // The class name is dropped: a typed object is decoded as a plain object.
  if (typed) readUtf8(st, readU16(st));
  for (;;) {
    const keyAt = st.pos;
    const key = readUtf8(st, readU16(st));
    if (key === '') {
      need(st, 1);
      if (st.buf[st.pos] !== Amf0Marker.ObjectEnd) {
        throw new AmfError('amf-malformed', 'AMF0 empty key without the object-end marker', keyAt);
      }
      st.pos++;
      break;
    }
    obj[key] = value0(st);
  }
  st.depth--;
  entry.done = true;
  entry.cost = 1 + st.values - before;
  return obj;
}

function strictArray(st: Amf0State): AmfValue[] {
  const count = readU32(st);
  // Each value takes at least one byte: an impossible count is refused before any loop or allocation.
  if (count > st.buf.length - st.pos) {
    throw new AmfError('amf-truncated', `AMF0 strict array of ${count} values in ${st.buf.length - st.pos} bytes`, st.pos);
  }
  countValues(st, 1);
  enterContainer(st);
  const before = st.values;
  const items: AmfValue[] = [];
  const entry: RefEntry = { value: items, done: false, cost: 1 };
  st.refs.push(entry);
  for (let i = 0; i < count; i++) items.push(value0(st));
  st.depth--;
  entry.done = true;
  entry.cost = 1 + st.values - before;
  return items;
}

// ---------- encoding ----------

/** Marks a property bag to be written as an ECMA array (0x08), as onMetaData is; plain objects are written as objects (0x03). */
export class AmfEcmaArray {
  constructor(readonly props: { readonly [key: string]: AmfEncodable }) {}
}

/** What encodeAmf0 accepts: any decoded AmfValue, plus ECMA-array wrappers at any depth. */
export type AmfEncodable =
  | number
  | boolean
  | string
  | null
  | undefined
  | Date
  | AmfEcmaArray
  | readonly AmfEncodable[]
  | { readonly [key: string]: AmfEncodable };

/** Deep enough for any command or metadata; stops a cyclic value before the stack does. */
const MAX_ENCODE_DEPTH = 64;

class ByteSink {
  private buf = Buffer.allocUnsafe(256);
  length = 0;
  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number): void {
    this.reserve(1);
    this.buf[this.length++] = v;
  }
  u16(v: number): void {
    this.reserve(2);
    this.length = this.buf.writeUInt16BE(v, this.length);
  }
  u32(v: number): void {
    this.reserve(4);
    this.length = this.buf.writeUInt32BE(v, this.length);
  }
  f64(v: number): void {
    this.reserve(8);
    this.length = this.buf.writeDoubleBE(v, this.length);
  }
  bytes(b: Buffer): void {
    this.reserve(b.length);
    this.length += b.copy(this.buf, this.length);
  }
  result(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }
}

/** Encodes values back to back, as a command or data message body. */
export function encodeAmf0(values: readonly AmfEncodable[]): Buffer {
  const out = new ByteSink();
  for (const v of values) encodeValue(out, v, 0);
  return out.result();
}

function encodeValue(out: ByteSink, v: AmfEncodable, depth: number): void {
  if (v === null) return out.u8(Amf0Marker.Null);
  switch (typeof v) {
    case 'undefined':
      return out.u8(Amf0Marker.Undefined);
    case 'number':
      out.u8(Amf0Marker.Number);
      return out.f64(v);
    case 'boolean':
      out.u8(Amf0Marker.Boolean);
      return out.u8(v ? 1 : 0);
    case 'string': {
      const b = Buffer.from(v, 'utf8');
      if (b.length > 0xffff) {
        out.u8(Amf0Marker.LongString);
        out.u32(b.length);
      } else {
        out.u8(Amf0Marker.String);
        out.u16(b.length);
      }
      return out.bytes(b);
    }
    default:
      break;
  }
  if (v instanceof Date) {
    out.u8(Amf0Marker.Date);
    out.f64(v.getTime());
    return out.u16(0);
  }
  if (depth >= MAX_ENCODE_DEPTH) throw new AmfError('amf-depth', `AMF0 value nested deeper than ${MAX_ENCODE_DEPTH} (a cycle?)`);
  if (v instanceof AmfEcmaArray) {
    const keys = Object.keys(v.props);
    out.u8(Amf0Marker.EcmaArray);
    out.u32(keys.length);
    return encodeProps(out, v.props, keys, depth);
  }
  if (isArray(v)) {
    out.u8(Amf0Marker.StrictArray);
    out.u32(v.length);
    // Indexed, so holes in a sparse array are written as undefined.
    for (let i = 0; i < v.length; i++) encodeValue(out, v[i], depth + 1);
    return;
  }
  out.u8(Amf0Marker.Object);
  encodeProps(out, v, Object.keys(v), depth);
}

function isArray(v: unknown): v is readonly AmfEncodable[] {
  return Array.isArray(v);
}

function encodeProps(out: ByteSink, props: { readonly [key: string]: AmfEncodable }, keys: string[], depth: number): void {
  for (const key of keys) {
    const k = Buffer.from(key, 'utf8');
    // An empty key would read as the end of the object.
    if (k.length === 0) throw new AmfError('amf-malformed', 'AMF0 property with an empty key cannot be encoded');
    if (k.length > 0xffff) throw new AmfError('amf-too-long', `AMF0 key of ${k.length} bytes cannot be encoded`);
    out.u16(k.length);
    out.bytes(k);
    encodeValue(out, props[key], depth + 1);
  }
  out.u16(0);
  out.u8(Amf0Marker.ObjectEnd);
}
