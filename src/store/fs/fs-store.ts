/**
 * The fs backend: a directory with the semantics of OSS AppendObject (same errors, same CRC-64).
 *
 * Layout. Object `a/b.mp4` is the plain file `<root>/a/b.mp4`; its metadata sidecar (a JSON line:
 * type Appendable|Normal, acknowledged length, whole-object CRC-64, content type, user metadata, the
 * data file's inode; then one 32-byte record per append, see sidecar.ts) is
 * `<root>/.appendcast-meta/objects/a/b.mp4`, and temp files live in
 * `<root>/.appendcast-meta/tmp/`. Keys whose first segment is `.appendcast-meta` are refused, so no
 * object collides with the store's own files and list() never shows them. Keys that cannot be a
 * distinct file path (`a//b`, `a/./b`, trailing `/`, a segment over 255 bytes) are refused with
 * InvalidKeyError, and so is a key that would need a file where a directory is, or the reverse
 * (`a` and `a/b` cannot both exist here, unlike OSS).
 *
 * Durability (`fsync: 'always'`, the default). Before a call resolves:
 * - append to an existing object: the new bytes are written at the acknowledged length and the data
 *   file is fdatasync'ed; then a record of the new length + CRC-64 is written after the sidecar's last
 *   one and the sidecar is fdatasync'ed (every 4096 records the sidecar is rewritten as one line: temp
 *   file, fsync, rename, fsync of its directory). Both files stay open between appends (up to 4096
 *   objects, closed after 60 s unused), so an append is two writes and two fdatasyncs.
 * - append that creates an object, and put: the bytes go to a temp file, which is fdatasync'ed; the
 *   sidecar is written as above; then the temp file is renamed to the object's path and that
 *   directory is fsynced (the rename is the commit). Directories created for a new key are fsynced
 *   into their parents.
 * - delete: the data file is unlinked and its directory fsynced, then the same for the sidecar.
 * With `fsync: 'never'` nothing is fsynced: a crash of the process loses nothing acknowledged (the
 * page cache survives it), but a power loss may lose recent appends.
 *
 * Crash consistency. The sidecar is the record of what was acknowledged. A data file longer than
 * its sidecar's length holds the tail of an append that never returned: reads and head() ignore
 * those bytes and the next append truncates them before writing. A data file shorter than its
 * sidecar's length lost acknowledged bytes (power loss under `fsync: 'never'`, or tampering) and
 * raises StoreIntegrityError. A sidecar whose inode is not the data file's is stale (a create that
 * died before its rename: the object is absent). A data file without a valid sidecar (a file copied
 * into the root, or one whose put died between rename and sidecar) is a Normal object with no
 * CRC-64. Temp files of interrupted writes may remain in `.appendcast-meta/tmp/`; they are safe to
 * delete while no FsStore is running on the root.
 *
 * Concurrency. Every mutation, head() and the opening of a read() run under a per-key mutex that
 * all FsStore instances in this process share, so racing appends at one position have exactly one
 * winner and never interleave. Nothing guards across processes: run one writing process per root
 * (other processes may read the files; share a root over the network with serve-oss).
 */
