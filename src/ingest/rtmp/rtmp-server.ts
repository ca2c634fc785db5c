/**
 * Our publish-only RTMP server: a TCP listener with connection caps (total and per address), a
 * shared budget for bytes held in partial messages, one sweep timer for every connection's
 * time-outs, and a veto on each publish. Several instances can live in one process.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { ErrorCode } from '../../errors.js';
import { listenOn } from '../../util/listen.js';
import { LogBudget, suppressedField } from '../../util/log-budget.js';
import type { Logger } from '../../util/logger.js';
import type { PublishDecision, PublishInfo, PublishRequest, PublishSink, RejectReason } from '../types.js';
import type { RtmpErrorReason } from './errors.js';
import { RtmpConnection, type ConnectionHost } from './rtmp-connection.js';
import { DEFAULT_RTMP_LIMITS, type RtmpServerLimits } from './server-limits.js';

export interface RtmpServerOptions {
  host: string;
  port: number;
  logger: Logger;
  limits?: Partial<RtmpServerLimits>;
  authorize(req: PublishRequest): PublishDecision;
  /** Called for each accepted publish, before NetStream.Publish.Start: returns where its media goes. */
  onPublish(info: PublishInfo): PublishSink;
}

export interface RtmpServerEvents {
  rejected: [r: { app: string; stream: string; remote: string; reason: RejectReason }];
  protocolError: [e: { reason: RtmpErrorReason; remote: string }];
  /** A connection was refused at accept: too many in total or from its address. */
  connectionRefused: [e: { reason: 'max-connections' | 'max-connections-per-address'; remote: string }];
  unpublish: [info: PublishInfo];
}

/** Publish ids sort by start time (spool sessions and objects list in order) and are unique across restarts. */
function newPublishId(): string {
  return `${Date.now().toString(36).padStart(9, '0')}-${randomBytes(4).toString('hex')}`;
}

export class RtmpServer extends EventEmitter<RtmpServerEvents> {
  readonly limits: RtmpServerLimits;
  private readonly opts: RtmpServerOptions;
  private readonly log: Logger;
  /** Warnings a peer can cause (refusals, protocol errors): at most 20 a minute per reason. */
  readonly logBudget = new LogBudget();
  private readonly server: Server;
  private readonly connections = new Set<RtmpConnection>();
  private readonly perAddress = new Map<string, number>();
  private readonly byPublish = new Map<string, RtmpConnection>();
  private heldTotal = 0;
  private sweep: NodeJS.Timeout | undefined;
  private address_: AddressInfo | undefined;

  constructor(opts: RtmpServerOptions) {
    super();
    this.opts = opts;
    this.limits = { ...DEFAULT_RTMP_LIMITS, ...opts.limits };
    this.log = opts.logger.child({ component: 'rtmp' });
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  /** Bytes all connections hold in partial messages right now. */
  get heldBytes(): number {
    return this.heldTotal;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  async listen(): Promise<AddressInfo> {
    await listenOn(this.server, this.opts.port, this.opts.host, 'RTMP', ErrorCode.IngestPortInUse);
    this.server.on('error', (err) => this.log.error({ err }, 'rtmp listener error'));
    const l = this.limits;
    // Time-outs are checked by one timer for all connections, at a quarter of the shortest one.
    const every = Math.max(20, Math.min(1000, Math.min(l.handshakeTimeoutMs, l.publishTimeoutMs, l.mediaTimeoutMs) / 4));
    this.sweep = setInterval(() => {
      const now = Date.now();
      for (const c of this.connections) c.tick(now);
    }, every);
    this.sweep.unref();
    this.address_ = this.server.address() as AddressInfo;
    this.log.info({ host: this.address_.address, port: this.address_.port, limits: l }, 'rtmp server listening');
    return this.address_;
  }

  get port(): number {
    return this.address_?.port ?? this.opts.port;
  }

  private accept(socket: Socket): void {
    const addr = socket.remoteAddress ?? '?';
    const remote = `${addr}:${socket.remotePort ?? 0}`;
    const l = this.limits;
    const fromAddr = this.perAddress.get(addr) ?? 0;
    const refused = this.connections.size >= l.maxConnections ? 'max-connections' as const
      : fromAddr >= l.maxConnectionsPerAddress ? 'max-connections-per-address' as const : undefined;
    if (refused) {
      socket.on('error', () => {});
      socket.destroy();
      this.emit('connectionRefused', { reason: refused, remote });
      const dropped = this.logBudget.take(`refused:${refused}`);
      if (dropped !== undefined) {
        this.log.warn({ remote, reason: refused, connections: this.connections.size, fromAddress: fromAddr, ...suppressedField(dropped) }, 'rtmp connection refused');
      }
      return;
    }
    this.perAddress.set(addr, fromAddr + 1);
    const host: ConnectionHost = {
      limits: l,
      log: this.log,
      logBudget: this.logBudget,
      authorize: (req) => this.opts.authorize(req),
      onPublish: (info, conn) => {
        this.byPublish.set(info.id, conn);
        const sink = this.opts.onPublish(info);
        return {
          packet: (p, at) => sink.packet(p, at),
          end: () => {
            if (this.byPublish.get(info.id) !== conn) return;
            this.byPublish.delete(info.id);
            sink.end();
            this.emit('unpublish', info);
          },
        };
      },
      onRejected: (r) => this.emit('rejected', r),
      onProtocolError: (reason, from) => this.emit('protocolError', { reason, remote: from }),
      onHeldBytes: (delta) => this.onHeldBytes(delta, conn),
      onClose: (c) => {
        this.connections.delete(c);
        const n = (this.perAddress.get(addr) ?? 1) - 1;
        if (n <= 0) this.perAddress.delete(addr);
        else this.perAddress.set(addr, n);
      },
      newPublishId,
    };
    const conn = new RtmpConnection(socket, host);
    this.connections.add(conn);
  }

  private onHeldBytes(delta: number, conn: RtmpConnection): void {
    this.heldTotal += delta;
    if (delta > 0 && this.heldTotal > this.limits.maxHeldBytesTotal) conn.overBudget();
  }

  /** Streams publishing now. */
  publishing(): PublishInfo[] {
    return [...this.byPublish.values()].flatMap((c) => (c.publishing ? [c.publishing] : []));
  }

  /** Disconnects one publish (its pipeline gave up on it). */
  kickPublish(publishId: string, why: string): void {
    this.byPublish.get(publishId)?.kick(why);
  }

  /** Disconnects every publisher of a stream (e.g. it was removed from the config). */
  kick(stream: string, why: string): void {
    for (const c of [...this.byPublish.values()]) if (c.publishing?.stream === stream) c.kick(why);
  }

  /** Stops listening, ends every publish (their sinks get end()) and closes every connection. */
  async close(): Promise<void> {
    if (this.sweep) clearInterval(this.sweep);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of [...this.connections]) c.shutdown();
    await closed;
  }
}
