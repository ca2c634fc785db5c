import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { AppendcastError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../util/logger.js';
import { loadNms, type NmsBroadcast, type NmsModule, type NmsSession } from './nms-internals.js';

/*
 * The one adapter around node-media-server (pinned 4.4.3). Its quirks stay here:
 * - one instance per process (module singletons): RtmpIngest refuses a second start;
 * - it has no publish veto hook, so authorization rides on its signed-URL check: in prePublish we
 *   stamp a valid signature (our own per-process secret) on accepted sessions and a bad one on the
 *   rest, so rejected publishes never become publishers, never fire postPublish and never enter
 *   the 30 s "reconnecting" grace state;
 * - the grace window (and its timestamp-rewriting "resume") is set to 0: every publish is a new
 *   remuxer session and a new object;
 * - EADDRINUSE makes it call process.exit(1), so the port is probed first;
 * - its store installs SIGINT/SIGTERM handlers that re-raise the signal: removed, the gateway
 *   owns shutdown;
 * - a refused publisher's packets are still parsed and broadcast until its socket closes: its
 *   session is pointed at an inert broadcast;
 * - its console logger is routed into pino.
 */

export type RejectReason = 'unknown-stream' | 'bad-key' | 'wrong-app' | 'disabled' | 'already-publishing';
export type PublishDecision = { ok: true } | { ok: false; reason: RejectReason };

/** Receives the FLV byte stream of one publish: header, metadata, sequence headers, then tags. */
export interface PublishSink {
  write(buf: Buffer): void;
  /** The publisher went away (or the ingest closed): no more bytes will come. */
  end(): void;
}

export interface PublishInfo {
  id: string;
  stream: string;
  remote: string;
  startedAt: number;
}

export interface RtmpIngestOptions {
  host: string;
  port: number;
  /** The RTMP application name cameras publish to: rtmp://host:port/<app>/<stream>?key=... */
  app?: string;
  /** node-media-server's own JSON store directory (kept out of the cwd). */
  stateDir: string;
  logger: Logger;
  authorize(stream: string, key: string | undefined, app: string): PublishDecision;
  /** Called synchronously for each accepted publish, before any media flows. */
  onPublish(info: PublishInfo): PublishSink;
}

export interface RtmpIngestEvents {
  rejected: [info: { stream: string; app: string; remote: string; reason: RejectReason }];
  unpublish: [info: PublishInfo];
}

let instanceRunning = false;

const INERT_BROADCAST = Object.freeze({
  broadcastMessage: () => {},
  donePublish: () => {},
  donePlay: () => {},
  postPlay: () => 'refused',
  postPublish: () => 'refused',
});

async function assertPortFree(host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      reject(new AppendcastError(ErrorCode.IngestPortInUse,
        err.code === 'EADDRINUSE' ? `RTMP port ${host}:${port} is already in use` : `cannot listen on RTMP ${host}:${port}: ${err.message}`,
        { cause: err }));
    });
    srv.listen(port, host, () => srv.close(() => resolve()));
  });
}

export class RtmpIngest extends EventEmitter<RtmpIngestEvents> {
  private readonly opts: RtmpIngestOptions & { app: string };
  private readonly secret = randomBytes(16).toString('hex');
  private nms: NmsModule | undefined;
  private instance: InstanceType<NmsModule['NodeMediaServer']> | undefined;
  private readonly active = new Map<string, { session: NmsSession; tap: NmsSession; sink: PublishSink; info: PublishInfo; broadcast: NmsBroadcast }>();
  private readonly accepted = new WeakSet<NmsSession>();
  private readonly nmsListeners: Array<[string, (s: NmsSession) => void]> = [];

  constructor(opts: RtmpIngestOptions) {
    super();
    this.opts = { app: 'live', ...opts };
    this.instance = undefined;
  }

  get port(): number {
    return this.opts.port;
  }

  async start(): Promise<void> {
    if (instanceRunning) throw new Error('node-media-server allows one instance per process; close the other RtmpIngest first');
    await assertPortFree(this.opts.host, this.opts.port);
    await mkdir(this.opts.stateDir, { recursive: true });
    instanceRunning = true;
    const nms = loadNms();
    this.nms = nms;
    const log = this.opts.logger.child({ component: 'node-media-server' });
    nms.logger.log = (message: string, level = 'info') => {
      // NMS is chatty at info; its errors are about one connection, not the gateway.
      if (level === 'error') log.warn(message);
      else if (level === 'warn') log.info(message);
      else log.debug(message);
    };
    const instance = new nms.NodeMediaServer({
      bind: this.opts.host,
      rtmp: { port: this.opts.port },
      store: { path: this.opts.stateDir },
      webadmin: { enable: false },
      // Plays are refused too (only our in-process tap, which has no ip, bypasses the check):
      // camera video is not re-served to whoever connects.
      auth: { publish: true, play: true, secret: this.secret },
    });
    nms.logger.level = 'trace'; // its constructor forces 'debug'; we filter in pino instead
    this.on_('prePublish', (s) => this.onPrePublish(s));
    this.on_('postPublish', (s) => this.onPostPublish(s));
    await instance.run();
    const store = instance.store;
    if (store._onSignal) {
      process.removeListener('SIGINT', store._onSignal);
      process.removeListener('SIGTERM', store._onSignal);
    }
    this.instance = instance;
  }

