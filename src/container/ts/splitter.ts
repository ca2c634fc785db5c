/**
 * Cuts ffmpeg's MPEG-TS byte stream (`-f mpegts pipe:1`: H.264 or H.265 and/or AAC) into an
 * InitSegment, MediaFragments and (rarely) TrailerBoxes, so it can be appended to `.ts` objects
 * that each play on their own. Chunks may split packets anywhere; the concatenation of all output
 * bytes equals the input exactly, and every output is whole 188-byte packets.
 *
 * Init segment. The contiguous run of PSI packets that first holds a complete PAT and the PMT it
 * names, taken as received: the stream's opening SDT+PAT+PMT from ffmpeg. `tracks` lists the PMT's
 * elementary streams (id = PID, timescale 90000, codec 'h264' | 'hevc' | 'aac' | … | 'other').
 * A PSI run is consecutive packets on PIDs 0x00–0x1F, the null PID and the PMT PID.
 * The stream must open with PSI: a media packet before the first PAT+PMT is a ContainerError
 * (like the fMP4 splitter's "does not start with ftyp"), so nothing ever precedes the first init.
 *
 * Repeated PSI. ffmpeg repeats PAT+PMT every 0.1 s and right before every video keyframe.
 * A repeat with the same section bytes stays in the fragment where it occurs. A run whose PAT+PMT
 * differ from the current ones (another program layout, e.g. a new ffmpeg after the old one) is a
 * new init segment: the open fragment ends where that run starts, the run is the init. An object
 * that starts mid-stream gets the init prepended by the appender; the fragment's own PAT/PMT
 * copies that follow are harmless duplicates. So the concatenation of a session's objects is the
 * remuxer's output plus one init segment in front of each further object.
 *
 * Fragments and cuts. A cut is placed at the first packet of a video PES whose access unit is a
 * keyframe (H.264 IDR / H.265 IRAP, see keyframe.ts), moved back over the PSI run right before it
 * (ffmpeg's PAT+PMT-before-keyframe lands in the new fragment): one fragment per GOP. The video is
 * the first H.264/H.265 stream of the PMT; other streams never cause cuts. With
 * `fragmentDurationMs`, a video PES start at least that long after the fragment's first video PES
 * also cuts (keyframe false, as fMP4 sub-GOP fragments). Without video, the main track (the first
 * audio stream, else the first stream) is cut at a PES start at least `audioFragmentMs` (1 s)
 * after the fragment's first one; those fragments are all keyframe true. A fragment is only cut
 * once it holds a PES start of that track, so leading audio before the first video keyframe stays
 * with that keyframe; video that starts with non-keyframes gives one leading fragment with
 * keyframe false, which the appender never starts an object with. The keyframe verdict needs the
 * first slice's NAL header, which can be a few packets into the PES: the cut is decided then, and
 * the fragment before it is emitted by the push that delivered that packet.
 *
 * Fragment fields (the fMP4 splitter's meanings). `sequence` counts fragments from 1 over the
 * splitter's life. `keyframe`: the fragment's first video PES is a keyframe (always true without a
 * video stream). `startTime`: DTS (else PTS) of the first PES of the video (else main) track, in
 * seconds; a fragment without one takes the first PES time of any audio/video stream, else the
 * previous fragment's end. `duration`: from `startTime` to the next cut's time; for a fragment
 * that ends at flush or at a new init, last PES time − first + the last PES interval (an
 * estimate). `videoSamples`: video PES starts (ffmpeg writes one access unit per PES).
 * `receivedAt`: the push that completed the fragment.
 * Timestamps are 33-bit: each one is unwrapped to the value nearest the previous one (any stream,
 * same clock), starting from the first as read, so times keep increasing across the 26.5 h wrap.
 *
 * Trailer. Bytes that hold no PES start of an audio/video stream (only PSI, null or other
 * packets) that end before a new init or at flush are emitted as `type: 'trailer'`, never as a
 * fragment; they only ever follow an init.
 *
 * Bounds and errors (ContainerError, sticky, offsets counted from the first pushed byte). Bytes
 * held without a cut (the open fragment, including any init run) over `maxFragmentBytes`
 * (64 MiB); a PSI section over 1024 bytes; a byte other than 0x47 where a packet starts (no
 * resync: the bytes are not what ffmpeg wrote, the caller ends the session); bad packet, section,
 * CRC or PES header fields. `flush()` emits the open fragment; a stream that ends inside a packet,
 * or before its first PAT+PMT, throws with `droppedBytes` (everything not yet emitted).
 *
 * Memory: the received chunks are kept (no copy) until their output is emitted, then joined with
 * one copy; per packet nothing is allocated. Per PID state exists only for the PMT's streams.
 *
 * Muxer flags. ffmpeg's mpegts defaults (5.1 and 7.1) already give what this relies on: SDT+PAT+PMT
 * first, PAT+PMT again before every video keyframe and every `pat_period` (0.1 s), each PES written
 * contiguously, one video access unit per PES, stable PIDs (PMT 0x1000, streams from 0x100), and a
 * flush per muxed packet on a pipe. So the remux needs only `-f mpegts pipe:1` in place of the fMP4
 * `-f mp4 -movflags …`. Not needed: `-mpegts_flags +resend_headers` (one-shot: re-emits PSI once,
 * then clears itself), `+pat_pmt_at_frames` (PSI before every frame, overhead only), `-muxrate`
 * (CBR null packets: carried, but pure overhead in storage).
 */
