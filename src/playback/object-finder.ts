import { indexKeyFor } from '../appender/index-writer.js';
import type { AppendableStore, ListEntry } from '../store/types.js';

/**
 * The newest media object of a stream, found in the store alone (no metadata store): the listing
 * under the static start of the stream's key template (`{stream}/` for the default), newest first
 * by last modification, the first whose `x-oss-meta-appendcast-stream` names the stream. Index
 * objects are skipped.
 */
export async function latestObjectOf(store: AppendableStore, stream: string, keyTemplate: string): Promise<ListEntry | undefined> {
  const entries = (await store.list(listPrefix(keyTemplate, stream)))
    .filter((e) => !e.key.endsWith(indexKeyFor('')))
    .sort((a, b) => b.lastModified.getTime() - a.lastModified.getTime() || (a.key < b.key ? 1 : -1));
  for (const e of entries.slice(0, 20)) {
    const head = await store.head(e.key);
    if (head?.metadata['appendcast-stream'] === stream) return { ...e, size: head.size };
  }
  return undefined;
}

/** The part of a key template before its first placeholder other than `{stream}`, with the stream put in. */
export function listPrefix(keyTemplate: string, stream: string): string {
  const withStream = keyTemplate.replaceAll('{stream}', stream);
  const at = withStream.indexOf('{');
  return at < 0 ? withStream : withStream.slice(0, at);
}
