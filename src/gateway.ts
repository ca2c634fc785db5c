import type { ServerResponse } from 'node:http';
import { SessionAppender, type Continuation, type ObjectEnd } from './appender/session-appender.js';
import { TimelineShift } from './container/fmp4/timeline-shift.js';
import { TsTimelineShift } from './container/ts/ts-timeline-shift.js';
import type { Config, StreamConfig, StreamDefaults } from './config/index.js';
import { planReload, type ReloadPlan } from './config/reload-plan.js';
import { HttpServer, sendJson } from './http/http-server.js';
import { RtmpServer } from './ingest/rtmp/rtmp-server.js';
import { RtspSource, withCredentials, type RtspSessionInfo, type RtspSessionSink } from './ingest/rtsp/index.js';
import type { PublishDecision, PublishInfo, PublishRequest } from './ingest/types.js';
import { clipRoute } from './http/clip-route.js';
import { recordingsRoute } from './http/recordings-route.js';
import { AccessControl, MAX_SIGNED_TTL_SECONDS } from './http/access.js';
import { liveRoute, vodRoute } from './http/hls-routes.js';
import { MEDIA_PREFIX, mediaRoute } from './http/media-route.js';
import { addWebRoutes, deny } from './http/web-routes.js';
import { LiveWindow } from './playback/live-window.js';
import { GatewayMetrics } from './metrics/metrics.js';
import { locateFfmpeg } from './remux/ffmpeg-path.js';
import { AppendcastError, ErrorCode } from './errors.js';
import type { SessionSpool } from './spool/session-spool.js';
import { dropLogMessage } from './spool/drop-ledger.js';
import { Spool } from './spool/spool.js';
import type { JournalIo } from './spool/types.js';
import { createStore } from './store/create-store.js';
import { QueuedStore } from './store/queued-store.js';
import type { AppendableStore } from './store/types.js';
import type { RemuxChoice } from './stream/remux-choice.js';
import { PublishFeed } from './stream/publish-feed.js';
import { PublishSession } from './stream/publish-session.js';
import { SessionRecorder, type SessionSummary } from './stream/session-recorder.js';
import { constantTimeEqual } from './util/constant-time.js';
import { suppressedField } from './util/log-budget.js';
import type { Logger } from './util/logger.js';

/** Sessions kept per stream for /api/v1/streams after they end. */
const HISTORY_PER_STREAM = 20;
/** A publish whose remuxer fails more often than this in a minute is dropped. */
const RESTARTS_PER_MINUTE = 5;
/** On shutdown, how long to wait for the spools to drain before leaving the rest for the next start. */
const SHUTDOWN_DRAIN_MS = 10_000;

export interface GatewayAddresses {
  rtmp: { host: string; port: number };
  http: { host: string; port: number };
}

interface SessionView {
  id: string;
  stream: string;
  summary: SessionSummary | null;
  appender: SessionAppender;
  objects: string[];
  recovered: boolean;
}

/**
 * Wires the stages for a config: RTMP ingest → per-publish session (remux, split, spool) →
 * per-session appender (batch, append, reconcile, roll over) → store; plus /metrics, /healthz and
 * /api/v1/streams on the HTTP port. Sessions left in the spool by a previous run (a crash) drain in
 * the background once the gateway is up.
 *
 * Lifecycle: the constructor builds every component and does no I/O; start() starts them, all or
 * nothing; close() stops them in the order the bytes flow.
 */
