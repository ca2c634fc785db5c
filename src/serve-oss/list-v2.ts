/**
 * ListObjectsV2 (`GET /?list-type=2`) over AppendableStore.list(): prefix, delimiter, max-keys,
 * start-after, continuation-token, encoding-type=url, fetch-owner. Keys are in UTF-8 byte order
 * (the store's order, and OSS's). The continuation token is opaque to clients: base64url of the last
 * key or common prefix returned.
 */
import type { AppendableStore } from '../store/types.js';
import { etagOf } from './object-headers.js';
import { OssHttpError } from './oss-http-error.js';
import type { ListedObject } from './xml.js';
import { listV2Xml } from './xml.js';

const DEFAULT_MAX_KEYS = 100;
const MAX_MAX_KEYS = 1000;

function invalid(message: string): OssHttpError {
  return new OssHttpError(400, 'InvalidArgument', message);
}

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function encodeToken(marker: string): string {
  return Buffer.from(marker, 'utf8').toString('base64url');
}

export function decodeToken(token: string): string {
  const marker = Buffer.from(token, 'base64url').toString('utf8');
  if (token === '' || encodeToken(marker) !== token) throw invalid('The continuation token provided is incorrect.');
  return marker;
}

function parseMaxKeys(raw: string | undefined): number {
  if (raw === undefined || raw === '') return DEFAULT_MAX_KEYS;
  const n = /^\d{1,7}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= MAX_MAX_KEYS)) throw invalid(`max-keys must be an integer from 1 to ${MAX_MAX_KEYS}.`);
  return n;
}

/** Returns the ListBucketResult XML. `query` holds the decoded query parameters. */
export async function listObjectsV2(store: AppendableStore, bucket: string, query: ReadonlyMap<string, string>): Promise<string> {
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') || undefined;
  const maxKeys = parseMaxKeys(query.get('max-keys'));
  const startAfter = query.get('start-after') || undefined;
  const token = query.get('continuation-token') || undefined;
  const encodingType = query.get('encoding-type');
  if (encodingType !== undefined && encodingType !== '' && encodingType !== 'url') throw invalid('encoding-type must be url.');
  const fetchOwner = query.get('fetch-owner') === 'true';

  // A token wins over start-after (as in S3/OSS: start-after only applies to the first page).
  const marker = token !== undefined ? decodeToken(token) : startAfter;
  const entries = (await store.list(prefix)).filter((e) => {
    if (marker === undefined) return true;
    if (utf8Compare(e.key, marker) <= 0) return false;
    // Resuming after a common prefix: everything under it was already reported.
    return !(delimiter !== undefined && marker.endsWith(delimiter) && e.key.startsWith(marker));
  });

  type Item = { kind: 'object'; entry: (typeof entries)[number] } | { kind: 'prefix'; prefix: string };
  const items: Item[] = [];
  let truncated = false;
  let lastPrefix: string | undefined;
  for (const entry of entries) {
    let commonPrefix: string | undefined;
    if (delimiter !== undefined) {
      const at = entry.key.indexOf(delimiter, prefix.length);
      if (at !== -1) commonPrefix = entry.key.slice(0, at + delimiter.length);
    }
    if (commonPrefix !== undefined && commonPrefix === lastPrefix) continue;
    if (items.length === maxKeys) {
      truncated = true;
      break;
    }
    if (commonPrefix !== undefined) {
      lastPrefix = commonPrefix;
      items.push({ kind: 'prefix', prefix: commonPrefix });
    } else {
      items.push({ kind: 'object', entry });
    }
  }

  // ETags need the CRC-64, which list() does not carry: HEAD the (at most 1000) keys of this page.
  const contents: ListedObject[] = [];
  for (const item of items) {
    if (item.kind !== 'object') continue;
    const head = await store.head(item.entry.key);
    if (head === null) continue; // deleted meanwhile
    contents.push({
      key: item.entry.key,
      size: head.size,
      lastModified: head.lastModified,
      etag: etagOf(head.appendable, head.size, head.crc64, head.lastModified),
      type: head.appendable ? 'Appendable' : 'Normal',
    });
  }
  const last = items[items.length - 1];
  return listV2Xml({
    bucket,
    prefix,
    maxKeys,
    delimiter,
    startAfter,
    continuationToken: token,
    nextContinuationToken: truncated && last ? encodeToken(last.kind === 'object' ? last.entry.key : last.prefix) : undefined,
    isTruncated: truncated,
    contents,
    commonPrefixes: items.flatMap((i) => (i.kind === 'prefix' ? [i.prefix] : [])),
    urlEncode: encodingType === 'url',
    fetchOwner,
  });
}
