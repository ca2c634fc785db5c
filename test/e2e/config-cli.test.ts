import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = ['--import', import.meta.resolve('tsx'), join(ROOT, 'src/cli.ts')];

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [...CLI, ...args], { cwd: ROOT, maxBuffer: 16 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const STREAM = 'streams:\n  - id: cam1\n    key: k\n';

/** Each config `appendcast validate` must refuse, with the line it must print (file:line:col: field: message). */
const REFUSED: Record<string, { yaml: string; line: RegExp }> = {
  'dotdot-template': {
    yaml: 'streams:\n  - id: cam1\n    key: k\n    keyTemplate: "{stream}/../{HH}.mp4"\n',
    line: /dotdot-template\.yaml:4:18: streams\[0\]\.keyTemplate: key template must not have a "\.\." path segment/,
  },
  'double-slash-template': {
    yaml: `streamDefaults:\n  keyTemplate: "{stream}//{HH}.mp4"\n${STREAM}`,
    line: /double-slash-template\.yaml:2:16: streamDefaults\.keyTemplate: key template must not have an empty path segment \("\/\/"/,
  },
  'same-port': {
    yaml: `server:\n  rtmp: { port: 9000 }\n  http: { port: 9000 }\n${STREAM}`,
    line: /same-port\.yaml:2:17: server\.rtmp\.port: the RTMP and HTTP listeners both use port 9000/,
  },
  'quota-over-total': {
    yaml: `spool:\n  quotaBytesPerStream: 4294967296\n  quotaBytesTotal: 1073741824\n${STREAM}`,
    line: /quota-over-total\.yaml:2:24: spool\.quotaBytesPerStream: the per-stream quota \(4294967296 bytes\) is larger than the total quota/,
  },
  'quota-tiny': {
    yaml: `spool:\n  quotaBytesTotal: 100\n${STREAM}`,
    line: /quota-tiny\.yaml:2:20: spool\.quotaBytesTotal: a spool quota is at least 65536 bytes/,
  },
  'rollover-too-big': {
    yaml: `streamDefaults:\n  rollover: { maxBytes: 6000000000 }\n${STREAM}`,
    line: /rollover-too-big\.yaml:2:25: streamDefaults\.rollover\.maxBytes: /,
  },
  'typo': {
    yaml: `streamDefaults:\n  fragmentDurationMS: 500\n${STREAM}`,
    line: /typo\.yaml:2:3: streamDefaults\.fragmentDurationMS: unknown key "fragmentDurationMS" \(did you mean "fragmentDurationMs"\?\)/,
  },
};

describe('appendcast schema and validate', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'apc-config-cli-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('schema prints exactly the shipped config/appendcast.schema.json (run `npm run schema` after changing the config schema)', async () => {
    const r = await cli(['schema']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(await readFile(join(ROOT, 'config', 'appendcast.schema.json'), 'utf8'));
  });

  it('validate refuses, with exit 1 and file:line:column, each config that would fail at run time', async () => {
    const results = await Promise.all(Object.entries(REFUSED).map(async ([name, { yaml, line }]) => {
      const file = join(dir, `${name}.yaml`);
      await writeFile(file, yaml);
      return { name, line, r: await cli(['validate', file]) };
    }));
    for (const { name, line, r } of results) {
      expect(r.code, `${name}: ${r.stderr}`).toBe(1);
      expect(r.stdout, name).toBe('');
      expect(r.stderr, name).toMatch(line);
    }
  });
});
