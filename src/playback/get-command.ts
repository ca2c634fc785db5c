import { open } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { configuredStream, withConfiguredStore } from './command-store.js';
import { clipBytes, planClip, streamClip } from './clip.js';

export const GET_USAGE = `appendcast get <stream> --config <file> --start ISO --duration S -o <file>
    writes one playable file of the stream from the keyframe at or before --start for --duration
    seconds (up to 6 h), across rollovers, read from the store by ranges (as GET /api/v1/clip).
`;

/** `appendcast get`: exit 0 with the file written, 1 when nothing is recorded in the range, 2 on usage. */
export async function getMain(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      start: { type: 'string' },
      duration: { type: 'string' },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(GET_USAGE);
    return 0;
  }
  const start = Date.parse(values.start ?? '');
  const duration = Number(values.duration);
  if (positionals.length !== 1 || !values.config || !values.output || Number.isNaN(start) || !(duration > 0 && duration <= 6 * 3600)) {
    process.stderr.write(GET_USAGE);
    return 2;
  }
  const output = values.output;
  const configFile = values.config;
  return withConfiguredStore(configFile, async (store, config) => {
    const stream = configuredStream(config, positionals[0]!, 'get', configFile);
    if (!stream) return 2;
    const plan = await planClip(store, { stream: stream.id, keyTemplate: stream.keyTemplate, start: new Date(start), durationMs: duration * 1000 });
    if (!plan) {
      process.stderr.write(`appendcast get: nothing of "${stream.id}" recorded from ${new Date(start).toISOString()} for ${duration} s\n`);
      return 1;
    }
    const fh = await open(output, 'w');
    try {
      await streamClip(store, plan, async (b) => { await fh.write(b); return true; });
    } finally {
      await fh.close();
    }
    process.stderr.write(`appendcast get: ${output}: ${clipBytes(plan)} bytes, ${plan.seconds.toFixed(3)} s from ${new Date(plan.wallStart).toISOString()}${plan.truncated ? ` (ends early: ${plan.truncated})` : ''}\n`);
    return 0;
  });
}
