/**
 * Request bodies of PutObject and AppendObject, buffered per request up to a cap (the simplest
 * correct choice: the store takes whole chunks, and Content-MD5 can only be checked on the whole).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { AppendcastError, ErrorCode } from '../errors.js';
import { OssHttpError } from './oss-http-error.js';

/** Default cap on one request body; a live-video fragment is far smaller. */
export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 ** 2;

/** The client went away mid-body: there is nobody to answer, and nothing may be written. */
export class ClientAbortedError extends AppendcastError {
  constructor(cause: unknown) {
    super(ErrorCode.ServeOssClientAborted, 'client closed the connection before sending the whole body', { cause });
  }
}

function tooLarge(limit: number): OssHttpError {
  return new OssHttpError(400, 'EntityTooLarge', `Your proposed upload exceeds the maximum allowed size (${limit} bytes per request on this server).`, {
    // We stop reading: the connection cannot be reused.
    headers: { connection: 'close' },
  });
}

/** Throws 411 unless the request announces its body (Content-Length or chunked), and 400 when over `limit`. */
export function checkBodyFraming(req: IncomingMessage, limit: number): void {
  const cl = req.headers['content-length'];
  const te = req.headers['transfer-encoding'];
  if (cl === undefined && te === undefined) {
    throw new OssHttpError(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.');
  }
  if (cl !== undefined && Number(cl) > limit) throw tooLarge(limit);
}

/** Reads the whole body (≤ `limit` bytes) and checks Content-MD5 when the request has one. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  checkBodyFraming(req, limit);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      total += chunk.byteLength;
      if (total > limit) throw tooLarge(limit);
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof OssHttpError) throw err;
    throw new ClientAbortedError(err);
  }
  // The parser ends the body at Content-Length; a connection closed early shows up as an abort.
  if (!req.complete) throw new ClientAbortedError(undefined);
  const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  const md5 = req.headers['content-md5'];
  checkContentMd5(Array.isArray(md5) ? md5.join(',') : md5, body);
  return body;
}

function checkContentMd5(header: string | undefined, body: Buffer): void {
  if (header === undefined) return;
  const given = Buffer.from(header.trim(), 'base64');
  const actual = createHash('md5').update(body).digest();
  if (given.length !== 16 || given.toString('base64') !== header.trim() || !given.equals(actual)) {
    throw new OssHttpError(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
  }
}
