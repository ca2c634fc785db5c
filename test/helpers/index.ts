/**
 * Every shared test helper, from one place: what exists, and the only copy of it. Waits are on
 * conditions (./wait.ts); servers bind port 0 and report their port (gateway, serve-oss, the RTSP
 * test server, mini OSS, the MSE page server).
 *
 * The test files import the one helper file they use rather than this module: it loads all of
 * them (the browser driver and the SDKs too, ~0.5 s per test file), which the unit tier must not pay.
 */
export * from './appender-fixture.js';
export * from './bytes.js';
export * from './camera.js';
export * from './cleanup.js';
export * from './container.js';
export * from './expect-error.js';
export * from './ffmpeg-amf-captures.js';
export * from './framemd5.js';
export * from './gateway-process.js';
export * from './gst-publisher.js';
export * from './log-lines.js';
export * from './media.js';
export * from './mini-oss.js';
export * from './mse-player.js';
export { freePort } from './net.js';
export * from './objects.js';
export * from './promtool.js';
export * from './remux-corpus.js';
export * from './rtmp-publisher.js';
export * from './rtsp-server.js';
export * from './serve-oss-process.js';
export * from './spool-journal.js';
export * from './store-conformance.js';
export * from './wait.js';
