import type { IncomingMessage, ServerResponse } from 'node:http';
import { readIndexLines } from '../playback/index-lines.js';
import { renderMediaPlaylist, type MediaPlaylist } from '../playback/hls-playlist.js';
import type { LiveWindow } from '../playback/live-window.js';
import { planVod } from '../playback/vod-playlist.js';
import type { AppendableStore } from '../store/types.js';
import type { AccessControl } from './access.js';
import { sendJson, type Route } from './http-server.js';
import { mediaPath } from './media-route.js';

/** Longest VOD range served in one playlist. */
const MAX_VOD_SECONDS = 24 * 3600;
/** How long the object URLs in a playlist stay valid (signed gateway URLs, presigned OSS URLs). */
const URL_TTL_SECONDS = { live: 600, vod: 6 * 3600 } as const;
const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';

export interface HlsRouteDeps {
  store: AppendableStore;
  access: AccessControl;
  keyTemplateOf: (stream: string) => string | undefined;
  liveWindowOf: (stream: string) => LiveWindow | undefined;
}

/** `/live/<stream>/index.m3u8`: the stream's sliding window (see LiveWindow), objects by byte range. */
export function liveRoute(deps: HlsRouteDeps): Route {
  return async (req, res, url) => {
    const stream = playlistStream(url.pathname, '/live/');
    if (stream === undefined) return sendJson(res, 404, { error: 'expected /live/<stream>/index.m3u8' });
    if (deps.keyTemplateOf(stream) === undefined) return sendJson(res, 404, { error: 'no such stream', stream });
    const window = deps.liveWindowOf(stream);
    if (window) await resolveMaps(deps.store, window);
    const playlist = window?.playlist();
    if (!playlist) return sendJson(res, 404, { error: 'the stream is not live (nothing recorded since the gateway started)', stream });
    await sendPlaylist(req, res, deps, url, playlist, URL_TTL_SECONDS.live);
  };
}

/** `/vod/<stream>/index.m3u8?start=ISO&end=ISO`: a past range from the stored sidecar indexes (see planVod). */
export function vodRoute(deps: HlsRouteDeps): Route {
  return async (req, res, url) => {
    const stream = playlistStream(url.pathname, '/vod/');
    if (stream === undefined) return sendJson(res, 404, { error: 'expected /vod/<stream>/index.m3u8?start=ISO&end=ISO' });
    const start = Date.parse(url.searchParams.get('start') ?? '');
    const end = Date.parse(url.searchParams.get('end') ?? '');
    if (Number.isNaN(start) || Number.isNaN(end) || end <= start || end - start > MAX_VOD_SECONDS * 1000) {
      return sendJson(res, 400, { error: `start= and end= (ISO 8601, end after start, at most ${MAX_VOD_SECONDS} s apart) are required` });
    }
    const keyTemplate = deps.keyTemplateOf(stream);
    if (keyTemplate === undefined) return sendJson(res, 404, { error: 'no such stream', stream });
    const playlist = await planVod(deps.store, { stream, keyTemplate, start: new Date(start), end: new Date(end) });
    if (!playlist) return sendJson(res, 404, { error: 'nothing recorded in that range', stream });
    await sendPlaylist(req, res, deps, url, playlist, URL_TTL_SECONDS.vod);
  };
}

function playlistStream(path: string, prefix: string): string | undefined {
  const m = path.slice(prefix.length).match(/^([a-zA-Z0-9_-]{1,64})\/index\.m3u8$/);
  return m?.[1];
}

/** Fragments of objects whose init line the window never saw (a recording resumed after a restart): the stored index has it. */
async function resolveMaps(store: AppendableStore, window: LiveWindow): Promise<void> {
  for (const key of window.unknownMaps()) {
    const init = (await readIndexLines(store, key)).find((l) => l.type === 'init');
    if (init) window.resolveMap({ key, offset: init.offset, length: init.length });
  }
}

async function sendPlaylist(req: IncomingMessage, res: ServerResponse, deps: HlsRouteDeps, url: URL, playlist: MediaPlaylist, ttlSeconds: number): Promise<void> {
  // Object URLs outlive neither their TTL nor the signature the playlist itself came with.
  const signedUntil = deps.access.signedUntil(url);
  const expiresAt = Math.min(Date.now() + ttlSeconds * 1000, signedUntil ?? Infinity);
  const uris = new Map<string, string>();
  for (const s of playlist.segments) {
    for (const key of [s.map.key, s.key]) {
      if (!uris.has(key)) uris.set(key, await objectUri(deps, key, expiresAt));
    }
  }
  const body = renderMediaPlaylist(playlist, (key) => uris.get(key)!);
  res.writeHead(200, {
    'content-type': PLAYLIST_TYPE,
    'content-length': Buffer.byteLength(body),
    'cache-control': playlist.kind === 'live' ? 'no-cache' : 'private, max-age=60',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

async function objectUri(deps: HlsRouteDeps, key: string, expiresAt: number): Promise<string> {
  // An OSS store presigns: the media bytes go from OSS straight to the player.
  const presigned = await deps.store.presignGet?.(key, { expiresInSeconds: Math.max(1, Math.floor((expiresAt - Date.now()) / 1000)) });
  if (presigned !== undefined) return presigned;
  return deps.access.enabled ? deps.access.sign(mediaPath(key), expiresAt) : mediaPath(key);
}
