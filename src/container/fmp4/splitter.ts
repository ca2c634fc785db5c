/**
 * Cuts ffmpeg's fragmented-MP4 byte stream (`-movflags +frag_keyframe+empty_moov+default_base_moof`)
 * into an InitSegment (ftyp+moov), MediaFragments (leading styp/sidx/prft/free… + moof + mdat) and
 * TrailerBoxes (mfra and other boxes that belong to no fragment). Chunks may split or span boxes
 * anywhere; the concatenation of all output bytes equals the input exactly.
 *
 * Memory: at most one incomplete box plus the complete boxes of the group being assembled (init
 * boxes, or a fragment's leading boxes and moof) are held; any single box, and the held boxes
 * together, are refused beyond `maxBoxBytes`. Bytes are kept as the received chunks and copied once,
 * when their init segment / fragment / trailer is emitted.
 */
import type { ContainerOutput, ContainerSplitter, InitSegment, MediaFragment, TrackInfo } from '../types.js';
import { ContainerError } from '../types.js';
import { MAX_HEADER_BYTES, readBoxHeader } from './box-reader.js';
import type { BoxHeader } from './box-reader.js';
import { ChunkList, joinViews } from './chunk-list.js';
import { isSyncSample, parseMoof } from './moof.js';
import type { MoofSummary } from './moof.js';
import { parseMoov } from './moov.js';
import type { MovieInfo } from './moov.js';

export const DEFAULT_MAX_BOX_BYTES = 64 * 1024 * 1024;

export interface Fmp4SplitterOptions {
  /** Largest box (and largest group of held boxes) accepted; default 64 MiB. */
  maxBoxBytes?: number;
}

/** A complete top-level box waiting for the rest of its group. */
interface HeldBox {
  type: string;
  /** Stream offset of its first byte. */
  offset: number;
  size: number;
  views: Buffer[];
}

/**
 * start: expecting ftyp · init: ftyp seen, expecting moov · media: after an init segment ·
 * ended: flushed · failed: a ContainerError was raised (sticky).
 */
type Phase = 'start' | 'init' | 'media' | 'ended' | 'failed';

export class Fmp4Splitter implements ContainerSplitter {
  private readonly maxBoxBytes: number;
  private readonly pending = new ChunkList();
  /** Stream offset of the first pending byte, which is always a box boundary. */
  private pendingOffset = 0;
  /** Header of the box at `pendingOffset`, once enough bytes arrived to read it. */
  private header: BoxHeader | null = null;
  private held: HeldBox[] = [];
  private heldBytes = 0;
  private moofHeld = false;
  private phase: Phase = 'start';
  private movie: MovieInfo | null = null;
  /** Per track, where the next fragment starts when a traf carries no tfdt. */
  private readonly nextDecodeTime = new Map<number, number>();
  private lastEndTime = 0;
  private lastReceivedAt = 0;
  private failure: ContainerError | null = null;

  constructor(options: Fmp4SplitterOptions = {}) {
    const max = options.maxBoxBytes ?? DEFAULT_MAX_BOX_BYTES;
    if (!Number.isSafeInteger(max) || max < MAX_HEADER_BYTES) throw new RangeError(`maxBoxBytes must be an integer >= ${MAX_HEADER_BYTES}`);
    this.maxBoxBytes = max;
  }

  /** Tracks of the current init segment, or null before the first moov. */
  get tracks(): readonly TrackInfo[] | null {
    return this.movie?.tracks ?? null;
  }

  /**
   * Feeds bytes; returns the outputs they complete. A ContainerError is thrown by the call that finds
   * the problem, or by the next call when this one already completed outputs (so valid data before
   * the problem is never lost); the splitter stays failed afterwards.
   */
  push(chunk: Uint8Array, receivedAt: number = Date.now()): ContainerOutput[] {
    this.assertUsable('push');
    this.lastReceivedAt = receivedAt;
    const out: ContainerOutput[] = [];
    if (chunk.byteLength === 0) return out;
    this.pending.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    try {
      this.drain(out, receivedAt);
    } catch (err) {
      const failure = this.fail(err);
      if (out.length === 0) throw failure;
    }
    return out;
  }

