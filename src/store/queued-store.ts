import PQueue from 'p-queue';
import type { AppendableStore, AppendResult, ByteRange, CreateOptions, HeadResult, ListEntry, PresignGetOptions } from './types.js';
import type { Readable } from 'node:stream';

/**
 * Caps the requests in flight to the store across all streams (p-queue). Each object has at most
 * one append in flight already; this bounds the total when hundreds of cameras flush at once, and
 * after an outage, when every stream drains its backlog at the same moment.
 */
export class QueuedStore implements AppendableStore {
  readonly kind: string;
  private readonly inner: AppendableStore;
  private readonly queue: PQueue;

  /** Present exactly when the inner store has it; not queued, since signing a URL makes no request. */
  readonly presignGet?: (key: string, opts: PresignGetOptions) => Promise<string>;

  constructor(inner: AppendableStore, concurrency: number) {
    this.inner = inner;
    this.kind = inner.kind;
    this.queue = new PQueue({ concurrency });
    if (inner.presignGet !== undefined) this.presignGet = (key, opts) => inner.presignGet!(key, opts);
  }

  /** Requests in flight and waiting, for metrics. */
  get pending(): { running: number; waiting: number } {
    return { running: this.queue.pending, waiting: this.queue.size };
  }

  private run<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.add(fn) as Promise<T>;
  }

  append(key: string, position: number, chunks: readonly Uint8Array[], opts?: CreateOptions): Promise<AppendResult> {
    return this.run(() => this.inner.append(key, position, chunks, opts));
  }

  head(key: string): Promise<HeadResult | null> {
    return this.run(() => this.inner.head(key));
  }

  read(key: string, range?: ByteRange): Promise<Readable> {
    // Reads stream for as long as the reader wants: only opening them is queued.
    return this.run(() => this.inner.read(key, range));
  }

  put(key: string, data: Uint8Array, opts?: CreateOptions): Promise<{ crc64: bigint }> {
    return this.run(() => this.inner.put(key, data, opts));
  }

  delete(key: string): Promise<void> {
    return this.run(() => this.inner.delete(key));
  }

  list(prefix: string): Promise<ListEntry[]> {
    return this.run(() => this.inner.list(prefix));
  }

  async close(): Promise<void> {
    await this.queue.onIdle();
    await this.inner.close();
  }
}