export class Gateway {
  /** The running config: the one given, or the last one applyConfig() took. */
  get config(): Config {
    return this.current;
  }
  private current: Config;
  readonly metrics: GatewayMetrics;
  readonly store: AppendableStore;
  private readonly log: Logger;
  private ffmpegPath = '';
  /** The running config's streams by id (replaced whole by a reload). */
  private streams: Map<string, StreamConfig>;
  private readonly ingest: RtmpServer;
  private readonly feeds = new Map<string, PublishFeed>();
  private readonly http: HttpServer;
  private readonly access: AccessControl;
  /** Live HLS windows by stream, fed by the appenders' index lines. */
  private readonly liveWindows = new Map<string, LiveWindow>();
  private readonly spool: Spool;
  private readonly live = new Map<string, PublishSession>();
  /** Pulled streams: one RTSP source each, and its live recording sessions. */
  private readonly pulls = new Map<string, RtspSource>();
  private readonly pulling = new Map<string, { stream: string; recorder: SessionRecorder }>();
  /** Per stream: the session that ended last, which a reconnect within the grace may continue. */
  private readonly predecessors = new Map<string, Predecessor>();
  /** Summaries of sessions that ended before their appender started (it waited for a predecessor). */
  private readonly summaries = new Map<string, SessionSummary>();
  /** Per session: resolves with where its appender left its object once it finished (null if closed). */
  private readonly objectEnds = new Map<string, { promise: Promise<ObjectEnd | null>; resolve: (e: ObjectEnd | null) => void }>();
  /** Remuxer restart times per publish (bounded restarts). */
  private readonly restarts = new Map<string, number[]>();
  private readonly sessions = new Map<string, SessionView>();
  private readonly history = new Map<string, SessionView[]>();
  private state: 'new' | 'starting' | 'started' | 'closed' = 'new';
  private starting: Promise<GatewayAddresses> | undefined;
  private closing: Promise<void> | undefined;

  /** `spoolIo`: how journal segments are opened (tests inject disk faults). */
  constructor(config: Config, log: Logger, hooks: { spoolIo?: JournalIo } = {}) {
    this.current = config;
    this.log = log;
    this.streams = new Map(config.streams.map((s) => [s.id, s]));
    this.metrics = new GatewayMetrics({
      streams: () => [...this.streams.keys()],
      spoolStreams: () => this.spool.streamNames(),
      unackedBytes: (stream) => this.spool.streamBytes(stream),
      oldestUnackedAt: (stream) => this.spool.oldestUnackedAt(stream),
      spoolDir: config.spool.dir,
      quota: { perStream: config.spool.quotaBytesPerStream, total: config.spool.quotaBytesTotal },
      store: () => (this.store instanceof QueuedStore ? this.store.pending : { running: 0, waiting: 0 }),
      rtmp: () => ({ connections: this.ingest.connectionCount, heldBytes: this.ingest.heldBytes }),
    });
    this.spool = new Spool(config.spool, {
      logger: log,
      ...(hooks.spoolIo ? { io: hooks.spoolIo } : {}),
      onDrop: (d) => {
        this.metrics.lostBytes.inc({ stream: this.streams.has(d.stream) ? d.stream : '_unknown', reason: d.reason }, d.bytes);
        this.log.warn({ ...d }, dropLogMessage(d.reason));
      },
    });
    // Every stream's appends share one bounded queue to the store.
    this.store = new QueuedStore(createStore(config.storage, log), config.storage.concurrency ?? 32);
    this.ingest = new RtmpServer({
      host: config.server.rtmp.host,
      port: config.server.rtmp.port,
      limits: config.server.rtmp.limits,
      logger: log,
      authorize: (req) => this.authorize(req),
      onPublish: (info) => this.startPublish(info),
    });
    this.ingest.on('rejected', (r) => {
      // Only configured stream ids become label values: an intruder cannot blow up cardinality.
      const label = this.streams.has(r.stream) ? r.stream : '_unknown';
      this.metrics.rejectedPublishes.inc({ stream: label, reason: r.reason });
      // Refusals are peer-caused: at most 20 lines a minute per reason (the metric counts them all).
      const dropped = this.ingest.logBudget.take(`rejected:${r.reason}`);
      if (dropped !== undefined) log.warn({ stream: r.stream.slice(0, 64), rtmpApp: r.app.slice(0, 64), remote: r.remote, reason: r.reason, ...suppressedField(dropped) }, 'publish refused');
    });
    this.ingest.on('protocolError', (e) => this.metrics.rtmpProtocolErrors.inc({ reason: e.reason }));
    this.ingest.on('connectionRefused', (e) => this.metrics.rtmpProtocolErrors.inc({ reason: e.reason }));
    this.access = new AccessControl(config.server.http.apiToken);
    this.http = new HttpServer(log)
      .route('/healthz', (_req, res) => sendJson(res, 200, { status: 'ok' }))
      .route('/metrics', async (_req, res) => {
        const { contentType, body } = await this.metrics.render();
        res.writeHead(200, { 'content-type': contentType });
        res.end(body);
      })
      .route('/api/v1/streams', (_req, res) => sendJson(res, 200, this.describe()))
      .route('/api/v1/recordings', recordingsRoute({
        store: this.store,
        keyTemplateOf: (id) => this.streams.get(id)?.keyTemplate,
        isGrowing: (key) => [...this.sessions.values()].some((v) => v.appender.objectKey === key),
      }))
      .route('/api/v1/clip', clipRoute({ store: this.store, keyTemplateOf: (id) => this.streams.get(id)?.keyTemplate, ffmpegPath: () => this.ffmpegPath }))
      .route('/api/v1/sign', (_req, res, url) => this.signUrl(res, url))
      .guard((req, url) => this.access.allows(req, url), deny);
    const hls = { store: this.store, access: this.access, keyTemplateOf: (id: string) => this.streams.get(id)?.keyTemplate, liveWindowOf: (id: string) => this.liveWindows.get(id) };
    this.http.prefix('/live/', liveRoute(hls)).prefix('/vod/', vodRoute(hls)).prefix(MEDIA_PREFIX, mediaRoute(this.store));
    addWebRoutes(this.http, this.access);
    // Every series at 0 from the start: the first event of a kind is then a visible increase.
    for (const s of config.streams) this.metrics.initStream(s.id, { enabled: s.enabled, pulled: Boolean(s.source) });
  }

