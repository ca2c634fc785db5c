/**
 * serve-oss: an OSS-compatible HTTP server over the fs store (`appendcast serve-oss`). Each bucket is
 * a directory `<root>/<bucket>/`, which is the root of an FsStore. Requests are signed with OSS V1 or
 * V4 (checked by ../oss/verify.ts), in the Authorization header or as a presigned URL, or unsigned when
 * `anonymous` is set. CORS for GET/HEAD when `corsOrigins` is set (cors.ts). Supported: AppendObject,
 * PutObject, HeadObject, GetObjectMeta, GetObject (Range, both range behaviours), DeleteObject and
 * ListObjectsV2; see route.ts. Protocol facts: docs/oss-protocol.md.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { AppendcastError, ErrorCode } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { FsStore } from '../store/fs/fs-store.js';
import { parseRawQuery } from '../store/oss/canonical.js';
import { OssCredentialsError } from '../store/oss/credentials.js';
import { isPresignedUrl, parseAuthorization, verifyRequest } from '../store/oss/verify.js';
import type { VerifyResult } from '../store/oss/verify.js';
import { ClientAbortedError, DEFAULT_MAX_REQUEST_BYTES } from './body.js';
import { CORS_RESPONSE_HEADERS, answerPreflight, corsHeaders, parseCorsOrigin } from './cors.js';
import { FaultInjector, isFaultControlPath, serveFaultControl } from './faults.js';
import type { FaultPlan } from './faults.js';
import { hostName, isValidBucketName, resolveTargets } from './bucket-resolve.js';
import type { Target } from './bucket-resolve.js';
import { OssHttpError, toOssHttpError } from './oss-http-error.js';
import { route } from './route.js';
import { errorXml } from './xml.js';

export interface OssLocalServerOptions {
  /** One directory per bucket: `<root>/<bucket>/` is an FsStore root. Created if missing. */
  root: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Default: OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET from the environment. */
  credentials?: Array<{ accessKeyId: string; accessKeySecret: string }>;
  /** Let unsigned requests through (signed ones are still verified). */
  anonymous?: boolean;
  /** Passed to each bucket's FsStore (default 5 GiB). */
  maxObjectBytes?: number;
  fsync?: 'always' | 'never';
  /** Buckets (directories) created at start. Requests naming a bucket without a directory get 404 NoSuchBucket. */
  buckets?: string[];
  /** Virtual-hosted requests to `<bucket>.<baseHost>` (besides `<bucket>.oss-<region>.aliyuncs.com`). */
  baseHost?: string;
  logger?: Logger;
  /** The server's clock, for the 15-minute skew check and the Date header. */
  now?: () => Date;
  /** Cap on one request body (buffered whole); default 64 MiB, above it 400 EntityTooLarge. */
  maxRequestBytes?: number;
  /**
   * Origins (`http://127.0.0.1:8080`) or `*` whose pages may GET/HEAD objects cross-origin (presigned
   * URLs with a Range header): preflights are answered and responses carry Access-Control-* headers.
   * Unset: no CORS headers, OPTIONS refused (403), as OSS without a bucket CORS rule.
   */
  corsOrigins?: string[];
  /** [faults] TEST ONLY: inject faults per this plan (see faults.ts). Unset in normal operation. */
  faults?: FaultPlan;
}

export interface OssLocalServerAddress {
  host: string;
  port: number;
  /** `http://host:port`, for path-style clients. */
  url: string;
}

/** How long close() lets in-flight requests finish before cutting their connections. */
const CLOSE_GRACE_MS = 3000;

function newRequestId(): string {
  return randomBytes(12).toString('hex').toUpperCase();
}

function credentialsFromEnv(env: NodeJS.ProcessEnv): Array<{ accessKeyId: string; accessKeySecret: string }> {
  const id = env['OSS_ACCESS_KEY_ID'];
  const secret = env['OSS_ACCESS_KEY_SECRET'];
  return id && secret ? [{ accessKeyId: id, accessKeySecret: secret }] : [];
}

/** Decoded query parameters; a repeated name is refused (verify.ts refuses it in signed requests too). */
function parseQuery(rawQuery: string): Map<string, string> {
  const entries = parseRawQuery(rawQuery);
  if (entries === undefined) throw new OssHttpError(400, 'InvalidURI', 'Could not parse the specified URI: malformed query string.');
  const query = new Map<string, string>();
  for (const [name, value] of entries) {
    if (query.has(name)) throw new OssHttpError(400, 'InvalidArgument', `Query parameter ${name} is given more than once.`);
    query.set(name, value);
  }
  return query;
}

