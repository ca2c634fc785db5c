import { createHash, type Hash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { AppendcastError } from '../errors.js';
import type { AppendableStore, CreateOptions } from '../store/types.js';

export interface PendingChunk {
  bytes: Buffer;
  /** Wall-clock ms when these bytes arrived from the remuxer. */
  receivedAt: number;
}

export interface AppendedInfo {
  key: string;
  position: number;
  bytes: number;
  chunks: number;
  nextPosition: number;
  crc64: bigint;
  durationMs: number;
  /** receivedAt of the newest chunk in this append. */
  newestReceivedAt: number;
}

export interface ObjectWriterEvents {
  appended: [info: AppendedInfo];
  failed: [err: Error];
}

/**
 * Appends to one object, in order, with one append in flight: whatever queued up while an append
 * was in flight goes out as the next append (one request, several chunks). The position sent is
 * always the one the store returned last time.
 *
 * Walking-skeleton scope: a failed append stops the writer (reported once through `failed`);
 * retries, reconciliation of ambiguous outcomes and the durable spool come with the reliability core.
 */
export class ObjectWriter extends EventEmitter<ObjectWriterEvents> {
  readonly key: string;
  private readonly store: AppendableStore;
  private readonly createOpts: CreateOptions | undefined;
  private queue: PendingChunk[] = [];
  private inFlight: Promise<void> | undefined;
  private position = 0;
  private crc = 0n;
  private readonly sha: Hash = createHash('sha256');
  private failure: Error | undefined;
  private droppedBytes = 0;

  constructor(store: AppendableStore, key: string, createOpts?: CreateOptions) {
    super();
    this.store = store;
    this.key = key;
    this.createOpts = createOpts;
  }

  get nextPosition(): number {
    return this.position;
  }

  get crc64(): bigint {
    return this.crc;
  }

  get queuedBytes(): number {
    return this.queue.reduce((n, c) => n + c.bytes.length, 0);
  }

  get failed(): Error | undefined {
    return this.failure;
  }

  /** Bytes handed to a writer that had already failed: lost (the spool will keep them later). */
  get lostBytes(): number {
    return this.droppedBytes;
  }

  /** SHA-256 of every byte the store acknowledged, in order. */
  digest(): string {
    return this.sha.copy().digest('hex');
  }

  write(chunk: PendingChunk): void {
    if (this.failure) {
      this.droppedBytes += chunk.bytes.length;
      return;
    }
    this.queue.push(chunk);
    this.kick();
  }

  /** Resolves when everything written so far has been acknowledged (or the writer failed). */
  async drain(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }

  private kick(): void {
    if (this.inFlight || this.queue.length === 0 || this.failure) return;
    const batch = this.queue;
    this.queue = [];
    this.inFlight = this.appendBatch(batch).finally(() => {
      this.inFlight = undefined;
      this.kick();
    });
  }

  private async appendBatch(batch: PendingChunk[]): Promise<void> {
    const chunks = batch.map((c) => c.bytes);
    const bytes = chunks.reduce((n, c) => n + c.length, 0);
    const started = performance.now();
    try {
      const res = await this.store.append(this.key, this.position, chunks, this.position === 0 ? this.createOpts : undefined);
      const info: AppendedInfo = {
        key: this.key, position: this.position, bytes, chunks: chunks.length, nextPosition: res.nextPosition, crc64: res.crc64,
        durationMs: performance.now() - started, newestReceivedAt: Math.max(...batch.map((c) => c.receivedAt)),
      };
      for (const c of chunks) this.sha.update(c);
      this.position = res.nextPosition;
      this.crc = res.crc64;
      this.emit('appended', info);
    } catch (err) {
      this.failure = err instanceof Error ? err : new AppendcastError('APC_ERR_STORE_SERVICE', String(err));
      this.droppedBytes += bytes + this.queuedBytes;
      this.queue = [];
      this.emit('failed', this.failure);
    }
  }
}
