/**
 * RTSP pull sources: `RtspSource` (one supervised ffmpeg per enabled stream, reconnecting with
 * capped exponential backoff and jitter), the closed set of down reasons (a metric label), and URL
 * parsing/redaction for config validation, logs, the API and metrics.
 */
export { RtspSource } from './rtsp-source.js';
export type { RtspSessionInfo, RtspSessionSink, RtspSourceEvents, RtspSourceOptions, RtspSourceStats } from './rtsp-source.js';
export { RTSP_DOWN_REASONS, describeReason } from './classify-exit.js';
export type { RtspDownReason } from './classify-exit.js';
export type { RtspAudioPolicy, RtspTransport, SourceLayout } from './ffmpeg-rtsp-args.js';
export { makeRedactor, parseRtspUrl, redactUrl, withCredentials } from './rtsp-url.js';
export type { Redactor, RtspUrl } from './rtsp-url.js';
