/**
 * FlvToFmp4: the in-process remuxer. Parsed FLV packets (H.264, H.265, AAC) in, fragmented MP4 out
 * as InitSegment / MediaFragment outputs (the same shapes the Fmp4Splitter cuts from ffmpeg's
 * output, with the same field values). A mux.js-style push/flush stage: `push` returns what the
 * packet completed, `flush` ends the stream and closes the open fragment. Never transcodes.
 *
 * POLICIES
 *
 * Start. Nothing is written before a video configuration and a keyframe (earlier video frames are
 * dropped and counted). Packets are held until the first fragment is complete (the next keyframe, or
 * `fragmentDurationMs`), then the init segment is written with the tracks known at that point:
 *   - video + audio when an AAC config has arrived by then;
 *   - video only when onMetaData announced no audio (no `audiocodecid`, or G.711), or no metadata
 *     came; when audio was announced, the hold goes on until its config arrives or `audioWaitMs` of
 *     media time passed since the first keyframe (checked at fragment cuts);
 *   - audio only when there is no usable video and either onMetaData announced none or `videoWaitMs`
 *     of audio went by.
 * Audio from before the first keyframe is kept (FFmpeg keeps it too), so the output may start with
 * audio. Held bytes are capped by `maxPendingBytes`: reaching it starts with what is there, or drops
 * the oldest held packets (counted) when nothing can start yet.
 *
 * Timeline. See timeline.ts: u32 ms unwrapped by serial-number arithmetic; output 0 = the earliest
 * first sample (the earliest of the first video DTS — or PTS, when its CTS is negative — and the
 * first audio DTS), like FFmpeg's avoid_negative_ts=make_zero. At that start, as FFmpeg's movenc
 * does without edit lists, each track's first sample is moved to DTS 0 and its duration absorbs the
 * gap (a track starting later would otherwise leave a hole at the start of MSE's buffered range).
 * Only at the start: a track joining later (a new init) keeps its real start. Discontinuities (a step
 * back beyond `backwardToleranceMs`, or forward beyond `maxForwardJumpMs`) move one shared offset so
 * every track continues right after the latest sample (A/V stay in sync) and are counted; smaller
 * steps back are nudged to one tick after the previous DTS and counted as clamped. Known limit: if
 * one track's old-clock packets still arrive after the other track's first new-clock packet, each
 * side of that overlap is rebased again (still monotonic, but A/V may end up offset by the overlap).
 *
 * Video timestamps: 90 kHz, exact for FLV milliseconds. Composition offset = CTS × 90. |CTS| above
 * `maxCtsMs` (default 10 s; FFmpeg gives up at 15 min) is treated as 0 and counted. Negative CTS:
 * DTS is kept (monotonic) and the offset is written signed, in a version-1 trun (only fragments that
 * need it; iso6 is among the brands). At the start, the origin takes a negative first CTS into
 * account (its PTS, not its DTS, is the candidate) and that first sample is not moved to DTS 0, so no
 * PTS is ever below 0 (MSE drops frames presented before 0).
 *
 * Audio timestamps: timescale = the AAC sample rate from the ASC (the SBR rate when signalled), one
 * sample = one AAC frame of 1024 (960) samples. DTS follows the nominal frame duration and re-syncs to
 * the FLV timestamp only when they drift apart by more than `audioResyncMs` (default 40 ms: FLV ms
 * timestamps jitter by ±1 ms from rounding and more from capture clocks; 40 ms stays under lip-sync
 * visibility). FFmpeg's CLI does the same with a 1.5 ms window, so for its own FLVs both agree
 * within 1 ms.
 *
 * Fragments. One per GOP: a fragment starts at each video keyframe and is emitted when the next one
 * arrives (so every fragment starts with a keyframe). With `fragmentDurationMs`, a fragment is also
 * cut once a new video sample is that far past its first one (it may then start on a non-keyframe:
 * MediaFragment.keyframe false). At a cut, audio samples whose DTS is at or after the cut point move
 * to the next fragment; audio arriving later with an earlier DTS goes to the next one too. Audio-only
 * streams: a fragment every `fragmentDurationMs` (default 1000 ms), always keyframe. A fragment that
 * would hold more than `maxPendingBytes` is cut early (counted).
 *
 * Config changes. Identical repeats are ignored. A different video config: frames after it are
 * dropped until its first keyframe; that keyframe closes the open fragment and a new init segment
 * follows, so the new object starts with a keyframe. A different (or first, late) AAC config: its
 * frames are held (bounded) until the next video keyframe, where the new init segment is written;
 * old-config audio left after the cut is dropped. Audio-only streams switch at the next audio frame.
 * A video config arriving during an audio-only run adds the video track at its first keyframe.
 *
 * Not recorded: G.711 frames (counted; they need a transcode — the ffmpeg path does that), video
 * end-of-sequence packets (as FFmpeg's flvdec), metadata (advisory; used only for the start policy).
 *
 * Errors: MediaError only (config records and NAL lengths are checked against their payloads); after
 * one, the remuxer is failed and every later call throws the same error.
 *
 * Memory: frame payloads are kept as the views the packets carry (no copy) until their fragment is
 * written, so callers must not reuse a pushed packet's memory; config records are copied (small).
 */