import type { ContainerOutput, ContainerSplitter, MediaFragment, TrackInfo } from '../types.js';
import { ContainerError } from '../types.js';
// Format-neutral despite its folder: the received-chunk queue the fMP4 splitter uses too.
import { ChunkList, joinViews } from '../fmp4/chunk-list.js';
import { DEFAULT_KEYFRAME_SCAN_BYTES, KeyframeScanner, VERDICT_GAVE_UP, VERDICT_KEY, VERDICT_PENDING } from './keyframe.js';
import type { VideoCodec } from './keyframe.js';
import { NO_TIME, PesHeaderReader } from './pes.js';
import { parsePat, parsePmt, SectionAssembler } from './psi.js';
import type { PatInfo, PmtInfo } from './psi.js';
import { LAST_SI_PID, NULL_PID, PacketHeader, PAT_PID, readPacketHeader, TS_PACKET_SIZE } from './ts-packet.js';

export const DEFAULT_MAX_FRAGMENT_BYTES = 64 * 1024 * 1024;
export const DEFAULT_AUDIO_FRAGMENT_MS = 1000;

export interface Mpeg2TsSplitterOptions {
  /** Most bytes held without a cut (the open fragment or init run); default 64 MiB. */
  maxFragmentBytes?: number;
  /** Also cut at a video PES this long after the fragment's first one (keyframe false); default off. */
  fragmentDurationMs?: number | null;
  /** Streams without video: cut the main track about this often; default 1000 ms. */
  audioFragmentMs?: number;
  /** ES bytes scanned for the first slice of a video access unit; default 64 KiB. */
  keyframeScanBytes?: number;
}

const TIMESCALE = 90000;
const WRAP = 2 ** 33;

/** Elementary-stream roles: 'timed' streams have their PES headers read; 'carried' ones are only carried. */
type Role = 'video' | 'main' | 'timed' | 'carried';

interface EsState {
  pid: number;
  role: Role;
  header: PesHeaderReader;
  /** Stream offset of the current PES's first packet. */
  unitOffset: number;
}

interface Table<T> {
  pid: number;
  section: Buffer;
  info: T;
}

/** What one fragment holds so far; two instances (open fragment, and after a pending cut) are reused. */
class FragmentStats {
  videoSamples = 0;
  /** PES starts of the timeline track (video, else main) and their first/last unwrapped time. */
  timelineCount = 0;
  firstTime = 0;
  lastTime = 0;
  /** First PES time of any audio/video stream, NaN before one. */
  firstAnyTime = Number.NaN;
  /** Verdict on the first video PES: null before one was decided. */
  firstKey: boolean | null = null;
  /** Holds a PES start of an audio/video stream. */
  hasPes = false;

