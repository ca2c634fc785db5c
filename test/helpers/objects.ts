/**
 * Reading back what the gateway recorded: a stream's media objects in a store (the sidecar
 * `<key>.index.jsonl` objects left out), grouped by session and ordered by object seq from the
 * metadata each object was created with; split into fMP4 parts; stitched into one byte stream.
 *
 * Every object of a session starts with the session's init segment; stitching drops the repeated
 * copies (all but the first object's), so the stitched bytes of a session that lost nothing equal
 * what its remuxer wrote, byte for byte.
 */
import { expect } from 'vitest';
import { Fmp4Splitter, type MediaFragment } from '../../src/container/index.js';
import type { IndexLine } from '../../src/appender/index-writer.js';
import type { AppendableStore } from '../../src/store/types.js';

export const INDEX_SUFFIX = '.index.jsonl';

export interface StoredObject {
  key: string;
  size: number;
  stream: string;
  session: string;
  /** `appendcast-object-seq`: the per-session object counter, 0 first. */
  seq: number;
}

/** The parts of one object, as the splitter cuts them. */
export interface ObjectParts {
  /** The leading init segment (ftyp+moov), or null if the object does not start with one. */
  init: Buffer | null;
  fragments: MediaFragment[];
  /** Bytes of any further init segments and trailer boxes (a healthy object has none). */
  other: number;
}

export function isIndexKey(key: string): boolean {
  return key.endsWith(INDEX_SUFFIX);
}

/** Everything a stream yields (a store read, a file stream), as one buffer. */
export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts);
}

/** The whole object (a store read is a stream). */
export async function readObject(store: AppendableStore, key: string): Promise<Buffer> {
  return readAll(await store.read(key));
}

/**
 * The media objects under `prefix` (default `<stream>/`) whose metadata names `stream`, ordered by
 * session, then object seq. Objects without the appendcast metadata are left out.
 */
export async function listStreamObjects(store: AppendableStore, stream: string, prefix = `${stream}/`): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for (const entry of await store.list(prefix)) {
    if (isIndexKey(entry.key)) continue;
    const head = await store.head(entry.key);
    const m = head?.metadata ?? {};
    const session = m['appendcast-session'];
    const seq = m['appendcast-object-seq'];
    if (!head || m['appendcast-stream'] !== stream || session === undefined || seq === undefined) continue;
    out.push({ key: entry.key, size: head.size, stream, session, seq: Number(seq) });
  }
  return out.sort((a, b) => (a.session === b.session ? a.seq - b.seq : a.session < b.session ? -1 : 1));
}

/** Objects by session id, each list in object-seq order. */
export function groupBySession(objects: readonly StoredObject[]): Map<string, StoredObject[]> {
  const groups = new Map<string, StoredObject[]>();
  for (const o of objects) {
    const g = groups.get(o.session) ?? [];
    g.push(o);
    groups.set(o.session, g);
  }
  for (const g of groups.values()) g.sort((a, b) => a.seq - b.seq);
  return groups;
}

/** Cuts one object into its init segment and media fragments (throws ContainerError if it is not fMP4). */
export function splitObject(bytes: Buffer): ObjectParts {
  const splitter = new Fmp4Splitter();
  const outputs = [...splitter.push(bytes, 0), ...splitter.flush()];
  const parts: ObjectParts = { init: null, fragments: [], other: 0 };
  outputs.forEach((o, i) => {
    if (o.type === 'init' && i === 0) parts.init = o.bytes;
    else if (o.type === 'fragment') parts.fragments.push(o);
    else parts.other += o.bytes.length;
  });
  return parts;
}

/**
 * One session's objects (in object-seq order) as one byte stream: the first whole, the others
 * without their leading init segment. Throws if an object does not start with the session's init
 * segment (`init` when given, else the first object's own): that would not be a rollover of the
 * same remuxer output.
 */
export function stitch(objects: readonly Buffer[], init?: Buffer): Buffer {
  if (objects.length === 0) return Buffer.alloc(0);
  const head = init ?? splitObject(objects[0]!).init;
  if (!head) throw new Error('the first object does not start with an init segment');
  objects.forEach((bytes, i) => {
    if (!bytes.subarray(0, head.length).equals(head)) throw new Error(`object ${i} does not start with the session's init segment`);
  });
  return Buffer.concat([objects[0]!, ...objects.slice(1).map((bytes) => bytes.subarray(head.length))]);
}

/** The sidecar index of a media object, one parsed line per entry. */
export async function readIndex(store: AppendableStore, key: string): Promise<IndexLine[]> {
  const text = (await readObject(store, `${key}${INDEX_SUFFIX}`)).toString('utf8');
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as IndexLine);
}

/** One index line per entry (`entries` of them), in order, each once, covering `objectBytes` exactly. */
export function expectWholeIndex(lines: ReadonlyArray<{ offset: number; length: number }>, entries: number, objectBytes: number): void {
  expect(lines).toHaveLength(entries);
  let offset = 0;
  for (const l of lines) {
    expect(l.offset).toBe(offset);
    offset += l.length;
  }
  expect(offset).toBe(objectBytes);
}

/**
 * Why the index lines do not tile an object of `size` bytes exactly (from 0, each line starting
 * where the previous one ended, the last ending at `size`), or null when they do.
 */
export function indexTilingProblem(lines: readonly IndexLine[], size: number): string | null {
  let at = 0;
  for (const [i, l] of lines.entries()) {
    if (l.offset !== at) return `line ${i}: offset ${l.offset}, expected ${at}`;
    if (!(l.length > 0)) return `line ${i}: length ${l.length}`;
    at += l.length;
  }
  return at === size ? null : `the lines end at ${at}, the object at ${size}`;
}