import type { ContainerOutput, InitSegment, MediaFragment } from '../../container/types.js';
import { parseAacConfig, type AacConfig } from '../../media/codec/aac-config.js';
import { parseAvcConfig } from '../../media/codec/avc-config.js';
import { parseHevcConfig } from '../../media/codec/hevc-config.js';
import { MediaError } from '../../media/errors.js';
import type { AudioPacket, MediaPacket, MetadataPacket, VideoPacket } from '../../media/types.js';
import { writeFragment, type FragmentSample, type TrackRun } from './fragment-writer.js';
import { writeInitSegment } from './init-segment.js';
import { Timeline } from './timeline.js';
import {
  SAMPLE_FLAGS_NON_SYNC,
  SAMPLE_FLAGS_SYNC,
  VIDEO_TICKS_PER_MS,
  VIDEO_TIMESCALE,
  type AudioTrackConfig,
  type TrackConfig,
  type VideoConfig,
  type VideoTrackConfig,
} from './track-config.js';

export interface FlvToFmp4Options {
  /** Also cut fragments at this duration (ms); null/undefined = one fragment per GOP. Audio-only: default 1000. */
  fragmentDurationMs?: number | null;
  /** Media time to hold the start for an announced AAC config (default 2000 ms). */
  audioWaitMs?: number;
  /** Audio time to hold the start for video before going audio-only (default 5000 ms). */
  videoWaitMs?: number;
  /**
   * Cap on bytes held: start probe, open fragment, audio waiting for its init; each frame counts its
   * payload + 128 bytes of bookkeeping (default 16 MiB: a 10 s GOP at 12 Mbit/s).
   */
  maxPendingBytes?: number;
  /** DTS steps back up to this are clamped, beyond it they are discontinuities (default 100 ms). */
  backwardToleranceMs?: number;
  /** Forward DTS steps beyond this are discontinuities (default 10000 ms). */
  maxForwardJumpMs?: number;
  /** Audio DTS re-syncs to the FLV timestamp when nominal timing drifts more than this (default 40 ms). */
  audioResyncMs?: number;
  /** |CTS| above this is treated as 0 (default 10000 ms). */
  maxCtsMs?: number;
}

/** What was dropped or adjusted, and why (plain counters; read them whenever). */
export interface FlvToFmp4Stats {
  /** Frames whose codec configuration had not arrived (or of another codec than the config). */
  droppedBeforeConfig: number;
  /** Video frames before the first keyframe of the stream or of a new video config. */
  droppedBeforeKeyframe: number;
  /** G.711 frames: the native path records AAC only. */
  droppedUnsupportedAudio: number;
  /** Held frames dropped at maxPendingBytes, or old-config audio left at a config switch. */
  droppedOverLimit: number;
  /** Held frames that had no segment to go to when the stream ended. */
  droppedAtEnd: number;
  /** Identical config repeats ignored. */
  configRepeats: number;
  discontinuities: number;
  /** DTS steps back within the tolerance (or equal DTS), nudged to stay monotonic. */
  clampedTimestamps: number;
  audioResyncs: number;
  ctsOutOfRange: number;
  /** Fragments cut early because they reached maxPendingBytes. */
  forcedCuts: number;
  initSegments: number;
  fragments: number;
}

type Phase = 'probing' | 'running' | 'ended' | 'failed';

interface HeldVideo {
  kind: 'video';
  unwrapped: number;
  cts: number;
  keyframe: boolean;
  data: Buffer;
}

interface HeldAudio {
  kind: 'audio';
  unwrapped: number;
  data: Buffer;
}

type Held = HeldVideo | HeldAudio;

interface VideoSample {
  dts: number;
  cto: number;
  data: Buffer;
  keyframe: boolean;
}

interface AudioSample {
  dts: number;
  data: Buffer;
  config: AacConfig;
}

interface OpenFragment {
  video: VideoSample[];
  audio: AudioSample[];
  bytes: number;
}

