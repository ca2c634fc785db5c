/**
 * Which bucket and key a request names (dossier §5). Virtual-hosted when the Host is
 * `<bucket>.oss-<region>.aliyuncs.com` (or `<bucket>.<region>.oss.aliyuncs.com`) or `<bucket>.<baseHost>`:
 * the whole path is the key. Otherwise path style: `/<bucket>/<key>`.
 *
 * ali-oss against an IP endpoint with `sldEnable` sends BOTH a virtual Host and a path-style path
 * (`Host: b.oss-cn-hangzhou.aliyuncs.com`, `POST /b/key`), so when the path's first segment is the
 * Host's bucket the request is ambiguous. We return both readings, path style first; the server keeps
 * the first whose signature verifies (the signature covers `/bucket/key`), and the first reading for
 * unsigned requests. Only an unsigned request for key `b/…` in virtual-hosted bucket `b` is misread.
 */
import { OssHttpError } from './oss-http-error.js';

export interface Target {
  bucket: string;
  /** Decoded key; `''` for bucket-level requests. */
  key: string;
  style: 'virtual' | 'path';
}

/** OSS bucket naming: 3–63 of `a-z 0-9 -`, starting and ending with a letter or digit. */
const BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
const OSS_HOST = /^([a-z0-9][a-z0-9-]{1,61}[a-z0-9])\.(?:oss-[a-z0-9-]+|[a-z0-9-]+\.oss)\.aliyuncs\.com$/;

export function isValidBucketName(name: string): boolean {
  return BUCKET.test(name);
}

/** Host header without port, lower-cased (IPv6 literals keep their brackets). */
export function hostName(host: string | undefined): string {
  const h = (host ?? '').trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  return h.replace(/:\d*$/, '');
}

function virtualBucket(host: string, baseHost: string | undefined): string | undefined {
  const m = OSS_HOST.exec(host);
  if (m) return m[1];
  if (baseHost !== undefined && baseHost !== '') {
    const suffix = `.${baseHost.toLowerCase()}`;
    if (host.endsWith(suffix)) {
      const label = host.slice(0, -suffix.length);
      if (isValidBucketName(label)) return label;
    }
  }
  return undefined;
}

/** Percent-decodes a raw path; `+` stays `+` (ali-oss sends a literal plus as `%2B` anyway). */
function decodePath(raw: string): string {
  try {
    return raw.split('/').map(decodeURIComponent).join('/');
  } catch {
    throw new OssHttpError(400, 'InvalidURI', 'Could not parse the specified URI: malformed percent-encoding.');
  }
}

function pathStyle(rawPath: string): Target {
  // Split before decoding, so an encoded `%2F` cannot move the bucket/key boundary.
  const rest = rawPath.slice(1);
  const slash = rest.indexOf('/');
  const bucket = decodePath(slash === -1 ? rest : rest.slice(0, slash));
  const key = slash === -1 ? '' : decodePath(rest.slice(slash + 1));
  if (bucket === '') {
    throw new OssHttpError(400, 'InvalidArgument', 'This server does not support service-level requests (ListBuckets); name a bucket.');
  }
  if (!isValidBucketName(bucket)) throw new OssHttpError(400, 'InvalidBucketName', 'The specified bucket is not valid.');
  return { bucket, key, style: 'path' };
}

/**
 * The readings of a request target, most likely first (see the top of this file).
 * @param rawPath the path part of the request target, still percent-encoded
 */
export function resolveTargets(hostHeader: string | undefined, rawPath: string, baseHost?: string): Target[] {
  if (!rawPath.startsWith('/')) throw new OssHttpError(400, 'InvalidURI', 'Could not parse the specified URI.');
  const vb = virtualBucket(hostName(hostHeader), baseHost);
  if (vb === undefined) return [pathStyle(rawPath)];
  const virtual: Target = { bucket: vb, key: decodePath(rawPath.slice(1)), style: 'virtual' };
  // Bucket names are plain ASCII, so the raw first segment equals the decoded one when it names vb.
  if (rawPath === `/${vb}` || rawPath.startsWith(`/${vb}/`)) return [pathStyle(rawPath), virtual];
  return [virtual];
}
