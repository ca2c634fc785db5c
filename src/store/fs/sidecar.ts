import { readFile } from 'node:fs/promises';
import { errnoCode } from './durable-fs.js';
import { StoreIntegrityError } from './fs-errors.js';

/**
 * What the fs store knows about one object beyond its bytes, kept in a small JSON file in a tree
 * parallel to the data (see fs-store.ts). The sidecar is the record of what was acknowledged:
 * `length` and `crc64` are the object's acknowledged length and whole-object CRC-64, and `ino` names
 * the data file it describes, so a sidecar left over from an unfinished write is recognised as stale.
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
  v: 1;
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
    v: 1,
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
  if (j.v !== 1 || (j.type !== 'Appendable' && j.type !== 'Normal')) return undefined;
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

/** The sidecar at `path`, or undefined when there is none; an unreadable one is an integrity error. */
export async function readSidecar(path: string, key: string): Promise<Sidecar | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
    throw err;
  }
  const sidecar = decodeSidecar(text);
  if (sidecar === undefined) throw new StoreIntegrityError(key, `metadata sidecar of ${key} is corrupt (${path})`);
  return sidecar;
}
