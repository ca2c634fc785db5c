import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { EXAMPLE_STREAM_KEYS, startupWarnings } from '../../src/startup-warnings.js';

const EXAMPLE = readFileSync(new URL('../../config/appendcast.example.yaml', import.meta.url), 'utf8');
const TOKEN = 'a-token-of-at-least-16-chars';

function warningsFor(yaml: string, env: Record<string, string> = {}): string[] {
  return startupWarnings(parseConfig(yaml, 'test.yaml', env)).map((w) => w.msg);
}

const config = (http: string, key = 'a-real-secret-key') => `
server: { http: ${http} }
streams: [{ id: cam1, key: ${key} }, { id: door, source: { rtsp: "rtsp://cam.example/1" } }]
`;

describe('startup warnings', () => {
  it('the example config as it is: its stream key and an open API on 0.0.0.0 are both flagged', () => {
    const w = startupWarnings(parseConfig(EXAMPLE, 'appendcast.example.yaml', {}));
    expect(w.map((x) => x.msg)).toEqual([expect.stringMatching(/example config's default/), expect.stringMatching(/beyond loopback without server\.http\.apiToken/)]);
    expect(w[0]!.fields).toEqual({ streams: ['cam1'] });
    // Names the streams, never the key itself.
    expect(JSON.stringify(w)).not.toContain('change-me');
  });

  it('every stream key the example config defaults to is a known example key', () => {
    const keys = parseConfig(EXAMPLE, 'appendcast.example.yaml', {}).streams.filter((s) => !s.source).map((s) => s.key);
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) expect(EXAMPLE_STREAM_KEYS).toContain(k);
  });

  it('the example with CAM1_KEY set and the API on loopback: no warning', () => {
    const fixed = EXAMPLE.replace(/^(    host: )0\.0\.0\.0(\n    port: \$\{HTTP_PORT)/m, '$1127.0.0.1$2');
    expect(fixed).not.toBe(EXAMPLE);
    expect(warningsFor(fixed, { CAM1_KEY: 'a-real-secret-key' })).toEqual([]);
  });

  it('API beyond loopback: warned without a token (0.0.0.0, ::, a LAN address), not with one, not on loopback', () => {
    for (const host of ['0.0.0.0', '"::"', '10.1.2.3', '"[::]"']) {
      expect(warningsFor(config(`{ host: ${host} }`)), host).toEqual([expect.stringMatching(/HTTP API listens beyond loopback/)]);
    }
    expect(warningsFor(config(`{ host: 0.0.0.0, apiToken: ${TOKEN} }`))).toEqual([]);
    for (const host of ['127.0.0.1', '127.8.9.10', 'localhost', '"::1"', '"[::1]"']) expect(warningsFor(config(`{ host: ${host} }`)), host).toEqual([]);
  });

  it('an example key on a disabled stream is not flagged (nobody can publish to it)', () => {
    expect(warningsFor(config('{ host: 127.0.0.1 }', 'change-me'))).toEqual([expect.stringMatching(/example config's default/)]);
    expect(warningsFor(`
server: { http: { host: 127.0.0.1 } }
streams: [{ id: cam1, key: change-me, enabled: false }]
`)).toEqual([]);
  });
});
