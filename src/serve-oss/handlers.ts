/**
 * The object and bucket operations: each checks its request, calls the store and writes the success
 * response. Failures are thrown (OssHttpError, or typed store errors that server.ts maps).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StoreIntegrityError } from '../store/fs/fs-errors.js';
import type { AppendableStore, CreateOptions } from '../store/types.js';
import { readBody } from './body.js';
import { listObjectsV2 } from './list-v2.js';
import { etagOf, headerSafe, objectHeaders } from './object-headers.js';
import { EC, OssHttpError } from './oss-http-error.js';
import { decideRange } from './range.js';

export interface OperationContext {
  req: IncomingMessage;
  res: ServerResponse;
  store: AppendableStore;
  bucket: string;
  /** Decoded; `''` for bucket-level requests. */
  key: string;
  /** Decoded query parameters. */
  query: ReadonlyMap<string, string>;
  maxRequestBytes: number;
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body?: string): void {
  const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
  res.writeHead(status, { ...headers, 'content-length': String(payload?.byteLength ?? 0) });
  res.end(payload);
}

function noSuchKey(): OssHttpError {
  return new OssHttpError(404, 'NoSuchKey', 'The specified key does not exist.');
}

const ACLS = new Set(['private', 'public-read', 'public-read-write', 'default']);
const STORAGE_CLASSES = new Set(['Standard', 'IA', 'Archive']);

/**
 * Creation metadata from the headers. The store applies it only when the append creates the object
 * (OSS: x-oss-meta-*, Content-Type, ACL and storage class count on the first append only).
 */
function createOptions(req: IncomingMessage): CreateOptions {
  const h = req.headers;
  const opts: CreateOptions = {};
  if (h['content-type'] !== undefined) opts.contentType = h['content-type'];
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(h)) {
    if (name.startsWith('x-oss-meta-') && name.length > 'x-oss-meta-'.length && value !== undefined) {
      metadata[name.slice('x-oss-meta-'.length)] = Array.isArray(value) ? value.join(',') : String(value);
    }
  }
  if (Object.keys(metadata).length > 0) opts.metadata = metadata;
  const acl = h['x-oss-object-acl'];
  if (acl !== undefined) {
    if (typeof acl !== 'string' || !ACLS.has(acl)) throw new OssHttpError(400, 'InvalidArgument', 'Invalid Argument. Parameter x-oss-object-acl is invalid.');
    opts.acl = acl as NonNullable<CreateOptions['acl']>;
  }
  const storageClass = h['x-oss-storage-class'];
  if (storageClass !== undefined) {
    if (typeof storageClass !== 'string' || !STORAGE_CLASSES.has(storageClass)) {
      throw new OssHttpError(400, 'InvalidArgument', 'Invalid Argument. Parameter x-oss-storage-class is invalid.');
    }
    opts.storageClass = storageClass as NonNullable<CreateOptions['storageClass']>;
  }
  return opts;
}

/**
 * `position` of AppendObject. OSS's documented sample for a non-integer position (EC 0016-00000502)
 * carries Code MissingArgument, so both cases use that code, with the documented ECs.
 */
function parsePosition(raw: string | undefined): number {
  if (raw === undefined) {
    throw new OssHttpError(400, 'MissingArgument', 'Missing Some Required Arguments: position.', { ec: EC.positionMissing });
  }
  const n = /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new OssHttpError(400, 'MissingArgument', `The position argument is invalid: ${JSON.stringify(raw)}; it must be a non-negative integer.`, {
      ec: EC.positionInvalid,
    });
  }
  return n;
}

/** POST /<key>?append&position=N */
export async function appendObject(ctx: OperationContext): Promise<void> {
  const position = parsePosition(ctx.query.get('position'));
  const opts = createOptions(ctx.req);
  const body = await readBody(ctx.req, ctx.maxRequestBytes);
  const r = await ctx.store.append(ctx.key, position, [body], opts);
  send(ctx.res, 200, {
    etag: etagOf(true, r.nextPosition, r.crc64, new Date()),
    'x-oss-next-append-position': String(r.nextPosition),
    'x-oss-hash-crc64ecma': r.crc64.toString(),
  });
}

