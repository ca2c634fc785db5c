import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AccessControl } from './access.js';
import { sendJson, type HttpServer } from './http-server.js';

/** The page's files, next to src/ and dist/ in the package. */
const WEB_DIR = new URL('../../web/', import.meta.url);
const HLS_JS = createRequire(import.meta.url).resolve('hls.js/dist/hls.min.js');
/** A login form's body at most. */
const MAX_FORM_BYTES = 4096;

const FILES: Record<string, { path: string | URL; type: string }> = {
  '/': { path: new URL('index.html', WEB_DIR), type: 'text/html; charset=utf-8' },
  '/app.js': { path: new URL('app.js', WEB_DIR), type: 'text/javascript; charset=utf-8' },
  '/app.css': { path: new URL('app.css', WEB_DIR), type: 'text/css; charset=utf-8' },
  '/vendor/hls.min.js': { path: HLS_JS, type: 'text/javascript; charset=utf-8' },
};

/** The web page at `/` (its script, style and hls.js), and with a token the login form behind `/login`. */
export function addWebRoutes(http: HttpServer, access: AccessControl): void {
  const cache = new Map<string, Buffer>();
  for (const [path, file] of Object.entries(FILES)) {
    http.route(path, async (req, res) => {
      let body = cache.get(path);
      if (!body) cache.set(path, (body = await readFile(file.path)));
      res.writeHead(200, {
        'content-type': file.type,
        'content-length': body.length,
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
        // The page only talks to its own origin; media may come from presigned OSS URLs.
        'content-security-policy': "default-src 'self'; media-src 'self' blob: https: http:; connect-src 'self' https: http:; img-src 'self' data:; style-src 'self'; script-src 'self'; worker-src 'self' blob:",
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  }
  http.route('/login', (req, res) => login(req, res, access), { methods: ['POST'] });
}

/** The answer to a request the access control refused: the login form for a browser at `/`, 401 JSON otherwise. */
export function deny(req: IncomingMessage, res: ServerResponse, url: URL): void {
  if (url.pathname === '/' && String(req.headers.accept ?? '').includes('text/html')) return loginPage(res, 401, '');
  res.setHeader('www-authenticate', 'Bearer realm="appendcast"');
  sendJson(res, 401, { error: 'unauthorized: send Authorization: Bearer <server.http.apiToken>, or use a signed URL' });
}

async function login(req: IncomingMessage, res: ServerResponse, access: AccessControl): Promise<void> {
  if (req.method !== 'POST') return loginPage(res, 200, '');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) return sendJson(res, 413, { error: 'form too large' });
    chunks.push(chunk as Buffer);
  }
  const token = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('token') ?? '';
  if (!access.enabled || !access.isToken(token)) return loginPage(res, 401, 'That is not the token.');
  res.writeHead(303, { location: '/', 'set-cookie': access.sessionCookie(), 'content-length': 0 });
  res.end();
}

function loginPage(res: ServerResponse, status: number, message: string): void {
  const body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>appendcast — sign in</title></head>
<body style="font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto">
<h1>appendcast</h1>
<form method="post" action="/login">
<label>API token <input name="token" type="password" autocomplete="current-password" required autofocus></label>
<button type="submit">Sign in</button>
</form>
<p role="alert">${message}</p>
</body></html>`;
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}