import { lstat, open, readdir, rm, unlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { crc64Of } from '../crc64.js';
import {
  InvalidKeyError,
  InvalidRangeError,
  NoSuchKeyError,
  ObjectNotAppendableError,
  ObjectTooLargeError,
  PositionNotEqualToLengthError,
  StoreClosedError,
} from '../errors.js';
import type {
  AppendableStore,
  AppendResult,
  ByteRange,
  CreateOptions,
  HeadResult,
  ListEntry,
} from '../types.js';
import { errnoCode, fsyncDir, mkdirp, pruneEmptyDirs, renameInto, writeAllAt } from './durable-fs.js';
import { StoreIntegrityError } from './fs-errors.js';
import { isFsKey, keySegments, META_DIR } from './key-path.js';
import { KeyedMutex } from './keyed-mutex.js';
import { OpenObjects, type OpenObject } from './open-objects.js';
import { encodeRecord, encodeSidecar, readSidecarFile, RECORD_BYTES } from './sidecar.js';
import type { Sidecar, SidecarFile } from './sidecar.js';

export interface FsStoreOptions {
  /** Directory holding the objects; created if missing. */
  root: string;
  /** Cap on an object's size (appends and puts); default 5 GiB, OSS's appendable-object limit. */
  maxObjectBytes?: number;
  /** 'always' (default): fsync before acknowledging, see the top of this file. */
  fsync?: 'always' | 'never';
  /** Objects kept open between appends (default 4096, two descriptors each) and how long an unused one stays open (default 60 s). */
  openObjects?: { max?: number; idleMs?: number };
}

export const DEFAULT_MAX_OBJECT_BYTES = 5 * 1024 ** 3;
/** Append records in a sidecar before it is rewritten as one JSON line (about 130 KB; an hour of 1 s appends). */
const MAX_RECORDS = 4096;
/** Objects kept open between appends, and how long an unused one stays open. */
const OPEN_OBJECTS = 4096;
const OPEN_IDLE_MS = 60_000;

/** Shared by every FsStore in the process, keyed by absolute data path. */
const locks = new KeyedMutex();

interface ObjectPaths {
  data: string;
  meta: string;
}

type ObjectState =
  | { kind: 'absent' }
  /** The key's path is a directory (prefix of other objects): no object, and none can be created. */
  | { kind: 'directory' }
  /** A file without a sidecar that describes it: a Normal object with no known CRC-64. */
  | { kind: 'orphan'; stat: BigIntStats }
  | { kind: 'object'; stat: BigIntStats; sidecar: Sidecar; file: SidecarFile };

function totalBytes(chunks: readonly Uint8Array[]): number {
  return chunks.reduce((n, c) => n + c.byteLength, 0);
}

/** OSS user-metadata names travel as HTTP headers, so clients always see them lower-cased. */
function normalizeMetadata(metadata: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata ?? {})) out[k.toLowerCase()] = v;
  return out;
}

function conflict(key: string, cause: unknown): InvalidKeyError {
  const err = new InvalidKeyError(key, 'its path conflicts with another object on the fs store (a key cannot also be a prefix directory)');
  if (cause !== undefined) err.cause = cause;
  return err;
}

