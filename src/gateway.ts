import { join } from 'node:path';
import type { Config, StreamConfig } from './config/index.js';
import { HttpServer, sendJson } from './http/http-server.js';
import { RtmpIngest, type PublishDecision } from './ingest/rtmp/rtmp-ingest.js';
import { GatewayMetrics } from './metrics/metrics.js';
import { locateFfmpeg } from './remux/ffmpeg-path.js';
import { createStore } from './store/create-store.js';
import type { AppendableStore } from './store/types.js';
import { PublishSession, type SessionSummary } from './stream/publish-session.js';
import type { Logger } from './util/logger.js';

/** Sessions kept per stream for /api/v1/streams after they end. */
const HISTORY_PER_STREAM = 20;

export interface GatewayAddresses {
  rtmp: { host: string; port: number };
  http: { host: string; port: number };
}

/**
 * Wires the stages for a config: RTMP ingest → per-publish session (remux, split, append) →
 * store, plus /metrics, /healthz and /api/v1/streams on the HTTP port.
 */
export class Gateway {
  readonly config: Config;
  readonly metrics = new GatewayMetrics();
  readonly store: AppendableStore;
  private readonly log: Logger;
  private readonly ffmpegPath: string;
  private readonly streams: Map<string, StreamConfig>;
  private readonly ingest: RtmpIngest;
  private readonly http: HttpServer;
  private readonly live = new Map<string, PublishSession>();
  private readonly history = new Map<string, SessionSummary[]>();
  private httpAddress: { host: string; port: number } | undefined;
  private closing: Promise<void> | undefined;

  constructor(config: Config, log: Logger) {
    this.config = config;
    this.log = log;
    const ff = locateFfmpeg({ configured: config.ffmpeg.path });
    this.ffmpegPath = ff.path;
    log.info({ ffmpeg: ff }, 'ffmpeg located');
    this.streams = new Map(config.streams.map((s) => [s.id, s]));
    this.store = createStore(config.storage);
    this.ingest = new RtmpIngest({
      host: config.server.rtmp.host,
      port: config.server.rtmp.port,
      stateDir: join(config.dataDir, 'node-media-server'),
      logger: log,
      authorize: (stream, key, app) => this.authorize(stream, key, app),
      onPublish: (info) => {
        const session = new PublishSession({
          info, stream: this.streams.get(info.stream)!, store: this.store, metrics: this.metrics, logger: log, ffmpegPath: this.ffmpegPath,
        });
        this.live.set(info.id, session);
        session.on('finished', (summary) => {
          this.live.delete(info.id);
          const h = this.history.get(summary.stream) ?? [];
          h.push(summary);
          if (h.length > HISTORY_PER_STREAM) h.shift();
          this.history.set(summary.stream, h);
        });
        return session.sink();
      },
    });
    this.ingest.on('rejected', (r) => {
      // Only configured stream ids become label values: an intruder cannot blow up cardinality.
      const label = this.streams.has(r.stream) ? r.stream : '_unknown';
      this.metrics.rejectedPublishes.inc({ stream: label, reason: r.reason });
      log.warn({ stream: r.stream, app: r.app, remote: r.remote, reason: r.reason }, 'publish refused');
    });
    this.http = new HttpServer(log)
      .route('/healthz', (_req, res) => sendJson(res, 200, { status: 'ok' }))
      .route('/metrics', async (_req, res) => {
        const { contentType, body } = await this.metrics.render();
        res.writeHead(200, { 'content-type': contentType });
        res.end(body);
      })
      .route('/api/v1/streams', (_req, res) => sendJson(res, 200, this.describe()));
    for (const s of config.streams) this.metrics.streamUp.set({ stream: s.id }, 0);
  }

  private authorize(stream: string, key: string | undefined, app: string): PublishDecision {
    if (app !== 'live') return { ok: false, reason: 'wrong-app' };
    const cfg = this.streams.get(stream);
    if (!cfg) return { ok: false, reason: 'unknown-stream' };
    if (!cfg.enabled) return { ok: false, reason: 'disabled' };
    return key === cfg.key ? { ok: true } : { ok: false, reason: 'bad-key' };
  }

  async start(): Promise<GatewayAddresses> {
    await this.ingest.start();
    const a = await this.http.listen(this.config.server.http.port, this.config.server.http.host);
    this.httpAddress = { host: a.address, port: a.port };
    const addrs = { rtmp: { host: this.config.server.rtmp.host, port: this.ingest.port }, http: this.httpAddress };
    this.log.info({ ...addrs, storage: this.config.storage.kind, streams: [...this.streams.keys()] }, 'gateway started');
    return addrs;
  }

  /** Stops taking publishes, lets every live remuxer flush and every append land, then closes. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.log.info({ live: this.live.size }, 'gateway stopping');
      const sessions = [...this.live.values()];
      await this.ingest.close();
      await Promise.all(sessions.map((s) => s.stop()));
      await this.http.close();
      await this.store.close();
      this.log.info('gateway stopped');
    })();
    return this.closing;
  }

  describe(): { streams: Array<{ id: string; enabled: boolean; publishing: boolean; sessions: SessionSummary[] }> } {
    const publishing = new Set(this.ingest.publishing().map((p) => p.stream));
    return {
      streams: [...this.streams.values()].map((s) => ({
        id: s.id, enabled: s.enabled, publishing: publishing.has(s.id), sessions: this.history.get(s.id) ?? [],
      })),
    };
  }
}
