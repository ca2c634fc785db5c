import { pino, type Logger, type LevelWithSilent, type LoggerOptions } from 'pino';
import { AppendcastError, ErrorCode } from '../errors.js';

export type { Logger };

/** How log lines look: JSON (machines), pretty (a person at a terminal), or auto (pretty only on a TTY). */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
/** The environment variable that picks the format when no flag does (docker, systemd units, serve-oss). */
export const LOG_FORMAT_ENV = 'APPENDCAST_LOG_FORMAT';

/** A `--log-format` value or the environment's, checked; undefined and '' mean auto. */
export function parseLogFormat(raw: string | undefined, from = `--log-format`): LogFormat {
  if (raw === undefined || raw === '') return 'auto';
  if ((LOG_FORMATS as readonly string[]).includes(raw)) return raw as LogFormat;
  throw new AppendcastError(ErrorCode.ConfigInvalid, `${from} must be one of ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(raw.slice(0, 32))}`);
}

/** What `auto` means for a destination: pretty when it is stdout and stdout is a terminal. */
export function resolveLogFormat(format: LogFormat, dest: number | string, isTTY = process.stdout.isTTY === true): 'json' | 'pretty' {
  if (format !== 'auto') return format;
  return dest === 1 && isTTY ? 'pretty' : 'json';
}

/**
 * pino, never blocking the event loop that feeds ffmpeg and the store:
 * - JSON goes through an asynchronous destination (pino's advice); `flush()` before a planned exit.
 * - pretty goes through pino's transport, i.e. pino-pretty formats and writes in a worker thread
 *   and the main thread only copies each line into a shared buffer. Not a pino-pretty stream in the
 *   main thread: formatting costs CPU there, and writes to a TTY are synchronous in Node.
 * `format` defaults to $APPENDCAST_LOG_FORMAT, else auto. A silent logger is always plain JSON (no
 * worker for nothing).
 */
export function createLogger(level: LevelWithSilent = 'info', dest: number | string = 1, format?: LogFormat): Logger {
  const options: LoggerOptions = {
    level,
    base: { app: 'appendcast' },
    // Defence in depth: secrets should never be logged, but redact the usual suspects anyway.
    // (Not `key`: that is an object key everywhere in our logs; stream keys are never logged.)
    redact: {
      paths: ['accessKeySecret', '*.accessKeySecret', 'securityToken', '*.securityToken', 'authorization', '*.authorization'],
      censor: '***',
    },
  };
  const resolved = level === 'silent' ? 'json' : resolveLogFormat(format ?? parseLogFormat(process.env[LOG_FORMAT_ENV], LOG_FORMAT_ENV), dest);
  if (resolved === 'json') return pino(options, pino.destination({ dest, sync: false }));
  const transport = pino.transport({
    target: 'pino-pretty',
    options: {
      destination: dest,
      // Colours only for a terminal (a forced `pretty` into a file or pipe stays plain text).
      colorize: dest === 1 && process.stdout.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      // `config` (the whole resolved config, on 'config loaded') is a hundred lines on a terminal:
      // JSON logs carry it, `appendcast validate` checks it.
      ignore: 'pid,hostname,app,config',
      singleLine: false,
    },
  });
  return pino(options, transport);
}
