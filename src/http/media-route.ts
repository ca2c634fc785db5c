import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { decideRange } from '../serve-oss/range.js';
import { isValidKey } from '../store/keys.js';
import type { AppendableStore } from '../store/types.js';
import { sendJson, type Route } from './http-server.js';

export const MEDIA_PREFIX = '/media/';

/** The gateway URL path of an object: each key segment percent-encoded. */
export function mediaPath(key: string): string {
  return MEDIA_PREFIX + key.split('/').map(encodeURIComponent).join('/');
}

const CONTENT_TYPES: Record<string, string> = { mp4: 'video/mp4', m4s: 'video/iso.segment', ts: 'video/mp2t', jsonl: 'application/x-ndjson' };

/**
 * `GET /media/<key>`: an object's bytes from the store, whole or one RFC 9110 byte range (what
 * HLS EXT-X-BYTERANGE players ask for). A growing object is served up to its length at the HEAD.
 */
export function mediaRoute(store: AppendableStore): Route {
  return async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const rawPath = url.pathname.slice(MEDIA_PREFIX.length);
    let key: string;
    try {
      key = rawPath.split('/').map(decodeURIComponent).join('/');
    } catch {
      return sendJson(res, 400, { error: 'malformed percent-encoding in the key' });
    }
    if (!isValidKey(key)) return sendJson(res, 400, { error: 'not a valid object key' });
    const head = await store.head(key);
    if (!head) return sendJson(res, 404, { error: 'no such object' });
    const range = typeof req.headers.range === 'string' ? req.headers.range : undefined;
    const d = decideRange(range, head.size, true);
    const headers: Record<string, string | number> = {
      'content-type': CONTENT_TYPES[key.slice(key.lastIndexOf('.') + 1)] ?? 'application/octet-stream',
      'accept-ranges': 'bytes',
      'cache-control': 'private, no-cache',
    };
    if (d.kind === 'unsatisfiable') {
      res.writeHead(416, { ...headers, 'content-range': `bytes */${head.size}`, 'content-length': 0 });
      return void res.end();
    }
    const [start, end] = d.kind === 'partial' ? [d.start, d.end] : [0, head.size - 1];
    if (d.kind === 'partial') headers['content-range'] = `bytes ${start}-${end}/${head.size}`;
    res.writeHead(d.kind === 'partial' ? 206 : 200, { ...headers, 'content-length': Math.max(0, end - start + 1) });
    if (req.method === 'HEAD' || end < start) return void res.end();
    await pipeline(await store.read(key, { start, end }), res).catch(() => res.destroy()); // the player went away
  };
}
