/**
 * What a container splitter emits. Format-neutral: the fMP4 box splitter produces these today and an
 * MPEG-TS packet splitter can produce the same shapes later. The concatenation of every output's
 * `bytes`, in order, is byte-identical to the splitter's input.
 */
import { AppendcastError, ErrorCode } from '../errors.js';

export type TrackKind = 'video' | 'audio' | 'other';

export interface TrackInfo {
  /** Track id (fMP4: tkhd track_ID). */
  id: number;
  kind: TrackKind;
  /** Media timescale, ticks per second (fMP4: mdhd). */
  timescale: number;
  /** Sample entry fourcc, e.g. `avc1`, `hvc1`, `mp4a`. */
  codec: string;
}

/** Everything a player needs before the first fragment (fMP4: ftyp+moov, exactly as received). */
export interface InitSegment {
  type: 'init';
  bytes: Buffer;
  tracks: TrackInfo[];
}

/** One self-contained media fragment (fMP4: leading styp/sidx/prft/free… + moof + mdat). */
export interface MediaFragment {
  type: 'fragment';
  bytes: Buffer;
  /** Fragment sequence number (fMP4: mfhd). */
  sequence: number;
  /** The first video sample is a sync sample; for a stream without video, always true. */
  keyframe: boolean;
  /** Seconds: decode time of the video track's first sample (else the first track's). */
  startTime: number;
  /** Seconds: summed sample durations of the video track (else the first track). */
  duration: number;
  videoSamples: number;
  /** Wall-clock ms when the fragment's last byte arrived (the `receivedAt` of the completing push). */
  receivedAt: number;
}

/** Bytes that belong to no fragment (fMP4: `mfra`, stray top-level boxes), kept for byte-exactness. */
export interface TrailerBoxes {
  type: 'trailer';
  bytes: Buffer;
}

export type ContainerOutput = InitSegment | MediaFragment | TrailerBoxes;

/**
 * A push/flush stage (mux.js style). `push` may be called with chunks of any size; outputs come out
 * in stream order. `flush` ends the stream. The splitter keeps references to pushed chunks until it
 * has emitted their bytes, so callers must not reuse a chunk's memory after pushing it.
 */
export interface ContainerSplitter {
  push(chunk: Uint8Array, receivedAt?: number): ContainerOutput[];
  flush(): ContainerOutput[];
}

/** The byte stream is not a container we can split (garbage, truncated, oversized or out-of-order). */
export class ContainerError extends AppendcastError {
  /** Stream offset of the offending box or packet (bytes from the first pushed byte). */
  readonly offset: number;
  /** Box type (fMP4) or other unit name, when known. */
  readonly unit: string | undefined;
  /** At flush of a truncated stream: the received bytes that were never emitted (for dropped-bytes metrics); else 0. */
  readonly droppedBytes: number;
  constructor(message: string, details: { offset: number; unit?: string; droppedBytes?: number }, options?: { cause?: unknown }) {
    super(ErrorCode.ContainerInvalid, message, options);
    this.offset = details.offset;
    this.unit = details.unit;
    this.droppedBytes = details.droppedBytes ?? 0;
  }
}

/** Moves outputs later (or earlier) on the media timeline, in place: how a continued recording goes on after a gap. */
export interface TimelineShifter {
  apply(outputs: ContainerOutput[]): ContainerOutput[];
}
