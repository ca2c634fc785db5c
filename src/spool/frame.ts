import { crc32 } from 'node:zlib';
import type { FileHandle } from 'node:fs/promises';
import type { SpoolEntryKind, SpoolEntryMeta } from './types.js';

/**
 * One journal frame:
 *
 *   magic "ACSP" (4) | version (1) | header length u32 BE (4) | header JSON | payload | CRC-32 u32 BE
 *
 * The CRC (zlib's CRC-32) covers header JSON + payload, so a torn or bit-flipped frame is detected
 * before anything of it is handed out. The header repeats the payload length so a scan can skip
 * to the next frame without trusting anything else.
 */
export const FRAME_MAGIC = Buffer.from('ACSP', 'latin1');
export const FRAME_VERSION = 1;
export const FRAME_PREFIX_BYTES = 9;
export const FRAME_CRC_BYTES = 4;
/** Headers are a few dozen bytes; anything past this is garbage, not a header. */
const MAX_HEADER_BYTES = 4096;

export interface FrameHeader extends SpoolEntryMeta {
  seq: number;
  /** Payload length in bytes. */
  length: number;
}

export interface EncodedFrame {
  /** prefix + header JSON */
  head: Buffer;
  payload: Buffer;
  /** CRC-32 trailer */
  tail: Buffer;
  length: number;
}

const KINDS: ReadonlySet<string> = new Set<SpoolEntryKind>(['init', 'fragment', 'trailer']);

export function encodeFrame(seq: number, meta: SpoolEntryMeta, payload: Buffer): EncodedFrame {
  const header: FrameHeader = { seq, kind: meta.kind, receivedAt: meta.receivedAt, length: payload.length };
  if (meta.mediaTime !== undefined) header.mediaTime = meta.mediaTime;
  if (meta.duration !== undefined) header.duration = meta.duration;
  if (meta.keyframe !== undefined) header.keyframe = meta.keyframe;
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const head = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + json.length);
  FRAME_MAGIC.copy(head, 0);
  head.writeUInt8(FRAME_VERSION, 4);
  head.writeUInt32BE(json.length, 5);
  json.copy(head, FRAME_PREFIX_BYTES);
  const tail = Buffer.allocUnsafe(FRAME_CRC_BYTES);
  tail.writeUInt32BE(crc32(payload, crc32(json)) >>> 0, 0);
  return { head, payload, tail, length: head.length + payload.length + FRAME_CRC_BYTES };
}

/** Parses and checks a frame prefix; returns the header length or undefined when it is not one. */
export function parsePrefix(prefix: Buffer): number | undefined {
  if (prefix.length < FRAME_PREFIX_BYTES) return undefined;
  if (!prefix.subarray(0, 4).equals(FRAME_MAGIC)) return undefined;
  if (prefix.readUInt8(4) !== FRAME_VERSION) return undefined;
  const hlen = prefix.readUInt32BE(5);
  return hlen > 0 && hlen <= MAX_HEADER_BYTES ? hlen : undefined;
}

export function parseHeader(json: Buffer): FrameHeader | undefined {
  let h: unknown;
  try {
    h = JSON.parse(json.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof h !== 'object' || h === null) return undefined;
  const r = h as Record<string, unknown>;
  if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 0) return undefined;
  if (!Number.isSafeInteger(r.length) || (r.length as number) < 0) return undefined;
  if (typeof r.kind !== 'string' || !KINDS.has(r.kind)) return undefined;
  if (typeof r.receivedAt !== 'number') return undefined;
  const out: FrameHeader = { seq: r.seq as number, length: r.length as number, kind: r.kind as SpoolEntryKind, receivedAt: r.receivedAt };
  if (typeof r.mediaTime === 'number') out.mediaTime = r.mediaTime;
  if (typeof r.duration === 'number') out.duration = r.duration;
  if (typeof r.keyframe === 'boolean') out.keyframe = r.keyframe;
  return out;
}

export function frameCrcOk(json: Buffer, payload: Buffer, tail: Buffer): boolean {
  return tail.length === FRAME_CRC_BYTES && tail.readUInt32BE(0) === crc32(payload, crc32(json)) >>> 0;
}

/** Reads exactly `length` bytes at `position` (fewer only at end of file). */
export async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? buf : buf.subarray(0, got);
}

export interface DecodedFrame {
  header: FrameHeader;
  payload: Buffer;
  /** Total frame length on disk. */
  length: number;
}

/**
 * Reads and verifies the frame at `offset`: undefined when it is torn, truncated or corrupt.
 * Reads only that frame (prefix, then the rest in one read), never the whole file.
 */
export async function readFrameAt(fh: FileHandle, offset: number): Promise<DecodedFrame | undefined> {
  const prefix = await readAt(fh, offset, FRAME_PREFIX_BYTES);
  const hlen = parsePrefix(prefix);
  if (hlen === undefined) return undefined;
  const json = await readAt(fh, offset + FRAME_PREFIX_BYTES, hlen);
  if (json.length < hlen) return undefined;
  const header = parseHeader(json);
  if (header === undefined) return undefined;
  const bodyOff = offset + FRAME_PREFIX_BYTES + hlen;
  const body = await readAt(fh, bodyOff, header.length + FRAME_CRC_BYTES);
  if (body.length < header.length + FRAME_CRC_BYTES) return undefined;
  const payload = body.subarray(0, header.length);
  if (!frameCrcOk(json, payload, body.subarray(header.length))) return undefined;
  return { header, payload, length: FRAME_PREFIX_BYTES + hlen + header.length + FRAME_CRC_BYTES };
}