  /** One RTSP source per enabled pulled stream, each reconnecting on its own. */
  private startPulls(): void {
    for (const s of this.streams.values()) if (s.enabled && s.source) this.startPull(s);
  }

  private startPull(s: StreamConfig): void {
    const src = s.source;
    if (!src) return;
    const url = src.user !== undefined ? withCredentials(src.url, src.user, src.password) : src.url;
    const source = new RtspSource({
      streamId: s.id, url, transport: src.transport, audio: s.audio, format: s.format, ffmpegPath: this.ffmpegPath,
      stallTimeoutMs: src.stallTimeoutSeconds * 1000, fragmentDurationMs: s.fragmentDurationMs, logger: this.log,
      backoff: { baseMs: src.reconnectBaseSeconds * 1000, maxMs: src.reconnectMaxSeconds * 1000 },
    }, (info) => this.startPulledSession(s, info));
    source.on('up', () => this.metrics.sourceUp.set({ stream: s.id }, 1));
    source.on('down', () => this.metrics.sourceUp.set({ stream: s.id }, 0));
    source.on('reconnect', (reason) => this.metrics.sourceReconnects.inc({ stream: s.id, reason }));
    this.pulls.set(s.id, source);
    source.start();
  }

  /**
   * Takes a reloaded config, unless something only read at start differs (`plan.needsRestart`
   * non-empty: nothing is applied). Streams added start (RTMP publishes accepted, pulls started);
   * removed or disabled ones stop: publishers are disconnected and pulls closed, and their sessions
   * drain from the spool to the end of their objects as on any disconnect. Changed settings apply
   * from each stream's next publish (a pulled stream is reconnected with them at once).
   */
  applyConfig(next: Config): ReloadPlan {
    const plan = planReload(this.current, next);
    if (plan.needsRestart.length > 0) return plan;
    if (this.state !== 'started') throw new AppendcastError(ErrorCode.GatewayState, `gateway applyConfig() when ${this.state}`);
    const before = this.streams;
    this.current = next;
    this.streams = new Map(next.streams.map((s) => [s.id, s]));
    this.noteStreamsInMetrics(before, this.streams);
    this.log.level = next.log.level;
    for (const s of plan.stop) this.stopStream(s.id);
    const pulls = [...plan.start, ...plan.change.map((c) => c.after)].filter((s) => s.source);
    for (const s of pulls) {
      // A changed pull reconnects with its new settings once the old source has flushed and let go.
      const old = this.pulls.get(s.id);
      this.pulls.delete(s.id);
      void (old?.close() ?? Promise.resolve()).then(() => {
        if (this.state === 'started' && this.streams.get(s.id) === s && !this.pulls.has(s.id)) this.startPull(s);
      });
    }
    return plan;
  }

