import { indexKeyFor, type IndexLine } from '../appender/index-writer.js';
import type { AppendableStore, ListEntry } from '../store/types.js';
import { listPrefix } from './object-finder.js';
import { readRange } from './store-io.js';

/** One object of a stream, as the recordings API and `appendcast ls` show it. */
export interface Recording {
  key: string;
  stream: string;
  session: string | null;
  /** The object's number within its session (0 first, then rollovers). */
  objectSeq: number | null;
  bytes: number;
  /** Wall clock (ISO) where the recording begins: its first entry's arrival, or its first fragment's start if earlier; null without an index. */
  start: string | null;
  /** Wall clock (ISO) of the object's last append. */
  end: string;
  /** Still being appended to. */
  growing: boolean;
}

export interface ListRecordingsOptions {
  stream: string;
  keyTemplate: string;
  /** Only recordings overlapping [start, end] (either may be open). */
  start?: Date;
  end?: Date;
  /** The gateway's open objects; without it, an object appended to within `growingIdleMs` counts as growing. */
  isGrowing?: (key: string) => boolean;
  growingIdleMs?: number;
  /** Reused between calls: an object whose size did not change is not read again. */
  cache?: Map<string, Recording>;
  now?: () => number;
}

/** Bytes read at each end of an index for its first and last lines (a line is ~150 bytes). */
const EDGE_BYTES = 4096;

/**
 * The recordings of a stream, oldest first, from the store alone: the listing under the stream's
 * key template, each object's metadata (HEAD: stream, session, object number, last append) and the
 * first and last lines of its sidecar index (when the recording began and, to the millisecond, when
 * its last fragment ended). Index reads are ranged (a few KB at each end), never whole objects, and
 * cached per object while its size does not change.
 */
export async function listRecordings(store: AppendableStore, o: ListRecordingsOptions): Promise<Recording[]> {
  const now = o.now ?? Date.now;
  const entries = (await store.list(listPrefix(o.keyTemplate, o.stream))).filter((e) => !e.key.endsWith(indexKeyFor('')));
  const out: Recording[] = [];
  for (const e of entries) {
    const r = await describeObject(store, e, o);
    if (!r) continue;
    r.growing = o.isGrowing ? o.isGrowing(r.key) : now() - Date.parse(r.end) < (o.growingIdleMs ?? 10_000);
    if (o.start && Date.parse(r.end) < o.start.getTime()) continue;
    if (o.end && r.start !== null && Date.parse(r.start) > o.end.getTime()) continue;
    out.push(r);
  }
  return out.sort((a, b) => (a.start ?? a.end).localeCompare(b.start ?? b.end) || a.key.localeCompare(b.key));
}

async function describeObject(store: AppendableStore, e: ListEntry, o: ListRecordingsOptions): Promise<Recording | undefined> {
  const cached = o.cache?.get(e.key);
  if (cached && cached.bytes === e.size) return { ...cached };
  const head = await store.head(e.key);
  if (!head || head.metadata['appendcast-stream'] !== o.stream) return undefined;
  const seq = head.metadata['appendcast-object-seq'];
  const r: Recording = {
    key: e.key,
    stream: o.stream,
    session: head.metadata['appendcast-session'] ?? null,
    objectSeq: seq !== undefined && /^\d+$/.test(seq) ? Number(seq) : null,
    bytes: head.size,
    start: null,
    end: head.lastModified.toISOString(),
    growing: false,
  };
  const times = await indexTimes(store, e.key);
  if (times) {
    r.start = new Date(times.first).toISOString();
    // The index reaches the end of the object: its last line's arrival is the media's end (the last
    // append came ~0.25 s later, and OSS's Last-Modified has whole seconds). Behind: the last append.
    if (times.lastByte === head.size || times.last > head.lastModified.getTime()) r.end = new Date(times.last).toISOString();
  }
  o.cache?.set(e.key, r);
  return { ...r };
}

/** Where the index's first entry begins and its last one arrived (complete), in ms; null without a readable index. */
async function indexTimes(store: AppendableStore, key: string): Promise<{ first: number; last: number; lastByte: number } | null> {
  try {
    const idx = indexKeyFor(key);
    const head = await store.head(idx);
    if (!head || head.size === 0) return null;
    const firstText = (await readRange(store, idx, 0, Math.min(head.size, EDGE_BYTES))).toString('utf8');
    const firstLines = firstText.split('\n').slice(0, 2).map(parseLine);
    const first = firstLines[0];
    // A line's `w` is its entry's arrival: a fragment arrives complete, so its media began `d` earlier.
    const frag = firstLines[1];
    if (first && frag && Number.isFinite(frag.w) && frag.d !== undefined) first.w = Math.min(first.w, Math.round(frag.w - frag.d * 1000));
    const lastText = head.size <= EDGE_BYTES ? firstText : (await readRange(store, idx, head.size - EDGE_BYTES, head.size)).toString('utf8');
    const lines = lastText.split('\n').filter((l) => l.length > 0);
    const last = parseLine(lines.at(-1) ?? '');
    if (!first || !Number.isFinite(first.w)) return null;
    const end = last && Number.isFinite(last.w) ? last.w : first.w; // arrival = the fragment complete
    const lastByte = last && Number.isSafeInteger(last.offset) ? last.offset + last.length : -1;
    return { first: first.w, last: Math.max(first.w, Math.round(end)), lastByte };
  } catch {
    return null;
  }
}

function parseLine(text: string): IndexLine | undefined {
  try {
    return JSON.parse(text) as IndexLine;
  } catch {
    return undefined; // cut short (read from the middle), or not written yet
  }
}