interface CurrentInit {
  video: VideoTrackConfig | null;
  audio: AudioTrackConfig | null;
}

const DEFAULTS = {
  audioWaitMs: 2000,
  videoWaitMs: 5000,
  maxPendingBytes: 16 * 1024 * 1024,
  backwardToleranceMs: 100,
  maxForwardJumpMs: 10_000,
  audioResyncMs: 40,
  maxCtsMs: 10_000,
};
const AUDIO_ONLY_FRAGMENT_MS = 1000;
/**
 * What one held frame is charged against maxPendingBytes beyond its payload: its bookkeeping (the
 * packet's objects, the sample record), so a flood of tiny frames is bounded too.
 */
const SAMPLE_OVERHEAD_BYTES = 128;
const cost = (data: Buffer): number => data.length + SAMPLE_OVERHEAD_BYTES;
/** Duration of a fragment's last video sample when no later sample tells (40 ms). */
const FALLBACK_VIDEO_STEP = 40 * VIDEO_TICKS_PER_MS;

export class FlvToFmp4 {
  private readonly fragmentMs: number | null;
  private readonly audioWaitMs: number;
  private readonly videoWaitMs: number;
  private readonly maxPendingBytes: number;
  private readonly audioResyncMs: number;
  private readonly maxCtsMs: number;
  private readonly timeline: Timeline;

  private phase: Phase = 'probing';
  private failure: MediaError | null = null;
  private out: ContainerOutput[] = [];
  private receivedAt = 0;

  // What onMetaData announced (advisory, start policy only).
  private metadataSeen = false;
  private audioAnnounced = false;
  private videoAnnounced = false;

  private latestVideo: VideoConfig | null = null;
  private latestAudio: AacConfig | null = null;

  // probing
  private probe: Held[] = [];
  private probeBytes = 0;
  /** The first held video (always a keyframe) and audio packet, kept so each push is O(1). */
  private probeFirstVideo: HeldVideo | null = null;
  private probeFirstAudio: HeldAudio | null = null;

  // running
  private init: CurrentInit = { video: null, audio: null };
  private open: OpenFragment = { video: [], audio: [], bytes: 0 };
  /** AAC frames of a config not in the current init, waiting for the next init segment. */
  private heldAudio: AudioSample[] = [];
  /** Index of the oldest live entry of heldAudio: dropping the oldest is O(1), compacted in bulk. */
  private heldAudioHead = 0;
  private heldAudioBytes = 0;
  private sequence = 0;
  /** Until the first init change: each track's first sample goes to DTS 0 (FFmpeg's no-edit-list start). */
  private startRule = false;
  private readonly firstPlaced = { video: false, audio: false };
  private lastVideoDts: number | null = null;
  private lastVideoStep = FALLBACK_VIDEO_STEP;
  /** Sticky: the video track has had a non-zero composition offset (trun then always carries them). */
  private videoHadCto = false;
  private audioClock: { next: number; last: number; timescale: number } | null = null;

  private readonly counters: FlvToFmp4Stats = {
    droppedBeforeConfig: 0,
    droppedBeforeKeyframe: 0,
    droppedUnsupportedAudio: 0,
    droppedOverLimit: 0,
    droppedAtEnd: 0,
    configRepeats: 0,
    discontinuities: 0,
    clampedTimestamps: 0,
    audioResyncs: 0,
    ctsOutOfRange: 0,
    forcedCuts: 0,
    initSegments: 0,
    fragments: 0,
  };

  constructor(opts: FlvToFmp4Options = {}) {
    const positive = (name: string, v: number | undefined, dflt: number): number => {
      const x = v ?? dflt;
      if (!Number.isFinite(x) || x < 0) throw new RangeError(`${name} must be a non-negative number`);
      return x;
    };
    const frag = opts.fragmentDurationMs ?? null;
    if (frag !== null && (!Number.isFinite(frag) || frag <= 0)) throw new RangeError('fragmentDurationMs must be a positive number or null');
    this.fragmentMs = frag;
    this.audioWaitMs = positive('audioWaitMs', opts.audioWaitMs, DEFAULTS.audioWaitMs);
    this.videoWaitMs = positive('videoWaitMs', opts.videoWaitMs, DEFAULTS.videoWaitMs);
    this.maxPendingBytes = positive('maxPendingBytes', opts.maxPendingBytes, DEFAULTS.maxPendingBytes);
    this.audioResyncMs = positive('audioResyncMs', opts.audioResyncMs, DEFAULTS.audioResyncMs);
    this.maxCtsMs = positive('maxCtsMs', opts.maxCtsMs, DEFAULTS.maxCtsMs);
    this.timeline = new Timeline({
      backwardToleranceMs: positive('backwardToleranceMs', opts.backwardToleranceMs, DEFAULTS.backwardToleranceMs),
      maxForwardJumpMs: positive('maxForwardJumpMs', opts.maxForwardJumpMs, DEFAULTS.maxForwardJumpMs),
    });
  }

