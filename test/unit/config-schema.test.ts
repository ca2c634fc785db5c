import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { ConfigError, configJsonSchema, keyTemplateProblems, loadConfigFile, parseConfig } from '../../src/config/index.js';
import { closestKey, knownKeysAt } from '../../src/config/suggest.js';
import { jsonSchemaValidator, type SchemaValidator } from '../helpers/json-schema.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const shipped = join(repo, 'config', 'appendcast.schema.json');
const example = join(repo, 'config', 'appendcast.example.yaml');
const fixture = (name: string): string => join(repo, 'test', 'fixtures', 'config', name);
const yamlData = async (file: string): Promise<unknown> => parseDocument(await readFile(file, 'utf8')).toJS();

/** The messages of the ConfigError that parsing `yaml` throws. */
function problems(yaml: string): string[] {
  try {
    parseConfig(yaml, 'c.yaml', {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split('\n');
  }
  throw new Error('expected a ConfigError');
}

const STREAM = 'streams: [{ id: cam1, key: k }]\n';

describe('the JSON Schema', () => {
  let validator: SchemaValidator;
  beforeAll(async () => { validator = await jsonSchemaValidator(JSON.parse(await readFile(shipped, 'utf8')) as Record<string, unknown>); });

  it('the shipped config/appendcast.schema.json is what the code generates (npm run schema regenerates it)', async () => {
    expect(JSON.parse(await readFile(shipped, 'utf8'))).toEqual(configJsonSchema());
  });

  it('the example config points editors at it on its first line', async () => {
    const first = (await readFile(example, 'utf8')).split('\n')[0];
    expect(first).toBe('# yaml-language-server: $schema=./appendcast.schema.json');
  });

  it('accepts the example config and the README\'s config snippets, as the loader does', async () => {
    expect(validator.errors(await yamlData(example))).toEqual([]);
    const readme = await readFile(join(repo, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const block of blocks) {
      const text = /^streams:/m.test(block) ? block : `${block}\n${STREAM}`;
      const data = parseDocument(text).toJS() as unknown;
      expect(validator.errors(data), block).toEqual([]);
      expect(() => parseConfig(text, 'README.md', { DOOR_PASS: 'x' })).not.toThrow();
    }
  });

  it('rejects what the loader rejects for its shape: unknown keys, wrong types, a missing id, no key nor source', async () => {
    for (const name of ['unknown-top-key.yaml', 'unknown-stream-key.yaml', 'bad-port-type.yaml', 'missing-stream-id.yaml']) {
      expect(validator.errors(await yamlData(fixture(name))), name).not.toEqual([]);
    }
    expect(validator.errors({ streams: [{ id: 'a' }] })).not.toEqual([]);
    expect(validator.errors({ streams: [{ id: 'a', source: { rtsp: 'rtsp://cam/1' } }] })).toEqual([]);
    expect(validator.errors({ storage: { kind: 's3' }, streams: [{ id: 'a', key: 'k' }] })).not.toEqual([]);
  });

  it('accepts numbers and booleans spelled as strings or left to ${VAR}, as the loader does', () => {
    const data = { server: { rtmp: { port: '${RTMP_PORT:-1935}' }, http: { port: ' 8080 ' } }, spool: { retainAcked: 'TRUE' }, streams: [{ id: 'a', key: 'k' }] };
    expect(validator.errors(data)).toEqual([]);
    expect(validator.errors({ ...data, server: { rtmp: { port: 'abc' } } })).not.toEqual([]);
    expect(() => parseConfig(JSON.stringify(data), 'c.json', {})).not.toThrow();
  });

  it('carries the defaults, for editors to show', () => {
    const schema = configJsonSchema() as { properties: { spool: { properties: Record<string, { default?: unknown }> } } };
    expect(schema.properties.spool.properties['quotaBytesTotal']?.default).toBe(20 * 1024 ** 3);
    expect(schema.properties.spool.properties['fsync']?.default).toBe('always');
  });
});

describe('unknown keys: did you mean', () => {
  it('suggests the closest known key, ignoring case', () => {
    expect(closestKey('fragmentDurationMS', ['fragmentDurationMs', 'format'])).toBe('fragmentDurationMs');
    expect(closestKey('strams', ['streams', 'storage', 'spool'])).toBe('streams');
    expect(closestKey('enabeld', ['enabled', 'id'])).toBe('enabled');
    expect(closestKey('banana', ['streams', 'storage'])).toBeUndefined();
    expect(closestKey('x'.repeat(10_000), ['streams'])).toBeUndefined(); // hostile input: no quadratic work
  });

  it('knows the keys at each path, through lists and unions', () => {
    const schema = configJsonSchema();
    expect(knownKeysAt(schema, [])).toContain('streams');
    expect(knownKeysAt(schema, ['streams', 3])).toContain('fragmentDurationMs');
    expect(knownKeysAt(schema, ['storage'])).toEqual(expect.arrayContaining(['root', 'bucket']));
    expect(knownKeysAt(schema, ['server', 'rtmp', 'limits'])).toContain('maxConnections');
  });

  it('names the file, line and the suggestion', () => {
    expect(problems(`${STREAM}streamDefaults:\n  fragmentDurationMS: 500\n`)).toEqual([
      'c.yaml:3:3: streamDefaults.fragmentDurationMS: unknown key "fragmentDurationMS" (did you mean "fragmentDurationMs"?)',
    ]);
    expect(problems('strams: [{ id: a, key: k }]\n')).toEqual([
      'c.yaml:1:1: streams: required field is missing',
      'c.yaml:1:1: strams: unknown key "strams" (did you mean "streams"?)',
    ]);
    expect(problems(`${STREAM}spool: { qwerty: 1 }\n`)).toEqual(['c.yaml:2:10: spool.qwerty: unknown key "qwerty"']);
  });
});

describe('validate rejects what would fail at run time', () => {
  it('key templates that cannot form an object key', () => {
    expect(keyTemplateProblems('{stream}/../{HH}.mp4')).toEqual(['must not have a ".." path segment (the object key would be refused)']);
    expect(keyTemplateProblems('{stream}//{HH}.mp4')).toEqual(['must not have an empty path segment ("//" or a trailing "/"): the object key would be refused']);
    expect(keyTemplateProblems('{stream}/')).toHaveLength(1);
    expect(keyTemplateProblems('a/./{stream}')).toEqual(['must not have a "." path segment (the object key would be refused)']);
    expect(keyTemplateProblems('a\\..\\{stream}')).toEqual(['must not have a ".." path segment (the object key would be refused)']);
    expect(keyTemplateProblems('.appendcast-meta/{stream}')).toEqual(['must not start with ".appendcast-meta/" (reserved by the fs store)']);
    expect(keyTemplateProblems(`${'a'.repeat(300)}/{stream}`)).toEqual(['has a path segment that can exceed 255 bytes (not storable by the fs store)']);
    expect(keyTemplateProblems(`${'a/'.repeat(500)}{stream}`)[0]).toMatch(/renders keys of up to \d+ bytes, over the 1023-byte limit/);
    expect(keyTemplateProblems('{stream}..{seq}/x.y.mp4')).toEqual([]); // dots inside a segment are fine
    expect(problems('streams: [{ id: a, key: k, keyTemplate: "{stream}//x.mp4" }]\n')).toEqual([
      'c.yaml:1:41: streams[0].keyTemplate: key template must not have an empty path segment ("//" or a trailing "/"): the object key would be refused',
    ]);
  });

  it('the RTMP and HTTP listeners on one port, when their hosts overlap', () => {
    const msg = 'the RTMP and HTTP listeners both use port 8080 (server.http.port); give them different ports';
    expect(problems(`server:\n  rtmp: { port: 8080 }\n  http: { port: 8080 }\n${STREAM}`)).toEqual([`c.yaml:2:17: server.rtmp.port: ${msg}`]);
    expect(problems(`server:\n  rtmp: { host: 127.0.0.1, port: 8080 }\n  http: { host: 0.0.0.0, port: 8080 }\n${STREAM}`)).toHaveLength(1);
    expect(() => parseConfig(`server:\n  rtmp: { host: 127.0.0.1, port: 8080 }\n  http: { host: 127.0.0.2, port: 8080 }\n${STREAM}`, 'c.yaml', {})).not.toThrow();
    expect(() => parseConfig(`server: { rtmp: { port: 0 }, http: { port: 0 } }\n${STREAM}`, 'c.yaml', {})).not.toThrow(); // both ephemeral
  });

  it('absurd spool quotas', () => {
    expect(problems(`spool: { quotaBytesPerStream: 2048 }\n${STREAM}`)).toEqual([
      'c.yaml:1:31: spool.quotaBytesPerStream: a spool quota is at least 65536 bytes (64 KiB); sizes are in bytes',
    ]);
    expect(problems(`spool: { quotaBytesTotal: 2e15 }\n${STREAM}`)).toEqual([
      'c.yaml:1:27: spool.quotaBytesTotal: a spool quota is at most 1125899906842624 bytes (1 PiB); sizes are in bytes',
    ]);
    expect(problems(`spool: { quotaBytesPerStream: 4294967296, quotaBytesTotal: 1073741824 }\n${STREAM}`)).toEqual([
      'c.yaml:1:31: spool.quotaBytesPerStream: the per-stream quota (4294967296 bytes) is larger than the total quota (spool.quotaBytesTotal, 1073741824 bytes)',
    ]);
  });

  it('rollover and object sizes past the 5 GiB OSS limit', () => {
    expect(problems(`streamDefaults: { rollover: { maxBytes: 6000000000 } }\n${STREAM}`)[0]).toMatch(/streamDefaults\.rollover\.maxBytes: .*5368709120/);
    expect(problems(`storage: { kind: fs, maxObjectBytes: 6000000000 }\n${STREAM}`)[0]).toMatch(/storage\.maxObjectBytes: .*5368709120/);
  });
});

describe('hostile files', () => {
  it('a file over 4 MiB is refused without being read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'apc-config-big-'));
    try {
      const file = join(dir, 'big.yaml');
      await writeFile(file, `${STREAM}# ${'x'.repeat(4 * 1024 * 1024)}\n`);
      await expect(loadConfigFile(file, {})).rejects.toThrow(`${file}: config file is 4194339 bytes, over the 4194304-byte limit`);
      await writeFile(file, STREAM);
      await expect(loadConfigFile(file, {})).resolves.toMatchObject({ streams: [{ id: 'cam1' }] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
