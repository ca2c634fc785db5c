import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { DEFAULT_RTMP_LIMITS } from '../../src/ingest/rtmp/server-limits.js';
import {
  ConfigError,
  configJsonSchema,
  DEFAULT_KEY_TEMPLATE,
  loadConfigFile,
  parseConfig,
  redactConfig,
  resolvePaths,
  substituteString,
} from '../../src/config/index.js';
import type { Config } from '../../src/config/index.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const fixture = (name: string): string => join(repo, 'test', 'fixtures', 'config', name);
const examplePath = join(repo, 'config', 'appendcast.example.yaml');

/** Runs `fn`, which must throw a ConfigError, and returns it. */
async function configError(fn: () => unknown): Promise<ConfigError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.code).toBe(ErrorCode.ConfigInvalid);
    return e;
  }
  throw new Error('expected a ConfigError');
}

const loadFixtureError = (name: string, env: NodeJS.ProcessEnv = {}) => configError(() => loadConfigFile(fixture(name), env));

const FLUSH = { maxBytes: 4 * 1024 ** 2, maxDelayMs: 200 };
const ROLLOVER = { maxBytes: 4 * 1024 ** 3, maxDurationSeconds: 3600, alignToClock: false };

describe('example config', () => {
  it('loads with every documented default', async () => {
    const config = await loadConfigFile(examplePath, {});
    const expected: Config = {
      dataDir: './data',
      log: { level: 'info' },
      server: {
        rtmp: {
          host: '0.0.0.0', port: 1935, app: 'live',
          limits: {
            handshakeTimeoutMs: 5000, publishTimeoutMs: 10_000, mediaTimeoutMs: 10_000, maxMessageBytes: 8 * 1024 ** 2, maxChunkStreams: 64,
            maxChunkSize: 16 * 1024 ** 2, maxAmfDepth: 16, maxHeldBytesPerConnection: 9 * 1024 ** 2, maxHeldBytesTotal: 256 * 1024 ** 2,
            maxConnections: 1000, maxConnectionsPerAddress: 100, maxWriteBufferBytes: 1024 ** 2,
          },
        },
        http: { host: '0.0.0.0', port: 8080, apiToken: null },
      },
      ffmpeg: { path: null, stallTimeoutSeconds: 20 },
      storage: { kind: 'fs', concurrency: 32, root: './data/objects', maxObjectBytes: 5368709120, fsync: 'always' },
      spool: {
        dir: 'data/spool', fsync: 'always', fsyncIntervalMs: 1000, quotaBytesPerStream: 2 * 1024 ** 3, quotaBytesTotal: 20 * 1024 ** 3,
        memoryBytesPerStream: 16 * 1024 ** 2, segmentBytes: 64 * 1024 ** 2, retainAcked: false, sessionSha256: false,
      },
      retry: { baseDelayMs: 250, maxDelayMs: 15_000, haltedProbeSeconds: 60 },
      streamDefaults: { format: 'fmp4', remux: 'native', audio: 'auto', flush: FLUSH, rollover: ROLLOVER, keyTemplate: DEFAULT_KEY_TEMPLATE, fragmentDurationMs: null, contentType: 'video/mp4', reconnectGraceSeconds: 10 },
      streams: [
        {
          id: 'cam1', key: 'change-me', enabled: true, source: null, format: 'fmp4', remux: 'native', audio: 'auto', flush: FLUSH, rollover: ROLLOVER,
          keyTemplate: DEFAULT_KEY_TEMPLATE, fragmentDurationMs: null, contentType: 'video/mp4', reconnectGraceSeconds: 10,
        },
      ],
    };
    expect(config).toEqual(expected);
  });

  it('takes ports and keys from the environment', async () => {
    const config = await loadConfigFile(examplePath, { CAM1_KEY: 's3cret', RTMP_PORT: '19350', HTTP_PORT: '18080' });
    expect(config.streams[0]?.key).toBe('s3cret');
    expect(config.server.rtmp.port).toBe(19350);
    expect(config.server.http.port).toBe(18080);
  });

  it('defaults to process.env', async () => {
    const before = process.env['CAM1_KEY'];
    process.env['CAM1_KEY'] = 'from-process-env';
    try {
      const config = await loadConfigFile(examplePath);
      expect(config.streams[0]?.key).toBe('from-process-env');
    } finally {
      if (before === undefined) delete process.env['CAM1_KEY'];
      else process.env['CAM1_KEY'] = before;
    }
  });
});