  get stats(): Readonly<FlvToFmp4Stats> {
    return { ...this.counters, discontinuities: this.timeline.discontinuities };
  }

  /** Bytes currently held (start probe + open fragment + audio waiting for an init). */
  get pendingBytes(): number {
    return this.probeBytes + this.open.bytes + this.heldAudioBytes;
  }

  push(p: MediaPacket, receivedAt: number): ContainerOutput[] {
    this.assertUsable('push');
    this.receivedAt = receivedAt;
    return this.run(() => {
      switch (p.kind) {
        case 'metadata':
          this.onMetadata(p);
          break;
        case 'video':
          if (p.packetType === 'config') this.onVideoConfig(p);
          else if (p.packetType === 'frame') this.onVideoFrame(p);
          break; // 'end': dropped, as FFmpeg's flvdec does
        case 'audio':
          if (p.codec !== 'aac') this.counters.droppedUnsupportedAudio++;
          else if (p.packetType === 'config') this.onAudioConfig(p);
          else this.onAudioFrame(p);
          break;
      }
    });
  }

  /** End of stream: writes what can be written (closing the open fragment); drops what cannot. */
  flush(): ContainerOutput[] {
    this.assertUsable('flush');
    const outs = this.run(() => {
      if (this.phase === 'probing') this.tryStart('end');
      if (this.phase === 'probing') {
        this.counters.droppedAtEnd += this.probe.length;
        this.probe = [];
        this.probeBytes = 0;
        this.probeFirstVideo = null;
        this.probeFirstAudio = null;
      } else {
        this.closeFragment(null);
        this.counters.droppedAtEnd += this.heldAudio.length - this.heldAudioHead;
        this.clearHeldAudio();
      }
    });
    this.phase = 'ended';
    return outs;
  }

  private assertUsable(op: string): void {
    if (this.failure !== null) throw this.failure;
    if (this.phase === 'ended') throw new MediaError('remuxer-state', `${op} after flush`);
  }

  /**
   * Runs one step and returns its outputs. Any error fails the remuxer for good; like the splitter, a
   * step that completed outputs before failing returns them and the next call throws.
   */
  private run(step: () => void): ContainerOutput[] {
    this.out = [];
    try {
      step();
    } catch (err) {
      this.failure = err instanceof MediaError ? err : new MediaError('remuxer-state', `remuxer failed: ${String(err)}`, { cause: err });
      this.phase = 'failed';
      this.probe = [];
      this.probeBytes = 0;
      this.probeFirstVideo = null;
      this.probeFirstAudio = null;
      this.open = { video: [], audio: [], bytes: 0 };
      this.clearHeldAudio();
      if (this.out.length === 0) throw this.failure;
    }
    const outs = this.out;
    this.out = [];
    return outs;
  }

  // ---------- inputs ----------

  private onMetadata(p: MetadataPacket): void {
    this.metadataSeen = true;
    const a = p.values['audiocodecid'];
    // G.711 (7, 8) is never recorded here, so waiting for an AAC config would be pointless.
    this.audioAnnounced = a !== undefined && a !== null && a !== 7 && a !== 8 && a !== '';
    const v = p.values['videocodecid'];
    this.videoAnnounced = v !== undefined && v !== null && v !== '';
  }

  private onVideoConfig(p: VideoPacket): void {
    const current = this.init.video?.config ?? null;
    if (this.latestVideo !== null && sameConfig(this.latestVideo, p)) {
      this.counters.configRepeats++;
      return;
    }
    if (current !== null && sameConfig(current, p)) {
      this.latestVideo = current; // back to what the current init has: no switch after all
      return;
    }
    const record = Buffer.from(p.data); // small; do not pin the tag body
    this.latestVideo = p.codec === 'avc' ? parseAvcConfig(record) : parseHevcConfig(record);
    if (this.phase === 'probing') {
      // Held video belongs to the previous config: the stream now starts at the new config's keyframe.
      this.dropHeld((h) => h.kind === 'video', 'droppedBeforeKeyframe');
    }
  }

