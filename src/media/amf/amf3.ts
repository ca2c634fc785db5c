/**
 * A bounded AMF3 decoder for the one value that follows an AMF0 AVM+ switch (0x11). Only the
 * plain-data subset: undefined, null, booleans, integer, double, string, date, array, anonymous
 * objects. XML, byte arrays, vectors, dictionaries, typed and externalizable objects are refused:
 * they are where librtmp's AMF3 CVEs lived (CVE-2015-8270/8271/8272), and no publisher needs them.
 */
import type { AmfObject, AmfValue } from '../types.js';
import type { AmfLimits } from '../../ingest/rtmp/limits.js';
import { AmfError } from './errors.js';

/** Decoding cursor and budget shared by the AMF0 and AMF3 decoders of one payload. */
export interface AmfReadState {
  readonly buf: Buffer;
  pos: number;
  readonly limits: AmfLimits;
  /** Values decoded so far in this payload (references add what they point to). */
  values: number;
  /** Containers currently open. */
  depth: number;
}

/** One entry of a reference table: the value, whether it is complete, and how many values it holds. */
export interface RefEntry {
  value: AmfValue;
  done: boolean;
  cost: number;
}

export function need(st: AmfReadState, n: number): void {
  if (st.buf.length - st.pos < n) {
    throw new AmfError('amf-truncated', `AMF value needs ${n} bytes, ${st.buf.length - st.pos} left`, st.pos);
  }
}

export function countValues(st: AmfReadState, n: number): void {
  st.values += n;
  if (st.values > st.limits.maxValues) {
    throw new AmfError('amf-too-many-values', `more than ${st.limits.maxValues} AMF values`, st.pos);
  }
}

export function enterContainer(st: AmfReadState): void {
  if (st.depth >= st.limits.maxDepth) {
    throw new AmfError('amf-depth', `AMF containers nested deeper than ${st.limits.maxDepth}`, st.pos);
  }
  st.depth++;
}

/** UTF-8 text of `len` bytes at the cursor; invalid sequences become U+FFFD (never a throw). */
export function readUtf8(st: AmfReadState, len: number): string {
  if (len > st.limits.maxStringBytes) {
    throw new AmfError('amf-too-long', `AMF string of ${len} bytes (limit ${st.limits.maxStringBytes})`, st.pos);
  }
  need(st, len);
  const s = st.buf.toString('utf8', st.pos, st.pos + len);
  st.pos += len;
  return s;
}

/** Resolves a reference: only to a completed entry, so a decoded value can never contain a cycle. */
export function resolveRef(st: AmfReadState, table: readonly RefEntry[], index: number): AmfValue {
  const entry = table[index];
  if (entry === undefined || !entry.done) {
    throw new AmfError('amf-bad-reference', `AMF reference ${index} to ${entry ? 'an unfinished' : 'no'} object`, st.pos);
  }
  // The referenced value is shared, not copied; charging its size keeps what a consumer may walk
  // (a DAG of references could otherwise expand exponentially) within maxValues.
  countValues(st, entry.cost);
  return entry.value;
}

const enum M3 {
  Undefined = 0x00,
  Null = 0x01,
  False = 0x02,
  True = 0x03,
  Integer = 0x04,
  Double = 0x05,
  String = 0x06,
  XmlDoc = 0x07,
  Date = 0x08,
  Array = 0x09,
  Object = 0x0a,
}

interface Traits {
  sealed: string[];
  dynamic: boolean;
}

interface Amf3Tables {
  strings: string[];
  objects: RefEntry[];
  traits: Traits[];
}

/**
 * Decodes one AMF3 value at the cursor. Reference tables are fresh for each call: a switch is not
 * sticky, and references across switches are refused rather than guessed at.
 */
export function decodeAmf3Value(st: AmfReadState): AmfValue {
  return value3(st, { strings: [], objects: [], traits: [] });
}

/** Decodes a buffer holding exactly AMF3 values (for tests and type-15/17 payload experiments). */
export function decodeAmf3(buf: Buffer, limits: AmfLimits): AmfValue[] {
  const st: AmfReadState = { buf, pos: 0, limits, values: 0, depth: 0 };
  const out: AmfValue[] = [];
  while (st.pos < buf.length) out.push(decodeAmf3Value(st));
  return out;
}

/** U29: 1–4 bytes, 7 bits from each of the first three, all 8 from the fourth. */
function readU29(st: AmfReadState): number {
  let v = 0;
  for (let i = 0; i < 3; i++) {
    need(st, 1);
    const b = st.buf[st.pos++] as number;
    v = (v << 7) | (b & 0x7f);
    if ((b & 0x80) === 0) return v;
  }
  need(st, 1);
  return ((v << 8) | (st.buf[st.pos++] as number)) >>> 0;
}

function readString3(st: AmfReadState, t: Amf3Tables): string {
  const u = readU29(st);
  if ((u & 1) === 0) {
    const s = t.strings[u >>> 1];
    if (s === undefined) throw new AmfError('amf-bad-reference', `AMF3 string reference ${u >>> 1} to nothing`, st.pos);
    return s;
  }
  const s = readUtf8(st, u >>> 1);
  // The empty string is never sent by reference, so it never enters the table.
  if (s.length > 0) t.strings.push(s);
  return s;
}