  reset(): void {
    this.videoSamples = 0;
    this.timelineCount = 0;
    this.firstAnyTime = Number.NaN;
    this.firstKey = null;
    this.hasPes = false;
  }

  /** Adds what `later` recorded after this one's last PES. */
  absorb(later: FragmentStats): void {
    this.videoSamples += later.videoSamples;
    if (later.timelineCount > 0) {
      if (this.timelineCount === 0) this.firstTime = later.firstTime;
      this.lastTime = later.lastTime;
      this.timelineCount += later.timelineCount;
    }
    if (Number.isNaN(this.firstAnyTime)) this.firstAnyTime = later.firstAnyTime;
    if (this.firstKey === null) this.firstKey = later.firstKey;
    this.hasPes ||= later.hasPes;
  }
}

/** start: expecting the first PAT+PMT · media: after an init · ended: flushed · failed: sticky error. */
type Phase = 'start' | 'media' | 'ended' | 'failed';

export class Mpeg2TsSplitter implements ContainerSplitter {
  private readonly maxFragmentBytes: number;
  private readonly fragmentTicks: number;
  private readonly audioTicks: number;
  private readonly scanBytes: number;

  private readonly held = new ChunkList();
  /** Stream offset of the first byte not yet emitted (a packet boundary). */
  private heldStart = 0;
  /** Stream offset of the next packet to parse. */
  private parsed = 0;
  /** A packet split across pushes, copied here to be parsed (its bytes are also in `held`). */
  private readonly carry = Buffer.allocUnsafe(TS_PACKET_SIZE);
  private carryLength = 0;
  private readonly header = new PacketHeader();

  private phase: Phase = 'start';
  private failure: ContainerError | null = null;
  private out: ContainerOutput[] = [];
  private receivedAt = 0;

  // PSI
  private readonly patAssembler: SectionAssembler;
  private readonly pmtAssembler: SectionAssembler;
  private pat: Table<PatInfo> | null = null;
  private pmt: Table<PmtInfo> | null = null;
  private tracksOfPmt: TrackInfo[] = [];
  /** Start of the run of consecutive PSI packets that ends at the last parsed packet; -1 after a media packet. */
  private runStart = -1;
  /** PAT / PMT completed inside the current run (the current table object itself when unchanged). */
  private runPat: Table<PatInfo> | null = null;
  private runPmt: Table<PmtInfo> | null = null;
  private initDue = false;

  // elementary streams of the current PMT
  private es: (EsState | undefined)[] = [];
  private video: EsState | null = null;
  private timeline: EsState | null = null;
  private scanner: KeyframeScanner | null = null;

  // the cut being decided: a PES start of the video (or, without video, the main) track
  private pending = false;
  private pendingCut = 0;
  private pendingTime = Number.NaN;
  private pendingRai = false;
  private pendingScanning = false;

  private cur = new FragmentStats();
  /** PES starts from the pending one on, until the cut is decided. */
  private next = new FragmentStats();
  private sequence = 0;
  /** Last unwrapped timestamp (any stream), the reference for unwrapping the next. */
  private tsRef = Number.NaN;
  private lastTimelineTime = Number.NaN;
  private lastTimelineDelta = 0;
  private lastEndTime = 0;

  constructor(options: Mpeg2TsSplitterOptions = {}) {
    const max = options.maxFragmentBytes ?? DEFAULT_MAX_FRAGMENT_BYTES;
    if (!Number.isSafeInteger(max) || max < TS_PACKET_SIZE) throw new RangeError(`maxFragmentBytes must be an integer >= ${TS_PACKET_SIZE}`);
    const fragmentMs = options.fragmentDurationMs ?? 0;
    const audioMs = options.audioFragmentMs ?? DEFAULT_AUDIO_FRAGMENT_MS;
    if (!(fragmentMs >= 0) || !(audioMs > 0)) throw new RangeError('fragmentDurationMs must be >= 0 and audioFragmentMs > 0');
    const scan = options.keyframeScanBytes ?? DEFAULT_KEYFRAME_SCAN_BYTES;
    if (!Number.isSafeInteger(scan) || scan < 1) throw new RangeError('keyframeScanBytes must be a positive integer');
    this.maxFragmentBytes = max;
    this.fragmentTicks = (fragmentMs * TIMESCALE) / 1000;
    this.audioTicks = (audioMs * TIMESCALE) / 1000;
    this.scanBytes = scan;
    const onSection = (pid: number, section: Buffer, offset: number): void => this.onSection(pid, section, offset);
    this.patAssembler = new SectionAssembler(PAT_PID, onSection);
    this.pmtAssembler = new SectionAssembler(-1, onSection);
  }

