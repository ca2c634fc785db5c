import { parseArgs } from 'node:util';
import { configuredStream, withConfiguredStore } from './command-store.js';
import { listRecordings, type Recording } from './recordings.js';

export const LS_USAGE = `appendcast ls <stream> --config <file> [--start ISO] [--end ISO] [--json]
    lists a stream's recordings (objects) in the configured store, oldest first: when each began
    and last grew, its size and key; --start/--end keep those overlapping the range.
`;

function parseTime(v: string | undefined, name: string): Date | undefined | 'bad' {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) {
    process.stderr.write(`appendcast ls: --${name} is not a date/time: ${v}\n`);
    return 'bad';
  }
  return new Date(t);
}

export function formatRecordings(rs: readonly Recording[]): string {
  const rows = rs.map((r) => [r.start ?? '?', r.end, String(r.bytes), r.growing ? 'growing' : '', r.key]);
  const head = ['start', 'end', 'bytes', '', 'key'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [head, ...rows].map((row) => row.map((c, i) => (i === 2 ? c.padStart(width[i]!) : c.padEnd(width[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** `appendcast ls`: exit 0 with the list (empty too), 2 on usage or an unknown stream. */
export async function lsMain(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      start: { type: 'string' },
      end: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(LS_USAGE);
    return 0;
  }
  const start = parseTime(values.start, 'start');
  const end = parseTime(values.end, 'end');
  if (positionals.length !== 1 || !values.config || start === 'bad' || end === 'bad') {
    if (start !== 'bad' && end !== 'bad') process.stderr.write(LS_USAGE);
    return 2;
  }
  const configFile = values.config;
  return withConfiguredStore(configFile, async (store, config) => {
    const stream = configuredStream(config, positionals[0]!, 'ls', configFile);
    if (!stream) return 2;
    const rs = await listRecordings(store, { stream: stream.id, keyTemplate: stream.keyTemplate, ...(start ? { start } : {}), ...(end ? { end } : {}) });
    process.stdout.write(values.json ? `${JSON.stringify(rs, null, 2)}\n` : formatRecordings(rs));
    return 0;
  });
}