describe('defaults and merging', () => {
  it('fills in a minimal file', () => {
    const config = parseConfig('streams:\n  - id: a\n    key: k\n', 'min.yaml', {});
    expect(config.dataDir).toBe('./data');
    expect(config.log.level).toBe('info');
    expect(config.server).toEqual({ rtmp: { host: '0.0.0.0', port: 1935, app: 'live', limits: DEFAULT_RTMP_LIMITS }, http: { host: '0.0.0.0', port: 8080, apiToken: null } });
    expect(config.ffmpeg).toEqual({ path: null, stallTimeoutSeconds: 20 });
    expect(config.storage).toEqual({ kind: 'fs', concurrency: 32, root: join('./data', 'objects'), maxObjectBytes: 5 * 1024 ** 3, fsync: 'always' });
    expect(config.streams).toEqual([
      {
        id: 'a', key: 'k', enabled: true, source: null, format: 'fmp4', remux: 'native', audio: 'auto', flush: FLUSH, rollover: ROLLOVER,
        keyTemplate: DEFAULT_KEY_TEMPLATE, fragmentDurationMs: null, contentType: 'video/mp4', reconnectGraceSeconds: 10,
      },
    ]);
    expect(config.spool.dir).toBe(join('./data', 'spool'));
  });

  it('puts the fs root under dataDir when not given', () => {
    const config = parseConfig('dataDir: /var/lib/appendcast\nstorage:\n  kind: fs\n  maxObjectBytes: 1024\n  fsync: never\nstreams: [{ id: a, key: k }]\n', 'x.yaml', {});
    expect(config.storage).toEqual({ kind: 'fs', concurrency: 32, root: '/var/lib/appendcast/objects', maxObjectBytes: 1024, fsync: 'never' });
  });

  it('merges per-stream overrides over streamDefaults, field by field', () => {
    const text = [
      'streamDefaults:',
      '  keyTemplate: "live/{stream}/{yyyy}{MM}{dd}-{HH}{mm}{ss}{SSS}-{seq}.mp4"',
      '  fragmentDurationMs: 500',
      '  contentType: video/iso.segment',
      'streams:',
      '  - id: cam1',
      '    key: k1',
      '    keyTemplate: "{stream}/{seq}.mp4"',
      '    fragmentDurationMs: null', // explicit null overrides a non-null default
      '    flush: { maxDelayMs: 0 }', // one field of a policy; the rest inherited
      '    rollover: { maxBytes: 1048576, maxDurationSeconds: null }',
      '  - id: cam2',
      '    key: k2',
      '    enabled: false',
      '    contentType: video/mp4',
      '',
    ].join('\n');
    const config = parseConfig(text, 'merge.yaml', {});
    expect(config.streams[0]).toEqual({
      id: 'cam1', key: 'k1', enabled: true, source: null, format: 'fmp4', remux: 'native', audio: 'auto', keyTemplate: '{stream}/{seq}.mp4', fragmentDurationMs: null, contentType: 'video/iso.segment', reconnectGraceSeconds: 10,
      flush: { ...FLUSH, maxDelayMs: 0 }, rollover: { ...ROLLOVER, maxBytes: 1048576, maxDurationSeconds: null },
    });
    expect(config.streams[1]).toEqual({
      id: 'cam2', key: 'k2', enabled: false, source: null, format: 'fmp4', remux: 'native', audio: 'auto', flush: FLUSH, rollover: ROLLOVER,
      keyTemplate: 'live/{stream}/{yyyy}{MM}{dd}-{HH}{mm}{ss}{SSS}-{seq}.mp4', fragmentDurationMs: 500, contentType: 'video/mp4', reconnectGraceSeconds: 10,
    });
    expect(config.streamDefaults.fragmentDurationMs).toBe(500);
  });

  it('takes RTMP limits in seconds and bytes, derives the per-connection budget, and a per-stream remux', () => {
    const config = parseConfig([
      'server:',
      '  rtmp:',
      '    app: cams',
      '    limits: { handshakeTimeoutSeconds: 0.5, mediaTimeoutSeconds: 3, maxMessageBytes: 1048576, maxConnectionsPerAddress: 2 }',
      'streamDefaults: { remux: ffmpeg }',
      'streams:',
      '  - { id: a, key: k }',
      '  - { id: b, key: k, remux: native }',
    ].join('\n'), 'rtmp.yaml', {});
    expect(config.server.rtmp.app).toBe('cams');
    expect(config.server.rtmp.limits).toEqual({
      ...DEFAULT_RTMP_LIMITS, handshakeTimeoutMs: 500, mediaTimeoutMs: 3000, maxMessageBytes: 1024 ** 2,
      maxHeldBytesPerConnection: 2 * 1024 ** 2, maxConnectionsPerAddress: 2,
    });
    expect(config.streams.map((s) => s.remux)).toEqual(['ffmpeg', 'native']);
    expect(() => parseConfig('server: { rtmp: { limits: { maxChunkStreams: 2 } } }\nstreams: [{ id: a, key: k }]', 'x.yaml', {})).toThrow(/maxChunkStreams/);
    expect(() => parseConfig('streams: [{ id: a, key: k, remux: gstreamer }]', 'x.yaml', {})).toThrow(/remux/);
  });

  it('pulled RTSP streams: source with defaults, no key needed, credentials redacted; mpegts gets .ts keys and video/mp2t', () => {
    const config = parseConfig([
      'streams:',
      '  - id: door',
      '    source: { rtsp: "rtsp://admin:${CAM_PASS}@10.0.0.5:554/Streaming/101", transport: auto }',
      '    format: mpegts',
      '    audio: drop',
      '  - id: yard',
      '    source: { rtsp: "rtsp://10.0.0.6/live", user: viewer, password: "${YARD_PASS}", stallTimeoutSeconds: 5 }',
      '  - { id: pushed, key: k }',
    ].join('\n'), 'rtsp.yaml', { CAM_PASS: 's3cret!', YARD_PASS: 'y4rd' });
    const [door, yard, pushed] = config.streams;
    expect(door).toMatchObject({
      key: '', format: 'mpegts', audio: 'drop', contentType: 'video/mp2t', keyTemplate: '{stream}/{yyyy}/{MM}/{dd}/{stream}-{HH}{mm}{ss}.ts',
      source: { kind: 'rtsp', url: 'rtsp://admin:s3cret!@10.0.0.5:554/Streaming/101', transport: 'auto', stallTimeoutSeconds: 10, reconnectBaseSeconds: 1, reconnectMaxSeconds: 30 },
    });
    expect(yard).toMatchObject({ format: 'fmp4', audio: 'auto', source: { url: 'rtsp://10.0.0.6/live', transport: 'tcp', user: 'viewer', password: 'y4rd', stallTimeoutSeconds: 5 } });
    expect(pushed).toMatchObject({ key: 'k', source: null });
    const shown = JSON.stringify(redactConfig(config));
    expect(shown).not.toContain('s3cret!');
    expect(shown).not.toContain('y4rd');
    expect(shown).toContain('rtsp://admin:***@10.0.0.5:554/Streaming/101');
    expect(() => parseConfig('streams: [{ id: a }]', 'x.yaml', {})).toThrow(/publish key is required/);
    expect(() => parseConfig('streams: [{ id: a, source: { rtsp: "http://x/y" } }]', 'x.yaml', {})).toThrow(/rtsp:\/\/ URL/);
  });

  it('parses an oss storage section with its defaults', () => {
    const text = [
      'storage:',
      '  kind: oss',
      '  endpoint: http://127.0.0.1:9000',
      '  bucket: my-bucket',
      '  region: cn-hangzhou',
      '  accessKeyId: ${OSS_ID:-}',
      '  accessKeySecret: ${OSS_SECRET}',
      '  pathStyle: ${OSS_PATH_STYLE:-true}',
      '  timeouts: { connectMs: 1000 }',
      'streams: [{ id: a, key: k }]',
      '',
    ].join('\n');
    const config = parseConfig(text, 'oss.yaml', { OSS_SECRET: 'shh' });
    expect(config.storage).toEqual({
      kind: 'oss', concurrency: 32, endpoint: 'http://127.0.0.1:9000', bucket: 'my-bucket', region: 'cn-hangzhou',
      accessKeyId: undefined, accessKeySecret: 'shh', securityToken: undefined,
      signatureVersion: 'v4', pathStyle: true, timeouts: { connectMs: 1000, headersMs: 15000, bodyMs: 30000 },
    });
  });

  it('rejects bad oss settings and a missing storage kind', async () => {
    const text = 'storage:\n  kind: oss\n  endpoint: ftp://x\n  bucket: My_Bucket\nstreams: [{ id: a, key: k }]\n';
    const err = await configError(() => parseConfig(text, 'oss.yaml', {}));
    expect(err.message).toContain('oss.yaml:3:13: storage.endpoint: expected an http(s) URL');
    expect(err.message).toContain('oss.yaml:4:11: storage.bucket: OSS bucket names');
    expect(err.message).toContain('oss.yaml:2:3: storage.region: required field is missing');
    const noKind = await configError(() => parseConfig('storage:\n  root: /x\nstreams: [{ id: a, key: k }]\n', 'k.yaml', {}));
    expect(noKind.message).toBe('k.yaml:2:3: storage.kind: required field is missing (one of "fs", "oss")');
    const badKind = await configError(() => parseConfig('storage:\n  kind: s3\nstreams: [{ id: a, key: k }]\n', 'k.yaml', {}));
    expect(badKind.message).toBe('k.yaml:2:9: storage.kind: expected one of "fs", "oss", got string "s3"');
  });
});

