/**
 * What an ingest source (our RTMP server today, RTSP pulls later) hands the pipeline: one publish,
 * its identity, and a sink that takes its media packets in arrival order.
 */
import type { MediaPacket } from '../media/types.js';

export type RejectReason = 'unknown-stream' | 'bad-key' | 'wrong-app' | 'disabled' | 'already-publishing' | 'unsupported-codec'
  /** The stream is pulled by the gateway (RTSP): nobody publishes to it. */
  | 'pulled-stream';
export type PublishDecision = { ok: true } | { ok: false; reason: RejectReason };

export interface PublishRequest {
  /** RTMP application (the first path segment of the URL), e.g. `live`. */
  app: string;
  /** The stream name without its query, e.g. `cam1`. */
  stream: string;
  /** The publish key: from the stream name's query (`cam1?key=K`), else from the tcUrl's query. */
  key: string | undefined;
  /** `address:port` of the peer. */
  remote: string;
}

export interface PublishInfo {
  /** Unique per publish (a connection may publish at most once at a time). */
  id: string;
  stream: string;
  remote: string;
  startedAt: number;
}

/** Takes one publish's media. Never blocks and never throws back into the connection. */
export interface PublishSink {
  packet(p: MediaPacket, receivedAt: number): void;
  /** The publisher went away, unpublished, or was cut off: no more packets will come. */
  end(): void;
}
