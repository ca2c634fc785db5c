/** Picks the operation for a request from its method, key and sub-resources. */
import { isV1SignedSubresource } from '../store/oss/canonical.js';
import { PRESIGN_QUERY_PARAMS } from '../store/oss/presign.js';
import type { OperationContext } from './handlers.js';
import { appendObject, deleteObject, getObject, getObjectMeta, headObject, listObjects, putObject } from './handlers.js';
import { OssHttpError } from './oss-http-error.js';

export type Operation = (ctx: OperationContext) => Promise<void>;

/** Sub-resources this server implements on objects; any other one is refused rather than ignored. */
const OBJECT_SUBRESOURCES = new Set([
  'append', 'position', 'objectMeta',
  'response-content-type', 'response-content-language', 'response-expires',
  'response-cache-control', 'response-content-disposition', 'response-content-encoding',
]);
/** Bucket-level: ListObjectsV2's parameters ('continuation-token' is a signed sub-resource). */
const BUCKET_SUBRESOURCES = new Set(['continuation-token']);

function notAllowed(method: string): OssHttpError {
  return new OssHttpError(405, 'MethodNotAllowed', `The specified method is not allowed against this resource: ${method}.`);
}

function unsupported(what: string): OssHttpError {
  return new OssHttpError(400, 'InvalidArgument', `${what} is not supported by this server (appendcast serve-oss).`);
}

export function route(method: string, key: string, query: ReadonlyMap<string, string>): Operation {
  const allowed = key === '' ? BUCKET_SUBRESOURCES : OBJECT_SUBRESOURCES;
  for (const name of query.keys()) {
    // A presigned URL's signature parameters (security-token, x-oss-credential, …) are no operations.
    if (isV1SignedSubresource(name) && !allowed.has(name) && !PRESIGN_QUERY_PARAMS.has(name)) unsupportedSubresource(name);
  }
  if (key === '') {
    if (method !== 'GET') throw notAllowed(method);
    if (query.get('list-type') !== '2') {
      throw new OssHttpError(400, 'InvalidArgument', 'ListObjects (v1) is not supported by this server; use ListObjectsV2 (list-type=2).');
    }
    return listObjects;
  }
  switch (method) {
    case 'POST':
      if (!query.has('append')) throw notAllowed(method);
      return appendObject;
    case 'PUT':
      return putObject;
    case 'HEAD':
      return query.has('objectMeta') ? getObjectMeta : headObject;
    case 'GET':
      return getObject;
    case 'DELETE':
      return deleteObject;
    default:
      throw notAllowed(method);
  }
}

function unsupportedSubresource(name: string): never {
  throw unsupported(`The ?${name} sub-resource`);
}