describe('${VAR} substitution', () => {
  const env = { A: 'alpha', EMPTY: '' };

  it('substitutes, defaults and escapes', () => {
    expect(substituteString('${A}', env)).toEqual({ value: 'alpha', errors: [] });
    expect(substituteString('x-${A}-${A}', env).value).toBe('x-alpha-alpha');
    expect(substituteString('${A:-dflt}', env).value).toBe('alpha');
    expect(substituteString('${NOPE:-dflt}', env).value).toBe('dflt');
    expect(substituteString('${EMPTY:-dflt}', env).value).toBe('dflt');
    expect(substituteString('${EMPTY}', env)).toEqual({ value: '', errors: [] });
    expect(substituteString('${NOPE:-}', env).value).toBe('');
    expect(substituteString('${NOPE:-a b:c}', env).value).toBe('a b:c');
    expect(substituteString('$${A}', env).value).toBe('${A}');
    expect(substituteString('$${NOPE} and ${A}', env).value).toBe('${NOPE} and alpha');
    expect(substituteString('cost $5, $$ and $', env).value).toBe('cost $5, $$ and $');
  });

  it('reports unresolved and malformed references', () => {
    const unset = substituteString('a${NOPE}b', env);
    expect(unset.errors).toHaveLength(1);
    expect(unset.errors[0]).toContain('"NOPE" is not set');
    expect(substituteString('${1BAD}', env).errors[0]).toContain('invalid substitution "${1BAD}"');
    expect(substituteString('${A', env).errors[0]).toContain('unterminated');
  });

  it('applies to string values in the file, keeps escapes literal and leaves keys alone', () => {
    const text = [
      'dataDir: ${DATA:-/tmp/x}',
      'streams:',
      '  - id: ${ID}',
      '    key: "$${NOT_A_VAR}"',
      '    keyTemplate: "${PREFIX:-cams}/{stream}-{seq}.mp4"',
      '',
    ].join('\n');
    const config = parseConfig(text, 'subst.yaml', { ID: 'cam9' });
    expect(config.dataDir).toBe('/tmp/x');
    expect(config.streams[0]?.id).toBe('cam9');
    expect(config.streams[0]?.key).toBe('${NOT_A_VAR}');
    expect(config.streams[0]?.keyTemplate).toBe('cams/{stream}-{seq}.mp4');
  });

  it('turns substituted numbers and booleans into numbers and booleans', () => {
    const text = [
      'server:',
      '  rtmp:',
      '    port: ${RTMP_PORT:-1935}',
      '  http:',
      '    port: ${HTTP_PORT}',
      'ffmpeg:',
      '  path: ${FFMPEG:-}',
      '  stallTimeoutSeconds: ${STALL:-2.5}',
      'streams:',
      '  - id: a',
      '    key: "${KEY:-12345}"',
      '    enabled: ${ENABLED:-false}',
      '    fragmentDurationMs: ${FRAG:-250}',
      '',
    ].join('\n');
    const config = parseConfig(text, 'num.yaml', { HTTP_PORT: '9090' });
    expect(config.server.rtmp.port).toBe(1935);
    expect(config.server.http.port).toBe(9090);
    expect(config.ffmpeg).toEqual({ path: null, stallTimeoutSeconds: 2.5 });
    expect(config.streams[0]?.key).toBe('12345'); // a key made of digits stays a string
    expect(config.streams[0]?.enabled).toBe(false);
    expect(config.streams[0]?.fragmentDurationMs).toBe(250);
    const bad = (() => {
      try {
        parseConfig(text, 'num.yaml', { HTTP_PORT: '80a' });
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(bad).toBeInstanceOf(ConfigError);
    expect((bad as ConfigError).message).toBe('num.yaml:5:11: server.http.port: expected number, got string "80a"');
  });
});

describe('broken files name file, line, column and field', () => {
  it('wrong type', async () => {
    const err = await loadFixtureError('bad-port-type.yaml');
    expect(err.file).toBe(fixture('bad-port-type.yaml'));
    expect(err.message).toBe(`${fixture('bad-port-type.yaml')}:5:11: server.rtmp.port: expected number, got string "abc"`);
    expect(err.issues).toEqual([{ path: 'server.rtmp.port', line: 5, column: 11, message: 'expected number, got string "abc"' }]);
  });

  it('unknown top-level key (typo), reported with the missing key it hides', async () => {
    const err = await loadFixtureError('unknown-top-key.yaml');
    const lines = err.message.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines).toContain(`${fixture('unknown-top-key.yaml')}:5:1: strems: unknown key "strems" (did you mean "streams"?)`);
    expect(lines).toContain(`${fixture('unknown-top-key.yaml')}:2:1: streams: required field is missing`);
  });

  it('unknown key inside a stream', async () => {
    const err = await loadFixtureError('unknown-stream-key.yaml');
    expect(err.message).toBe(`${fixture('unknown-stream-key.yaml')}:6:5: streams[1].enabeld: unknown key "enabeld" (did you mean "enabled"?)`);
  });

  it('missing stream id, placed at the stream', async () => {
    const err = await loadFixtureError('missing-stream-id.yaml');
    expect(err.message).toBe(`${fixture('missing-stream-id.yaml')}:4:5: streams[1].id: required field is missing`);
  });

  it('duplicate stream id, at the second definition', async () => {
    const err = await loadFixtureError('duplicate-stream-id.yaml');
    expect(err.message).toBe(`${fixture('duplicate-stream-id.yaml')}:10:9: streams[2].id: duplicate stream id "cam1" (first defined at line 6)`);
  });

  it('duplicate ids are reported alongside other errors', async () => {
    const text = 'streams:\n  - id: a\n    key: k\n  - id: a\n    key: 7\n    bogus: 1\n';
    const err = await configError(() => parseConfig(text, 'd.yaml', {}));
    expect(err.message.split('\n')).toEqual([
      'd.yaml:4:9: streams[1].id: duplicate stream id "a" (first defined at line 2)',
      'd.yaml:5:10: streams[1].key: expected string, got number 7',
      'd.yaml:6:5: streams[1].bogus: unknown key "bogus"',
    ]);
    expect(err.issues).toHaveLength(3);
  });

  it('unresolved ${VAR}', async () => {
    const err = await loadFixtureError('unresolved-var.yaml');
    expect(err.message).toContain(`${fixture('unresolved-var.yaml')}:3:10: streams[0].key: environment variable "APPENDCAST_TEST_UNSET_KEY" is not set`);
    // Resolves once the variable exists.
    const config = await loadConfigFile(fixture('unresolved-var.yaml'), { APPENDCAST_TEST_UNSET_KEY: 'k' });
    expect(config.streams[0]?.key).toBe('k');
  });

  it('bad key template placeholder and leading slash', async () => {
    const err = await loadFixtureError('bad-key-template.yaml');
    const lines = err.message.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/bad-key-template\.yaml:2:16: streamDefaults\.keyTemplate: key template unknown placeholder "\{date\}"/);
    expect(lines[1]).toBe(`${fixture('bad-key-template.yaml')}:6:18: streams[0].keyTemplate: key template must not start with "/"`);
  });

  it('YAML syntax error', async () => {
    const err = await loadFixtureError('yaml-syntax.yaml');
    expect(err.message).toMatch(/yaml-syntax\.yaml:4:1: YAML syntax error: /);
    expect(err.issues[0]?.line).toBe(4);
  });

  it('empty file, non-mapping streams, unreadable file', async () => {
    expect((await configError(() => parseConfig('# nothing\n', 'e.yaml', {}))).message).toBe('e.yaml: config file is empty');
    expect((await configError(() => parseConfig('streams: {}\n', 's.yaml', {}))).message).toBe('s.yaml:1:10: streams: expected a list, got a mapping');
    expect((await configError(() => parseConfig('streams: []\n', 's.yaml', {}))).message).toBe('s.yaml:1:10: streams: at least one stream is required');
    const missing = await configError(() => loadConfigFile(fixture('does-not-exist.yaml'), {}));
    expect(missing.message).toContain('does-not-exist.yaml: cannot read config file: ENOENT');
  });

  it('rejects bad stream ids and an empty key', async () => {
    const err = await configError(() => parseConfig('streams:\n  - id: "a/b"\n    key: ""\n', 'i.yaml', {}));
    expect(err.message.split('\n')).toEqual([
      'i.yaml:2:9: streams[0].id: stream ids are 1-64 characters of a-z, A-Z, 0-9, "_" and "-"',
      'i.yaml:3:10: streams[0].key: publish key must not be empty',
    ]);
  });
});

describe('helpers', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'appendcast-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('redactConfig hides stream keys and OSS secrets without touching the original', () => {
    const text = [
      'storage: { kind: oss, endpoint: "https://oss-cn-hangzhou.aliyuncs.com", bucket: b-1, region: cn-hangzhou,',
      '           accessKeyId: LTAIid, accessKeySecret: topsecret, securityToken: sts-token }',
      'streams: [{ id: a, key: key-a }, { id: b, key: key-b }]',
      '',
    ].join('\n');
    const config = parseConfig(text, 'r.yaml', {});
    const redacted = redactConfig(config);
    const json = JSON.stringify(redacted);
    for (const secret of ['topsecret', 'sts-token', 'key-a', 'key-b']) expect(json).not.toContain(secret);
    expect(json).toContain('LTAIid'); // the key id is not a secret
    expect(redacted.streams.map((s) => s.key)).toEqual(['***', '***']);
    expect(config.streams[0]?.key).toBe('key-a');
    expect(config.storage.kind === 'oss' && config.storage.accessKeySecret).toBe('topsecret');
  });

  it('resolvePaths makes relative paths absolute against a base dir', async () => {
    const file = join(dir, 'c.yaml');
    await writeFile(file, 'dataDir: state\nffmpeg: { path: ./bin/ffmpeg }\nstreams: [{ id: a, key: k }]\n');
    const config = await loadConfigFile(file, {});
    expect(config.dataDir).toBe('state'); // kept as written
    const resolved = resolvePaths(config, dir);
    expect(resolved.dataDir).toBe(join(dir, 'state'));
    expect(resolved.storage.kind === 'fs' && resolved.storage.root).toBe(join(dir, 'state', 'objects'));
    expect(resolved.ffmpeg.path).toBe(join(dir, 'bin', 'ffmpeg'));
    expect(resolvePaths(config).dataDir).toBe(resolve(process.cwd(), 'state'));
    const bare = resolvePaths(parseConfig('ffmpeg: { path: ffmpeg }\nstreams: [{ id: a, key: k }]\n', 'x.yaml', {}), dir);
    expect(bare.ffmpeg.path).toBe('ffmpeg'); // a bare name is looked up on PATH, not resolved
  });

  it('configJsonSchema describes the file, accepting ${VAR} where numbers go', () => {
    const schema = configJsonSchema() as {
      type: string;
      additionalProperties: boolean;
      required: string[];
      properties: Record<string, { properties?: Record<string, { properties?: Record<string, { anyOf?: unknown[] }> }> }>;
    };
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['streams']);
    expect(Object.keys(schema.properties).sort()).toEqual(['dataDir', 'ffmpeg', 'log', 'retry', 'server', 'spool', 'storage', 'streamDefaults', 'streams']);
    const port = schema.properties['server']?.properties?.['rtmp']?.properties?.['port'];
    expect(port?.anyOf).toContainEqual({ type: 'string', pattern: '\\$\\{' });
    expect(port).toMatchObject({ default: 1935 }); // defaults survive the preprocess wrappers
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema); // plain JSON, writable to a file
  });
});
