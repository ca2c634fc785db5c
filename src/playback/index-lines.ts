import { indexKeyFor, type IndexLine } from '../appender/index-writer.js';
import type { AppendableStore } from '../store/types.js';
import { readRange } from './store-io.js';

/** Index objects larger than this are not read whole (about 100 hours of 1 s fragments). */
const MAX_INDEX_BYTES = 64 << 20;

/** Every whole line of an object's sidecar index ([] without one); a line still being written is left out. */
export async function readIndexLines(store: AppendableStore, key: string): Promise<IndexLine[]> {
  const idx = indexKeyFor(key);
  const head = await store.head(idx);
  if (!head || head.size === 0 || head.size > MAX_INDEX_BYTES) return [];
  const out: IndexLine[] = [];
  for (const raw of (await readRange(store, idx, 0, head.size)).toString('utf8').split('\n')) {
    if (!raw) continue;
    try {
      out.push(JSON.parse(raw) as IndexLine);
    } catch {
      break;
    }
  }
  return out;
}
