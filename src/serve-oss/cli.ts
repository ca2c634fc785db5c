/**
 * `appendcast serve-oss`: runs an OssLocalServer until SIGINT/SIGTERM. `startServeOss` does the work
 * and returns the running server (tests use it); `serveOssMain` adds the signal handling.
 */
import { parseArgs } from 'node:util';
import { AppendcastError, ErrorCode } from '../errors.js';
import { createLogger } from '../util/logger.js';
import type { Logger } from '../util/logger.js';
import { isValidBucketName } from './bucket-resolve.js';
import { parseCorsOrigin } from './cors.js';
import { FaultPlanError, parseFaultSpec } from './faults.js';
import type { FaultPlan } from './faults.js';
import { OssLocalServer } from './server.js';
import type { OssLocalServerAddress, OssLocalServerOptions } from './server.js';

export const SERVE_OSS_USAGE = `appendcast serve-oss — an OSS-compatible server (AppendObject, Put/Get/Head/Delete, ListObjectsV2) over a directory

Usage:
  appendcast serve-oss --root DIR --port N [options]

Options:
  --root DIR                 one sub-directory per bucket (created if missing)
  --port N                   port to listen on (0 picks a free one)
  --host ADDR                address to listen on (default 127.0.0.1)
  --bucket NAME              create this bucket at start (repeatable)
  --base-host NAME           also accept virtual-hosted requests to <bucket>.NAME
  --max-object-bytes N       size cap per object (default 5 GiB)
  --fsync always|never       durability of acknowledged writes (default always)
  --access-key-id ID         credentials that requests must be signed with (V1 or V4);
  --access-key-secret SECRET   default: OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET
                               (prefer the environment: arguments show up in ps)
  --anonymous                accept unsigned requests too (presigned URLs are still checked)
  --cors-origin ORIGIN       let pages on ORIGIN (e.g. http://127.0.0.1:8080, or *) GET/HEAD objects
                             cross-origin, Range included (repeatable). On real OSS set the same as a
                             bucket CORS rule (see docs/oss-protocol.md, "Presigned GET URLs").
  --log-level LEVEL          trace|debug|info|warn|error|silent (default info)
  -h, --help

Fault injection (TEST ONLY; off unless --faults is given):
  --faults SPEC              JSON FaultPlan, or 'rate=R:kind,…' (random faults on appends) and/or
                             'nth=N:kind' (the Nth append), ';'-separated; '{}' = control endpoints only.
                             kinds: drop-response, 503, 500-after-commit, delay, delay-no-commit,
                             reset-mid-body. Also serves (unsigned) GET /_appendcast/faults (stats
                             JSON) and POST /_appendcast/outage?ms=N (stop listening for N ms).
  --fault-seed N             seed of the random faults (default 1)
  --fault-delay-ms N         hold of delay / delay-no-commit (default 20000)
`;

/** Bad command line: the message says what to fix. */
export class ServeOssUsageError extends AppendcastError {
  constructor(message: string) {
    super(ErrorCode.ConfigInvalid, message);
  }
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
type Level = (typeof LEVELS)[number];

export interface ServeOssArgs {
  options: Omit<OssLocalServerOptions, 'logger'>;
  logLevel: Level;
  help: boolean;
}

function nonNegativeInt(flag: string, raw: string): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) throw new ServeOssUsageError(`${flag} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** Parses the arguments that follow `serve-oss`. Credentials come from the flags, else from `env`. */
export function parseServeOssArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = process.env): ServeOssArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        root: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        bucket: { type: 'string', multiple: true },
        'base-host': { type: 'string' },
        'max-object-bytes': { type: 'string' },
        fsync: { type: 'string' },
        'access-key-id': { type: 'string' },
        'access-key-secret': { type: 'string' },
        anonymous: { type: 'boolean' },
        'cors-origin': { type: 'string', multiple: true },
        'log-level': { type: 'string' },
        faults: { type: 'string' }, // [faults]
        'fault-seed': { type: 'string' },
        'fault-delay-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new ServeOssUsageError(err instanceof Error ? err.message : String(err));
  }
  const logLevel = (values['log-level'] ?? 'info') as Level;
  if (!LEVELS.includes(logLevel)) throw new ServeOssUsageError(`--log-level must be one of ${LEVELS.join(', ')}`);
  if (values.help) return { options: { root: '', port: 0 }, logLevel, help: true };

  if (!values.root) throw new ServeOssUsageError('--root DIR is required');
  if (values.port === undefined) throw new ServeOssUsageError('--port N is required');
  const port = nonNegativeInt('--port', values.port);
  if (port > 65535) throw new ServeOssUsageError('--port must be at most 65535');
  const fsync = values.fsync;
  if (fsync !== undefined && fsync !== 'always' && fsync !== 'never') throw new ServeOssUsageError('--fsync must be always or never');

  const id = values['access-key-id'];
  const secret = values['access-key-secret'];
  let credentials: Array<{ accessKeyId: string; accessKeySecret: string }> = [];
  if (id !== undefined || secret !== undefined) {
    // Never mix a flag with the environment: a half-given pair is a mistake.
    if (!id || !secret) throw new ServeOssUsageError('--access-key-id and --access-key-secret go together');
    credentials = [{ accessKeyId: id, accessKeySecret: secret }];
  } else if (env['OSS_ACCESS_KEY_ID'] && env['OSS_ACCESS_KEY_SECRET']) {
    credentials = [{ accessKeyId: env['OSS_ACCESS_KEY_ID'], accessKeySecret: env['OSS_ACCESS_KEY_SECRET'] }];
  }
  const anonymous = values.anonymous ?? false;
  if (credentials.length === 0 && !anonymous) {
    throw new ServeOssUsageError(
      'no credentials: pass --access-key-id and --access-key-secret, or set OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET, ' +
        'or pass --anonymous to accept unsigned requests',
    );
  }
  const options: Omit<OssLocalServerOptions, 'logger'> = { root: values.root, port, credentials, anonymous };
  if (values.host !== undefined) options.host = values.host;
  if (values.bucket !== undefined) {
    const bad = values.bucket.find((b) => !isValidBucketName(b));
    if (bad !== undefined) throw new ServeOssUsageError(`--bucket ${JSON.stringify(bad)}: a bucket name is 3-63 of a-z, 0-9 and -, starting and ending with a letter or digit`);
    options.buckets = values.bucket;
  }
  if (values['base-host'] !== undefined) options.baseHost = values['base-host'];
  if (values['cors-origin'] !== undefined) {
    try {
      options.corsOrigins = values['cors-origin'].map(parseCorsOrigin);
    } catch (err) {
      throw new ServeOssUsageError(`--cors-origin: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (values['max-object-bytes'] !== undefined) options.maxObjectBytes = nonNegativeInt('--max-object-bytes', values['max-object-bytes']);
  if (fsync !== undefined) options.fsync = fsync;
  const faults = faultPlanOf(values.faults, values['fault-seed'], values['fault-delay-ms']); // [faults]
  if (faults !== undefined) options.faults = faults;
  return { options, logLevel, help: false };
}

