/** Per-connection bounds on what a peer can make the chunk reader hold. */
export interface ChunkLimits {
  /** Largest message length a header may declare (checked at the header, before any buffering). */
  maxMessageBytes: number;
  /** Distinct chunk stream ids per connection (real clients use 3–5; nginx-rtmp allows 32). */
  maxChunkStreams: number;
  /** Largest Set Chunk Size accepted from the peer. The minimum is 1 and the MSB must be 0. */
  maxChunkSize: number;
  /** Bytes held in partially assembled messages across all csids, plus unparsed header bytes. */
  maxHeldBytes: number;
}

/** Per-payload bounds for the AMF decoders. */
export interface AmfLimits {
  /** Nested containers (objects, arrays); FFmpeg's FLV demuxer uses 16. */
  maxDepth: number;
  /** Longest string or key in bytes. */
  maxStringBytes: number;
  /** Values in one payload, nested ones included (a reference counts as the values it points to). */
  maxValues: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_CHUNK_LIMITS: ChunkLimits = Object.freeze({
  maxMessageBytes: 8 * MiB,
  maxChunkStreams: 64,
  maxChunkSize: 16 * MiB,
  maxHeldBytes: 16 * MiB,
});

export const DEFAULT_AMF_LIMITS: AmfLimits = Object.freeze({
  maxDepth: 16,
  maxStringBytes: 64 * 1024,
  maxValues: 4096,
});

/** The decoders recurse once per nesting level, so the depth is capped well below any stack limit. */
export const MAX_AMF_DEPTH = 256;

function positiveInt(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${name} must be an integer in 1..${max}, got ${value}`);
  }
  return value;
}

/** Defaults filled in and every field checked (a bad limit is a programming error: RangeError). */
export function resolveChunkLimits(limits?: Partial<ChunkLimits>): ChunkLimits {
  const l = { ...DEFAULT_CHUNK_LIMITS, ...stripUndefined(limits) };
  return {
    // A message length is a 24-bit field.
    maxMessageBytes: positiveInt('maxMessageBytes', l.maxMessageBytes, 0xffffff),
    // The 3-byte basic header reaches csid 65599.
    maxChunkStreams: positiveInt('maxChunkStreams', l.maxChunkStreams, 65600),
    maxChunkSize: positiveInt('maxChunkSize', l.maxChunkSize, 0x7fffffff),
    maxHeldBytes: positiveInt('maxHeldBytes', l.maxHeldBytes, 2 ** 31),
  };
}

export function resolveAmfLimits(limits?: Partial<AmfLimits>): AmfLimits {
  const l = { ...DEFAULT_AMF_LIMITS, ...stripUndefined(limits) };
  return {
    maxDepth: positiveInt('maxDepth', l.maxDepth, MAX_AMF_DEPTH),
    maxStringBytes: positiveInt('maxStringBytes', l.maxStringBytes, 0xffffffff),
    maxValues: positiveInt('maxValues', l.maxValues, 2 ** 31),
  };
}

/** `{ maxDepth: undefined }` must mean "default", not "undefined". */
function stripUndefined<T extends object>(o: T | undefined): Partial<T> {
  const out: Partial<T> = {};
  if (o === undefined) return out;
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
