import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { clipBytes, planClip, streamClip, type ClipPlan } from '../playback/clip.js';
import { toProgressiveMp4 } from '../playback/progressive.js';
import { writeDrained } from '../playback/store-io.js';
import type { AppendableStore } from '../store/types.js';
import { sendJson, type Route } from './http-server.js';

/** Longest clip served (6 h): a request cannot make the gateway stream a month. */
const MAX_CLIP_SECONDS = 6 * 3600;

export interface ClipRouteDeps {
  store: AppendableStore;
  keyTemplateOf: (stream: string) => string | undefined;
  /** For `&format=mp4` (a progressive MP4 made by ffmpeg -c copy). */
  ffmpegPath: () => string;
}

/**
 * `GET /api/v1/clip?stream=ID&start=ISO&duration=S`: one playable file (the objects' own format:
 * fragmented MP4, or MPEG-TS) from the keyframe at or before `start`, spanning rollovers (see
 * planClip), streamed from the store by range reads. Headers: `x-appendcast-clip-start` (ISO, where
 * its first fragment begins), `x-appendcast-clip-duration` (media seconds), and
 * `x-appendcast-clip-truncated` when a new session or init ended it early. `&format=mp4`: the same
 * clip as a progressive MP4 (`moov` first), remuxed by ffmpeg -c copy through a temporary file.
 */
export function clipRoute(deps: ClipRouteDeps): Route {
  return async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const q = url.searchParams;
    const stream = q.get('stream');
    const start = Date.parse(q.get('start') ?? '');
    const duration = Number(q.get('duration'));
    if (!stream || Number.isNaN(start) || !(duration > 0 && duration <= MAX_CLIP_SECONDS)) {
      return sendJson(res, 400, { error: `stream=, start= (ISO 8601) and duration= (seconds, up to ${MAX_CLIP_SECONDS}) are required` });
    }
    const format = q.get('format') ?? 'native';
    if (format !== 'native' && format !== 'mp4') return sendJson(res, 400, { error: 'format= is mp4 (progressive) or left out (the objects\' own format)' });
    const keyTemplate = deps.keyTemplateOf(stream);
    if (keyTemplate === undefined) return sendJson(res, 404, { error: 'no such stream', stream });
    const plan = await planClip(deps.store, { stream, keyTemplate, start: new Date(start), durationMs: duration * 1000 });
    if (!plan) return sendJson(res, 404, { error: 'nothing recorded in that range', stream });
    if (format === 'mp4') return sendProgressive(req, res, deps, stream, plan);
    res.writeHead(200, headers(stream, plan, plan.contentType, clipBytes(plan)));
    if (req.method === 'HEAD') return void res.end();
    await streamClip(deps.store, plan, (b) => writeDrained(res, b));
    res.end();
  };
}

function headers(stream: string, plan: ClipPlan, contentType: string, length: number): Record<string, string | number> {
  const ext = contentType === 'video/mp2t' ? 'ts' : 'mp4';
  const name = `${stream}-${new Date(plan.wallStart).toISOString().replace(/[:.]/g, '-')}.${ext}`;
  return {
    'content-type': contentType,
    'content-length': length,
    'content-disposition': `attachment; filename="${name}"`,
    'x-appendcast-clip-start': new Date(plan.wallStart).toISOString(),
    'x-appendcast-clip-duration': plan.seconds.toFixed(3),
    ...(plan.truncated ? { 'x-appendcast-clip-truncated': plan.truncated } : {}),
  };
}

async function sendProgressive(req: IncomingMessage, res: ServerResponse, deps: ClipRouteDeps, stream: string, plan: ClipPlan): Promise<void> {
  const file = await toProgressiveMp4(deps.ffmpegPath(), plan.contentType === 'video/mp2t' ? 'mpegts' : 'mp4', (w) => streamClip(deps.store, plan, w));
  try {
    res.writeHead(200, headers(stream, plan, 'video/mp4', (await stat(file)).size));
    if (req.method === 'HEAD') return void res.end();
    await pipeline(createReadStream(file), res).catch(() => res.destroy()); // the client went away
  } finally {
    await rm(file, { force: true });
  }
}
