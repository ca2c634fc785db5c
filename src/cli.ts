#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { configJsonSchema, loadConfigFile, redactConfig, resolvePaths } from './config/index.js';
import { ConfigReloader } from './config/reloader.js';
import { AppendcastError } from './errors.js';
import { Gateway } from './gateway.js';
import { serveOssMain } from './serve-oss/cli.js';
import { convertMain } from './playback/convert-command.js';
import { getMain } from './playback/get-command.js';
import { lsMain } from './playback/ls-command.js';
import { tailMain } from './playback/tail-command.js';
import { createLogger, LOG_FORMAT_ENV, parseLogFormat, type LogFormat } from './util/logger.js';
import { startupWarnings } from './startup-warnings.js';

const USAGE = `appendcast — live video ingest into appendable objects

Usage:
  appendcast run --config <file> [--log-format auto|json|pretty]
                                     start the gateway; logs are pretty on a terminal, JSON
                                     otherwise (auto; also $APPENDCAST_LOG_FORMAT)
  appendcast validate <file>         check a config file; exit 0 when good
  appendcast schema                  print the config's JSON Schema (config/appendcast.schema.json)
  appendcast tail <stream|key> --config <file> [--from-start] [--idle-seconds N]
                                     follow a growing object to stdout (| ffplay -)
  appendcast ls <stream> --config <file> [--start ISO] [--end ISO] [--json]
                                     a stream's recordings in the store
  appendcast get <stream> --config <file> --start ISO --duration S -o <file>
                                     a clip of a time range, across rollovers
  appendcast convert <key> [<new-key>] --config <file>
                                     make a normal object appendable (CRC-64 checked)
  appendcast serve-oss --root DIR --port N [--host 127.0.0.1] [--bucket NAME]... [--anonymous]
                                     an OSS-compatible server over a directory (local dev, docker-compose);
                                     'appendcast serve-oss --help' for all options
  appendcast --version | --help
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function validate(file: string | undefined): Promise<number> {
  if (!file) {
    process.stderr.write('appendcast validate: give the config file to check\n');
    return 2;
  }
  const config = await loadConfigFile(file);
  process.stdout.write(`${file}: ok (${config.streams.length} stream${config.streams.length === 1 ? '' : 's'}, storage ${config.storage.kind})\n`);
  return 0;
}

/** The JSON Schema editors validate the YAML with; `npm run schema` writes it to config/appendcast.schema.json. */
function schema(): number {
  process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  return 0;
}

async function run(file: string | undefined, logFormat: LogFormat): Promise<number> {
  if (!file) {
    process.stderr.write('appendcast run: --config <file> is required\n');
    return 2;
  }
  const config = resolvePaths(await loadConfigFile(file));
  const log = createLogger(config.log.level, 1, logFormat);
  log.info({ version: version(), config: redactConfig(config), file }, 'config loaded');
  for (const w of startupWarnings(config)) log.warn(w.fields, w.msg);
  const gateway = new Gateway(config, log);
  await gateway.start();
  // SIGHUP or a change of the file: the gateway takes what it can without a restart (README "Reload the config").
  const reloader = new ConfigReloader({ file, logger: log, apply: (next) => gateway.applyConfig(next), results: gateway.metrics.configReloads });
  reloader.start();
  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      if (++signals > 1) {
        log.warn({ signal: sig }, 'second signal: exiting without waiting');
        log.flush();
        process.exit(130);
      }
      log.info({ signal: sig }, 'shutting down: flushing remuxers and pending appends');
      reloader.close();
      gateway.close().then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }).finally(() => new Promise<void>((r) => log.flush(() => r())));
}

async function main(argv: string[]): Promise<number> {
  // serve-oss parses its own options.
  if (argv[0] === 'serve-oss') return serveOssMain(argv.slice(1));
  if (argv[0] === 'tail') return tailMain(argv.slice(1));
  if (argv[0] === 'ls') return lsMain(argv.slice(1));
  if (argv[0] === 'get') return getMain(argv.slice(1));
  if (argv[0] === 'convert') return convertMain(argv.slice(1));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
      'log-format': { type: 'string' },
    },
  });
  const [cmd, ...rest] = positionals;
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (values.help || !cmd) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  switch (cmd) {
    case 'run':
      return run(values.config ?? rest[0], values['log-format'] !== undefined
        ? parseLogFormat(values['log-format'])
        : parseLogFormat(process.env[LOG_FORMAT_ENV], LOG_FORMAT_ENV));
    case 'validate':
      return validate(rest[0] ?? values.config);
    case 'schema':
      return schema();
    default:
      process.stderr.write(`appendcast: unknown command "${cmd}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // Typed errors (bad config, no ffmpeg, port in use) carry a message meant for the operator.
    if (err instanceof AppendcastError) process.stderr.write(`appendcast: ${err.message} (${err.code})\n`);
    else if (err instanceof Error && 'code' in err && err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') process.stderr.write(`appendcast: ${err.message}\n\n${USAGE}`);
    else process.stderr.write(`appendcast: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = err instanceof AppendcastError ? 1 : 70;
  },
);
