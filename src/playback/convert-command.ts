import { parseArgs } from 'node:util';
import { withConfiguredStore } from './command-store.js';
import { ConvertError, convertToAppendable } from './convert.js';

export const CONVERT_USAGE = `appendcast convert <key> [<new-key>] --config <file> [--chunk-mib N]
    makes a normal object (uploaded with put, or copied) appendable: into <new-key>, or in place;
    read by ranges, appended in chunks (default 8 MiB), CRC-64 checked against the original.
`;

/** `appendcast convert`: exit 0 when converted (or already appendable), 1 when refused, 2 on usage. */
export async function convertMain(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      'chunk-mib': { type: 'string', default: '8' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(CONVERT_USAGE);
    return 0;
  }
  const chunkMib = Number(values['chunk-mib']);
  if (positionals.length < 1 || positionals.length > 2 || !values.config || !(chunkMib > 0 && chunkMib <= 1024)) {
    process.stderr.write(CONVERT_USAGE);
    return 2;
  }
  return withConfiguredStore(values.config, async (store) => {
    const [key, newKey] = positionals as [string, string | undefined];
    try {
      const r = await convertToAppendable(store, key, newKey, Math.round(chunkMib * 1024 * 1024));
      process.stderr.write(r.appends === 0
        ? `appendcast convert: "${key}" is appendable already\n`
        : `appendcast convert: "${r.key}" is appendable: ${r.bytes} bytes in ${r.appends} appends, CRC-64 ${r.crc64}\n`);
      return 0;
    } catch (err) {
      if (err instanceof ConvertError) {
        process.stderr.write(`appendcast convert: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
  });
}