  /** Tracks of the current init segment, or null before the first one. */
  get tracks(): readonly TrackInfo[] | null {
    return this.pmt === null ? null : this.tracksOfPmt;
  }

  /**
   * Feeds bytes; returns the outputs they complete. A ContainerError is thrown by the call that finds
   * the problem, or by the next call when this one already completed outputs (so valid data before
   * the problem is never lost); the splitter stays failed afterwards.
   */
  push(chunk: Uint8Array, receivedAt: number = Date.now()): ContainerOutput[] {
    this.assertUsable('push');
    const out: ContainerOutput[] = [];
    this.out = out;
    this.receivedAt = receivedAt;
    if (chunk.byteLength === 0) return out;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.held.push(buf);
    try {
      this.parse(buf);
    } catch (err) {
      const failure = this.fail(err);
      if (out.length === 0) throw failure;
    }
    return out;
  }

  /**
   * Ends the stream: emits the open fragment (or trailer). Throws ContainerError (with
   * `droppedBytes`) when the stream ends inside a packet or before its first PAT+PMT.
   */
  flush(): ContainerOutput[] {
    this.assertUsable('flush');
    const out: ContainerOutput[] = [];
    this.out = out;
    try {
      const dropped = this.held.length;
      if (this.carryLength > 0) {
        throw new ContainerError(`stream ended inside a TS packet: ${this.carryLength} of 188 bytes at offset ${this.parsed}, ${dropped} bytes dropped`, {
          offset: this.parsed,
          unit: 'packet',
          droppedBytes: dropped,
        });
      }
      if (this.phase === 'start') {
        if (dropped > 0) {
          throw new ContainerError(`stream ended before a complete PAT and PMT, ${dropped} bytes dropped`, { offset: this.heldStart, unit: 'PMT', droppedBytes: dropped });
        }
      } else {
        if (this.pending) this.decide(this.pendingRai);
        this.emitRegion(this.parsed);
      }
    } catch (err) {
      throw this.fail(err);
    }
    this.phase = 'ended';
    return out;
  }

  private assertUsable(op: string): void {
    if (this.failure !== null) throw this.failure;
    if (this.phase === 'ended') throw new ContainerError(`${op} after flush`, { offset: this.parsed });
  }

  /** Enters the sticky failed state, releasing held bytes; a non-ContainerError (a bug) is wrapped. */
  private fail(err: unknown): ContainerError {
    this.failure = err instanceof ContainerError ? err : new ContainerError(`splitter failed: ${String(err)}`, { offset: this.parsed }, { cause: err });
    this.phase = 'failed';
    this.held.clear();
    this.carryLength = 0;
    return this.failure;
  }

  // ------------------------------------------------------------------------------------------
  // Packets
  // ------------------------------------------------------------------------------------------

  private parse(buf: Buffer): void {
    let at = 0;
    if (this.carryLength > 0) {
      const n = Math.min(TS_PACKET_SIZE - this.carryLength, buf.length);
      buf.copy(this.carry, this.carryLength, 0, n);
      this.carryLength += n;
      at = n;
      if (this.carryLength < TS_PACKET_SIZE) return;
      this.packet(this.carry, 0);
      this.carryLength = 0;
    }
    for (; at + TS_PACKET_SIZE <= buf.length; at += TS_PACKET_SIZE) this.packet(buf, at);
    if (at < buf.length) {
      // Check sync now rather than when the packet completes, so garbage fails on its first byte.
      if (buf[at] !== 0x47) readPacketHeader(buf, at, this.parsed, this.header);
      buf.copy(this.carry, 0, at);
      this.carryLength = buf.length - at;
    }
  }