function isConflictErrno(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOTDIR' || code === 'EEXIST' || code === 'EISDIR' || code === 'ENOTEMPTY';
}

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export class FsStore implements AppendableStore {
  readonly kind = 'fs';
  readonly root: string;
  readonly maxObjectBytes: number;
  readonly fsync: 'always' | 'never';
  readonly #metaRoot: string;
  readonly #tmpDir: string;
  readonly #inflight = new Set<Promise<unknown>>();
  #closed = false;
  #tmpReady: Promise<void> | undefined;
  readonly #open: OpenObjects;

  constructor(options: FsStoreOptions) {
    this.root = resolve(options.root);
    this.maxObjectBytes = options.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES;
    this.fsync = options.fsync ?? 'always';
    this.#metaRoot = join(this.root, META_DIR, 'objects');
    this.#tmpDir = join(this.root, META_DIR, 'tmp');
    this.#open = new OpenObjects({
      max: options.openObjects?.max ?? OPEN_OBJECTS,
      idleMs: options.openObjects?.idleMs ?? OPEN_IDLE_MS,
      runLocked: (path, fn) => locks.run(path, fn),
    });
  }

  append(key: string, position: number, chunks: readonly Uint8Array[], opts?: CreateOptions): Promise<AppendResult> {
    return this.#locked(key, async (paths) => {
      const total = totalBytes(chunks);
      const open = await this.#open.valid(paths.data);
      if (open !== undefined) return this.#appendOpen(key, paths, open, position, chunks, total);
      const state = await this.#inspect(key, paths);
      switch (state.kind) {
        case 'directory':
          throw conflict(key, undefined);
        case 'orphan':
          throw new ObjectNotAppendableError(key);
        case 'absent':
          if (position !== 0) throw new PositionNotEqualToLengthError(key, position, 0);
          return this.#create(key, paths, chunks, total, opts);
        case 'object': {
          if (state.sidecar.type !== 'Appendable') throw new ObjectNotAppendableError(key);
          if (position !== state.sidecar.length) throw new PositionNotEqualToLengthError(key, position, state.sidecar.length);
          this.#checkNotShort(key, state.stat, state.sidecar);
          return this.#appendOpen(key, paths, await this.#openObject(paths, state), position, chunks, total);
        }
      }
    });
  }

  head(key: string): Promise<HeadResult | null> {
    return this.#locked(key, async (paths) => {
      const state = await this.#inspect(key, paths);
      switch (state.kind) {
        case 'absent':
        case 'directory':
          return null;
        case 'orphan':
          return {
            size: Number(state.stat.size),
            appendable: false,
            nextPosition: undefined,
            crc64: undefined,
            lastModified: new Date(Number(state.stat.mtimeMs)),
            contentType: undefined,
            metadata: {},
          };
        case 'object': {
          const s = state.sidecar;
          this.#checkNotShort(key, state.stat, s);
          return {
            size: s.length,
            appendable: s.type === 'Appendable',
            nextPosition: s.type === 'Appendable' ? s.length : undefined,
            crc64: s.crc64,
            lastModified: new Date(s.lastModified),
            contentType: s.contentType,
            metadata: { ...s.metadata },
          };
        }
      }
    });
  }

  read(key: string, range?: ByteRange): Promise<Readable> {
    return this.#locked(key, async (paths) => {
      const state = await this.#inspect(key, paths);
      if (state.kind === 'absent' || state.kind === 'directory') throw new NoSuchKeyError(key);
      let size: number;
      if (state.kind === 'object') {
        this.#checkNotShort(key, state.stat, state.sidecar);
        size = state.sidecar.length; // bytes past it were never acknowledged
      } else {
        size = Number(state.stat.size);
      }
      const start = range?.start ?? 0;
      if (range !== undefined) {
        const badEnd = range.end !== undefined && (!Number.isSafeInteger(range.end) || range.end < start);
        if (!Number.isSafeInteger(start) || start < 0 || start >= size || badEnd) {
          throw new InvalidRangeError(key, start, size);
        }
      }
      const end = Math.min(range?.end ?? size - 1, size - 1);
      if (end < start) return Readable.from([]); // whole read of an empty object
      // Open under the lock: the stream reads this inode even if a later put replaces the path.
      const fh = await open(paths.data, 'r');
      return fh.createReadStream({ start, end });
    });
  }

  put(key: string, data: Uint8Array, opts?: CreateOptions): Promise<{ crc64: bigint }> {
    return this.#locked(key, async (paths) => {
      if (data.byteLength > this.maxObjectBytes) throw new ObjectTooLargeError(key, data.byteLength, this.maxObjectBytes);
      await this.#open.drop(paths.data);
      const state = await this.#inspect(key, paths);
      if (state.kind === 'directory') throw conflict(key, undefined);
      const crc64 = crc64Of([data]);
      await this.#writeNew(key, paths, [data], {
        type: 'Normal',
        length: data.byteLength,
        crc64,
        ...this.#createFields(opts),
      });
      return { crc64 };
    });
  }

  delete(key: string): Promise<void> {
    return this.#locked(key, async (paths) => {
      await this.#open.drop(paths.data);
      const state = await this.#inspect(key, paths);
      if (state.kind === 'directory') return;
      const durable = this.fsync === 'always';
      // Data first: a crash in between leaves a stale sidecar, which reads as "absent".
      if (await this.#unlinkIfPresent(paths.data) && durable) await fsyncDir(dirname(paths.data));
      if (await this.#unlinkIfPresent(paths.meta) && durable) await fsyncDir(dirname(paths.meta));
      await pruneEmptyDirs(paths.data, this.root);
      await pruneEmptyDirs(paths.meta, this.#metaRoot);
    });
  }

  async list(prefix: string): Promise<ListEntry[]> {
    this.#checkOpen(prefix);
    const entries: ListEntry[] = [];
    // Walk only the deepest directory the prefix pins down, when it is a plain path.
    const slash = prefix.lastIndexOf('/');
    const dirPart = slash >= 0 ? prefix.slice(0, slash) : '';
    const startRel = dirPart !== '' && isFsKey(dirPart) ? dirPart : '';
    const walk = async (rel: string): Promise<void> => {
      let dirents;
      try {
        dirents = await readdir(rel === '' ? this.root : join(this.root, ...rel.split('/')), { withFileTypes: true });
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw err;
      }
      for (const d of dirents) {
        const key = rel === '' ? d.name : `${rel}/${d.name}`;
        if (rel === '' && d.name === META_DIR) continue;
        if (d.isDirectory()) {
          // Descend only where keys with this prefix can be.
          if (prefix.startsWith(`${key}/`) || `${key}/`.startsWith(prefix)) await walk(key);
        } else if (d.isFile() && key.startsWith(prefix) && isFsKey(key)) {
          const entry = await this.#listEntry(key);
          if (entry !== undefined) entries.push(entry);
        }
      }
    };
    await walk(startRel);
    return entries.sort((a, b) => utf8Compare(a.key, b.key));
  }

  async close(): Promise<void> {
    this.#closed = true;
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    await this.#open.closeAll();
  }

  // ---- internals ----

  #checkOpen(key: string): void {
    if (this.#closed) throw new StoreClosedError(key, 'fs');
  }

  #paths(key: string): ObjectPaths {
    const segments = keySegments(key);
    return { data: join(this.root, ...segments), meta: join(this.#metaRoot, ...segments) };
  }

  /** Validates the key, then runs `fn` under the key's mutex, tracked for close(). */
  #locked<T>(key: string, fn: (paths: ObjectPaths) => Promise<T>): Promise<T> {
    let paths: ObjectPaths;
    try {
      this.#checkOpen(key);
      paths = this.#paths(key);
    } catch (err) {
      return Promise.reject(err);
    }
    const p = locks.run(paths.data, () => fn(paths));
    this.#inflight.add(p);
    const untrack = (): void => {
      this.#inflight.delete(p);
    };
    p.then(untrack, untrack);
    return p;
  }

  async #inspect(key: string, paths: ObjectPaths): Promise<ObjectState> {
    let stat: BigIntStats;
    try {
      stat = await lstat(paths.data, { bigint: true });
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'absent' };
      throw err;
    }
    if (stat.isDirectory()) return { kind: 'directory' };
    if (!stat.isFile()) return { kind: 'absent' }; // symlinks and the like are not objects
    const file = await readSidecarFile(paths.meta, key);
    const sidecar = file?.sidecar;
    if (file === undefined || sidecar === undefined || sidecar.ino !== stat.ino) return { kind: 'orphan', stat };
    if (stat.size < BigInt(sidecar.length)) {
      // Another process (a reader beside the gateway) may have raced an append between our stat and
      // our sidecar read: the data is written before the sidecar, so a second look sees it.
      const again = await lstat(paths.data, { bigint: true }).catch(() => undefined);
      if (again !== undefined && again.ino === stat.ino) return { kind: 'object', stat: again, sidecar, file };
    }
    return { kind: 'object', stat, sidecar, file };
  }

  #checkNotShort(key: string, stat: BigIntStats, sidecar: Sidecar): void {
    if (stat.size < BigInt(sidecar.length)) {
      throw new StoreIntegrityError(key,
        `${key} has ${stat.size} bytes on disk but ${sidecar.length} were acknowledged: acknowledged data was lost`);
    }
  }

  async #listEntry(key: string): Promise<ListEntry | undefined> {
    const paths = this.#paths(key);
    let state: ObjectState;
    try {
      state = await this.#inspect(key, paths);
    } catch (err) {
      if (err instanceof StoreIntegrityError) state = { kind: 'absent' };
      else throw err;
    }
    switch (state.kind) {
      case 'absent':
      case 'directory':
        return undefined;
      case 'orphan':
        return { key, size: Number(state.stat.size), appendable: false, lastModified: new Date(Number(state.stat.mtimeMs)) };
      case 'object':
        return {
          key,
          size: state.sidecar.length,
          appendable: state.sidecar.type === 'Appendable',
          lastModified: new Date(state.sidecar.lastModified),
        };
    }
  }

  #createFields(opts: CreateOptions | undefined): Pick<Sidecar, 'lastModified' | 'contentType' | 'metadata' | 'acl' | 'storageClass'> {
    return {
      lastModified: Date.now(),
      contentType: opts?.contentType,
      metadata: normalizeMetadata(opts?.metadata),
      acl: opts?.acl,
      storageClass: opts?.storageClass,
    };
  }

  async #create(key: string, paths: ObjectPaths, chunks: readonly Uint8Array[], total: number, opts: CreateOptions | undefined): Promise<AppendResult> {
    if (total > this.maxObjectBytes) throw new ObjectTooLargeError(key, total, this.maxObjectBytes);
    const crc64 = crc64Of(chunks);
    await this.#writeNew(key, paths, chunks, { type: 'Appendable', length: total, crc64, ...this.#createFields(opts) });
    return { nextPosition: total, crc64 };
  }

  /**
   * Writes a whole new object (create-by-append, put): temp file, sidecar, then the rename that
   * commits. A crash before the rename leaves the previous state (plus a stale sidecar if there was
   * no object, which reads as absent).
   */
  async #writeNew(key: string, paths: ObjectPaths, chunks: readonly Uint8Array[], fields: Omit<Sidecar, 'ino'>): Promise<void> {
    const durable = this.fsync === 'always';
    const tmp = await this.#writeTemp(chunks);
    let sidecarWritten = false;
    try {
      try {
        await mkdirp(dirname(paths.data), durable);
        await mkdirp(dirname(paths.meta), durable);
      } catch (err) {
        throw isConflictErrno(err) ? conflict(key, err) : err;
      }
      await this.#writeSidecar(key, paths, { ...fields, ino: tmp.ino });
      sidecarWritten = true;
      try {
        await renameInto(tmp.path, paths.data, durable);
      } catch (err) {
        throw isConflictErrno(err) ? conflict(key, err) : err;
      }
    } catch (err) {
      await rm(tmp.path, { force: true });
      if (sidecarWritten) await rm(paths.meta, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** Opens an existing appendable object's two files for this and later appends. */
  async #openObject(paths: ObjectPaths, state: { stat: BigIntStats; sidecar: Sidecar; file: SidecarFile }): Promise<OpenObject> {
    const data = await open(paths.data, 'r+');
    let meta;
    try {
      meta = await open(paths.meta, 'r+');
    } catch (err) {
      await data.close();
      throw err;
    }
    const o: OpenObject = {
      data, meta, ino: state.stat.ino, size: state.stat.size, sidecar: state.sidecar, end: state.file.end, records: state.file.records, usedAt: Date.now(),
    };
    this.#open.add(paths.data, o);
    return o;
  }

  /**
   * One append to an open object: the bytes at the acknowledged length (a tail of an append that
   * never returned is cut first), fdatasync; then one record in the sidecar, fdatasync. A failure
   * takes the bytes back and forgets the handles (the next call reads the disk again).
   */
  async #appendOpen(key: string, paths: ObjectPaths, o: OpenObject, position: number, chunks: readonly Uint8Array[], total: number): Promise<AppendResult> {
    const length = o.sidecar.length;
    if (position !== length) throw new PositionNotEqualToLengthError(key, position, length);
    if (length + total > this.maxObjectBytes) throw new ObjectTooLargeError(key, length + total, this.maxObjectBytes);
    if (total === 0) return { nextPosition: length, crc64: o.sidecar.crc64 }; // OSS: no change

    const durable = this.fsync === 'always';
    const next: Sidecar = { ...o.sidecar, length: length + total, crc64: crc64Of(chunks, o.sidecar.crc64), lastModified: Date.now() };
    let recordAt: number | undefined;
    try {
      if (o.size > BigInt(length)) {
        await o.data.truncate(length);
        o.size = BigInt(length);
      }
      o.size = BigInt(length + total); // before the write: whatever happens, the cache is dropped on failure
      await writeAllAt(o.data, chunks, length);
      if (durable) await o.data.datasync();
      if (o.records >= MAX_RECORDS) {
        // Compaction: a fresh one-line sidecar replaces the file, then its new inode is opened.
        await this.#writeSidecar(key, paths, next);
        await o.meta.close().catch(() => undefined);
        o.meta = await open(paths.meta, 'r+');
        o.end = (await o.meta.stat()).size;
        o.records = 0;
      } else {
        recordAt = o.end;
        await writeAllAt(o.meta, [encodeRecord(next)], recordAt);
        if (durable) await o.meta.datasync();
        o.end += RECORD_BYTES;
        o.records++;
      }
    } catch (err) {
      // Not acknowledged: void the record if it may be there, then take the bytes back.
      if (recordAt !== undefined) await writeAllAt(o.meta, [Buffer.alloc(RECORD_BYTES)], recordAt).catch(() => undefined);
      await o.data.truncate(length).catch(() => undefined);
      await this.#open.drop(paths.data);
      throw err;
    }
    o.sidecar = next;
    return { nextPosition: next.length, crc64: next.crc64 };
  }

  async #ensureTmpDir(): Promise<void> {
    this.#tmpReady ??= mkdirp(this.#tmpDir, this.fsync === 'always');
    try {
      await this.#tmpReady;
    } catch (err) {
      this.#tmpReady = undefined;
      throw err;
    }
  }

  async #writeTemp(chunks: readonly Uint8Array[]): Promise<{ path: string; ino: bigint }> {
    await this.#ensureTmpDir();
    const path = join(this.#tmpDir, `${process.pid}-${randomUUID()}`);
    const fh = await open(path, 'wx');
    try {
      try {
        await writeAllAt(fh, chunks, 0);
        if (this.fsync === 'always') await fh.datasync();
        const { ino } = await fh.stat({ bigint: true });
        return { path, ino };
      } finally {
        await fh.close();
      }
    } catch (err) {
      await rm(path, { force: true });
      throw err;
    }
  }

  /** Atomically replaces the sidecar: temp file (+fsync), rename, fsync of its directory. */
  async #writeSidecar(key: string, paths: ObjectPaths, sidecar: Sidecar): Promise<void> {
    await this.#ensureTmpDir();
    const durable = this.fsync === 'always';
    const tmp = join(this.#tmpDir, `${process.pid}-${randomUUID()}.meta`);
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(encodeSidecar(sidecar), 'utf8');
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await renameInto(tmp, paths.meta, durable);
    } catch (err) {
      await rm(tmp, { force: true });
      throw isConflictErrno(err) ? conflict(key, err) : err;
    }
  }

  async #unlinkIfPresent(path: string): Promise<boolean> {
    try {
      await unlink(path);
      return true;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return false;
      throw err;
    }
  }
}
