/** The XML bodies the server sends: error documents and ListObjectsV2 results. */

const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n';

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

function element(name: string, value: string): string {
  return `<${name}>${escapeXml(value)}</${name}>`;
}

export interface ErrorDocument {
  code: string;
  message: string;
  requestId: string;
  hostId: string;
  ec: string;
  /** Code-specific elements (StringToSign, ServerTime, …), after the common ones. */
  details?: ReadonlyArray<readonly [string, string]>;
}

/** `<Error>` as OSS sends it (dossier §2.1). */
export function errorXml(doc: ErrorDocument): string {
  const children = [
    element('Code', doc.code),
    element('Message', doc.message),
    element('RequestId', doc.requestId),
    element('HostId', doc.hostId),
    ...(doc.details ?? []).map(([name, value]) => element(name, value)),
    element('EC', doc.ec),
  ];
  return `${XML_DECL}<Error>\n  ${children.join('\n  ')}\n</Error>\n`;
}

export interface ListedObject {
  key: string;
  size: number;
  lastModified: Date;
  /** Quoted, as in the ETag header. */
  etag: string;
  type: 'Appendable' | 'Normal';
}

export interface ListV2Document {
  bucket: string;
  prefix: string;
  maxKeys: number;
  delimiter?: string | undefined;
  startAfter?: string | undefined;
  continuationToken?: string | undefined;
  nextContinuationToken?: string | undefined;
  isTruncated: boolean;
  contents: readonly ListedObject[];
  commonPrefixes: readonly string[];
  /** `encoding-type=url`: keys and prefixes are percent-encoded. */
  urlEncode: boolean;
  fetchOwner: boolean;
}

/** `<ListBucketResult>` of ListObjectsV2 (GET /?list-type=2), the fields ali-oss's listV2 reads. */
export function listV2Xml(doc: ListV2Document): string {
  const enc = (s: string): string => (doc.urlEncode ? encodeURIComponent(s) : s);
  const lines: string[] = [element('Name', doc.bucket), element('Prefix', enc(doc.prefix))];
  if (doc.startAfter !== undefined) lines.push(element('StartAfter', enc(doc.startAfter)));
  if (doc.continuationToken !== undefined) lines.push(element('ContinuationToken', doc.continuationToken));
  lines.push(element('MaxKeys', String(doc.maxKeys)));
  if (doc.delimiter !== undefined) lines.push(element('Delimiter', enc(doc.delimiter)));
  if (doc.urlEncode) lines.push(element('EncodingType', 'url'));
  lines.push(element('IsTruncated', String(doc.isTruncated)));
  if (doc.nextContinuationToken !== undefined) lines.push(element('NextContinuationToken', doc.nextContinuationToken));
  lines.push(element('KeyCount', String(doc.contents.length + doc.commonPrefixes.length)));
  for (const o of doc.contents) {
    const owner = doc.fetchOwner ? `<Owner>${element('ID', 'appendcast')}${element('DisplayName', 'appendcast')}</Owner>` : '';
    lines.push(
      `<Contents>${element('Key', enc(o.key))}${element('LastModified', o.lastModified.toISOString())}` +
        `${element('ETag', o.etag)}${element('Type', o.type)}${element('Size', String(o.size))}` +
        `${element('StorageClass', 'Standard')}${owner}</Contents>`,
    );
  }
  for (const p of doc.commonPrefixes) lines.push(`<CommonPrefixes>${element('Prefix', enc(p))}</CommonPrefixes>`);
  return `${XML_DECL}<ListBucketResult>\n  ${lines.join('\n  ')}\n</ListBucketResult>\n`;
}
