/**
 * A second, independent RTMP publisher for tests: GStreamer (`gst-launch-1.0 -e`) pushing a live test
 * pattern (+ tone) through x264 / AAC / flvmux into `rtmp2sink` (GStreamer's own RTMP client) or
 * `rtmpsink` (librtmp, the client inside many cameras and older tools). Its bytes on the wire differ
 * from ffmpeg's (test/helpers/camera.ts), which is the point.
 *
 * What each sink sends, captured by a logging TCP proxy in front of ffmpeg's RTMP listener
 * (GStreamer 1.22.0, Debian 12). `location` is split the same way by both sinks: the LAST path segment,
 * with any `?query` after it, is the stream name; everything between host:port and it is the app;
 * a query attached to an app segment stays in app and tcUrl. Neither sink moves or drops a query.
 *
 *   location rtmp://127.0.0.1:PORT/live/cam1?key=K1  (key in the stream name)
 *     rtmp2sink  connect {app:"live", tcUrl:"rtmp://127.0.0.1:PORT/live", flashVer:"LNX 10,0,32,18", type:"nonprivate"}
 *                releaseStream/FCPublish/publish "cam1?key=K1" (publish type "live"; transaction id 0)
 *     rtmpsink   connect {app:"live", tcUrl:"rtmp://127.0.0.1:PORT/live", type:"nonprivate"} (no flashVer)
 *                releaseStream/FCPublish/createStream/_checkbw/publish "cam1?key=K1" "live"
 *   location rtmp://127.0.0.1:PORT/live?key=K2/cam1  (key in the tcUrl)
 *     both       connect {app:"live?key=K2", tcUrl:"rtmp://127.0.0.1:PORT/live?key=K2"}, publish "cam1"
 *   location rtmp://127.0.0.1:PORT/app/inst/cam1?key=K4
 *     both       connect {app:"app/inst", tcUrl:"rtmp://127.0.0.1:PORT/app/inst"}, publish "cam1?key=K4"
 *
 * So a server that takes keys from the stream name's query AND from the app/tcUrl's query accepts both
 * sinks in both forms. ffmpeg's listener confirms it in its warnings: "Unexpected stream cam1?key=K1,
 * expecting cam1" and "App field don't match up: live?key=K2 <-> live" (it records anyway).
 *
 * Other wire facts seen there that an RTMP server must tolerate:
 * - flvmux (streamable=true) re-sends `@setDataFrame onMetaData` whenever upstream tags change
 *   (bitrates): 36-37 times in a 3 s publish, the same keys each time; it is not a new stream.
 * - A 3 s publish is 77 video messages (AVC sequence header, 75 frames, and at EOS an AVC
 *   end-of-sequence tag, AVCPacketType 2) and 143 audio messages (AAC sequence header + 142 frames);
 *   both start at timestamp 0, the first video frame 3-5 ms later.
 * - At EOS both send FCUnpublish then deleteStream, then close the socket; rtmp2sink's deleteStream
 *   carries the stream NAME string where the spec has the numeric stream id (rtmpsink sends 1).
 * - rtmp2sink sends Window Acknowledgement Size before releaseStream and Set Chunk Size 128 after publish.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export type GstRtmpSink = 'rtmp2sink' | 'rtmpsink';

export interface GstPublisherOptions {
  /** rtmp://host:port/app/stream[?query]; passed to the sink as written (see the doc comment above). */
  url: string;
  /** Media length: the sources stop after seconds × 25 buffers and the pipeline ends with EOS. */
  seconds: number;
  sink: GstRtmpSink;
  /** Add an AAC tone track (default true). */
  audio?: boolean;
  /** Key-frame interval in frames at 25 fps (default 25 = 1 s). */
  gop?: number;
  /**
   * flvmux's aggregator latency (default 300 ms). With 0, a late audio encoder (avenc_aac's first
   * frames, or a busy CPU) makes flvmux clamp audio timestamps to the video's it already sent:
   * duplicate or jittered audio DTS on the wire (seen: 80 80 80 80 85 106 … ms). Real, but not the default.
   */
  muxLatencyMs?: number;
}