  private onAudioConfig(p: AudioPacket): void {
    const current = this.init.audio?.config ?? null;
    if (this.latestAudio !== null && this.latestAudio.record.equals(p.data)) {
      this.counters.configRepeats++;
      return;
    }
    if (current !== null && current.record.equals(p.data)) {
      this.latestAudio = current;
      return;
    }
    this.latestAudio = parseAacConfig(Buffer.from(p.data));
    if (this.phase === 'probing') this.dropHeld((h) => h.kind === 'audio', 'droppedOverLimit');
  }

  private onVideoFrame(p: VideoPacket): void {
    const unwrapped = this.timeline.unwrap(p.tag.timestamp);
    const config = this.latestVideo;
    if (config === null || config.codec !== p.codec) {
      this.counters.droppedBeforeConfig++;
      return;
    }
    checkNalLengths(p.data, config.nalLengthSize, p.tag.timestamp);
    this.checkSampleSize(p.data);
    let cts = p.cts;
    if (Math.abs(cts) > this.maxCtsMs) {
      this.counters.ctsOutOfRange++;
      cts = 0;
    }
    if (this.phase === 'running') {
      this.runVideo(unwrapped, cts, p.keyframe, p.data);
      return;
    }
    // probing
    const firstKey = this.probeFirstVideo;
    if (firstKey === null && !p.keyframe) {
      this.counters.droppedBeforeKeyframe++;
      return;
    }
    if (firstKey !== null) {
      const cut = p.keyframe || (this.fragmentMs !== null && unwrapped - firstKey.unwrapped >= this.fragmentMs);
      if (cut && this.tryStart('cut', unwrapped)) {
        this.runVideo(unwrapped, cts, p.keyframe, p.data);
        return;
      }
    }
    this.hold({ kind: 'video', unwrapped, cts, keyframe: p.keyframe, data: p.data });
  }

  private onAudioFrame(p: AudioPacket): void {
    const unwrapped = this.timeline.unwrap(p.tag.timestamp);
    const config = this.latestAudio;
    if (config === null) {
      this.counters.droppedBeforeConfig++;
      return;
    }
    this.checkSampleSize(p.data);
    if (this.phase === 'running') {
      this.runAudio(unwrapped, p.data, config);
      return;
    }
    this.hold({ kind: 'audio', unwrapped, data: p.data });
    this.tryStart('audio', unwrapped);
  }

  private checkSampleSize(data: Buffer): void {
    if (cost(data) > this.maxPendingBytes) {
      throw new MediaError('media-too-large', `a ${data.length}-byte frame is over maxPendingBytes ${this.maxPendingBytes}`);
    }
  }

  // ---------- start ----------

  private hold(h: Held): void {
    this.probe.push(h);
    this.probeBytes += cost(h.data);
    if (h.kind === 'video') this.probeFirstVideo ??= h;
    else this.probeFirstAudio ??= h;
    if (this.probeBytes <= this.maxPendingBytes) return;
    // Held video exists only with its config and from a keyframe, held audio only with its config:
    // so this starts whenever anything is held, and the drop below is a safety net.
    if (this.tryStart('limit')) return;
    let excess = this.probeBytes - this.maxPendingBytes;
    this.dropHeld((x) => {
      if (excess <= 0) return false;
      excess -= cost(x.data);
      return true;
    }, 'droppedOverLimit');
  }

  /** Drops held packets matching `which` (one pass), keeping held video starting at a keyframe. */
  private dropHeld(which: (h: Held) => boolean, counter: 'droppedBeforeKeyframe' | 'droppedOverLimit'): void {
    const keep: Held[] = [];
    let bytes = 0;
    let keyframeSeen = false;
    for (const h of this.probe) {
      const drop = which(h); // called once per packet, in order
      const orphan = h.kind === 'video' && !keyframeSeen && !h.keyframe;
      if (drop || orphan) {
        this.counters[drop ? counter : 'droppedBeforeKeyframe']++;
        continue;
      }
      if (h.kind === 'video') keyframeSeen = true;
      keep.push(h);
      bytes += cost(h.data);
    }
    this.probe = keep;
    this.probeBytes = bytes;
    this.probeFirstVideo = keep.find((h): h is HeldVideo => h.kind === 'video') ?? null;
    this.probeFirstAudio = keep.find((h): h is HeldAudio => h.kind === 'audio') ?? null;
  }

