import type { FileHandle } from 'node:fs/promises';
import { lstat } from 'node:fs/promises';
import type { Sidecar } from './sidecar.js';

/**
 * An appendable object the fs store keeps open between appends: its data file and sidecar file
 * handles, and what the sidecar says. Appends to a camera's object come every second or so; opening,
 * stat-ing and closing two files for each was most of the store's cost.
 */
export interface OpenObject {
  data: FileHandle;
  meta: FileHandle;
  /** The data file's inode, and its size as this store last left it. */
  ino: bigint;
  size: bigint;
  sidecar: Sidecar;
  /** Where the next append record goes in the sidecar file, and how many records it holds. */
  end: number;
  records: number;
  usedAt: number;
}

export interface OpenObjectsOptions {
  /** Objects kept open at most (two descriptors each); the least recently used beyond are closed. */
  max: number;
  /** An object not appended to for this long is closed (a rolled-over or finished recording). */
  idleMs: number;
  /** Runs `fn` under the object's key mutex: handles are only closed while nobody uses them. */
  runLocked: (dataPath: string, fn: () => Promise<void>) => Promise<void>;
}

/**
 * The open objects of one FsStore, by data path. Every use is under the key's mutex, and a cached
 * object is trusted only while the data file at its path is still the same inode with the size
 * this store left it (another FsStore in the process, or a put or delete, shows as a change, and the
 * object is read again from disk). One writing process per root, as for the whole store.
 */
export class OpenObjects {
  readonly #o: OpenObjectsOptions;
  readonly #map = new Map<string, OpenObject>();
  readonly #closing = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;

  constructor(o: OpenObjectsOptions) {
    this.#o = o;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The cached object at `dataPath` if it is still what is on disk (call under the key's mutex); else it is dropped. */
  async valid(dataPath: string): Promise<OpenObject | undefined> {
    const o = this.#map.get(dataPath);
    if (o === undefined) return undefined;
    const st = await lstat(dataPath, { bigint: true }).catch(() => undefined);
    if (st === undefined || st.ino !== o.ino || st.size !== o.size) {
      await this.drop(dataPath);
      return undefined;
    }
    o.usedAt = Date.now();
    // Map order is the LRU order.
    this.#map.delete(dataPath);
    this.#map.set(dataPath, o);
    return o;
  }

  /** Keeps `o` open for the next appends (call under the key's mutex). */
  add(dataPath: string, o: OpenObject): void {
    this.#map.set(dataPath, o);
    this.#timer ??= setInterval(() => this.#sweep(), Math.max(1000, this.#o.idleMs / 2)).unref();
    if (this.#map.size > this.#o.max) {
      const oldest = this.#map.keys().next().value;
      if (oldest !== undefined && oldest !== dataPath) this.#closeLater(oldest);
    }
  }

  /** Closes and forgets the object at `dataPath` (call under the key's mutex). */
  async drop(dataPath: string): Promise<void> {
    const o = this.#map.get(dataPath);
    if (o === undefined) return;
    this.#map.delete(dataPath);
    await Promise.allSettled([o.data.close(), o.meta.close()]);
  }

  /** Closes everything (the store is closing; no operation runs any more). */
  async closeAll(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    while (this.#closing.size > 0) await Promise.allSettled([...this.#closing]);
    const all = [...this.#map.values()];
    this.#map.clear();
    await Promise.allSettled(all.flatMap((o) => [o.data.close(), o.meta.close()]));
  }

  #sweep(): void {
    const before = Date.now() - this.#o.idleMs;
    for (const [path, o] of this.#map) if (o.usedAt < before) this.#closeLater(path, before);
  }

  /** Closes under the key's mutex, so never while an append uses the handles (and, when `idleBefore` is given, only if still idle). */
  #closeLater(dataPath: string, idleBefore?: number): void {
    const p = this.#o.runLocked(dataPath, async () => {
      const o = this.#map.get(dataPath);
      if (o !== undefined && (idleBefore === undefined || o.usedAt < idleBefore)) await this.drop(dataPath);
    }).catch(() => undefined);
    this.#closing.add(p);
    void p.finally(() => this.#closing.delete(p));
  }
}
