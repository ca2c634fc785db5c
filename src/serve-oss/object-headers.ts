/** Response headers that describe an object, as OSS sends them on HEAD, GET and writes. */
import { createHash } from 'node:crypto';
import type { HeadResult } from '../store/types.js';

/**
 * An opaque, quoted ETag (OSS: "not an MD5 for appendable objects"). Derived from the object type,
 * length and whole-object CRC-64, so an append's response and a later HEAD agree, and every append
 * changes it. Objects with no known CRC (files dropped into the root) use their mtime instead.
 */
export function etagOf(appendable: boolean, size: number, crc64: bigint | undefined, lastModified: Date): string {
  const basis = `${appendable ? 'A' : 'N'}:${size}:${crc64 === undefined ? `t${lastModified.getTime()}` : crc64.toString()}`;
  return `"${createHash('md5').update(basis).digest('hex').toUpperCase()}"`;
}

/**
 * Header values travel as latin1 strings; metadata that came in over HTTP already is (UTF-8 bytes as
 * latin1 chars, which is what ali-oss sends). Anything else is encoded that way, and control
 * characters, which node refuses in headers, are dropped.
 */
export function headerSafe(value: string): string {
  const latin1 = /[^\u0000-\u00ff]/.test(value) ? Buffer.from(value, 'utf8').toString('latin1') : value;
  return latin1.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, '');
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** HEAD/GET headers (Content-Length is the caller's: it depends on the range). */
export function objectHeaders(head: HeadResult): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': headerSafe(head.contentType ?? 'application/octet-stream'),
    etag: etagOf(head.appendable, head.size, head.crc64, head.lastModified),
    'last-modified': head.lastModified.toUTCString(),
    'accept-ranges': 'bytes',
    'x-oss-object-type': head.appendable ? 'Appendable' : 'Normal',
    'x-oss-storage-class': 'Standard',
  };
  if (head.appendable) h['x-oss-next-append-position'] = String(head.nextPosition ?? head.size);
  if (head.crc64 !== undefined) h['x-oss-hash-crc64ecma'] = head.crc64.toString();
  for (const [name, value] of Object.entries(head.metadata)) {
    // Names that are not HTTP tokens cannot be sent; OSS itself only allows letters, digits and `-`.
    if (TOKEN.test(name)) h[`x-oss-meta-${name.toLowerCase()}`] = headerSafe(value);
  }
  return h;
}