  /**
   * Decides whether the held packets can start the stream (see the policy above) and if so writes
   * the init segment and replays them. `why`: a video cut point, an audio frame, the byte limit, or
   * the end of the stream. `now`: the unwrapped time of the packet being processed.
   */
  private tryStart(why: 'cut' | 'audio' | 'limit' | 'end', now = 0): boolean {
    const firstVideo = this.probeFirstVideo;
    const firstAudio = this.probeFirstAudio;
    const video = this.latestVideo !== null && firstVideo !== null ? this.latestVideo : null;
    const audio = this.latestAudio;
    let tracks: { video: VideoConfig | null; audio: AacConfig | null } | null = null;
    if (video !== null) {
      if (why === 'cut') {
        const waitOver = now - (firstVideo as HeldVideo).unwrapped >= this.audioWaitMs;
        if (audio !== null || !this.audioAnnounced || waitOver) tracks = { video, audio };
      } else if (why === 'limit' || why === 'end') {
        tracks = { video, audio };
      }
    } else if (audio !== null && firstAudio !== null) {
      const noVideo = this.metadataSeen && !this.videoAnnounced;
      if (why === 'limit' || why === 'end' || noVideo || now - firstAudio.unwrapped >= this.videoWaitMs) tracks = { video: null, audio };
    }
    if (tracks === null) return false;

    // Output 0 = the earliest first sample (a negative first CTS counts with its PTS).
    const starts: number[] = [];
    if (tracks.video !== null && firstVideo !== null) starts.push(firstVideo.unwrapped + Math.min(0, firstVideo.cts));
    if (tracks.audio !== null && firstAudio !== null) starts.push(firstAudio.unwrapped);
    this.timeline.start(Math.min(...starts));
    this.phase = 'running';
    this.startRule = true;
    this.writeInit(tracks.video, tracks.audio);

    const held = this.probe;
    this.probe = [];
    this.probeBytes = 0;
    this.probeFirstVideo = null;
    this.probeFirstAudio = null;
    for (const h of held) {
      if (h.kind === 'video') {
        if (tracks.video !== null) this.runVideo(h.unwrapped, h.cts, h.keyframe, h.data);
        else this.counters.droppedBeforeKeyframe++;
      } else if (tracks.audio !== null) {
        this.runAudio(h.unwrapped, h.data, tracks.audio);
      }
    }
    return true;
  }

  // ---------- running ----------

  private runVideo(unwrapped: number, cts: number, keyframe: boolean, data: Buffer): void {
    const m = this.timeline.map('video', unwrapped);
    const config = this.latestVideo as VideoConfig;
    const current = this.init.video?.config ?? null;
    const switching = current !== config;
    if (switching && !keyframe) {
      this.counters.droppedBeforeKeyframe++;
      return;
    }
    const ctsTicks = cts * VIDEO_TICKS_PER_MS;
    // A track that joins later may bring a packet older than the origin: no decode time below 0.
    let dts = Math.max(0, m) * VIDEO_TICKS_PER_MS;
    const pts = dts + ctsTicks;
    if (this.lastVideoDts !== null && dts <= this.lastVideoDts) {
      dts = this.lastVideoDts + 1;
      this.counters.clampedTimestamps++;
    }
    let cto = pts - dts;
    if (this.startRule && !this.firstPlaced.video && ctsTicks >= 0) {
      // FFmpeg's start without an edit list: the first sample goes to DTS 0, keeping its offset. With
      // a negative offset it stays where it is (the origin already keeps its PTS at or after 0).
      dts = 0;
      cto = ctsTicks;
    }

    if (switching || (keyframe && this.needsNewInit())) {
      this.closeFragment(dts);
      this.writeInit(config, this.latestAudio);
    } else if (this.open.video.length > 0) {
      const first = this.open.video[0] as VideoSample;
      if (keyframe) {
        this.closeFragment(dts);
      } else if (this.fragmentMs !== null && dts - first.dts >= this.fragmentMs * VIDEO_TICKS_PER_MS) {
        this.closeFragment(dts);
      } else if (this.pendingBytes + cost(data) > this.maxPendingBytes) {
        this.counters.forcedCuts++;
        this.closeFragment(dts);
      }
    } else if (this.pendingBytes + cost(data) > this.maxPendingBytes) {
      this.counters.forcedCuts++;
      this.closeFragment(dts);
    }

    this.firstPlaced.video = true;
    if (this.lastVideoDts !== null && dts > this.lastVideoDts) this.lastVideoStep = dts - this.lastVideoDts;
    this.lastVideoDts = dts;
    if (cto !== 0) this.videoHadCto = true;
    this.open.video.push({ dts, cto, data, keyframe });
    this.open.bytes += cost(data);
  }

