import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';

/*
 * The parts of node-media-server 4.4.3's internals that the adapter uses. NMS ships no types and
 * these are deep imports, which is why the version is pinned exactly in package.json. Only
 * rtmp-ingest.ts may import this module.
 */

export interface NmsSession {
  id: string;
  ip: string;
  protocol: string;
  streamApp: string;
  streamName: string;
  streamPath: string;
  streamQuery: Record<string, unknown>;
  socket?: Socket;
  /** The broadcast an RTMP session feeds its packets into; read on every packet. */
  broadcast?: unknown;
  sendBuffer: (buf: Buffer) => void;
  close: () => void;
}

export interface NmsBroadcast {
  publishGraceMs: number;
  publisher: NmsSession | null;
  postPlay(session: NmsSession): string | null;
  donePlay(session: NmsSession): void;
}

export interface NmsContext {
  config: Record<string, unknown>;
  broadcasts: Map<string, NmsBroadcast>;
  sessions: Map<string, NmsSession>;
  eventEmitter: EventEmitter;
}

export interface NmsLogger {
  level: string;
  log(message: string, level?: string): void;
}

export interface NmsInstance {
  store: { _onSignal?: (signal: NodeJS.Signals) => void; _onExit?: () => void };
  run(): Promise<void>;
  stop(): Promise<void>;
}

export interface NmsModule {
  NodeMediaServer: new (config: Record<string, unknown>) => NmsInstance;
  Context: NmsContext;
  logger: NmsLogger;
  BaseSession: new () => NmsSession;
  version: string;
}

export function loadNms(): NmsModule {
  const require = createRequire(import.meta.url);
  return {
    NodeMediaServer: require('node-media-server') as NmsModule['NodeMediaServer'],
    Context: require('node-media-server/src/core/context.js') as NmsContext,
    logger: require('node-media-server/src/core/logger.js') as NmsLogger,
    BaseSession: require('node-media-server/src/session/base_session.js') as NmsModule['BaseSession'],
    version: (require('node-media-server/package.json') as { version: string }).version,
  };
}
