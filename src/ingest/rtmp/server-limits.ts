/** Limits of the RTMP server: every one configurable (server.rtmp.limits), every one tested. */
export interface RtmpServerLimits {
  /** From accept to the end of C2. */
  handshakeTimeoutMs: number;
  /** From the end of the handshake (or an unpublish) to an accepted publish. */
  publishTimeoutMs: number;
  /** A publisher that sends no complete audio or video message for this long is cut off. */
  mediaTimeoutMs: number;
  /** Largest RTMP message (a keyframe is one message). */
  maxMessageBytes: number;
  /** Distinct chunk stream ids per connection (real clients use 3–5). */
  maxChunkStreams: number;
  /** Largest Set Chunk Size accepted. */
  maxChunkSize: number;
  /** Nesting depth of AMF values in commands and metadata. */
  maxAmfDepth: number;
  /** Bytes one connection may hold in partly received messages and unparsed input. */
  maxHeldBytesPerConnection: number;
  /** The same across all connections: past it, the connection that asks for more is closed. */
  maxHeldBytesTotal: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  /** Our replies queued for a peer that does not read them. */
  maxWriteBufferBytes: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_RTMP_LIMITS: RtmpServerLimits = {
  handshakeTimeoutMs: 5000,
  publishTimeoutMs: 10_000,
  mediaTimeoutMs: 10_000,
  maxMessageBytes: 8 * MiB,
  maxChunkStreams: 64,
  maxChunkSize: 16 * MiB,
  maxAmfDepth: 16,
  // One maximal message plus a little interleaved audio on another chunk stream.
  maxHeldBytesPerConnection: 9 * MiB,
  maxHeldBytesTotal: 256 * MiB,
  maxConnections: 1000,
  // Whole sites of cameras often sit behind one NAT address.
  maxConnectionsPerAddress: 100,
  maxWriteBufferBytes: 1 * MiB,
};