  /** One whole packet at `pkt[at..at+188)`, stream offset `this.parsed`. */
  private packet(pkt: Buffer, at: number): void {
    const offset = this.parsed;
    const h = this.header;
    readPacketHeader(pkt, at, offset, h);
    const end = offset + TS_PACKET_SIZE;
    if (end - this.heldStart > this.maxFragmentBytes) {
      throw new ContainerError(
        `${end - this.heldStart} bytes since offset ${this.heldStart} without a ${this.phase === 'start' ? 'PAT+PMT' : 'cut'}, over maxFragmentBytes ${this.maxFragmentBytes}`,
        { offset, unit: 'packet' },
      );
    }
    this.parsed = end;
    const pid = h.pid;
    const pmtPid = this.pmt?.pid ?? -1;
    const runPmtPid = this.runPat?.info.pmtPid ?? pmtPid;
    if (pid <= LAST_SI_PID || pid === NULL_PID || pid === pmtPid || pid === runPmtPid) {
      if (this.runStart < 0) this.runStart = offset;
      if (h.payloadStart < TS_PACKET_SIZE) {
        if (pid === PAT_PID) {
          this.patAssembler.push(pkt, at + h.payloadStart, at + TS_PACKET_SIZE, h.payloadUnitStart, offset);
        } else if (pid === runPmtPid) {
          if (this.pmtAssembler.pid !== pid) this.pmtAssembler.reset(pid);
          this.pmtAssembler.push(pkt, at + h.payloadStart, at + TS_PACKET_SIZE, h.payloadUnitStart, offset);
        }
      }
      if (this.initDue) {
        this.initDue = false;
        this.emitInit(end);
      }
      return;
    }

    if (this.phase === 'start') {
      throw new ContainerError(`media packet on PID ${pid} at offset ${offset} before the first PAT and PMT`, { offset, unit: 'packet' });
    }
    // A cut moves back over the PSI run right before the PES that starts here.
    const cutAt = this.runStart >= 0 ? Math.max(this.runStart, this.heldStart) : offset;
    if (this.runStart >= 0) {
      this.runStart = -1;
      this.runPat = null;
      this.runPmt = null;
    }
    const es = this.es[pid];
    if (es === undefined || es.role === 'carried') return;
    // Without video the main track is the cut track ('main' is only assigned when there is no video).
    const isCutTrack = es.role === 'video' || es.role === 'main';
    if (h.payloadUnitStart) {
      if (es.header.collecting) throw es.header.truncated(pid, es.unitOffset);
      if (isCutTrack) {
        if (this.pending) this.decide(this.pendingRai); // the previous access unit ended undecided
        this.pending = true;
        this.pendingCut = cutAt;
        this.pendingTime = Number.NaN;
        this.pendingRai = h.randomAccess;
        this.pendingScanning = false;
      }
      es.unitOffset = offset;
      es.header.start();
    }
    if (h.payloadStart >= TS_PACKET_SIZE) return;
    let p = at + h.payloadStart;
    const stop = at + TS_PACKET_SIZE;
    if (es.header.collecting) {
      p = es.header.feed(pkt, p, stop, pid, es.unitOffset);
      if (es.header.collecting) return;
      this.onPesStart(es, isCutTrack);
    }
    if (this.pendingScanning && es === this.video && p < stop) {
      const verdict = (this.scanner as KeyframeScanner).scan(pkt, p, stop, offset - at);
      if (verdict !== VERDICT_PENDING) this.decide(verdict === VERDICT_KEY || (verdict === VERDICT_GAVE_UP && this.pendingRai));
    }
  }

