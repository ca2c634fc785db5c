/**
 * The command lines of an RTSP pull: one quick `ffprobe` that learns the codecs, then one
 * `ffmpeg` that writes fragmented MP4 to stdout. Every option here exists with the same meaning in
 * ffmpeg 5.1 (Debian 12, what the tests run) and 7.1 (Debian 13), checked in both sources:
 *
 * - `-timeout <µs>` is the RTSP demuxer's socket I/O timeout (connect and reads) in both. The old
 *   names are gone since 5.0: `-stimeout` (µs) was removed, and `-timeout` no longer means the
 *   listen timeout (that is `-listen_timeout`). The demuxer passes it to its own TCP connection
 *   (ffmpeg logs `Connection to tcp://H:P?timeout=…`); `-rw_timeout` is not used.
 * - Transport: `tcp` → `-rtsp_transport tcp` (RTP interleaved in the RTSP connection), `udp` →
 *   `-rtsp_transport udp`, `auto` → `-rtsp_transport tcp+udp -rtsp_flags prefer_tcp`: ffmpeg asks for
 *   TCP first and, if the camera refuses it (461 Unsupported Transport), SETUPs again over UDP in the
 *   same attempt. (ffmpeg's own default is the reverse: UDP first, then TCP only after a 10 s UDP
 *   silence; TCP first is what survives NAT, firewalls and lossy links.)
 * - `ffprobe -initial_pause 1 -nofind_stream_info`: DESCRIBE and SETUP only, no PLAY, no media read;
 *   the codecs come from the SDP. About 70 ms against a local server.
 * - `-loglevel level+info -nostats`: every stderr line is prefixed with its level (`[info]`,
 *   `[warning]`, `[error]`), and the input's stream list is printed, which is checked against the
 *   probe on every run. `-progress pipe:3 -stats_period 1`: key=value progress on fd 3 once a
 *   second, the liveness signal of the stall watchdog (fragments may be a whole GOP apart).
 * - `-map 0:v:0? -map 0:a:0?`: the first video and the first audio stream only (cameras may add
 *   ONVIF metadata streams, which MP4 cannot carry); `?` tolerates a stream that is absent.
 * - `-c:v copy`, and `-tag:v hvc1` for H.265 (ffmpeg's default in MP4 is `hev1`; browsers and Apple
 *   players want `hvc1`). The tag must not be given for H.264 (the muxer refuses it), which is
 *   one reason the codecs must be known before the argv is built.
 * - Audio, decided from the probed codec (no stream specifier selects by codec in 5.1):
 *   `copy` → `-c:a copy`; `aac` → `-c:a aac`; `drop` → `-an` and `-allowed_media_types video` (the
 *   audio track is not even set up); `auto` → copy when the source is AAC (`aac`), transcode to AAC
 *   anything else (G.711 `pcm_alaw`/`pcm_mulaw`, but also AAC-LATM, G.726, …, which browsers do not
 *   play from MP4). The AAC bitrate is 32 kb/s up to 16 kHz (G.711 is 8 kHz; the encoder's ceiling
 *   there is 48 kb/s per channel) and 64 kb/s above.
 * - `-f mp4 -movflags +frag_keyframe+empty_moov+default_base_moof+skip_trailer [-frag_duration µs]
 *   pipe:1`, as the remuxer: every byte on stdout belongs to the init segment or to a fragment.
 * - ffmpeg's default `-analyzeduration` (5 s) is kept: a camera whose SDP lacks the parameter sets
 *   needs to reach a keyframe before the MP4 header can be written.
 */

export type RtspTransport = 'tcp' | 'udp' | 'auto';
export type RtspAudioPolicy = 'auto' | 'copy' | 'aac' | 'drop';
/** What the ffmpeg run does with the source's audio. */
export type AudioAction = 'copy' | 'aac' | 'none';

export interface SourceLayout {
  /** ffmpeg codec name of the first video stream (`h264`, `hevc`, …), if any. */
  video: string | undefined;
  /** ffmpeg codec name of the first audio stream (`aac`, `pcm_alaw`, `pcm_mulaw`, …), if any. */
  audio: string | undefined;
  audioSampleRate: number | undefined;
}

export function transportArgs(t: RtspTransport): string[] {
  switch (t) {
    case 'tcp':
      return ['-rtsp_transport', 'tcp'];
    case 'udp':
      return ['-rtsp_transport', 'udp'];
    case 'auto':
      return ['-rtsp_transport', 'tcp+udp', '-rtsp_flags', 'prefer_tcp'];
  }
}

function timeoutUs(ms: number): string {
  return String(Math.max(1, Math.round(ms)) * 1000);
}

/** ffprobe argv: the codecs from the SDP, as JSON on stdout. */
export function probeArgs(o: { url: string; transport: RtspTransport; timeoutMs: number }): string[] {
  return [
    '-hide_banner', '-loglevel', 'level+error',
    ...transportArgs(o.transport), '-timeout', timeoutUs(o.timeoutMs),
    '-initial_pause', '1', '-nofind_stream_info',
    '-show_entries', 'stream=index,codec_type,codec_name,sample_rate', '-of', 'json',
    o.url,
  ];
}

