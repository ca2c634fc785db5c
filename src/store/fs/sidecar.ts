import { readFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { errnoCode } from './durable-fs.js';
import { StoreIntegrityError } from './fs-errors.js';

/**
 * What the fs store knows about one object beyond its bytes, kept in a small file in a tree
 * parallel to the data (see fs-store.ts). The sidecar is the record of what was acknowledged:
 * `length` and `crc64` are the object's acknowledged length and whole-object CRC-64, and `ino` names
 * the data file it describes, so a sidecar left over from an unfinished write is recognised as stale.
 *
 * Its file is one JSON line (the object as created or last compacted), then zero or more 32-byte
 * append records, each the object's new length, CRC-64 and mtime after one append, with a CRC-32 of
 * its own: an append writes one record in place instead of replacing the file (no temp file, rename
 * or directory fsync per append). The last valid record wins; a record torn by a crash fails its
 * CRC-32 and is ignored (the append it described never returned), and the next append overwrites it.
 */
export interface Sidecar {
  type: 'Appendable' | 'Normal';
  ino: bigint;
  length: number;
  crc64: bigint;
  /** Milliseconds since the epoch. */
  lastModified: number;
  contentType: string | undefined;
  metadata: Record<string, string>;
  acl: string | undefined;
  storageClass: string | undefined;
}

interface SidecarJson {
  /** 1: the JSON line only (files written before append records); 2: records may follow. */
  v: 1 | 2;
  type: 'Appendable' | 'Normal';
  ino: string;
  length: number;
  crc64: string;
  lastModified: number;
  contentType?: string;
  metadata: Record<string, string>;
  acl?: string;
  storageClass?: string;
}

export function encodeSidecar(s: Sidecar): string {
  const json: SidecarJson = {
    v: 2,
    type: s.type,
    ino: s.ino.toString(),
    length: s.length,
    crc64: s.crc64.toString(),
    lastModified: s.lastModified,
    metadata: s.metadata,
  };
  if (s.contentType !== undefined) json.contentType = s.contentType;
  if (s.acl !== undefined) json.acl = s.acl;
  if (s.storageClass !== undefined) json.storageClass = s.storageClass;
  return `${JSON.stringify(json)}\n`;
}

function isRecordOfStrings(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

function optString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function decodeSidecar(text: string): Sidecar | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const j = raw as Record<string, unknown>;
  if ((j.v !== 1 && j.v !== 2) || (j.type !== 'Appendable' && j.type !== 'Normal')) return undefined;
  if (typeof j.ino !== 'string' || !/^\d+$/.test(j.ino)) return undefined;
  if (typeof j.crc64 !== 'string' || !/^\d+$/.test(j.crc64)) return undefined;
  if (typeof j.length !== 'number' || !Number.isSafeInteger(j.length) || j.length < 0) return undefined;
  if (typeof j.lastModified !== 'number' || !Number.isFinite(j.lastModified)) return undefined;
  if (!isRecordOfStrings(j.metadata)) return undefined;
  return {
    type: j.type,
    ino: BigInt(j.ino),
    length: j.length,
    crc64: BigInt(j.crc64),
    lastModified: j.lastModified,
    contentType: optString(j.contentType),
    metadata: { ...j.metadata },
    acl: optString(j.acl),
    storageClass: optString(j.storageClass),
  };
}

/** Bytes of one append record. */
export const RECORD_BYTES = 32;
const RECORD_MAGIC = 0x41504c31; // "APL1"

/** One append record: magic, length, CRC-64, mtime (ms), then the CRC-32 of those 28 bytes. */
export function encodeRecord(s: Pick<Sidecar, 'length' | 'crc64' | 'lastModified'>): Buffer {
  const b = Buffer.allocUnsafe(RECORD_BYTES);
  b.writeUInt32BE(RECORD_MAGIC, 0);
  b.writeBigUInt64BE(BigInt(s.length), 4);
  b.writeBigUInt64BE(s.crc64, 12);
  b.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(s.lastModified))), 20);
  b.writeUInt32BE(crc32(b.subarray(0, 28)), 28);
  return b;
}

/** A sidecar file's state: the JSON line with the last valid record applied, where the next record goes, and how many there are. */
export interface SidecarFile {
  sidecar: Sidecar;
  /** Byte offset after the last valid record: the next record is written here. */
  end: number;
  records: number;
}

/** Parses a whole sidecar file; undefined when its JSON line is not a sidecar. */
export function decodeSidecarFile(bytes: Buffer): SidecarFile | undefined {
  const nl = bytes.indexOf(0x0a);
  const head = nl < 0 ? bytes : bytes.subarray(0, nl + 1);
  const sidecar = decodeSidecar(head.toString('utf8'));
  if (sidecar === undefined) return undefined;
  let end = head.length;
  let records = 0;
  for (; end + RECORD_BYTES <= bytes.length; end += RECORD_BYTES, records++) {
    const r = bytes.subarray(end, end + RECORD_BYTES);
    if (r.readUInt32BE(0) !== RECORD_MAGIC || r.readUInt32BE(28) !== crc32(r.subarray(0, 28))) break; // torn by a crash: ignored
    const length = r.readBigUInt64BE(4);
    if (length > BigInt(Number.MAX_SAFE_INTEGER) || Number(length) < sidecar.length) break; // lengths only grow
    sidecar.length = Number(length);
    sidecar.crc64 = r.readBigUInt64BE(12);
    sidecar.lastModified = Number(r.readBigUInt64BE(20));
  }
  return { sidecar, end, records };
}

/** The sidecar at `path`, or undefined when there is none; an unreadable one is an integrity error. */
export async function readSidecar(path: string, key: string): Promise<Sidecar | undefined> {
  return (await readSidecarFile(path, key))?.sidecar;
}

/** The sidecar file at `path` (see SidecarFile), or undefined when there is none; an unreadable one is an integrity error. */
export async function readSidecarFile(path: string, key: string): Promise<SidecarFile | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
    throw err;
  }
  const file = decodeSidecarFile(bytes);
  if (file === undefined) throw new StoreIntegrityError(key, `metadata sidecar of ${key} is corrupt (${path})`);
  return file;
}