  /** Series of streams new to the config start at 0; appendcast_stream_enabled follows the config. */
  private noteStreamsInMetrics(before: ReadonlyMap<string, StreamConfig>, after: ReadonlyMap<string, StreamConfig>): void {
    for (const [id, s] of after) {
      const was = before.get(id);
      if (!was || Boolean(was.source) !== Boolean(s.source)) this.metrics.initStream(id, { enabled: s.enabled, pulled: Boolean(s.source) });
      else if (was.enabled !== s.enabled) this.metrics.streamEnabled.set({ stream: id }, s.enabled ? 1 : 0);
    }
    for (const id of before.keys()) if (!after.has(id)) this.metrics.streamEnabled.remove({ stream: id });
  }

  /** A stream leaves the config (or is disabled): its publisher is disconnected, its pull closed. */
  private stopStream(id: string): void {
    this.ingest.kick(id, 'the stream was removed from the config or disabled');
    const pull = this.pulls.get(id);
    this.pulls.delete(id);
    void pull?.close();
  }

  /** One ffmpeg run of a pulled stream: its own spool session and appender, like a publish. */
  private startPulledSession(stream: StreamConfig, info: RtspSessionInfo): RtspSessionSink {
    const spool = this.spool.createSession(stream.id, info.id);
    const recorder = new SessionRecorder({
      sessionId: info.id, publishId: info.id, stream: stream.id, startedAt: info.startedAt, spool, metrics: this.metrics,
      logger: this.log.child({ stream: stream.id, session: info.id }), sha256: this.config.spool.sessionSha256,
    });
    recorder.summary.remux = 'ffmpeg';
    // The previous run ended (and flushed) before this one connected: continue its timeline when
    // within the grace, by rewriting the times in our copy (ffmpeg was spawned before we knew).
    const pred = this.takePredecessor(stream, info.startedAt);
    const start = pred?.p.flushedNow?.(pred.gapMs / 1000) ?? null;
    const base = start?.base ?? null;
    if (base !== null) recorder.shiftBy(stream.format === 'mpegts' ? new TsTimelineShift(base) : new TimelineShift(base));
    const continuation = this.continuationFor(pred, Promise.resolve(base), Promise.resolve(start));
    this.pulling.set(info.id, { stream: stream.id, recorder });
    this.metrics.streamUp.set({ stream: stream.id }, 1);
    spool.start().then(() => continuation).then((c) => this.startAppender(spool, false, c, stream), (err: unknown) => {
      this.log.error({ err, stream: stream.id, session: info.id }, 'cannot open the spool for this pulled session');
    });
    return {
      bytes: (chunk) => recorder.events.onBytes(chunk),
      outputs: (outs) => recorder.events.onOutputs(outs),
      end: (exit) => {
        this.notePredecessor(stream.id, info.id, Date.now(), recorder.finish(exit).then(() => (gap: number) => recorder.continueAt(gap)));
        void recorder.finish(exit).then((summary) => {
          this.pulling.delete(info.id);
          this.metrics.streamUp.set({ stream: stream.id }, 0);
          this.noteSummary(stream.id, summary);
        });
      },
    };
  }

  /** A new publish: its feed (the sink the RTMP server writes into) and its first remuxer session. */
  private startPublish(info: PublishInfo): PublishFeed {
    // The stream's settings as of this publish: a reload applies from the next one.
    const feed = new PublishFeed(info, this.startRemuxerSession(info, this.streams.get(info.stream)!, 0), (last) => {
      this.feeds.delete(info.id);
      this.restarts.delete(info.id);
      this.notePredecessor(info.stream, last.id, Date.now(), last.finished().then(() => (gap: number) => last.continueAt(gap)));
    });
    this.feeds.set(info.id, feed);
    return feed;
  }