/** [faults] The plan of --faults, with --fault-seed / --fault-delay-ms applied. */
function faultPlanOf(spec: string | undefined, seed: string | undefined, delayMs: string | undefined): FaultPlan | undefined {
  if (spec === undefined) {
    if (seed !== undefined || delayMs !== undefined) throw new ServeOssUsageError('--fault-seed and --fault-delay-ms need --faults');
    return undefined;
  }
  let plan: FaultPlan;
  try {
    plan = parseFaultSpec(spec);
  } catch (err) {
    if (err instanceof FaultPlanError) throw new ServeOssUsageError(`--faults: ${err.message}`);
    throw err;
  }
  if (seed !== undefined) {
    if (plan.random === undefined) throw new ServeOssUsageError('--fault-seed needs random faults in --faults (rate=…)');
    const n = /^-?\d+$/.test(seed) ? Number(seed) : NaN;
    if (!Number.isSafeInteger(n)) throw new ServeOssUsageError(`--fault-seed must be an integer, got ${JSON.stringify(seed)}`);
    plan = { ...plan, random: { ...plan.random, seed: n } };
  }
  if (delayMs !== undefined) plan = { ...plan, delayMs: nonNegativeInt('--fault-delay-ms', delayMs) };
  return plan;
}

export interface ServeOssHandle {
  server: OssLocalServer;
  address: OssLocalServerAddress;
  logger: Logger;
}

/** Parses `argv` (the arguments after `serve-oss`), starts the server and returns it running. */
export async function startServeOss(
  argv: readonly string[],
  opts: { env?: Readonly<Record<string, string | undefined>>; logger?: Logger } = {},
): Promise<ServeOssHandle> {
  const args = parseServeOssArgs(argv, opts.env);
  if (args.help) throw new ServeOssUsageError('--help is handled by serveOssMain');
  const logger = opts.logger ?? createLogger(args.logLevel);
  const server = new OssLocalServer({ ...args.options, logger });
  const address = await server.start();
  return { server, address, logger };
}

function flush(logger: Logger): Promise<void> {
  return new Promise((done) => logger.flush(() => done()));
}

/**
 * `appendcast serve-oss …` (argv = the arguments after `serve-oss`): serves until SIGINT or SIGTERM,
 * then closes cleanly. Resolves the exit code: 0 after a clean stop, 2 for a bad command line, 1 when
 * the server cannot start (e.g. the port is taken).
 */
export async function serveOssMain(argv: string[]): Promise<number> {
  let handle: ServeOssHandle;
  try {
    if (parseServeOssArgs(argv).help) {
      process.stdout.write(SERVE_OSS_USAGE);
      return 0;
    }
    handle = await startServeOss(argv);
  } catch (err) {
    const usage = err instanceof ServeOssUsageError;
    process.stderr.write(`appendcast serve-oss: ${err instanceof Error ? err.message : String(err)}\n${usage ? `\n${SERVE_OSS_USAGE}` : ''}`);
    return usage ? 2 : 1;
  }
  const { server, address, logger } = handle;
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(sig);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  logger.info({ signal, url: address.url }, 'serve-oss stopping');
  try {
    await server.close();
  } catch (err) {
    logger.error({ err }, 'serve-oss: close failed');
    await flush(logger);
    return 1;
  }
  logger.info('serve-oss stopped');
  await flush(logger);
  return 0;
}