  private on_(event: string, fn: (s: NmsSession) => void): void {
    this.nms!.Context.eventEmitter.on(event, fn);
    this.nmsListeners.push([event, fn]);
  }

  private sign(streamPath: string): string {
    const exp = Math.floor(Date.now() / 1000) + 600;
    return `${exp}-${createHash('md5').update(`${streamPath}-${exp}-${this.secret}`).digest('hex')}`;
  }

  private onPrePublish(session: NmsSession): void {
    const query = session.streamQuery ?? {};
    const key = typeof query['key'] === 'string' ? query['key'] : undefined;
    // Keep the camera's key out of NMS's session objects (its API and logs can show them).
    delete query['key'];
    const broadcast = this.nms!.Context.broadcasts.get(session.streamPath);
    if (broadcast) broadcast.publishGraceMs = 0;
    let decision: PublishDecision = this.opts.authorize(session.streamName, key, session.streamApp);
    if (decision.ok && (broadcast?.publisher ?? null) !== null) decision = { ok: false, reason: 'already-publishing' };
    if (decision.ok) {
      query['sign'] = this.sign(session.streamPath);
      this.accepted.add(session);
    } else {
      query['sign'] = 'rejected';
      // NMS keeps parsing a refused publisher's packets until its socket closes and feeds them to
      // the path's broadcast (GOP cache and subscribers), which would splice an intruder's (or a
      // duplicate publisher's) frames into a live recording. Give the session a sink that drops them.
      session.broadcast = INERT_BROADCAST;
      this.emit('rejected', { stream: session.streamName, app: session.streamApp, remote: session.ip, reason: decision.reason });
    }
    session.streamQuery = query;
  }

  private onPostPublish(session: NmsSession): void {
    if (!this.accepted.has(session)) return;
    const broadcast = this.nms!.Context.broadcasts.get(session.streamPath);
    if (!broadcast) return;
    const info: PublishInfo = { id: session.id, stream: session.streamName, remote: session.ip, startedAt: Date.now() };
    const sink = this.opts.onPublish(info);
    const tap = this.newTap(session.streamPath, sink);
    this.active.set(session.id, { session, tap, sink, info, broadcast });
    broadcast.postPlay(tap); // synchronously sends the FLV header and any cached headers
    const finish = () => this.finish(session.id);
    if (session.socket) session.socket.once('close', finish);
  }

  private newTap(streamPath: string, sink: PublishSink): NmsSession {
    const tap = new this.nms!.BaseSession();
    tap.protocol = 'flv';
    tap.ip = ''; // no ip: NMS treats it as internal (no play events, no play auth)
    tap.streamPath = streamPath;
    tap.sendBuffer = (buf: Buffer) => sink.write(buf);
    return tap;
  }

  /**
   * Points a live publish at a new sink (its remuxer died or stalled): the old tap is detached
   * (its sink is not ended: it is gone already) and a new one attached, which receives a valid
   * start — FLV header, metadata, sequence headers, then the cached GOP from the last keyframe.
   * False when the publish has ended meanwhile.
   */
  retap(publishId: string, sink: PublishSink): boolean {
    const a = this.active.get(publishId);
    if (!a) return false;
    a.broadcast.donePlay(a.tap);
    a.tap = this.newTap(a.session.streamPath, sink);
    a.sink = sink;
    a.broadcast.postPlay(a.tap);
    return true;
  }

  /** Disconnects one publish (e.g. its remuxer keeps failing). */
  kickPublish(publishId: string): void {
    this.active.get(publishId)?.session.close();
  }

  private finish(id: string): void {
    const a = this.active.get(id);
    if (!a) return;
    this.active.delete(id);
    a.broadcast.donePlay(a.tap);
    a.sink.end();
    this.emit('unpublish', a.info);
  }

  /** Streams currently publishing. */
  publishing(): PublishInfo[] {
    return [...this.active.values()].map((a) => a.info);
  }

  /** Disconnect a publisher (e.g. its stream was removed from the config). */
  kick(stream: string): void {
    for (const a of this.active.values()) if (a.info.stream === stream) a.session.close();
  }

  async close(): Promise<void> {
    for (const id of [...this.active.keys()]) this.finish(id);
    if (this.instance) await this.instance.stop();
    for (const [ev, fn] of this.nmsListeners) this.nms?.Context.eventEmitter.removeListener(ev, fn);
    this.nmsListeners.length = 0;
    if (this.instance) instanceRunning = false;
    this.instance = undefined;
  }
}