  /** A session of `stream` ended at `endedAt`: a reconnect within the grace may continue its object. */
  private notePredecessor(stream: string, sessionId: string, endedAt: number, flushed: Promise<ContinueAt>): void {
    const objectEnd = this.objectEndOf(sessionId).promise;
    this.predecessors.set(stream, { sessionId, endedAt, flushed, objectEnd, flushedNow: null });
    void flushed.then((f) => {
      const p = this.predecessors.get(stream);
      if (p?.sessionId === sessionId) p.flushedNow = f;
    });
  }

  /** The predecessor a session starting now continues, if within the grace (it is then used up). */
  private takePredecessor(stream: StreamConfig, startedAt: number): { p: Predecessor; gapMs: number } | undefined {
    const p = this.predecessors.get(stream.id);
    if (!p) return undefined;
    this.predecessors.delete(stream.id);
    const gapMs = Math.max(0, startedAt - p.endedAt);
    if (stream.reconnectGraceSeconds <= 0 || gapMs > stream.reconnectGraceSeconds * 1000) return undefined;
    return { p, gapMs };
  }

  private objectEndOf(sessionId: string): { promise: Promise<ObjectEnd | null>; resolve: (e: ObjectEnd | null) => void } {
    let e = this.objectEnds.get(sessionId);
    if (!e) {
      let resolve!: (x: ObjectEnd | null) => void;
      const promise = new Promise<ObjectEnd | null>((r) => { resolve = r; });
      e = { promise, resolve };
      this.objectEnds.set(sessionId, e);
    }
    return e;
  }

  /** The continuation an appender gets, once both the new timeline base and the old object's end are known. */
  private continuationFor(pred: { p: Predecessor; gapMs: number } | undefined, base: Promise<number | null>, start: Promise<ContinueStart | null> | undefined): Promise<Continuation | undefined> {
    if (!pred) return Promise.resolve(undefined);
    return base.then(async (b) => {
      if (b === null) return undefined; // the new session restarted its timeline: a new object
      const end = await pred.p.objectEnd;
      // The gap as applied (rounded up to whole frames), which the index reports.
      const applied = (await start)?.gap;
      return end ? { ...end, gapMs: applied !== undefined ? applied * 1000 : pred.gapMs } : undefined;
    });
  }

  /**
   * One remuxer session of a publish: remuxer → its own spool session, drained by its own appender
   * into its own objects. The first carries the publish id; an ffmpeg remuxer that dies or stalls
   * while the camera still publishes is replaced by the next (`<publish>-r1`, …), fed from the
   * camera's last keyframe, at most RESTARTS_PER_MINUTE times a minute, then the publish is dropped
   * (the camera reconnects).
   */
  private startRemuxerSession(info: PublishInfo, stream: StreamConfig, n: number, choice?: RemuxChoice): PublishSession {
    const sessionId = n === 0 ? info.id : `${info.id}-r${n}`;
    // The spool session takes entries at once (bounded, in its writer's queue) while its directory
    // is created: nothing waits in the publish session.
    const spool = this.spool.createSession(stream.id, sessionId);
    // A new publish within the grace after the last one continues its timeline (and, with the same
    // init segment, its object); a replacement remuxer mid-publish never does.
    const pred = n === 0 ? this.takePredecessor(stream, info.startedAt) : undefined;
    const start = pred?.p.flushed.then((at) => at(pred.gapMs / 1000));
    const timelineBase = start?.then((c) => c?.base ?? null);
    const session = new PublishSession({
      info, sessionId, stream, spool, metrics: this.metrics, logger: this.log, ffmpegPath: this.ffmpegPath,
      stallTimeoutMs: this.config.ffmpeg.stallTimeoutSeconds * 1000, ...(choice ? { choice } : {}), sha256: this.config.spool.sessionSha256,
      ...(timelineBase ? { timelineBase } : {}),
    });
    this.live.set(sessionId, session);
    session.start(); // it fails the publish if the spool session cannot start
    const continuation = this.continuationFor(pred, session.timelineBase, start);
    void spool.start().then(() => continuation).then((c) => this.startAppender(spool, false, c, stream), () => undefined);
    session.on('finished', (summary) => {
      this.live.delete(sessionId);
      this.noteSummary(stream.id, summary);
    });
    session.on('failed', () => this.ingest.kickPublish(info.id, 'the camera\'s media cannot be recorded'));
    session.on('remuxerLost', (reason, lostChoice) => {
      const feed = this.feeds.get(info.id);
      if (this.closing || !feed) return;
      const now = Date.now();
      const recent = (this.restarts.get(info.id) ?? []).filter((t) => now - t < 60_000);
      if (recent.length >= RESTARTS_PER_MINUTE) {
        this.log.error({ stream: stream.id, publish: info.id, reason, restarts: recent.length }, 'remuxer keeps failing; dropping the publish (the camera will reconnect)');
        this.ingest.kickPublish(info.id, 'the remuxer keeps failing');
        return;
      }
      this.restarts.set(info.id, [...recent, now]);
      const next = this.startRemuxerSession(info, stream, n + 1, lostChoice);
      if (feed.replace(next)) {
        this.log.warn({ stream: stream.id, publish: info.id, reason, session: next.id }, 'remuxer replaced; recording goes on from the last keyframe in a new object');
      } else {
        void next.end(); // the publish ended meanwhile
      }
    });
    return session;
  }