function hex(s: string): string {
  return Buffer.from(s, 'utf8').toString('hex').replace(/(..)(?!$)/g, '$1 ');
}

/** 403/400 replies for failed signature checks, with the debugging elements OSS adds (dossier §2.1). */
function authError(failure: Extract<VerifyResult, { ok: false }>, authorization: string | undefined): OssHttpError {
  const details: Array<[string, string]> = [];
  // From the Authorization header, or (presigned URL) from the query as the verifier read it.
  const parsed = authorization === undefined || authorization === '' ? undefined : parseAuthorization(authorization);
  const fromHeader = parsed !== undefined && typeof parsed !== 'string' ? parsed : undefined;
  const accessKeyId = fromHeader?.accessKeyId ?? failure.accessKeyId;
  const signatureProvided = fromHeader?.signature ?? failure.signatureProvided;
  if (failure.code === 'SignatureDoesNotMatch') {
    if (failure.stringToSign !== undefined) {
      details.push(['StringToSign', failure.stringToSign], ['StringToSignBytes', hex(failure.stringToSign)]);
    }
    if (failure.canonicalRequest !== undefined) details.push(['CanonicalRequest', failure.canonicalRequest]);
    if (signatureProvided !== undefined && accessKeyId !== undefined) {
      details.push(['SignatureProvided', signatureProvided], ['OSSAccessKeyId', accessKeyId]);
    }
  }
  if (failure.code === 'InvalidAccessKeyId' && accessKeyId !== undefined) details.push(['OSSAccessKeyId', accessKeyId]);
  // An expired presigned URL: when it expired and the server's clock, as OSS reports them.
  if (failure.code === 'AccessDenied' && failure.expires !== undefined) details.push(['Expires', failure.expires]);
  if ((failure.code === 'RequestTimeTooSkewed' || failure.expires !== undefined) && failure.serverTime !== undefined) {
    details.push(['ServerTime', failure.serverTime]);
  }
  return new OssHttpError(failure.code === 'InvalidArgument' ? 400 : 403, failure.code, failure.message, { details });
}

export class OssLocalServer {
  readonly #root: string;
  readonly #host: string;
  readonly #port: number;
  readonly #secrets = new Map<string, string>();
  readonly #anonymous: boolean;
  readonly #maxObjectBytes: number | undefined;
  readonly #fsync: 'always' | 'never' | undefined;
  readonly #buckets: readonly string[];
  readonly #baseHost: string | undefined;
  readonly #log: Logger | undefined;
  readonly #now: () => Date;
  readonly #maxRequestBytes: number;
  readonly #corsOrigins: readonly string[] | undefined;
  readonly #stores = new Map<string, FsStore>();
  #server: Server | undefined;
  // [faults] test-only state; #faults stays undefined unless a plan is given.
  #faults: FaultInjector | undefined;
  #outageEnd: (() => void) | undefined;

  constructor(opts: OssLocalServerOptions) {
    this.#root = resolve(opts.root);
    this.#host = opts.host ?? '127.0.0.1';
    this.#port = opts.port;
    for (const c of opts.credentials ?? credentialsFromEnv(process.env)) this.#secrets.set(c.accessKeyId, c.accessKeySecret);
    this.#anonymous = opts.anonymous ?? false;
    if (this.#secrets.size === 0 && !this.#anonymous) {
      throw new OssCredentialsError(
        'serve-oss has no credentials to check signatures with: give credentials (or set OSS_ACCESS_KEY_ID/OSS_ACCESS_KEY_SECRET), or allow anonymous access explicitly',
      );
    }
    this.#maxObjectBytes = opts.maxObjectBytes;
    this.#fsync = opts.fsync;
    this.#buckets = opts.buckets ?? [];
    const bad = this.#buckets.find((b) => !isValidBucketName(b));
    if (bad !== undefined) throw new RangeError(`invalid bucket name ${JSON.stringify(bad)}: 3-63 of a-z, 0-9 and -, not starting or ending with -`);
    this.#baseHost = opts.baseHost;
    this.#log = opts.logger;
    this.#now = opts.now ?? (() => new Date());
    this.#maxRequestBytes = opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    // parseCorsOrigin throws a RangeError naming a bad origin.
    this.#corsOrigins = opts.corsOrigins === undefined || opts.corsOrigins.length === 0 ? undefined : opts.corsOrigins.map(parseCorsOrigin);
    if (opts.faults !== undefined) this.#faults = new FaultInjector(opts.faults); // [faults]
  }

