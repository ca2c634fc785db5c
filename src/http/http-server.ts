import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode } from '../errors.js';
import { listenOn } from '../util/listen.js';
import type { Logger } from '../util/logger.js';

/** A handler; `url` is the request target the dispatcher parsed (path and query). */
export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** What the server does with a request the access control refuses. */
export type DenyHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

export interface RouteOptions {
  /** Methods besides GET and HEAD (the login form POSTs). */
  methods?: readonly string[];
}

/**
 * A tiny router on node:http: exact paths, and path prefixes (`/live/`) whose handler reads the
 * rest. GET and HEAD unless a route allows more. With an access check, every request it refuses
 * gets `deny` instead of its handler.
 */
export class HttpServer {
  private readonly server: Server;
  private readonly routes = new Map<string, { fn: Route; methods: readonly string[] }>();
  private readonly prefixes: Array<{ prefix: string; fn: Route }> = [];
  private readonly log: Logger;
  private access: { allows: (req: IncomingMessage, url: URL) => boolean; deny: DenyHandler } | undefined;

  constructor(log: Logger) {
    this.log = log;
    this.server = createServer((req, res) => void this.dispatch(req, res));
    this.server.keepAliveTimeout = 5000;
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
  }

  route(path: string, fn: Route, opts: RouteOptions = {}): this {
    this.routes.set(path, { fn, methods: ['GET', 'HEAD', ...(opts.methods ?? [])] });
    return this;
  }

  /** Every path that starts with `prefix` (which ends with "/"), GET and HEAD. */
  prefix(prefix: string, fn: Route): this {
    this.prefixes.push({ prefix, fn });
    return this;
  }

  guard(allows: (req: IncomingMessage, url: URL) => boolean, deny: DenyHandler): this {
    this.access = { allows, deny };
    return this;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return sendJson(res, 400, { error: 'bad request target' });
    }
    const path = url.pathname;
    const exact = this.routes.get(path);
    const fn = exact?.fn ?? this.prefixes.find((p) => path.startsWith(p.prefix))?.fn;
    if (!fn) return sendJson(res, 404, { error: 'not found', path });
    const methods = exact?.methods ?? ['GET', 'HEAD'];
    if (!methods.includes(req.method ?? '')) {
      res.setHeader('allow', methods.join(', '));
      return sendJson(res, 405, { error: 'method not allowed' });
    }
    if (this.access && !this.access.allows(req, url)) return this.access.deny(req, res, url);
    try {
      await fn(req, res, url);
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