  /**
   * Ends the stream: completes a final size==0 box, emits leftover non-fragment boxes (e.g. mfra) as
   * TrailerBoxes. Throws ContainerError (with `droppedBytes`) if the stream ends inside a box, before
   * the first moov, or between a moof and its mdat.
   */
  flush(): ContainerOutput[] {
    this.assertUsable('flush');
    const out: ContainerOutput[] = [];
    try {
      if (this.header !== null && this.header.size === null) {
        // size==0: the box runs to the end of the stream, which is now.
        this.completeBox(this.pending.length, out, this.lastReceivedAt);
      }
      if (this.pending.length > 0) throw this.truncated('stream ended inside a box');
      if (this.phase === 'init') throw this.truncated('stream ended before moov');
      if (this.moofHeld) throw this.truncated('stream ended after a moof without its mdat');
      if (this.held.length > 0) out.push({ type: 'trailer', bytes: this.takeHeld() });
    } catch (err) {
      throw this.fail(err);
    }
    this.phase = 'ended';
    return out;
  }

  private assertUsable(op: string): void {
    if (this.failure !== null) throw this.failure;
    if (this.phase === 'ended') {
      throw new ContainerError(`${op} after flush`, { offset: this.pendingOffset });
    }
  }

  /** Enters the sticky failed state, releasing held bytes; a non-ContainerError (a bug) is wrapped. */
  private fail(err: unknown): ContainerError {
    this.failure = err instanceof ContainerError ? err : new ContainerError(`splitter failed: ${String(err)}`, { offset: this.pendingOffset }, { cause: err });
    this.phase = 'failed';
    this.pending.clear();
    this.held = [];
    this.heldBytes = 0;
    return this.failure;
  }

  /** The stream ended mid-structure: names the last (partial) box; everything not emitted is dropped. */
  private truncated(what: string): ContainerError {
    const last = this.held[this.held.length - 1];
    const partial = this.pending.length > 0 || last === undefined;
    const unit = partial ? this.header?.type : last.type;
    const offset = partial ? this.pendingOffset : last.offset;
    const dropped = this.pending.length + this.heldBytes;
    return new ContainerError(`${what}: ${unit ?? 'box'} at offset ${offset}, ${dropped} bytes dropped`, { offset, unit, droppedBytes: dropped });
  }

  private drain(out: ContainerOutput[], receivedAt: number): void {
    for (;;) {
      if (this.header === null) {
        const head = this.pending.peek(Math.min(this.pending.length, MAX_HEADER_BYTES));
        const header = head === null ? null : readBoxHeader(head, 0, this.pendingOffset);
        if (header === null) return;
        this.admit(header);
        this.header = header;
      }
      const size = this.header.size;
      if (size === null) {
        if (this.pending.length > this.maxBoxBytes) throw this.oversized(this.header.type, this.pending.length);
        return;
      }
      if (this.pending.length < size) return;
      this.completeBox(size, out, receivedAt);
    }
  }

  private oversized(type: string, size: number): ContainerError {
    return new ContainerError(`box ${type} at offset ${this.pendingOffset} is ${size} bytes, over maxBoxBytes ${this.maxBoxBytes}`, {
      offset: this.pendingOffset,
      unit: type,
    });
  }

  /** Rejects a box as soon as its header is known: garbage and misordering fail without buffering it. */
  private admit(h: BoxHeader): void {
    const at = this.pendingOffset;
    const bad = (why: string): ContainerError => new ContainerError(`${why} (box ${h.type} at offset ${at})`, { offset: at, unit: h.type });
    switch (this.phase) {
      case 'start':
        if (h.type !== 'ftyp') throw bad('stream does not start with ftyp');
        break;
      case 'init':
        if (h.type === 'moof' || h.type === 'mdat' || h.type === 'ftyp') throw bad(`${h.type} before moov`);
        break;
      case 'media':
        if (this.moofHeld && h.type !== 'mdat') {
          const moof = this.held[this.held.length - 1] as HeldBox;
          throw bad(`moof at offset ${moof.offset} is not followed by mdat`);
        }
        if (!this.moofHeld && h.type === 'mdat') throw bad('mdat without a preceding moof');
        break;
      default:
        break;
    }
    if (h.size !== null && h.size > this.maxBoxBytes) throw this.oversized(h.type, h.size);
    // The held group (init boxes, or a fragment's leading boxes + moof) obeys the same bound.
    const grouped = h.type !== 'mdat' && !(this.phase === 'media' && (h.type === 'ftyp' || h.type === 'moov'));
    if (grouped && h.size !== null && this.heldBytes + h.size > this.maxBoxBytes) {
      throw bad(`${this.heldBytes + h.size} bytes of boxes held without completing an init segment or fragment, over maxBoxBytes ${this.maxBoxBytes}`);
    }
  }