  /** A session's summary, for the API: on its view, or kept until its appender (a continuation waits) starts. */
  private noteSummary(stream: string, summary: SessionSummary): void {
    const view = this.sessions.get(summary.id) ?? this.history.get(stream)?.find((v) => v.id === summary.id);
    if (view) view.summary = summary;
    else this.summaries.set(summary.id, summary);
  }

  private authorize(req: PublishRequest): PublishDecision {
    if (req.app !== this.config.server.rtmp.app) return { ok: false, reason: 'wrong-app' };
    const cfg = this.streams.get(req.stream);
    if (!cfg) return { ok: false, reason: 'unknown-stream' };
    if (!cfg.enabled) return { ok: false, reason: 'disabled' };
    if (cfg.source) return { ok: false, reason: 'pulled-stream' };
    if (!keysEqual(req.key, cfg.key)) return { ok: false, reason: 'bad-key' };
    if ([...this.feeds.values()].some((f) => f.info.stream === req.stream)) return { ok: false, reason: 'already-publishing' };
    return { ok: true };
  }

  /** How a stream's objects are written; a stream that has a spool but is no longer in the config is drained with the defaults. */
  private streamSettings(id: string): StreamDefaults {
    return this.streams.get(id) ?? this.config.streamDefaults;
  }

  /** `settings`: those of the session's publish (a reload since must not move its objects); else the stream's now. */
  private startAppender(spool: SessionSpool, recovered: boolean, continuation?: Continuation, settings?: StreamDefaults): void {
    const s = settings ?? this.streamSettings(spool.stream);
    const stream = spool.stream;
    const appender = new SessionAppender({
      stream, spool, store: this.store, keyTemplate: s.keyTemplate, contentType: s.contentType,
      flush: s.flush, rollover: s.rollover, retry: this.config.retry, logger: this.log,
      ...(continuation ? { continuation } : {}),
    });

    const view: SessionView = { id: spool.sessionId, stream, summary: this.summaries.get(spool.sessionId) ?? null, appender, objects: [], recovered };
    this.summaries.delete(spool.sessionId);
    this.sessions.set(spool.sessionId, view);
    const h = this.history.get(stream) ?? [];
    h.push(view);
    if (h.length > HISTORY_PER_STREAM) h.shift();
    this.history.set(stream, h);
    const m = this.metrics;
    appender.on('appended', (info) => m.appended(stream, info));
    appender.on('continued', (info) => {
      view.objects.push(info.key);
      m.continuations.inc({ stream });
    });
    appender.on('objectOpened', (info) => {
      view.objects.push(info.key);
      m.objectOpened(stream);
    });
    appender.on('indexed', ({ key, lines }) => {
      let w = this.liveWindows.get(stream);
      if (!w) this.liveWindows.set(stream, (w = new LiveWindow()));
      w.push(key, lines);
    });
    appender.on('rollover', (reason) => m.rollovers.inc({ stream, reason }));
    appender.on('reconciled', (outcome) => m.reconciliations.inc({ stream, outcome }));
    appender.on('appendError', ({ code }) => m.appendFailed(stream, code));
    appender.on('halted', (halted) => m.appenderHalted.set({ stream }, halted ? 1 : 0));
    appender.on('failed', ({ error }) => m.appendFailed(stream, error.code));
    appender.on('finished', () => {
      this.sessions.delete(spool.sessionId);
      const busy = [...this.sessions.values()].some((v) => v.stream === stream);
      const live = [...this.feeds.values()].some((f) => f.info.stream === stream) || [...this.pulling.values()].some((p) => p.stream === stream);
      if (!busy && !live) {
        m.streamDrained(stream);
        this.liveWindows.get(stream)?.end();
      }
    });
    appender.start();
    // After start(): whenDone() is the run's end (before it, it would answer 'closed' at once).
    const objectEnd = this.objectEndOf(spool.sessionId);
    void appender.whenDone().then((end) => {
      objectEnd.resolve(end === 'finished' ? appender.objectEnd() : null);
      this.objectEnds.delete(spool.sessionId);
    });
  }