  async start(): Promise<OssLocalServerAddress> {
    if (this.#server !== undefined) throw new AppendcastError(ErrorCode.ServeOssState, 'OssLocalServer already started');
    await mkdir(this.#root, { recursive: true });
    for (const b of this.#buckets) await mkdir(join(this.#root, b), { recursive: true });
    const server = createServer((req, res) => {
      void this.#handle(req, res);
    });
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(this.#port, this.#host, () => {
        server.off('error', fail);
        ok();
      });
    });
    this.#server = server;
    const addr = server.address() as AddressInfo;
    const host = addr.address;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
    this.#log?.info({ url, root: this.#root, anonymous: this.#anonymous, buckets: this.#buckets, corsOrigins: this.#corsOrigins ?? [] }, 'serve-oss listening');
    if (this.#faults !== undefined) this.#warnFaults(); // [faults]
    return { host, port: addr.port, url };
  }

  /** Stops accepting connections, lets in-flight requests finish (bounded), then closes the stores. */
  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    // [faults] end pending injected delays and a running outage (its timer would re-listen).
    this.#faults?.dispose();
    this.#outageEnd?.();
    const closed = new Promise<void>((ok) => server.close(() => ok()));
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
    try {
      await closed;
    } finally {
      clearTimeout(timer);
    }
    await Promise.all([...this.#stores.values()].map((s) => s.close()));
    this.#stores.clear();
  }

  // ---- [faults] test-only hooks (faults.ts); nothing below runs unless used -------------------

  /** The running fault injector (its stats()), or undefined when no plan is set. */
  get faults(): FaultInjector | undefined {
    return this.#faults;
  }

  /** Replaces the fault plan (counters restart); null turns injection and the control endpoints off. */
  setFaults(plan: FaultPlan | null): FaultInjector | undefined {
    this.#faults = plan === null ? undefined : new FaultInjector(plan);
    if (this.#faults !== undefined && this.#server !== undefined) this.#warnFaults();
    return this.#faults;
  }

  /**
   * Simulated outage: stops listening and cuts every open connection (in-flight requests included),
   * so clients get connection refused; listens again on the same host and port after `ms`. Resolves
   * once serving again (or at once if close() ends the outage first).
   */
  async outage(ms: number): Promise<void> {
    const server = this.#server;
    if (server === undefined) throw new AppendcastError(ErrorCode.ServeOssState, 'OssLocalServer is not running');
    if (this.#outageEnd !== undefined) throw new AppendcastError(ErrorCode.ServeOssState, 'an outage is already running');
    const { address, port } = server.address() as AddressInfo;
    this.#faults?.noteOutage();
    this.#log?.warn({ ms, port }, 'serve-oss: FAULT INJECTION: outage starts');
    await new Promise<void>((ok) => {
      let timer: NodeJS.Timeout | undefined;
      let ended = false;
      const end = (): void => {
        ended = true;
        clearTimeout(timer);
        ok();
      };
      this.#outageEnd = end;
      server.close(() => {
        if (!ended) timer = setTimeout(end, ms);
      });
      server.closeAllConnections();
    });
    this.#outageEnd = undefined;
    if (this.#server !== server) return; // closed meanwhile
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(port, address, () => {
        server.off('error', fail);
        ok();
      });
    });
    this.#log?.warn({ port }, 'serve-oss: FAULT INJECTION: outage over, listening again');
  }

  #warnFaults(): void {
    this.#log?.warn({ faults: this.#faults?.summary() }, 'serve-oss: FAULT INJECTION IS ON (test only): requests will fail on purpose; control endpoints /_appendcast/* are open');
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = newRequestId();
    const started = Date.now();
    res.setHeader('x-oss-request-id', requestId);
    res.setHeader('server', 'AppendcastOSS');
    res.setHeader('date', this.#now().toUTCString());
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    // [faults] test-only control endpoints, served only while a fault plan is set.
    if (this.#faults !== undefined && isFaultControlPath(url)) {
      serveFaultControl(req, res, this.#faults, (ms) => this.outage(ms), this.#log);
      return;
    }
    if (this.#corsOrigins !== undefined) {
      for (const [name, value] of Object.entries(corsHeaders(this.#corsOrigins, req))) res.setHeader(name, value);
    }
    try {
      // Preflights are never signed (browsers send no credentials with them).
      if (method === 'OPTIONS') answerPreflight(this.#corsOrigins, req, res);
      else await this.#serve(req, res, method, url);
    } catch (err) {
      try {
        this.#fail(req, res, requestId, err);
      } catch (replyErr) {
        this.#log?.error({ requestId, err: replyErr }, 'serve-oss: could not send the error reply');
        res.destroy();
      }
    }
    this.#log?.debug({ requestId, method, url, status: res.statusCode, ms: Date.now() - started }, 'serve-oss request');
  }

  async #serve(req: IncomingMessage, res: ServerResponse, method: string, url: string): Promise<void> {
    const q = url.indexOf('?');
    const query = parseQuery(q === -1 ? '' : url.slice(q + 1));
    const targets = resolveTargets(req.headers.host, q === -1 ? url : url.slice(0, q), this.#baseHost);
    const target = this.#authenticate(req, method, url, targets);
    const operation = route(method, target.key, query);
    const store = await this.#store(target.bucket);
    const ctx = { req, res, store, bucket: target.bucket, key: target.key, query, maxRequestBytes: this.#maxRequestBytes };
    // [faults] one check in normal operation.
    await (this.#faults === undefined ? operation(ctx) : this.#faults.run(ctx, operation));
  }

  /** The reading of the request whose signature verifies (see bucket-resolve.ts), or the auth error. */
  #authenticate(req: IncomingMessage, method: string, url: string, targets: readonly Target[]): Target {
    const authorization = req.headers.authorization;
    // Anonymous access lets unsigned requests through; a presigned URL is still checked.
    if ((authorization === undefined || authorization === '') && this.#anonymous && !isPresignedUrl(url)) return targets[0]!;
    const now = this.#now();
    const lookup = (id: string): { secret: string } | undefined => {
      const secret = this.#secrets.get(id);
      return secret === undefined ? undefined : { secret };
    };
    let firstFailure: Extract<VerifyResult, { ok: false }> | undefined;
    for (const t of targets) {
      const r = verifyRequest({ method, url, bucket: t.bucket, key: t.key, headers: req.headers }, { lookup, now });
      if (r.ok) return t;
      firstFailure ??= r;
    }
    throw authError(firstFailure!, authorization);
  }

  async #store(bucket: string): Promise<FsStore> {
    const dir = join(this.#root, bucket);
    const isDir = await stat(dir).then((s) => s.isDirectory(), () => false);
    if (!isDir) throw new OssHttpError(404, 'NoSuchBucket', 'The specified bucket does not exist.', { details: [['BucketName', bucket]] });
    let store = this.#stores.get(bucket);
    if (store === undefined) {
      store = new FsStore({
        root: dir,
        ...(this.#maxObjectBytes !== undefined ? { maxObjectBytes: this.#maxObjectBytes } : {}),
        ...(this.#fsync !== undefined ? { fsync: this.#fsync } : {}),
      });
      this.#stores.set(bucket, store);
    }
    return store;
  }

  #fail(req: IncomingMessage, res: ServerResponse, requestId: string, err: unknown): void {
    if (err instanceof ClientAbortedError) {
      this.#log?.info({ requestId, method: req.method, url: req.url }, 'serve-oss: client aborted the request body; nothing written');
      res.destroy();
      return;
    }
    if (res.headersSent) {
      // Mid-body failure (e.g. a GET stream): the only honest signal left is a cut connection.
      this.#log?.warn({ requestId, err }, 'serve-oss: failed after the response started');
      res.destroy();
      return;
    }
    const e = toOssHttpError(err);
    if (e.status >= 500) this.#log?.error({ requestId, method: req.method, url: req.url, err }, 'serve-oss: internal error');
    const xml = errorXml({
      code: e.ossCode,
      message: e.message,
      requestId,
      hostId: hostName(req.headers.host),
      ec: e.ec,
      details: e.details,
    });
    const headers: Record<string, string> = { ...e.headers, 'content-type': 'application/xml', 'x-oss-ec': e.ec };
    // Clear headers a failed handler may have set; keep the common ones.
    for (const name of res.getHeaderNames()) {
      if (!['x-oss-request-id', 'server', 'date', ...CORS_RESPONSE_HEADERS].includes(name)) res.removeHeader(name);
    }
    // An unread request body is drained by node (keep-alive); only EntityTooLarge asks to close.
    // Closing with unread bytes would make the kernel reset the connection, losing this reply.
    if (req.method === 'HEAD') {
      // HEAD replies carry no body; the SDKs decode the error from x-oss-err (dossier §2.1).
      headers['x-oss-err'] = Buffer.from(xml, 'utf8').toString('base64');
      res.writeHead(e.status, { ...headers, 'content-length': '0' });
      res.end();
      return;
    }
    const body = Buffer.from(xml, 'utf8');
    res.writeHead(e.status, { ...headers, 'content-length': String(body.byteLength) });
    res.end(body);
  }
}
