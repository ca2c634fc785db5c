import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode } from '../errors.js';
import { listenOn } from '../util/listen.js';
import type { Logger } from '../util/logger.js';

export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A tiny GET-only router on node:http: /metrics, /healthz and the JSON API need nothing more. */
export class HttpServer {
  private readonly server: Server;
  private readonly routes = new Map<string, Route>();
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
    this.server = createServer((req, res) => void this.dispatch(req, res));
    this.server.keepAliveTimeout = 5000;
  }

  route(path: string, fn: Route): this {
    this.routes.set(path, fn);
    return this;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const fn = this.routes.get(path);
    if (!fn) return sendJson(res, 404, { error: 'not found', path });
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' });
    try {
      await fn(req, res);
    } catch (err) {
      this.log.error({ err, path }, 'http handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    }
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return listenOn(this.server, port, host, 'HTTP', ErrorCode.HttpPortInUse);
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