export interface GstPublisher {
  proc: ChildProcess;
  /** Resolves with gst-launch's exit code (0 after a clean EOS, 1 on an element error) and its output. */
  done: Promise<{ code: number | null; stderr: string; stdout: string }>;
  /** SIGINT: gst-launch -e turns it into EOS, so the sink unpublishes cleanly; SIGKILL 3 s later if still alive. */
  stop(): void;
}

/** `gst-inspect-1.0 --exists` for each element (false too when GStreamer's tools are missing). */
export function gstElementsAvailable(names: readonly string[]): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const n of names) out[n] = spawnSync('gst-inspect-1.0', ['--exists', n], { timeout: 10_000, stdio: 'ignore' }).status === 0;
  return out;
}

let aacCache: string | null | undefined;

/**
 * The AAC encoder element to use: avenc_aac (gstreamer1.0-libav, built on ffmpeg's native encoder, in
 * Debian 12 and 13) first; voaacenc (plugins-bad, needs libvo-aacenc) and fdkaacenc are fallbacks.
 */
export function aacEncoder(): string | null {
  if (aacCache === undefined) {
    const has = gstElementsAvailable(['avenc_aac', 'voaacenc', 'fdkaacenc']);
    aacCache = Object.keys(has).find((k) => has[k]) ?? null;
  }
  return aacCache;
}

export function startGstPublisher(o: GstPublisherOptions): GstPublisher {
  if (!Number.isFinite(o.seconds) || o.seconds <= 0) throw new RangeError('seconds must be a positive number');
  const buffers = Math.round(o.seconds * 25);
  const gop = o.gop ?? 25;
  // librtmp reads options after the URL, space-separated; live=1 marks a live publish.
  const location = o.sink === 'rtmpsink' ? `${o.url} live=1` : o.url;
  // format=I420: otherwise videotestsrc and Debian's x264enc settle on 4:4:4 10-bit (High 4:4:4 Predictive).
  const desc = [
    `videotestsrc is-live=true pattern=smpte num-buffers=${buffers}`,
    '!', 'video/x-raw,format=I420,width=320,height=240,framerate=25/1',
    '!', `x264enc tune=zerolatency speed-preset=ultrafast key-int-max=${gop} bitrate=300`,
    '!', 'h264parse', '!', 'queue', '!', 'mux.',
  ];
  if (o.audio !== false) {
    const enc = aacEncoder();
    if (!enc) throw new Error('no GStreamer AAC encoder (avenc_aac, voaacenc or fdkaacenc) is installed');
    // 1920 samples at 48 kHz = 40 ms per buffer, so audio and video both run out after `seconds`.
    desc.push(
      `audiotestsrc is-live=true wave=sine freq=1000 samplesperbuffer=1920 num-buffers=${buffers}`,
      '!', 'audioconvert', '!', 'audioresample', '!', 'audio/x-raw,rate=48000,channels=1',
      '!', `${enc} bitrate=64000`, '!', 'aacparse', '!', 'queue', '!', 'mux.',
    );
  }
  const latencyNs = Math.round((o.muxLatencyMs ?? 300) * 1e6);
  desc.push(`flvmux name=mux streamable=true latency=${latencyNs}`, '!', o.sink, `location=${location}`);
  // One argv element per token: gst_parse_launchv escapes spaces inside an element, so librtmp's
  // "URL live=1" stays one property value without shell-style quotes, and the rest is split here.
  const argv = desc.flatMap((part) => (part.startsWith('location=') ? [part] : part.split(' ')));
  const proc = spawn('gst-launch-1.0', ['-e', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => { if (stdout.length < 64 * 1024) stdout += s; });
  let killTimer: NodeJS.Timeout | undefined;
  const kill = (): void => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); };
  // Bound: a sink that never drains (server stalled) must not outlive the test run.
  const lifetime = setTimeout(kill, (o.seconds + 30) * 1000);
  const done = new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) =>
    proc.once('close', (code) => {
      clearTimeout(lifetime);
      clearTimeout(killTimer);
      resolve({ code, stderr, stdout });
    }),
  );
  return {
    proc,
    done,
    stop: () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGINT');
      killTimer = setTimeout(kill, 3_000);
    },
  };
}