  /** A PES header of an audio/video stream is complete: record its time; a cut-track PES may cut. */
  private onPesStart(es: EsState, isCutTrack: boolean): void {
    const h = es.header;
    const raw = h.dts;
    if (raw === NO_TIME && (es.role === 'video' || es.role === 'main')) {
      throw new ContainerError(`PES on PID ${es.pid} at offset ${es.unitOffset} has no PTS`, { offset: es.unitOffset, unit: 'PES' });
    }
    const stats = this.pending ? this.next : this.cur;
    stats.hasPes = true;
    if (raw === NO_TIME) return;
    const t = this.unwrap(raw);
    if (Number.isNaN(stats.firstAnyTime)) stats.firstAnyTime = t;
    if (es === this.timeline) {
      if (stats.timelineCount === 0) stats.firstTime = t;
      stats.lastTime = t;
      stats.timelineCount++;
      if (!Number.isNaN(this.lastTimelineTime) && t > this.lastTimelineTime) this.lastTimelineDelta = t - this.lastTimelineTime;
      this.lastTimelineTime = t;
    }
    if (es === this.video) stats.videoSamples++;
    // Not pending: a new init settled this PES while its header was still arriving; it cannot cut.
    if (!isCutTrack || !this.pending) return;
    this.pendingTime = t;
    if (es === this.video) {
      this.pendingScanning = true;
      (this.scanner as KeyframeScanner).reset();
    } else {
      this.decide(true); // audio frames are all random access points
    }
  }

  /**
   * Settles the pending cut-track PES (`key`: its verdict) and cuts before it when the rules say
   * so; otherwise what it started joins the open fragment.
   */
  private decide(key: boolean): void {
    const t = this.pendingTime;
    const cur = this.cur;
    let cut = false;
    if (!Number.isNaN(t)) {
      if (this.video !== null) {
        this.next.firstKey = key;
        cut = cur.videoSamples > 0 && (key || (this.fragmentTicks > 0 && t - cur.firstTime >= this.fragmentTicks));
      } else {
        cut = cur.timelineCount > 0 && t - cur.firstTime >= this.audioTicks;
      }
    }
    this.pending = false;
    this.pendingScanning = false;
    if (cut) {
      this.emitFragment(this.pendingCut, t);
      this.cur = this.next;
      this.next = cur;
    } else {
      cur.absorb(this.next);
    }
    this.next.reset();
  }

  private unwrap(raw: number): number {
    const t = Number.isNaN(this.tsRef) ? raw : raw + Math.round((this.tsRef - raw) / WRAP) * WRAP;
    this.tsRef = t;
    return t;
  }

  // ------------------------------------------------------------------------------------------
  // PSI
  // ------------------------------------------------------------------------------------------

  private onSection(pid: number, section: Buffer, offset: number): void {
    if (pid === PAT_PID) {
      if (section[0] !== 0x00) return; // another table sharing PID 0 is not ours to judge
      if (this.pat !== null && section.equals(this.pat.section)) {
        this.runPat = this.pat;
      } else {
        const info = parsePat(section, pid, offset);
        if (info === null) return;
        this.runPat = { pid, section: Buffer.from(section), info };
      }
      if (this.runPmt !== null && this.runPmt.pid !== this.runPat.info.pmtPid) this.runPmt = null;
    } else {
      if (section[0] !== 0x02) return;
      const pat = this.runPat ?? this.pat;
      if (pat === null || pid !== pat.info.pmtPid) return;
      if (this.pmt !== null && pid === this.pmt.pid && section.equals(this.pmt.section)) {
        this.runPmt = this.pmt;
      } else {
        const info = parsePmt(section, pid, offset);
        if (info === null || info.programNumber !== pat.info.programNumber) return; // another program's PMT
        this.runPmt = { pid, section: Buffer.from(section), info };
      }
    }
    const runPat = this.runPat;
    const runPmt = this.runPmt;
    if (runPat === null || runPmt === null || runPmt.pid !== runPat.info.pmtPid || runPmt.info.programNumber !== runPat.info.programNumber) return;
    if (runPat === this.pat && runPmt === this.pmt) return;
    this.initDue = true; // emitted once the packet is done
  }