  /**
   * All or nothing: ffmpeg located, the spool recovered (recovered sessions sealed: their remuxers
   * are gone), HTTP and then RTMP listening. If a step fails, everything started is closed, in
   * reverse, and the error propagates. Only then do recovered sessions drain, in the background: a
   * store that is down never holds start up.
   */
  start(): Promise<GatewayAddresses> {
    if (this.state !== 'new') return Promise.reject(new AppendcastError(ErrorCode.GatewayState, `gateway start() when ${this.state}`));
    this.state = 'starting';
    this.starting = this.startAll();
    return this.starting;
  }

  private async startAll(): Promise<GatewayAddresses> {
    const started: Array<{ what: string; close: () => Promise<void> }> = [{ what: 'store', close: () => this.store.close() }];
    try {
      const ff = locateFfmpeg({ configured: this.config.ffmpeg.path });
      this.ffmpegPath = ff.path;
      this.log.info({ ffmpeg: ff }, 'ffmpeg located');
      started.push({ what: 'spool', close: () => this.spool.close() });
      const recovered = await this.spool.start();
      for (const s of recovered) {
        this.log.info({ stream: s.stream, session: s.sessionId, bytes: s.bytes, sealed: s.sealed }, 'recovered a spooled session from the previous run');
        if (!s.sealed) await s.seal();
      }
      const a = await this.http.listen(this.config.server.http.port, this.config.server.http.host);
      started.push({ what: 'http', close: () => this.http.close() });
      // Last: from here on publishes come in, and pulls start.
      const r = await this.ingest.listen();
      this.state = 'started';
      this.startPulls();
      for (const s of recovered) this.startAppender(s, true);
      const addrs = { rtmp: { host: r.address, port: r.port }, http: { host: a.address, port: a.port } };
      this.log.info({ ...addrs, storage: this.config.storage.kind, streams: [...this.streams.keys()], recovered: recovered.length }, 'gateway started');
      return addrs;
    } catch (err) {
      this.state = 'closed';
      this.log.error({ err }, 'gateway failed to start; closing what was started');
      for (const { what, close } of started.reverse()) {
        await close().catch((e: unknown) => this.log.warn({ err: e, what }, 'could not close after a failed start'));
      }
      throw err;
    }
  }

  /**
   * Stops taking publishes, lets every live remuxer flush into the spool, gives the appenders a
   * little time to drain, then stops them: whatever is left stays in the spool for the next start.
   */
  close(): Promise<void> {
    this.closing ??= this.closeAll();
    return this.closing;
  }

