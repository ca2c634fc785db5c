import type { AppendableStore } from '../store/types.js';
import { crc64 } from '../store/crc64.js';
import { readRange } from './store-io.js';
import { AppendcastError, ErrorCode } from '../errors.js';

/** What convert refuses: the source is missing, the target exists, or the copy does not check out. */
export class ConvertError extends AppendcastError {
  constructor(message: string) {
    super(ErrorCode.ConvertRefused, message);
  }
}

export interface ConvertResult {
  key: string;
  bytes: number;
  crc64: bigint;
  /** Appends it took. */
  appends: number;
}

/**
 * Makes `key` (a normal object: uploaded with put, or copied) appendable, the way OSS's FAQ
 * describes: an appendable object is created and the original is read by ranges and appended
 * chunk by chunk, then the CRC-64 of the whole is checked against the original's. Into `newKey`
 * (which must not exist), or in place: through a temporary `<key>.appendcast-convert` (checked),
 * then the original is deleted and re-made from it (checked), then the temporary is deleted — a
 * crash in between leaves the temporary, from which `convert <tmp> <key>` finishes the job.
 */
export async function convertToAppendable(store: AppendableStore, key: string, newKey?: string, chunkBytes = 8 << 20): Promise<ConvertResult> {
  const src = await store.head(key);
  if (!src) throw new ConvertError(`no object "${key}"`);
  if (newKey === undefined) {
    if (src.appendable) return { key, bytes: src.size, crc64: src.crc64 ?? 0n, appends: 0 };
    const tmp = `${key}.appendcast-convert`;
    if (await store.head(tmp)) throw new ConvertError(`"${tmp}" exists (an earlier conversion did not finish): convert it to "${key}", or delete it`);
    const staged = await copyAppendable(store, key, tmp, chunkBytes);
    await store.delete(key);
    const done = await copyAppendable(store, tmp, key, chunkBytes);
    if (done.crc64 !== staged.crc64) throw new ConvertError(`"${key}" re-made from "${tmp}" has another CRC-64; "${tmp}" is kept`);
    await store.delete(tmp);
    return done;
  }
  if (await store.head(newKey)) throw new ConvertError(`"${newKey}" exists: choose another key or delete it`);
  return copyAppendable(store, key, newKey, chunkBytes);
}

async function copyAppendable(store: AppendableStore, from: string, to: string, chunkBytes: number): Promise<ConvertResult> {
  const src = await store.head(from);
  if (!src) throw new ConvertError(`no object "${from}"`);
  const opts = { ...(src.contentType ? { contentType: src.contentType } : {}), metadata: src.metadata };
  let position = 0;
  let crc = 0n;
  let appends = 0;
  if (src.size === 0) {
    crc = (await store.append(to, 0, [], opts)).crc64;
    appends++;
  }
  while (position < src.size) {
    const end = Math.min(src.size, position + chunkBytes);
    const buf = await readRange(store, from, position, end);
    if (buf.length !== end - position) throw new ConvertError(`"${from}" gave ${buf.length} bytes at ${position} where ${end - position} were asked for`);
    const r = await store.append(to, position, [buf], opts);
    const expect = crc64(buf, crc);
    if (r.crc64 !== expect) throw new ConvertError(`"${to}": the store's CRC-64 after ${end} bytes is not the copy's`);
    crc = r.crc64;
    position = r.nextPosition;
    appends++;
  }
  if (src.crc64 !== undefined && src.crc64 !== crc) throw new ConvertError(`"${to}" has CRC-64 ${crc}, "${from}" ${src.crc64}: not the same bytes`);
  return { key: to, bytes: src.size, crc64: crc, appends };
}
