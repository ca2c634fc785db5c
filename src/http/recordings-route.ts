import type { IncomingMessage, ServerResponse } from 'node:http';
import { listRecordings, type Recording } from '../playback/recordings.js';
import type { AppendableStore } from '../store/types.js';
import { sendJson, type Route } from './http-server.js';

export interface RecordingsRouteDeps {
  store: AppendableStore;
  /** The configured stream's key template, undefined for an unknown stream. */
  keyTemplateOf: (stream: string) => string | undefined;
  /** Objects an appender of this gateway is still appending to. */
  isGrowing: (key: string) => boolean;
}

/**
 * `GET /api/v1/recordings?stream=ID&start=ISO&end=ISO`: the stream's objects overlapping the range
 * (either bound may be left out), oldest first, from the store (see listRecordings), with a cache
 * per stream so a repeated listing reads only what changed.
 */
export function recordingsRoute(deps: RecordingsRouteDeps): Route {
  const caches = new Map<string, Map<string, Recording>>();
  return async (_req: IncomingMessage, res: ServerResponse, url: URL) => {
    const q = url.searchParams;
    const stream = q.get('stream');
    if (!stream) return sendJson(res, 400, { error: 'stream= is required' });
    const keyTemplate = deps.keyTemplateOf(stream);
    if (keyTemplate === undefined) return sendJson(res, 404, { error: 'no such stream', stream });
    const bound = (name: 'start' | 'end'): Date | undefined | null => {
      const v = q.get(name);
      if (v === null) return undefined;
      const t = Date.parse(v);
      return Number.isNaN(t) ? null : new Date(t);
    };
    const start = bound('start');
    const end = bound('end');
    if (start === null || end === null) return sendJson(res, 400, { error: 'start= and end= must be ISO 8601 date-times' });
    let cache = caches.get(stream);
    if (!cache) caches.set(stream, (cache = new Map()));
    const recordings = await listRecordings(deps.store, {
      stream, keyTemplate, cache, isGrowing: deps.isGrowing, ...(start ? { start } : {}), ...(end ? { end } : {}),
    });
    return sendJson(res, 200, { stream, recordings });
  };
}