function value3(st: AmfReadState, t: Amf3Tables): AmfValue {
  need(st, 1);
  const markerAt = st.pos;
  const marker = st.buf[st.pos++] as number;
  switch (marker) {
    case M3.Undefined:
      countValues(st, 1);
      return undefined;
    case M3.Null:
      countValues(st, 1);
      return null;
    case M3.False:
      countValues(st, 1);
      return false;
    case M3.True:
      countValues(st, 1);
      return true;
    case M3.Integer: {
      countValues(st, 1);
      const u = readU29(st);
      // 29-bit two's complement.
      return u & 0x10000000 ? u - 0x20000000 : u;
    }
    case M3.Double:
      countValues(st, 1);
      need(st, 8);
      st.pos += 8;
      return st.buf.readDoubleBE(st.pos - 8);
    case M3.String:
      countValues(st, 1);
      return readString3(st, t);
    case M3.Date: {
      const u = readU29(st);
      if ((u & 1) === 0) return resolveRef(st, t.objects, u >>> 1);
      countValues(st, 1);
      need(st, 8);
      const d = new Date(st.buf.readDoubleBE(st.pos));
      st.pos += 8;
      t.objects.push({ value: d, done: true, cost: 1 });
      return d;
    }
    case M3.Array:
      return array3(st, t);
    case M3.Object:
      return object3(st, t);
    default:
      throw new AmfError(
        'amf3-unsupported',
        marker === M3.XmlDoc || marker <= 0x11 ? `AMF3 type 0x${marker.toString(16)} is not decoded` : `unknown AMF3 marker 0x${marker.toString(16)}`,
        markerAt,
      );
  }
}

function array3(st: AmfReadState, t: Amf3Tables): AmfValue {
  const u = readU29(st);
  if ((u & 1) === 0) return resolveRef(st, t.objects, u >>> 1);
  const dense = u >>> 1;
  // Every element takes at least one byte: refuse impossible counts before looping.
  if (dense > st.buf.length - st.pos) {
    throw new AmfError('amf-truncated', `AMF3 array of ${dense} elements in ${st.buf.length - st.pos} bytes`, st.pos);
  }
  countValues(st, 1);
  enterContainer(st);
  const before = st.values;
  const entry: RefEntry = { value: null, done: false, cost: 1 };
  t.objects.push(entry);
  let assoc: AmfObject | null = null;
  for (;;) {
    const key = readString3(st, t);
    if (key === '') break;
    assoc ??= Object.create(null) as AmfObject;
    assoc[key] = value3(st, t);
  }
  let result: AmfValue;
  if (assoc === null) {
    const items: AmfValue[] = [];
    for (let i = 0; i < dense; i++) items.push(value3(st, t));
    result = items;
  } else {
    // A mixed array has no AmfValue shape of its own: dense items become keys "0", "1", …
    for (let i = 0; i < dense; i++) assoc[String(i)] = value3(st, t);
    result = assoc;
  }
  st.depth--;
  entry.value = result;
  entry.done = true;
  entry.cost = 1 + st.values - before;
  return result;
}

function object3(st: AmfReadState, t: Amf3Tables): AmfValue {
  const at = st.pos;
  const u = readU29(st);
  if ((u & 1) === 0) return resolveRef(st, t.objects, u >>> 1);
  let traits: Traits;
  if ((u & 2) === 0) {
    const tr = t.traits[u >>> 2];
    if (tr === undefined) throw new AmfError('amf-bad-reference', `AMF3 traits reference ${u >>> 2} to nothing`, at);
    traits = tr;
  } else {
    if (u & 4) throw new AmfError('amf3-unsupported', 'AMF3 externalizable object', at);
    const sealedCount = u >>> 4;
    if (sealedCount > st.buf.length - st.pos) {
      throw new AmfError('amf-truncated', `AMF3 traits with ${sealedCount} members in ${st.buf.length - st.pos} bytes`, at);
    }
    const className = readString3(st, t);
    if (className !== '') throw new AmfError('amf3-unsupported', 'AMF3 typed object', at);
    const sealed: string[] = [];
    for (let i = 0; i < sealedCount; i++) {
      countValues(st, 1);
      sealed.push(readString3(st, t));
    }
    traits = { sealed, dynamic: (u & 8) !== 0 };
    t.traits.push(traits);
  }
  countValues(st, 1);
  enterContainer(st);
  const before = st.values;
  const obj = Object.create(null) as AmfObject;
  const entry: RefEntry = { value: obj, done: false, cost: 1 };
  t.objects.push(entry);
  for (const name of traits.sealed) obj[name] = value3(st, t);
  if (traits.dynamic) {
    for (;;) {
      const key = readString3(st, t);
      if (key === '') break;
      obj[key] = value3(st, t);
    }
  }
  st.depth--;
  entry.done = true;
  entry.cost = 1 + st.values - before;
  return obj;
}