/** PUT /<key>: a Normal object, replacing whatever was there. */
export async function putObject(ctx: OperationContext): Promise<void> {
  if (ctx.req.headers['x-oss-copy-source'] !== undefined) {
    throw new OssHttpError(400, 'InvalidArgument', 'CopyObject is not supported by this server.');
  }
  const opts = createOptions(ctx.req);
  const body = await readBody(ctx.req, ctx.maxRequestBytes);
  // Best effort (not atomic with the put): enough for a single-writer local server.
  if (ctx.req.headers['x-oss-forbid-overwrite'] === 'true' && (await ctx.store.head(ctx.key)) !== null) {
    throw new OssHttpError(409, 'FileAlreadyExists', 'The object you specified already exists and can not be overwritten.');
  }
  const r = await ctx.store.put(ctx.key, body, opts);
  send(ctx.res, 200, {
    etag: etagOf(false, body.byteLength, r.crc64, new Date()),
    'x-oss-hash-crc64ecma': r.crc64.toString(),
  });
}

/** HEAD /<key> */
export async function headObject(ctx: OperationContext): Promise<void> {
  const head = await ctx.store.head(ctx.key);
  if (head === null) throw noSuchKey();
  // HEAD announces the length a GET would send.
  ctx.res.writeHead(200, { ...objectHeaders(head), 'content-length': String(head.size) });
  ctx.res.end();
}

/** HEAD /<key>?objectMeta: the documented subset (dossier §3.2). */
export async function getObjectMeta(ctx: OperationContext): Promise<void> {
  const head = await ctx.store.head(ctx.key);
  if (head === null) throw noSuchKey();
  const all = objectHeaders(head);
  const h: Record<string, string> = { etag: all['etag']!, 'last-modified': all['last-modified']! };
  if (all['x-oss-hash-crc64ecma'] !== undefined) h['x-oss-hash-crc64ecma'] = all['x-oss-hash-crc64ecma'];
  ctx.res.writeHead(200, { ...h, 'content-length': String(head.size) });
  ctx.res.end();
}

/** `response-*` query parameters override these GET response headers (OSS GetObject). */
const RESPONSE_OVERRIDES: ReadonlyArray<readonly [string, string]> = [
  ['response-content-type', 'content-type'],
  ['response-content-language', 'content-language'],
  ['response-expires', 'expires'],
  ['response-cache-control', 'cache-control'],
  ['response-content-disposition', 'content-disposition'],
  ['response-content-encoding', 'content-encoding'],
];

/** Fails the pipeline when the store's stream does not carry exactly the announced byte count. */
function exactLength(key: string, expected: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.byteLength;
      if (seen > expected) done(new StoreIntegrityError(key, `object stream longer than the announced ${expected} bytes`));
      else done(null, chunk);
    },
    flush(done) {
      done(seen === expected ? null : new StoreIntegrityError(key, `object stream ended after ${seen} of ${expected} bytes`));
    },
  });
}

/** GET /<key>, with Range and both range behaviours (range.ts). */
export async function getObject(ctx: OperationContext): Promise<void> {
  const head = await ctx.store.head(ctx.key);
  if (head === null) throw noSuchKey();
  const behavior = ctx.req.headers['x-oss-range-behavior'];
  const standard = typeof behavior === 'string' && behavior.trim().toLowerCase() === 'standard';
  const decision = decideRange(ctx.req.headers.range, head.size, standard);
  if (decision.kind === 'unsatisfiable') {
    throw new OssHttpError(416, 'InvalidRange', 'The requested range cannot be satisfied', {
      headers: { 'content-range': `bytes */${head.size}` },
    });
  }
  const headers = objectHeaders(head);
  for (const [param, header] of RESPONSE_OVERRIDES) {
    const v = ctx.query.get(param);
    if (v !== undefined) headers[header] = headerSafe(v);
  }
  const start = decision.kind === 'partial' ? decision.start : 0;
  const end = decision.kind === 'partial' ? decision.end : head.size - 1;
  const length = end - start + 1;
  // Bounded by `end` from the same HEAD: bytes appended meanwhile are not sent, as OSS would not.
  const stream = length > 0 ? await ctx.store.read(ctx.key, { start, end }) : undefined;
  headers['content-length'] = String(length);
  if (decision.kind === 'partial') headers['content-range'] = `bytes ${start}-${end}/${head.size}`;
  ctx.res.writeHead(decision.kind === 'partial' ? 206 : 200, headers);
  if (stream === undefined) {
    ctx.res.end();
    return;
  }
  await pipeline(stream, exactLength(ctx.key, length), ctx.res);
}

/** DELETE /<key>: 204 whether or not it existed. */
export async function deleteObject(ctx: OperationContext): Promise<void> {
  await ctx.store.delete(ctx.key);
  ctx.res.writeHead(204);
  ctx.res.end();
}

/** GET /?list-type=2 */
export async function listObjects(ctx: OperationContext): Promise<void> {
  const xml = await listObjectsV2(ctx.store, ctx.bucket, ctx.query);
  send(ctx.res, 200, { 'content-type': 'application/xml' }, xml);
}