  /** The current PSI run ending at `end` holds a new PAT+PMT: it becomes the init segment. */
  private emitInit(end: number): void {
    const runPat = this.runPat as Table<PatInfo>;
    const runPmt = this.runPmt as Table<PmtInfo>;
    const start = Math.max(this.runStart, this.heldStart);
    if (this.phase === 'media') {
      if (this.pending) this.decide(this.pendingRai);
      this.emitRegion(start);
    }
    this.pat = runPat;
    if (runPmt !== this.pmt) {
      this.pmt = runPmt;
      this.configure(runPmt.info);
    }
    this.out.push({ type: 'init', bytes: this.take(end - this.heldStart), tracks: this.tracksOfPmt.map((t) => ({ ...t })) });
    this.heldStart = end;
    this.cur.reset();
    this.phase = 'media';
  }

  /** Sets up per-PID state for the PMT's elementary streams (only on a new PMT, never per packet). */
  private configure(pmt: PmtInfo): void {
    this.es = new Array<EsState | undefined>(NULL_PID);
    this.video = null;
    this.timeline = null;
    this.scanner = null;
    this.pending = false;
    this.pendingScanning = false;
    const videoEs = pmt.streams.find((s) => s.kind === 'video');
    const mainEs = videoEs ?? pmt.streams.find((s) => s.kind === 'audio') ?? pmt.streams[0];
    for (const s of pmt.streams) {
      const role: Role = s === videoEs ? 'video' : s === mainEs ? 'main' : s.kind === 'other' ? 'carried' : 'timed';
      const state: EsState = { pid: s.pid, role, header: new PesHeaderReader(), unitOffset: 0 };
      this.es[s.pid] = state;
      if (s === videoEs) {
        this.video = state;
        this.scanner = new KeyframeScanner(s.codec as VideoCodec, this.scanBytes, (offset, value) => {
          // The held chunks are what gets emitted (the carry is only a parsing copy of a split packet).
          if (offset >= this.heldStart) this.held.setByte(offset - this.heldStart, value);
        });
      }
      if (s === mainEs) this.timeline = state;
    }
    this.tracksOfPmt = pmt.streams.map((s) => ({ id: s.pid, kind: s.kind, timescale: TIMESCALE, codec: s.codec }));
  }

  // ------------------------------------------------------------------------------------------
  // Emitting
  // ------------------------------------------------------------------------------------------

  private take(n: number): Buffer {
    return joinViews(this.held.take(n), n);
  }

  /** The open fragment ends at `cutAt` and the next one starts at time `nextTime` (ticks). */
  private emitFragment(cutAt: number, nextTime: number): void {
    const s = this.cur;
    const start = s.timelineCount > 0 ? s.firstTime : Number.isNaN(s.firstAnyTime) ? this.lastEndTime * TIMESCALE : s.firstAnyTime;
    this.pushFragment(cutAt, start, Math.max(0, nextTime - start));
  }

  /** Emits what precedes `end` (a new init's run, or the end of the stream) without knowing the next cut. */
  private emitRegion(end: number): void {
    if (end === this.heldStart) return;
    const s = this.cur;
    if (!s.hasPes) {
      this.out.push({ type: 'trailer', bytes: this.take(end - this.heldStart) });
      this.heldStart = end;
      return;
    }
    if (s.timelineCount > 0) {
      this.pushFragment(end, s.firstTime, s.lastTime - s.firstTime + this.lastTimelineDelta);
    } else {
      this.pushFragment(end, Number.isNaN(s.firstAnyTime) ? this.lastEndTime * TIMESCALE : s.firstAnyTime, 0);
    }
    s.reset();
  }

  private pushFragment(end: number, startTicks: number, durationTicks: number): void {
    const s = this.cur;
    const fragment: MediaFragment = {
      type: 'fragment',
      bytes: this.take(end - this.heldStart),
      sequence: ++this.sequence,
      keyframe: this.video === null ? true : s.firstKey === true,
      startTime: startTicks / TIMESCALE,
      duration: durationTicks / TIMESCALE,
      videoSamples: s.videoSamples,
      receivedAt: this.receivedAt,
    };
    this.out.push(fragment);
    this.heldStart = end;
    this.lastEndTime = fragment.startTime + fragment.duration;
  }
}
