import { parseArgs } from 'node:util';
import { configuredStream, withConfiguredStore } from './command-store.js';
import { latestObjectOf } from './object-finder.js';
import { tailObject } from './tail.js';

export const TAIL_USAGE = `appendcast tail <stream|key> --config <file> [--from-start] [--idle-seconds N] [--poll-ms N]
    follows a growing object in the configured store and writes it to stdout: the init segment,
    then from the newest keyframe the sidecar index knows (--from-start: every byte), until the
    object has not grown for --idle-seconds (default 10). A stream id follows its newest object;
    a key (containing '/') that object.   appendcast tail cam1 -c config.yaml | ffplay -
`;

/** `appendcast tail`: exit 0 when the object stopped growing or the reader went away; 1 when there is nothing to follow; 2 on usage. */
export async function tailMain(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      'from-start': { type: 'boolean', default: false },
      'idle-seconds': { type: 'string', default: '10' },
      'poll-ms': { type: 'string', default: '500' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(TAIL_USAGE);
    return 0;
  }
  const target = positionals[0];
  const idle = Number(values['idle-seconds']);
  const poll = Number(values['poll-ms']);
  if (!target || !values.config || positionals.length > 1 || !(idle > 0 && idle <= 86_400) || !(poll >= 10 && poll <= 60_000)) {
    process.stderr.write(TAIL_USAGE);
    return 2;
  }
  const configFile = values.config;
  return withConfiguredStore(configFile, async (store, config) => {
    let key = target;
    if (!target.includes('/')) {
      const stream = configuredStream(config, target, 'tail', configFile);
      if (!stream) return 2;
      const latest = await latestObjectOf(store, stream.id, stream.keyTemplate);
      if (!latest) {
        process.stderr.write(`appendcast tail: stream "${target}" has no object in the store yet\n`);
        return 1;
      }
      key = latest.key;
    } else if (!(await store.head(key))) {
      process.stderr.write(`appendcast tail: no object "${key}" in the store\n`);
      return 1;
    }
    process.stderr.write(`appendcast tail: following ${key}\n`);
    const ac = new AbortController();
    const stop = (): void => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const r = await tailObject({ store, key, fromStart: values['from-start'], idleMs: idle * 1000, pollMs: poll, out: process.stdout, signal: ac.signal });
      process.stderr.write(`appendcast tail: ${r.bytes} bytes from offset ${r.from}; ended: ${r.endedBy === 'idle' ? `no growth for ${idle} s` : r.endedBy}\n`);
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    return 0;
  });
}
