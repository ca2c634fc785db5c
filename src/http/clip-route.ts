import type { IncomingMessage, ServerResponse } from 'node:http';
import { clipBytes, planClip, streamClip } from '../playback/clip.js';
import type { AppendableStore } from '../store/types.js';
import { sendJson, type Route } from './http-server.js';

/** Longest clip served (6 h): a request cannot make the gateway stream a month. */
const MAX_CLIP_SECONDS = 6 * 3600;

export interface ClipRouteDeps {
  store: AppendableStore;
  keyTemplateOf: (stream: string) => string | undefined;
}

/**
 * `GET /api/v1/clip?stream=ID&start=ISO&duration=S`: one playable file (the objects' own format:
 * fragmented MP4, or MPEG-TS) from the keyframe at or before `start`, spanning rollovers (see
 * planClip), streamed from the store by range reads. Headers: `x-appendcast-clip-start` (ISO, where
 * its first fragment begins), `x-appendcast-clip-duration` (media seconds), and
 * `x-appendcast-clip-truncated` when a new session or init ended it early.
 */
export function clipRoute(deps: ClipRouteDeps): Route {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const stream = q.get('stream');
    const start = Date.parse(q.get('start') ?? '');
    const duration = Number(q.get('duration'));
    if (!stream || Number.isNaN(start) || !(duration > 0 && duration <= MAX_CLIP_SECONDS)) {
      return sendJson(res, 400, { error: `stream=, start= (ISO 8601) and duration= (seconds, up to ${MAX_CLIP_SECONDS}) are required` });
    }
    const keyTemplate = deps.keyTemplateOf(stream);
    if (keyTemplate === undefined) return sendJson(res, 404, { error: 'no such stream', stream });
    const plan = await planClip(deps.store, { stream, keyTemplate, start: new Date(start), durationMs: duration * 1000 });
    if (!plan) return sendJson(res, 404, { error: 'nothing recorded in that range', stream });
    const length = clipBytes(plan);
    const ext = plan.contentType === 'video/mp2t' ? 'ts' : 'mp4';
    const name = `${stream}-${new Date(plan.wallStart).toISOString().replace(/[:.]/g, '-')}.${ext}`;
    res.writeHead(200, {
      'content-type': plan.contentType,
      'content-length': length,
      'content-disposition': `attachment; filename="${name}"`,
      'x-appendcast-clip-start': new Date(plan.wallStart).toISOString(),
      'x-appendcast-clip-duration': plan.seconds.toFixed(3),
      ...(plan.truncated ? { 'x-appendcast-clip-truncated': plan.truncated } : {}),
    });
    if (req.method === 'HEAD') return void res.end();
    await streamClip(deps.store, plan, (b) => write(res, b));
    res.end();
  };
}

/** Writes with backpressure; false once the client has gone. */
function write(res: ServerResponse, b: Buffer): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  if (res.write(b)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (): void => { res.off('drain', done); res.off('close', done); resolve(!res.destroyed); };
    res.once('drain', done);
    res.once('close', done);
  });
}