  private async closeAll(): Promise<void> {
    if (this.state === 'starting') await this.starting?.catch(() => undefined); // a failed start closed itself
    if (this.state !== 'started') {
      if (this.state === 'new') await this.store.close();
      this.state = 'closed';
      return;
    }
    this.state = 'closed';
    this.log.info({ live: this.live.size, sessions: this.sessions.size }, 'gateway stopping');
    const live = [...this.live.values()];
    await this.ingest.close();
    // Pulled sources stop their ffmpeg (it flushes the last fragment into the spool) and end their sessions.
    await Promise.all([...this.pulls.values()].map((p) => p.close()));
    await Promise.all([...this.pulling.values()].map((p) => p.recorder.finish(null)));
    await Promise.all(live.map((s) => s.end()));
    const appenders = [...this.sessions.values()].map((v) => v.appender);
    const drained = Promise.all(appenders.map((a) => a.whenDone()));
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), SHUTDOWN_DRAIN_MS).unref());
    if ((await Promise.race([drained, timer])) === 'timeout') {
      this.log.warn({ pending: this.sessions.size }, 'store did not take everything in time; the rest stays in the spool for the next start');
    }
    await Promise.all(appenders.map((a) => a.close()));
    await this.spool.close();
    await this.http.close();
    await this.store.close();
    this.log.info('gateway stopped');
  }

  /** `GET /api/v1/sign?path=/vod/cam1/index.m3u8?start=…&ttl=S`: a signed expiring URL of the gateway, for players that cannot send the token. */
  private signUrl(res: ServerResponse, url: URL): void {
    const q = url.searchParams;
    const path = q.get('path') ?? '';
    const ttl = q.has('ttl') ? Number(q.get('ttl')) : 3600;
    if (!path.startsWith('/') || path.startsWith('//') || !(ttl > 0 && ttl <= MAX_SIGNED_TTL_SECONDS)) {
      return sendJson(res, 400, { error: `path= (a path of this gateway) and ttl= (1..${MAX_SIGNED_TTL_SECONDS} s) are required` });
    }
    const expiresAt = Date.now() + ttl * 1000;
    sendJson(res, 200, { url: this.access.sign(path, expiresAt), expires: new Date(Math.ceil(expiresAt / 1000) * 1000).toISOString() });
  }

  /** Bytes not yet in the store, and how old the oldest of them is (0 when everything is acknowledged; the same as appendcast_lag_seconds). */
  private lagOf(stream: string): { bytes: number; seconds: number } {
    const oldest = this.spool.oldestUnackedAt(stream);
    return { bytes: this.spool.streamBytes(stream), seconds: oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000) };
  }

  describe(): unknown {
    const publishing = new Set([...this.feeds.values()].map((f) => f.info.stream));
    for (const p of this.pulling.values()) publishing.add(p.stream);
    const ids = new Set([...this.streams.keys(), ...this.history.keys()]);
    return {
      streams: [...ids].map((id) => {
        const s = this.streams.get(id);
        const pull = this.pulls.get(id);
        return {
          id, configured: s !== undefined, enabled: s?.enabled ?? false, publishing: publishing.has(id),
          lag: this.lagOf(id),
          ...(pull ? { source: { kind: 'rtsp', url: pull.displayUrl, up: pull.up, pid: pull.pid ?? null } } : {}),
          sessions: (this.history.get(id) ?? []).map((v) => ({
            id: v.id,
            ...(v.summary ?? {}),
            recovered: v.recovered,
            /** Not everything this session recorded is in the store yet. */
            draining: this.sessions.has(v.id),
            remuxerPid: this.live.get(v.id)?.pid ?? (this.pulling.has(v.id) ? this.pulls.get(id)?.pid ?? null : null),
            remux: v.summary?.remux ?? this.live.get(v.id)?.remuxKind ?? null,
            halted: v.appender.halted,
            objects: v.objects,
            currentObject: v.appender.objectKey ?? null,
            position: v.appender.position,
          })),
        };
      }),
    };
  }
}

/** Constant-time comparison of a presented key with the configured one (no timing oracle on keys). */
function keysEqual(given: string | undefined, expected: string): boolean {
  // An empty configured key never matches (the schema requires one for pushed streams; belt and braces).
  return given !== undefined && expected !== '' && constantTimeEqual(given, expected);
}

interface ContinueStart { base: number; gap: number }
type ContinueAt = (gapSeconds: number) => ContinueStart | null;

/** A session that ended, which a reconnect within the grace may continue. */
interface Predecessor {
  sessionId: string;
  /** When its input ended (wall clock): the gap is measured from here. */
  endedAt: number;
  /** Once it flushed: where a successor after a gap (s) starts on the timeline (null: nothing recorded). */
  flushed: Promise<ContinueAt>;
  flushedNow: ContinueAt | null;
  objectEnd: Promise<ObjectEnd | null>;
}
