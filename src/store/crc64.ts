import { createRequire } from 'node:module';

// crc64-ecma182 is a CommonJS native addon without types; keep its shape private to this module.
interface Crc64Native {
  crc64(data: Buffer, prev?: Buffer): Buffer;
}
const native = createRequire(import.meta.url)('crc64-ecma182') as Crc64Native;

/**
 * CRC-64/XZ, which OSS calls crc64ecma (x-oss-hash-crc64ecma). Check: "123456789" → 0x995DC9BBDF1939FA.
 * `crc64(b, crc64(a)) === crc64(a‖b)`: a running whole-object CRC is extended chunk by chunk.
 */
export function crc64(data: Uint8Array, prev: bigint = 0n): bigint {
  const state = Buffer.alloc(8);
  state.writeBigUInt64LE(prev);
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  native.crc64(buf, state);
  return state.readBigUInt64LE();
}

export function crc64Of(chunks: readonly Uint8Array[], prev: bigint = 0n): bigint {
  let crc = prev;
  for (const c of chunks) crc = crc64(c, crc);
  return crc;
}
