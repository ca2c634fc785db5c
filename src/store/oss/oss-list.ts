/** ListObjectsV2 (`GET /?list-type=2`) result parsing: just the fields AppendableStore.list needs. */
import type { ListEntry } from '../types.js';
import { unescapeXml, xmlElementsRaw, xmlText } from './oss-xml.js';

export interface ListPage {
  entries: ListEntry[];
  /** Set when the listing is truncated: pass it as `continuation-token` for the next page. */
  nextContinuationToken: string | undefined;
  truncated: boolean;
}

/** Parses one page; a string is the reason the document is not a usable ListBucketResult. */
export function parseListObjectsV2(xml: string): ListPage | string {
  if (!/<(?:[A-Za-z_][\w.-]*:)?ListBucketResult[\s>/]/.test(xml)) return 'not a ListBucketResult document';
  const entries: ListEntry[] = [];
  for (const block of xmlElementsRaw(xml, 'Contents')) {
    const rawKey = xmlElementsRaw(block, 'Key')[0];
    const sizeText = xmlText(block, 'Size')?.trim();
    if (rawKey === undefined || sizeText === undefined || !/^\d+$/.test(sizeText)) return 'a <Contents> lacks <Key> or a valid <Size>';
    const size = Number(sizeText);
    if (!Number.isSafeInteger(size)) return `object size ${sizeText} is out of range`;
    const modified = Date.parse(xmlText(block, 'LastModified')?.trim() ?? '');
    entries.push({
      // Keys are exact: unescaped but never trimmed.
      key: unescapeXml(rawKey),
      size,
      appendable: xmlText(block, 'Type')?.trim() === 'Appendable',
      lastModified: new Date(Number.isFinite(modified) ? modified : 0),
    });
  }
  const truncated = xmlText(xml, 'IsTruncated')?.trim().toLowerCase() === 'true';
  const token = xmlText(xml, 'NextContinuationToken');
  return { entries, truncated, nextContinuationToken: token === undefined || token === '' ? undefined : token };
}