/** ffprobe's JSON → layout; undefined when it is not what ffprobe prints. */
export function parseProbeJson(text: string): SourceLayout | undefined {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return undefined;
  }
  const streams = (j as { streams?: unknown }).streams;
  if (!Array.isArray(streams)) return undefined;
  const layout: SourceLayout = { video: undefined, audio: undefined, audioSampleRate: undefined };
  for (const s of streams as Array<{ codec_type?: unknown; codec_name?: unknown; sample_rate?: unknown }>) {
    const name = typeof s.codec_name === 'string' ? s.codec_name : 'unknown';
    if (s.codec_type === 'video' && layout.video === undefined) layout.video = name;
    if (s.codec_type === 'audio' && layout.audio === undefined) {
      layout.audio = name;
      const sr = Number(s.sample_rate);
      layout.audioSampleRate = Number.isFinite(sr) && sr > 0 ? sr : undefined;
    }
  }
  return layout;
}

/** What to do with the audio for a policy and a layout. */
export function audioAction(policy: RtspAudioPolicy, layout: SourceLayout): AudioAction {
  if (policy === 'drop' || layout.audio === undefined) return 'none';
  if (policy === 'copy') return 'copy';
  if (policy === 'aac') return 'aac';
  return layout.audio === 'aac' ? 'copy' : 'aac';
}

export interface RtspFfmpegArgsOptions {
  url: string;
  transport: RtspTransport;
  /** ffmpeg's socket I/O timeout (connect and reads). */
  timeoutMs: number;
  layout: SourceLayout;
  audio: RtspAudioPolicy;
  fragmentDurationMs: number | null;
  /** Fragmented MP4 (default) or MPEG-TS on stdout. */
  format?: 'fmp4' | 'mpegts';
}

export function rtspFfmpegArgs(o: RtspFfmpegArgsOptions): string[] {
  const action = audioAction(o.audio, o.layout);
  const args = [
    '-hide_banner', '-nostdin', '-loglevel', 'level+info', '-nostats', '-progress', 'pipe:3', '-stats_period', '1',
    ...transportArgs(o.transport), '-timeout', timeoutUs(o.timeoutMs),
  ];
  if (o.audio === 'drop') args.push('-allowed_media_types', 'video');
  args.push('-i', o.url, '-map', '0:v:0?');
  if (action !== 'none') args.push('-map', '0:a:0?');
  args.push('-c:v', 'copy');
  const ts = o.format === 'mpegts';
  // A sample-entry tag is an MP4 notion: MPEG-TS names the codec by its stream type.
  if (o.layout.video === 'hevc' && !ts) args.push('-tag:v', 'hvc1');
  if (action === 'copy') args.push('-c:a', 'copy');
  else if (action === 'aac') args.push('-c:a', 'aac', '-b:a', (o.layout.audioSampleRate ?? 48000) <= 16000 ? '32k' : '64k');
  else args.push('-an');
  // MPEG-TS: ffmpeg's defaults already put PAT+PMT before every keyframe, which the TS splitter cuts at.
  if (ts) args.push('-f', 'mpegts');
  else {
    args.push('-f', 'mp4', '-movflags', '+frag_keyframe+empty_moov+default_base_moof+skip_trailer');
    if (o.fragmentDurationMs) args.push('-frag_duration', String(Math.round(o.fragmentDurationMs * 1000)));
  }
  args.push('pipe:1');
  return args;
}

/**
 * Reads the input's stream list from ffmpeg's info-level stderr, one line at a time:
 *   `[info] Input #0, rtsp, from '…':` … `[info]   Stream #0:1: Audio: pcm_alaw, 8000 Hz, mono, s16, 64 kb/s`
 *   … `[info] Output #0, mp4, to 'pipe:1':` (or `Stream mapping:`) ends it.
 * `layout` is defined once the input section has ended.
 */
export class InputStreamsReader {
  private state: 'before' | 'input' | 'done' = 'before';
  private readonly found: SourceLayout = { video: undefined, audio: undefined, audioSampleRate: undefined };
  /** True from the `Input #0` line on: the RTSP session is set up. */
  opened = false;

  /** Feeds one stderr line; returns true when this line completed the input section. */
  push(line: string): boolean {
    const text = line.replace(/^(?:\[[^\]]*\]\s*)+/, '');
    if (this.state === 'before') {
      if (/^Input #0\b/.test(text)) {
        this.state = 'input';
        this.opened = true;
      }
      return false;
    }
    if (this.state !== 'input') return false;
    if (/^(Output #0\b|Stream mapping:)/.test(text)) {
      this.state = 'done';
      return true;
    }
    const m = /^\s*Stream #0:\d+(?:\[[^\]]*\])?(?:\([^)]*\))?: (Video|Audio): ([A-Za-z0-9_]+)/.exec(text);
    if (m) {
      if (m[1] === 'Video' && this.found.video === undefined) this.found.video = m[2];
      if (m[1] === 'Audio' && this.found.audio === undefined) {
        this.found.audio = m[2];
        const hz = /, (\d+) Hz/.exec(text);
        this.found.audioSampleRate = hz ? Number(hz[1]) : undefined;
      }
    }
    return false;
  }

  get layout(): SourceLayout | undefined {
    return this.state === 'done' ? { ...this.found } : undefined;
  }
}

/** True when a run built for `planned` would record `actual` differently (other codecs). */
export function layoutDiffers(planned: SourceLayout, actual: SourceLayout, policy: RtspAudioPolicy): boolean {
  if (planned.video !== actual.video) return true;
  if (policy === 'drop') return false;
  return planned.audio !== actual.audio;
}
