import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { RTSP_DOWN_REASONS } from '../ingest/rtsp/classify-exit.js';
import {
  APPEND_ERROR_CODES, appendErrorCode, DROP_REASONS, RECONCILE_OUTCOMES, REJECT_REASONS, RESTART_REASONS, restartReason,
  ROLLOVER_REASONS, RTMP_CLOSE_REASONS, UNKNOWN_STREAM,
} from './label-values.js';
import { SpoolDiskUsage } from './spool-disk-usage.js';

/** What the metrics read at scrape time; every part optional (a bare GatewayMetrics exports zeros). */
export interface MetricsSources {
  /** The configured stream ids. */
  streams(): string[];
  /** Streams the spool holds data of (configured or left by a previous run). */
  spoolStreams(): string[];
  /** Payload bytes of the stream received from the remuxer and neither acknowledged by the store nor dropped. */
  unackedBytes(stream: string): number;
  /** Wall-clock ms at which the stream's oldest unacknowledged fragment arrived; undefined if there is none. */
  oldestUnackedAt(stream: string): number | undefined;
  /** Spool root: its size on disk per stream is read from here. */
  spoolDir: string | undefined;
  /** The spool quotas (payload bytes not yet acknowledged) past which the oldest fragments are dropped. */
  quota: { perStream: number; total: number } | undefined;
  /** Store requests running and waiting in the shared queue. */
  store(): { running: number; waiting: number };
  /** The RTMP server's open connections and bytes held in partial messages. */
  rtmp(): { connections: number; heldBytes: number };
}

const NO_SOURCES: MetricsSources = {
  streams: () => [], spoolStreams: () => [], unackedBytes: () => 0, oldestUnackedAt: () => undefined, spoolDir: undefined,
  quota: undefined, store: () => ({ running: 0, waiting: 0 }), rtmp: () => ({ connections: 0, heldBytes: 0 }),
};

