import type { Readable } from 'node:stream';

/** Headers honoured only on the append that creates the object (OSS semantics). */
export interface CreateOptions {
  contentType?: string;
  metadata?: Record<string, string>;
  acl?: 'private' | 'public-read' | 'public-read-write' | 'default';
  storageClass?: 'Standard' | 'IA' | 'Archive';
}

export interface AppendResult {
  /** The object's length after this append (= the position of the next append). */
  nextPosition: number;
  /** CRC-64/XZ (OSS "crc64ecma") of the whole object after this append. */
  crc64: bigint;
}

export interface HeadResult {
  size: number;
  appendable: boolean;
  /** Equals `size` for appendable objects; undefined for normal ones. */
  nextPosition: number | undefined;
  crc64: bigint | undefined;
  lastModified: Date;
  contentType: string | undefined;
  metadata: Record<string, string>;
}

export interface ListEntry {
  key: string;
  size: number;
  appendable: boolean;
  lastModified: Date;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive; omitted = to the end. */
  end?: number;
}

export interface PresignGetOptions {
  /** How long the URL stays valid, in whole seconds. */
  expiresInSeconds: number;
  /** Signing time (tests); default the store's clock. */
  now?: Date;
}

/**
 * The one seam between the pipeline and any backend. Semantics are those of OSS AppendObject:
 * see docs/oss-protocol.md. Errors are the typed StoreErrors of ./errors.ts.
 */
export interface AppendableStore {
  readonly kind: string;
  /**
   * Append `chunks` at `position`, which must equal the object's current length (0 creates it).
   * `opts` only matter on the append that creates the object.
   */
  append(key: string, position: number, chunks: readonly Uint8Array[], opts?: CreateOptions): Promise<AppendResult>;
  head(key: string): Promise<HeadResult | null>;
  /** Bytes of the object; a range whose start is at or past the end raises InvalidRangeError. */
  read(key: string, range?: ByteRange): Promise<Readable>;
  /** Writes a normal (not appendable) object, replacing whatever was there. */
  put(key: string, data: Uint8Array, opts?: CreateOptions): Promise<{ crc64: bigint }>;
  /** Deleting an absent key is not an error (as in OSS). */
  delete(key: string): Promise<void>;
  list(prefix: string): Promise<ListEntry[]>;
  /**
   * A short-lived URL anyone can GET the object's bytes from (Range included) without credentials, for
   * handing to a viewer; makes no request. Optional: only stores reachable over HTTP have it (OSS).
   */
  presignGet?(key: string, opts: PresignGetOptions): Promise<string>;
  close(): Promise<void>;
}
