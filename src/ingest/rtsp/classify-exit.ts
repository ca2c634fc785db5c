/**
 * Why an RTSP pull attempt ended, from ffmpeg's (or ffprobe's) stderr, exit and what our watchdog
 * saw. The reasons are a closed set: they become the `reason` label of
 * `appendcast_source_reconnects_total`, so nothing free-form (hosts, paths, messages) ever gets in.
 *
 * Messages matched (ffmpeg 5.1, measured against GStreamer's RTSP server; the same strings are in
 * 7.1's libavformat/rtsp.c, tcp.c and libavutil/error.c):
 *   `method DESCRIBE failed: 401 Unauthorized`, `Server returned 401 Unauthorized (authorization failed)`
 *   `method DESCRIBE failed: 404 Not Found`, `Server returned 404 Not Found`
 *   `method SETUP failed: 461 Unsupported transport` (then `Protocol not supported`)
 *   `Connection to tcp://H:P?timeout=… failed: Connection refused`, `Failed to resolve hostname …`
 *   `Could not find tag for codec …`, `Tag hvc1 incompatible with output codec id …`
 */

export const RTSP_DOWN_REASONS = [
  /** The server refused our credentials (401, 403, 407). Fix the URL's user/password. */
  'auth',
  /** No such stream on the server (404, 410): the path is wrong or the channel is off. */
  'not-found',
  /** No RTSP answer: connection refused, no route, DNS failure, connect timeout. */
  'unreachable',
  /** The server answered with another RTSP error (461 transport, 5xx, 453…), or not in RTSP at all. */
  'rtsp-error',
  /** Connected, then nothing (no media) for longer than stallTimeoutMs. */
  'stall',
  /** The stream ended or the server closed the connection after media had started. */
  'eof',
  /** The source's codecs cannot be recorded with this audio policy, or changed under us. */
  'codec',
  /** ffmpeg failed in any other way (crashed, killed by someone else, failed to start). */
  'exit',
] as const;

export type RtspDownReason = (typeof RTSP_DOWN_REASONS)[number];

/** How far an attempt got: nothing from the server yet / the RTSP session is set up / media came out. */
export type AttemptPhase = 'connecting' | 'opened' | 'streaming';

export interface AttemptEnd {
  /** stderr lines (any order of levels), most recent last; only a bounded tail is needed. */
  lines: readonly string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  phase: AttemptPhase;
  /** Our watchdog killed it (no progress for too long). */
  watchdog: boolean;
}

export interface Classified {
  reason: RtspDownReason;
  /** The stderr line the reason was read from, if any (still to be redacted by the caller). */
  evidence: string | undefined;
}

/** RTSP status code → reason. */
export function reasonForStatus(status: number): RtspDownReason {
  if (status === 401 || status === 403 || status === 407) return 'auth';
  if (status === 404 || status === 410) return 'not-found';
  return 'rtsp-error';
}

const STATUS = /(?:method [A-Z_]+ failed: |Server returned )(\d{3})\b/;
const STATUS_CLASS = /Server returned (4|5)XX /;
const UNREACHABLE = /Connection refused|No route to host|Network is unreachable|Host is unreachable|Failed to resolve hostname|Name or service not known|Temporary failure in name resolution|No address associated with hostname|Cannot assign requested address/i;
const TIMED_OUT = /timed out|Operation timed out|ETIMEDOUT/i;
const CODEC =
  /Could not find tag for codec|incompatible with output codec|codec not currently supported in container|Could not write header|Error initializing output stream|Error while opening encoder|Decoder \(codec [^)]*\) not found|Unknown encoder|Automatic encoder selection failed/i;
const NOT_RTSP = /Invalid data found when processing input|invalid response|Unsupported RTSP version/i;

/** The first reason some stderr line gives, scanning from the most recent line backwards. */
export function classifyLines(lines: readonly string[], phase: AttemptPhase): Classified | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    const s = STATUS.exec(line);
    if (s) return { reason: reasonForStatus(Number(s[1])), evidence: line };
    if (STATUS_CLASS.test(line)) return { reason: 'rtsp-error', evidence: line };
  }
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (CODEC.test(line)) return { reason: 'codec', evidence: line };
    if (UNREACHABLE.test(line)) return { reason: 'unreachable', evidence: line };
    if (TIMED_OUT.test(line)) return { reason: phase === 'connecting' ? 'unreachable' : 'stall', evidence: line };
    if (phase === 'connecting' && NOT_RTSP.test(line)) return { reason: 'rtsp-error', evidence: line };
  }
  return undefined;
}

/** Why an ffmpeg/ffprobe run ended, when it was not stopped by us. */
export function classifyAttemptEnd(end: AttemptEnd): Classified {
  if (end.watchdog) return { reason: end.phase === 'connecting' ? 'unreachable' : 'stall', evidence: undefined };
  const fromLines = classifyLines(end.lines, end.phase);
  if (fromLines) return fromLines;
  // ffmpeg ends a network input that closed (or failed mid-read) like a file that ended: exit 0.
  if (end.code === 0 && end.phase !== 'connecting') return { reason: 'eof', evidence: undefined };
  const lastError = [...end.lines].reverse().find((l) => /\[(error|fatal)\]/.test(l));
  return { reason: 'exit', evidence: lastError };
}

/** A sentence for the log line that says what to do about it. */
export function describeReason(reason: RtspDownReason): string {
  switch (reason) {
    case 'auth':
      return 'the camera refused the credentials (check user and password in the source URL)';
    case 'not-found':
      return 'the camera has no stream at this path (check the path in the source URL)';
    case 'unreachable':
      return 'the camera could not be reached (host down, wrong host or port, or no route)';
    case 'rtsp-error':
      return 'the camera answered with an RTSP error (try another transport, or check the camera)';
    case 'stall':
      return 'the camera sent nothing for longer than the stall timeout';
    case 'eof':
      return 'the camera ended the stream or closed the connection';
    case 'codec':
      return 'the stream cannot be recorded as it is (codec not supported by the container with this audio policy, or codecs changed)';
    case 'exit':
      return 'ffmpeg failed';
  }
}
