import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The gateway's Prometheus metrics (prefix appendcast_, label `stream`), on a registry of its own
 * so several gateways can live in one process (tests). Names follow docs/design.md; the Grafana
 * dashboard uses exactly these.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly lastAckArrival = new Map<string, number>();
  private readonly lastFragmentAt = new Map<string, number>();

  readonly streamUp = new Gauge({ name: 'appendcast_stream_up', help: '1 while the stream is publishing and recording', labelNames: ['stream'], registers: [this.registry] });
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

  /**
   * `spoolBytes(stream)`: unacknowledged bytes in the stream's spool, read at scrape time;
   * `rtmp()`: the RTMP server's open connections and bytes held in partial messages.
   */
  constructor(
    spoolBytes: (stream: string) => number = () => 0,
    streams: () => string[] = () => [],
    rtmp: () => { connections: number; heldBytes: number } = () => ({ connections: 0, heldBytes: 0 }),
  ) {
    new Gauge({
      name: 'appendcast_rtmp_connections', help: 'Open RTMP connections (publishing or not)', registers: [this.registry],
      collect() { this.set(rtmp().connections); },
    });
    new Gauge({
      name: 'appendcast_rtmp_held_bytes', help: 'Bytes the RTMP server holds in partly received messages, all connections', registers: [this.registry],
      collect() { this.set(rtmp().heldBytes); },
    });
    for (const name of ['appendcast_spool_bytes', 'appendcast_lag_bytes']) {
      new Gauge({
        name, labelNames: ['stream'], registers: [this.registry],
        help: name === 'appendcast_spool_bytes' ? 'Bytes waiting in the stream\'s on-disk spool' : 'Bytes received from the remuxer and not yet acknowledged by the store',
        collect() {
          for (const stream of streams()) this.set({ stream }, spoolBytes(stream));
        },
      });
    }
    this.ageGauge('appendcast_lag_seconds', 'Now minus the wall-clock arrival time of the newest fragment the store acknowledged', this.lastAckArrival);
    this.ageGauge('appendcast_last_fragment_age_seconds', 'Now minus the arrival time of the newest fragment from the remuxer', this.lastFragmentAt);
    collectDefaultMetrics({ register: this.registry, prefix: 'appendcast_' });
  }

  /** A gauge computed at scrape time: seconds since the wall-clock time stored per stream. */
  private ageGauge(name: string, help: string, since: ReadonlyMap<string, number>): void {
    new Gauge({
      name, help, labelNames: ['stream'], registers: [this.registry],
      collect() {
        this.reset();
        const now = Date.now();
        for (const [stream, t] of since) this.set({ stream }, Math.max(0, (now - t) / 1000));
      },
    });
  }

  fragmentArrived(stream: string, at: number): void {
    this.fragments.inc({ stream });
    this.lastFragmentAt.set(stream, at);
  }

  appended(stream: string, info: { bytes: number; nextPosition: number; durationMs: number; newestReceivedAt: number; fragmentAgesMs: number[] }): void {
    this.appends.inc({ stream });
    for (const ms of info.fragmentAgesMs) this.fragmentAckLatency.observe(ms / 1000);
    this.appendDuration.observe({ stream }, info.durationMs / 1000);
    this.objectPosition.set({ stream }, info.nextPosition);
    const prev = this.lastAckArrival.get(stream) ?? 0;
    this.lastAckArrival.set(stream, Math.max(prev, info.newestReceivedAt));
  }

  /** Everything the stream sent is in the store and it is not publishing: lag is no longer meaningful. */
  streamDrained(stream: string): void {
    this.lastAckArrival.delete(stream);
    this.lastFragmentAt.delete(stream);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