/**
 * The gateway's Prometheus metrics (prefix appendcast_, label `stream`), on a registry of its own
 * so several gateways can live in one process (tests). Names follow docs/design.md; the Grafana
 * dashboard and config/prometheus/alerts.yml use exactly these. Every labelled series of a
 * configured stream exists from the start (initStream), at 0.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly lastFragmentAt = new Map<string, number>();
  private readonly src: MetricsSources;

  readonly streamUp = new Gauge({ name: 'appendcast_stream_up', help: '1 while the stream is publishing and recording', labelNames: ['stream'], registers: [this.registry] });
  readonly streamEnabled = new Gauge({ name: 'appendcast_stream_enabled', help: '1 for a configured, enabled stream (expected to publish), 0 for a configured, disabled one', labelNames: ['stream'], registers: [this.registry] });
  readonly ingestBytes = new Counter({ name: 'appendcast_ingest_bytes_total', help: 'Bytes received from the camera (FLV)', labelNames: ['stream'], registers: [this.registry] });
  readonly remuxBytes = new Counter({ name: 'appendcast_remux_bytes_total', help: 'Bytes the remuxer produced (fMP4)', labelNames: ['stream'], registers: [this.registry] });
  readonly fragments = new Counter({ name: 'appendcast_fragments_total', help: 'Media fragments split from the remuxer output', labelNames: ['stream'], registers: [this.registry] });
  readonly objectPosition = new Gauge({ name: 'appendcast_object_position_bytes', help: 'Acknowledged length of the stream\'s current object', labelNames: ['stream'], registers: [this.registry] });
  readonly appends = new Counter({ name: 'appendcast_appends_total', help: 'Successful appends', labelNames: ['stream'], registers: [this.registry] });
  readonly appendErrors = new Counter({ name: 'appendcast_append_errors_total', help: 'Failed appends by error code', labelNames: ['stream', 'code'], registers: [this.registry] });
  readonly appendDuration = new Histogram({
    name: 'appendcast_append_duration_seconds', help: 'Append request latency', labelNames: ['stream'], registers: [this.registry],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  });
  readonly fragmentAckLatency = new Histogram({
    name: 'appendcast_fragment_ack_latency_seconds', help: 'From a fragment being complete (in the spool) to the store acknowledging it, all streams',
    registers: [this.registry], buckets: [0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 10, 30, 60],
  });
  readonly objects = new Counter({ name: 'appendcast_objects_opened_total', help: 'Objects opened', labelNames: ['stream'], registers: [this.registry] });
  readonly lastObjectOpened = new Gauge({ name: 'appendcast_last_object_opened_timestamp_seconds', help: 'Unix time at which the stream\'s newest object was opened (absent until one is)', labelNames: ['stream'], registers: [this.registry] });
  readonly lostBytes = new Counter({ name: 'appendcast_dropped_bytes_total', help: 'Bytes that will never reach the store', labelNames: ['stream', 'reason'], registers: [this.registry] });
  readonly ffmpegRestarts = new Counter({ name: 'appendcast_ffmpeg_restarts_total', help: 'Remuxers replaced because they died or stalled while the camera was publishing', labelNames: ['stream', 'reason'], registers: [this.registry] });
  readonly rollovers = new Counter({ name: 'appendcast_rollovers_total', help: 'New objects opened for a reason other than a new publish', labelNames: ['stream', 'reason'], registers: [this.registry] });
  readonly reconciliations = new Counter({ name: 'appendcast_reconciliations_total', help: 'Appends of unknown outcome settled by HEAD, by outcome', labelNames: ['stream', 'outcome'], registers: [this.registry] });
  readonly appenderHalted = new Gauge({ name: 'appendcast_appender_halted', help: '1 while appends are halted by a non-retryable store error', labelNames: ['stream'], registers: [this.registry] });
  readonly rejectedPublishes = new Counter({ name: 'appendcast_rejected_publishes_total', help: 'Publish attempts refused', labelNames: ['stream', 'reason'], registers: [this.registry] });
  readonly continuations = new Counter({ name: 'appendcast_continuations_total', help: 'Reconnects within the grace whose recording went on in the same object', labelNames: ['stream'], registers: [this.registry] });
  readonly sourceUp = new Gauge({ name: 'appendcast_source_up', help: '1 while a pulled (RTSP) stream\'s source delivers media', labelNames: ['stream'], registers: [this.registry] });
  readonly sourceReconnects = new Counter({ name: 'appendcast_source_reconnects_total', help: 'Reconnects of pulled (RTSP) sources, by why the previous attempt ended', labelNames: ['stream', 'reason'], registers: [this.registry] });
  readonly configReloads = new Counter({ name: 'appendcast_config_reloads_total', help: 'Config reloads (SIGHUP or a change of the file), by result: applied, refused (needs a restart) or invalid', labelNames: ['result'], registers: [this.registry] });
  readonly rtmpProtocolErrors = new Counter({ name: 'appendcast_rtmp_protocol_errors_total', help: 'RTMP connections closed for breaking the protocol or a limit, by reason', labelNames: ['reason'], registers: [this.registry] });

  constructor(sources: Partial<MetricsSources> = {}) {
    const src = (this.src = { ...NO_SOURCES, ...sources });
    const perStream = (): string[] => [...new Set([...src.streams(), ...src.spoolStreams()])];
    const gauge = (name: string, help: string, collect: (this: Gauge) => void | Promise<void>): void => {
      new Gauge({ name, help, registers: [this.registry], collect });
    };
    const streamGauge = (name: string, help: string, value: (stream: string) => number): void => {
      new Gauge({
        name, help, labelNames: ['stream'], registers: [this.registry],
        collect() {
          this.reset(); // streams whose spool is gone (or that left the config) disappear
          for (const stream of perStream()) this.set({ stream }, value(stream));
        },
      });
    };

    gauge('appendcast_rtmp_connections', 'Open RTMP connections (publishing or not)', function () { this.set(src.rtmp().connections); });
    gauge('appendcast_rtmp_held_bytes', 'Bytes the RTMP server holds in partly received messages, all connections', function () { this.set(src.rtmp().heldBytes); });
    gauge('appendcast_store_requests_in_flight', 'Store requests running (all streams share one bounded queue)', function () { this.set(src.store().running); });
    gauge('appendcast_store_requests_queued', 'Store requests waiting for a slot in the shared queue', function () { this.set(src.store().waiting); });

    streamGauge('appendcast_lag_bytes', 'Payload bytes received from the remuxer and not yet acknowledged by the store (nor dropped): what the spool quotas count',
      (s) => src.unackedBytes(s));
    streamGauge('appendcast_lag_seconds', 'Age of the stream\'s oldest fragment not yet acknowledged by the store (0 when all are)', (s) => {
      const oldest = src.oldestUnackedAt(s);
      return oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000);
    });
    if (src.quota) {
      const q = src.quota;
      streamGauge('appendcast_spool_quota_bytes', 'spool.quotaBytesPerStream: unacknowledged bytes of one stream past which its oldest fragments are dropped', () => q.perStream);
      gauge('appendcast_spool_quota_all_streams_bytes', 'spool.quotaBytesTotal: unacknowledged bytes of all streams past which the biggest stream\'s oldest fragments are dropped', function () { this.set(q.total); });
    }
    const disk = src.spoolDir === undefined ? undefined : new SpoolDiskUsage(src.spoolDir, 1_000);
    new Gauge({
      name: 'appendcast_spool_bytes', labelNames: ['stream'], registers: [this.registry],
      help: 'Bytes the stream\'s spool directory occupies on disk: journals (frame overhead included), cursors, init copies, and anything retained (spool.retainAcked)',
      async collect() {
        const byStream = (await disk?.bytesByStream()) ?? new Map<string, number>();
        this.reset();
        for (const stream of new Set([...perStream(), ...byStream.keys()])) this.set({ stream }, byStream.get(stream) ?? 0);
      },
    });

    const since = this.lastFragmentAt;
    new Gauge({
      name: 'appendcast_last_fragment_age_seconds', labelNames: ['stream'], registers: [this.registry],
      help: 'Seconds since the newest fragment from the remuxer arrived (or since the stream started publishing, before its first)',
      collect() {
        this.reset();
        const now = Date.now();
        for (const [stream, t] of since) this.set({ stream }, Math.max(0, (now - t) / 1000));
      },
    });

    collectDefaultMetrics({ register: this.registry, prefix: 'appendcast_' });
    // prom-client's active handles/requests/resources totals are gauges named *_total, which
    // Prometheus' linter (promtool check metrics) rejects; each is the sum of its per-type
    // sibling (appendcast_nodejs_active_handles{type} …), so they go.
    for (const m of this.registry.getMetricsAsArray()) {
      const { name } = m as unknown as { name: string };
      if (m instanceof Gauge && name.endsWith('_total')) this.registry.removeSingleMetric(name);
    }

    for (const reason of REJECT_REASONS) this.rejectedPublishes.inc({ stream: UNKNOWN_STREAM, reason }, 0);
    for (const reason of DROP_REASONS) this.lostBytes.inc({ stream: UNKNOWN_STREAM, reason }, 0);
    for (const reason of RTMP_CLOSE_REASONS) this.rtmpProtocolErrors.inc({ reason }, 0);
  }

  /** Every series of a configured stream, at 0: the first event of any kind is then a visible increase. */
  initStream(stream: string, o: { enabled: boolean; pulled: boolean }): void {
    this.streamEnabled.set({ stream }, o.enabled ? 1 : 0);
    this.streamUp.set({ stream }, 0);
    this.appenderHalted.set({ stream }, 0);
    this.objectPosition.set({ stream }, 0);
    for (const c of [this.ingestBytes, this.remuxBytes, this.fragments, this.appends, this.objects, this.continuations]) c.inc({ stream }, 0);
    this.appendDuration.zero({ stream });
    for (const code of APPEND_ERROR_CODES) this.appendErrors.inc({ stream, code }, 0);
    for (const reason of DROP_REASONS) this.lostBytes.inc({ stream, reason }, 0);
    for (const reason of ROLLOVER_REASONS) this.rollovers.inc({ stream, reason }, 0);
    for (const outcome of RECONCILE_OUTCOMES) this.reconciliations.inc({ stream, outcome }, 0);
    for (const reason of REJECT_REASONS) this.rejectedPublishes.inc({ stream, reason }, 0);
    if (o.pulled) {
      this.sourceUp.set({ stream }, 0);
      for (const reason of RTSP_DOWN_REASONS) this.sourceReconnects.inc({ stream, reason }, 0);
    } else {
      for (const reason of RESTART_REASONS) this.ffmpegRestarts.inc({ stream, reason }, 0);
    }
  }

  /** A recording session of the stream started: the no-fragment clock runs from here until the first fragment. */
  sessionStarted(stream: string, at: number): void {
    if (!this.lastFragmentAt.has(stream)) this.lastFragmentAt.set(stream, at);
  }

  fragmentArrived(stream: string, at: number): void {
    this.fragments.inc({ stream });
    this.lastFragmentAt.set(stream, at);
  }

  remuxerRestarted(stream: string, reason: string): void {
    this.ffmpegRestarts.inc({ stream, reason: restartReason(reason) });
  }

  appendFailed(stream: string, code: string): void {
    this.appendErrors.inc({ stream, code: appendErrorCode(code) });
  }

  objectOpened(stream: string): void {
    this.objects.inc({ stream });
    this.objectPosition.set({ stream }, 0);
    this.lastObjectOpened.set({ stream }, Date.now() / 1000);
  }

  appended(stream: string, info: { bytes: number; nextPosition: number; durationMs: number; fragmentAgesMs: number[] }): void {
    this.appends.inc({ stream });
    for (const ms of info.fragmentAgesMs) this.fragmentAckLatency.observe(ms / 1000);
    this.appendDuration.observe({ stream }, info.durationMs / 1000);
    this.objectPosition.set({ stream }, info.nextPosition);
  }

  /** Everything the stream sent is in the store and it is not publishing: fragment age is no longer meaningful. */
  streamDrained(stream: string): void {
    this.lastFragmentAt.delete(stream);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