  private runAudio(unwrapped: number, data: Buffer, config: AacConfig): void {
    const m = this.timeline.map('audio', unwrapped);
    const dts = this.audioDts(m, config);
    let sampleDts = dts;
    if (this.startRule && !this.firstPlaced.audio && this.init.audio?.config === config) {
      sampleDts = 0;
      this.firstPlaced.audio = true;
    }
    const sample: AudioSample = { dts: sampleDts, data, config };

    if (this.init.audio?.config !== config) {
      if (this.init.video === null) {
        // Audio-only: switch right here (every AAC frame is a sync sample).
        this.closeFragment(null);
        this.writeInit(null, config);
        this.pushAudio(sample);
        return;
      }
      this.heldAudio.push(sample);
      this.heldAudioBytes += cost(data);
      while (this.open.bytes + this.heldAudioBytes > this.maxPendingBytes && this.heldAudioHead < this.heldAudio.length) {
        const dropped = this.heldAudio[this.heldAudioHead++] as AudioSample;
        this.heldAudioBytes -= cost(dropped.data);
        this.counters.droppedOverLimit++;
      }
      if (this.heldAudioHead > 1024 && this.heldAudioHead * 2 > this.heldAudio.length) {
        this.heldAudio = this.heldAudio.slice(this.heldAudioHead);
        this.heldAudioHead = 0;
      }
      return;
    }
    if (this.init.video === null) {
      const first = this.open.audio[0];
      const limit = ((this.fragmentMs ?? AUDIO_ONLY_FRAGMENT_MS) * config.timescale) / 1000;
      if (first !== undefined && dts - first.dts >= limit) this.closeFragment(null);
    }
    if (this.pendingBytes + cost(data) > this.maxPendingBytes && this.open.video.length + this.open.audio.length > 0) {
      this.counters.forcedCuts++;
      this.closeFragment(null);
    }
    this.pushAudio(sample);
  }

  private pushAudio(s: AudioSample): void {
    this.open.audio.push(s);
    this.open.bytes += cost(s.data);
  }

  /** Audio DTS in the config's timescale: nominal frame steps, re-synced on drift (see the policy). */
  private audioDts(mappedMs: number, config: AacConfig): number {
    const ts = config.timescale;
    const exact = (Math.max(0, mappedMs) * ts) / 1000;
    let clock = this.audioClock;
    if (clock !== null && clock.timescale !== ts) {
      // A new sample rate: carry the clock over in time, not in ticks.
      clock = { next: Math.round((clock.next * ts) / clock.timescale), last: Math.floor((clock.last * ts) / clock.timescale), timescale: ts };
    }
    let dts: number;
    if (clock === null) {
      dts = Math.round(exact);
    } else if (Math.abs(clock.next - exact) > (this.audioResyncMs * ts) / 1000) {
      dts = Math.round(exact);
      this.counters.audioResyncs++;
    } else {
      dts = clock.next;
    }
    if (clock !== null && dts <= clock.last) {
      dts = clock.last + 1;
      this.counters.clampedTimestamps++;
    }
    this.audioClock = { next: dts + config.samplesPerFrame, last: dts, timescale: ts };
    return dts;
  }

  private needsNewInit(): boolean {
    const v = this.latestVideo;
    const a = this.latestAudio;
    return (v !== null && this.init.video?.config !== v) || (a !== null && this.init.audio?.config !== a);
  }

  private writeInit(video: VideoConfig | null, audio: AacConfig | null): void {
    const tracks: TrackConfig[] = [];
    const v: VideoTrackConfig | null = video === null ? null : { kind: 'video', id: 1, config: video };
    const a: AudioTrackConfig | null = audio === null ? null : { kind: 'audio', id: video === null ? 1 : 2, config: audio };
    if (v !== null) tracks.push(v);
    if (a !== null) tracks.push(a);
    if (this.counters.initSegments > 0) this.startRule = false;
    this.init = { video: v, audio: a };
    const init: InitSegment = writeInitSegment(tracks);
    this.out.push(init);
    this.counters.initSegments++;
    // Open-fragment audio of another config (left over after the cut) cannot go into this segment.
    const stale = this.open.audio.filter((s) => s.config !== audio);
    if (stale.length > 0) {
      this.counters.droppedOverLimit += stale.length;
      this.open.audio = this.open.audio.filter((s) => s.config === audio);
      this.open.bytes -= stale.reduce((n, s) => n + cost(s.data), 0);
    }
    // Audio that waited for this init joins the new fragment; other configs' audio is dropped.
    for (let i = this.heldAudioHead; i < this.heldAudio.length; i++) {
      const s = this.heldAudio[i] as AudioSample;
      if (s.config === audio) this.pushAudio(s);
      else this.counters.droppedOverLimit++;
    }
    this.clearHeldAudio();
  }

