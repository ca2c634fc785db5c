import type { Config } from './config/index.js';

/**
 * Stream keys written in config/appendcast.example.yaml (its `${CAM1_KEY:-change-me}` default): a
 * gateway running with one of them lets anybody who has read the README publish.
 * test/unit/startup-warnings.test.ts checks that this list covers every key of the example.
 */
export const EXAMPLE_STREAM_KEYS: readonly string[] = ['change-me'];

/** Loopback: only this machine reaches it (127.0.0.0/8, ::1, localhost). */
function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h);
}

export interface StartupWarning {
  msg: string;
  fields: Record<string, unknown>;
}

/**
 * What an operator should fix before going live, logged at warn once at start: never a refusal to
 * start (a lab setup may mean it). Names the streams, never their keys.
 */
export function startupWarnings(config: Config): StartupWarning[] {
  const out: StartupWarning[] = [];
  const exampleKeyed = config.streams.filter((s) => s.enabled && !s.source && EXAMPLE_STREAM_KEYS.includes(s.key)).map((s) => s.id);
  if (exampleKeyed.length > 0) {
    out.push({
      msg: 'stream key is the example config\'s default: anybody can publish; set a secret key (e.g. CAM1_KEY)',
      fields: { streams: exampleKeyed },
    });
  }
  const { host, port, apiToken } = config.server.http;
  // Every address (0.0.0.0, ::) or a reachable one: anybody on that network reads the API.
  if (!isLoopback(host) && apiToken === null) {
    out.push({
      msg: 'the HTTP API listens beyond loopback without server.http.apiToken: set one, bind it to 127.0.0.1, or put it behind a proxy',
      fields: { host, port },
    });
  }
  return out;
}
