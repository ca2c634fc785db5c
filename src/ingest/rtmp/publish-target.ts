/**
 * Where a publisher wants to go and with which key, from the untrusted strings of `connect` (app,
 * tcUrl) and `publish` (the stream name). Never throws; lengths are capped before any parsing
 * (nginx-http-flv-module overflowed its stack on a long stream name).
 */

/** Longest app, stream name or tcUrl we look at; anything longer is refused. */
export const MAX_NAME_CHARS = 256;
export const MAX_TCURL_CHARS = 1024;

function queryOf(s: string): URLSearchParams | undefined {
  const q = s.indexOf('?');
  return q < 0 ? undefined : new URLSearchParams(s.slice(q + 1));
}

function withoutQuery(s: string): string {
  const q = s.indexOf('?');
  return q < 0 ? s : s.slice(0, q);
}

/** `live`, `live/`, `live?key=K` → `live`. Undefined when it is not a sane app name. */
export function appName(app: unknown): string | undefined {
  if (typeof app !== 'string' || app.length > MAX_NAME_CHARS) return undefined;
  return withoutQuery(app).replace(/\/+$/, '');
}

export interface PublishTarget {
  stream: string;
  key: string | undefined;
}

/**
 * The stream name and key of a publish. The key comes from the stream name's query
 * (`cam1?key=K`), else from the tcUrl's query (`rtmp://host/live?key=K`), else from a query some
 * clients leave on the app (`live?key=K`).
 */
export function publishTarget(name: string, tcUrl: string | undefined, app: unknown): PublishTarget | undefined {
  if (name.length === 0 || name.length > MAX_NAME_CHARS) return undefined;
  const stream = withoutQuery(name);
  if (stream.length === 0) return undefined;
  const fromName = queryOf(name)?.get('key');
  const fromTcUrl = tcUrl !== undefined && tcUrl.length <= MAX_TCURL_CHARS ? queryOf(tcUrl)?.get('key') : undefined;
  const fromApp = typeof app === 'string' && app.length <= MAX_NAME_CHARS ? queryOf(app)?.get('key') : undefined;
  return { stream, key: fromName ?? fromTcUrl ?? fromApp ?? undefined };
}