  private clearHeldAudio(): void {
    this.heldAudio = [];
    this.heldAudioHead = 0;
    this.heldAudioBytes = 0;
  }

  /**
   * Emits the open fragment. `cutDts`: the video DTS where the next fragment starts (it ends the last
   * video sample and splits the audio), or null at the end of the stream / an audio-driven cut.
   */
  private closeFragment(cutDts: number | null): void {
    const f = this.open;
    let carried: AudioSample[] = [];
    let audio = f.audio;
    if (cutDts !== null && this.init.video !== null) {
      // Audio at or after the cut belongs to the next fragment (compared in seconds, exactly).
      const at = audio.findIndex((s) => s.dts * VIDEO_TIMESCALE >= cutDts * s.config.timescale);
      if (at >= 0) {
        carried = audio.slice(at);
        audio = audio.slice(0, at);
      }
    }
    this.open = { video: [], audio: carried, bytes: carried.reduce((n, s) => n + cost(s.data), 0) };
    if (f.video.length === 0 && audio.length === 0) return;

    const runs: TrackRun[] = [];
    const video = this.init.video;
    let videoDuration = 0;
    if (video !== null && f.video.length > 0) {
      const samples: FragmentSample[] = [];
      for (let i = 0; i < f.video.length; i++) {
        const s = f.video[i] as VideoSample;
        const next = f.video[i + 1]?.dts ?? cutDts;
        const duration = next !== null && next > s.dts ? next - s.dts : this.lastVideoStep;
        videoDuration += duration;
        samples.push({ data: s.data, duration, flags: s.keyframe ? SAMPLE_FLAGS_SYNC : SAMPLE_FLAGS_NON_SYNC, cto: s.cto });
      }
      runs.push({ trackId: video.id, baseDecodeTime: (f.video[0] as VideoSample).dts, samples, compositionOffsets: this.videoHadCto });
    }
    const audioTrack = this.init.audio;
    let audioDuration = 0;
    if (audioTrack !== null && audio.length > 0) {
      const samples: FragmentSample[] = [];
      for (let i = 0; i < audio.length; i++) {
        const s = audio[i] as AudioSample;
        const next = (audio[i + 1] ?? carried[0])?.dts;
        const duration = next !== undefined && next > s.dts ? next - s.dts : s.config.samplesPerFrame;
        audioDuration += duration;
        samples.push({ data: s.data, duration, flags: SAMPLE_FLAGS_SYNC, cto: 0 });
      }
      runs.push({ trackId: audioTrack.id, baseDecodeTime: (audio[0] as AudioSample).dts, samples, compositionOffsets: false });
    }
    if (runs.length === 0) return;

    const { bytes } = writeFragment(++this.sequence, runs);
    // The same values the Fmp4Splitter derives from these bytes: the video traf leads when present.
    const first = runs[0] as TrackRun;
    const leadIsVideo = video !== null && first.trackId === video.id;
    const timescale = leadIsVideo ? VIDEO_TIMESCALE : (audioTrack as AudioTrackConfig).config.timescale;
    const fragment: MediaFragment = {
      type: 'fragment',
      bytes,
      sequence: this.sequence,
      keyframe: video === null ? true : (f.video[0]?.keyframe ?? false),
      startTime: first.baseDecodeTime / timescale,
      duration: (leadIsVideo ? videoDuration : audioDuration) / timescale,
      videoSamples: leadIsVideo ? f.video.length : 0,
      receivedAt: this.receivedAt,
    };
    this.out.push(fragment);
    this.counters.fragments++;
  }
}

function sameConfig(config: VideoConfig, p: VideoPacket): boolean {
  return config.codec === p.codec && config.record.equals(p.data);
}

/** Length-prefixed NAL units must tile the payload exactly. */
export function checkNalLengths(data: Buffer, lengthSize: 1 | 2 | 4, timestamp: number): void {
  let at = 0;
  let units = 0;
  while (at < data.length) {
    if (at + lengthSize > data.length) {
      throw new MediaError('nal-length-invalid', `video frame (ts ${timestamp}): ${data.length - at} stray bytes after ${units} NAL units`);
    }
    const n = lengthSize === 4 ? data.readUInt32BE(at) : lengthSize === 2 ? data.readUInt16BE(at) : (data[at] as number);
    at += lengthSize;
    if (n > data.length - at) {
      throw new MediaError('nal-length-invalid', `video frame (ts ${timestamp}): NAL unit #${units} of ${n} bytes overruns the ${data.length}-byte payload`);
    }
    at += n;
    units++;
  }
}