  private completeBox(size: number, out: ContainerOutput[], receivedAt: number): void {
    const header = this.header as BoxHeader;
    const box: HeldBox = { type: header.type, offset: this.pendingOffset, size, views: this.pending.take(size) };
    this.pendingOffset += size;
    this.header = null;

    if (this.phase === 'start' || this.phase === 'init') {
      if (box.type === 'moov') out.push(this.emitInit(box));
      else this.hold(box);
      if (this.phase === 'start') this.phase = 'init';
      return;
    }
    // media
    switch (box.type) {
      case 'moof':
        this.hold(box);
        this.moofHeld = true;
        break;
      case 'mdat':
        out.push(this.emitFragment(box, receivedAt));
        break;
      case 'ftyp':
        // A new init segment (ffmpeg restarted into the same pipe): what was held ends the old one.
        if (this.held.length > 0) out.push({ type: 'trailer', bytes: this.takeHeld() });
        this.hold(box);
        this.phase = 'init';
        break;
      case 'moov':
        if (this.held.length > 0) out.push({ type: 'trailer', bytes: this.takeHeld() });
        out.push(this.emitInit(box));
        break;
      default:
        this.hold(box);
    }
  }

  private hold(box: HeldBox): void {
    this.held.push(box);
    this.heldBytes += box.size;
  }

  /** Joins the held boxes (plus `last`) into one buffer, with one copy, and empties the group. */
  private takeHeld(last?: HeldBox): Buffer {
    const boxes = last === undefined ? this.held : [...this.held, last];
    const views = boxes.flatMap((b) => b.views);
    const total = this.heldBytes + (last?.size ?? 0);
    this.held = [];
    this.heldBytes = 0;
    this.moofHeld = false;
    return joinViews(views, total);
  }

  private emitInit(moov: HeldBox): InitSegment {
    const first = this.held[0]?.offset ?? moov.offset;
    const bytes = this.takeHeld(moov);
    const rel = moov.offset - first;
    this.movie = parseMoov(bytes.subarray(rel, rel + moov.size), moov.offset);
    this.nextDecodeTime.clear();
    this.phase = 'media';
    return { type: 'init', bytes, tracks: this.movie.tracks.map((t) => ({ ...t })) };
  }

  private emitFragment(mdat: HeldBox, receivedAt: number): MediaFragment {
    const moof = this.held[this.held.length - 1] as HeldBox;
    const first = (this.held[0] as HeldBox).offset;
    const bytes = this.takeHeld(mdat);
    const rel = moof.offset - first;
    const movie = this.movie as MovieInfo;
    const summary = parseMoof(bytes.subarray(rel, rel + moof.size), moof.offset, movie.defaults);
    return { type: 'fragment', bytes, ...this.describe(summary, moof.offset), receivedAt };
  }

  private describe(summary: MoofSummary, moofOffset: number): Omit<MediaFragment, 'type' | 'bytes' | 'receivedAt'> {
    const movie = this.movie as MovieInfo;
    const trackOf = (id: number): TrackInfo => {
      const track = movie.tracks.find((t) => t.id === id);
      if (track === undefined) {
        throw new ContainerError(`moof at offset ${moofOffset} has a traf for track ${id}, which moov does not declare`, { offset: moofOffset, unit: 'traf' });
      }
      return track;
    };
    let main: { start: number; duration: number; timescale: number } | null = null;
    let mainIsVideo = false;
    let videoSamples = 0;
    let firstVideoFlags: number | null = null;
    for (const traf of summary.trafs) {
      const track = trackOf(traf.trackId);
      const start = traf.baseDecodeTime ?? this.nextDecodeTime.get(traf.trackId) ?? 0;
      this.nextDecodeTime.set(traf.trackId, start + traf.duration);
      const isVideo = track.kind === 'video';
      if (isVideo) {
        videoSamples += traf.sampleCount;
        if (firstVideoFlags === null) firstVideoFlags = traf.firstSampleFlags;
      }
      if (main === null || (isVideo && !mainIsVideo)) {
        main = { start, duration: traf.duration, timescale: track.timescale };
        mainIsVideo = isVideo;
      }
    }
    const hasVideoTrack = movie.tracks.some((t) => t.kind === 'video');
    const keyframe = hasVideoTrack ? firstVideoFlags !== null && isSyncSample(firstVideoFlags) : true;
    const startTime = main === null ? this.lastEndTime : main.start / main.timescale;
    const duration = main === null ? 0 : main.duration / main.timescale;
    this.lastEndTime = startTime + duration;
    return { sequence: summary.sequence, keyframe, startTime, duration, videoSamples };
  }
}
