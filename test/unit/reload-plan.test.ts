import { describe, expect, it } from 'vitest';
import { parseConfig, resolvePaths } from '../../src/config/index.js';
import type { Config } from '../../src/config/index.js';
import { isEmptyPlan, planReload } from '../../src/config/reload-plan.js';

const BASE = `
dataDir: /var/lib/appendcast
server: { rtmp: { port: 1935 }, http: { port: 8080, apiToken: "0123456789abcdef-secret" } }
storage: { kind: fs, root: /srv/objects }
`;
const config = (streams: string, head = BASE): Config => resolvePaths(parseConfig(`${head}streams:\n${streams}`, 'c.yaml', {}), '/');

const A = '  - { id: a, key: ka }\n';
const B = '  - { id: b, key: kb }\n';
const PULL = '  - { id: door, source: { rtsp: "rtsp://u:p@cam/1" } }\n';

describe('planReload', () => {
  it('the same config: nothing to do', () => {
    const plan = planReload(config(A + PULL), config(A + PULL));
    expect(isEmptyPlan(plan)).toBe(true);
  });

  it('added, removed and changed streams', () => {
    const plan = planReload(config(A + B + PULL), config('  - { id: a, key: new }\n  - { id: c, key: kc }\n' + PULL));
    expect(plan.needsRestart).toEqual([]);
    expect(plan.start.map((s) => s.id)).toEqual(['c']);
    expect(plan.stop.map((s) => s.id)).toEqual(['b']);
    expect(plan.change.map((c) => [c.before.key, c.after.key])).toEqual([['ka', 'new']]);
  });

  it('disabling stops a stream, enabling starts it; a disabled stream changing is nothing to do', () => {
    const disabled = '  - { id: b, key: kb, enabled: false }\n';
    expect(planReload(config(A + B), config(A + disabled)).stop.map((s) => s.id)).toEqual(['b']);
    expect(planReload(config(A + disabled), config(A + B)).start.map((s) => s.id)).toEqual(['b']);
    expect(isEmptyPlan(planReload(config(A + disabled), config(A + '  - { id: b, key: other, enabled: false }\n')))).toBe(true);
  });

  it('a stream that turns from pushed to pulled is stopped and started', () => {
    const plan = planReload(config(A + '  - { id: door, key: kd }\n'), config(A + PULL));
    expect(plan.stop.map((s) => s.id)).toEqual(['door']);
    expect(plan.start.map((s) => s.source?.url)).toEqual(['rtsp://u:p@cam/1']);
    expect(plan.change).toEqual([]);
  });

  it('streamDefaults reach the streams that inherit them', () => {
    const plan = planReload(config(A + B), config(A + B, `${BASE}streamDefaults: { format: mpegts }\n`));
    expect(plan.change.map((c) => [c.after.id, c.after.format, c.after.keyTemplate.endsWith('.ts')])).toEqual([['a', 'mpegts', true], ['b', 'mpegts', true]]);
  });

  it('settings read only at start need a restart, named by path and never by value', () => {
    const head = BASE.replace('port: 8080, apiToken: "0123456789abcdef-secret"', 'port: 8081, apiToken: "another-secret-0123456789"')
      .replace('/srv/objects', '/srv/other') + 'spool: { quotaBytesTotal: 42949672960 }\nffmpeg: { path: /opt/ffmpeg }\n';
    const plan = planReload(config(A), config(A + B, head));
    expect(plan.needsRestart).toEqual(['server.http.apiToken', 'server.http.port', 'storage.root', 'spool.quotaBytesTotal', 'ffmpeg.path']);
    expect(JSON.stringify(plan.needsRestart)).not.toContain('secret');
    expect(plan.start.map((s) => s.id)).toEqual(['b']); // planned, but the gateway applies none of it
  });

  it('log level, retry and the ffmpeg stall timeout apply at once', () => {
    const plan = planReload(config(A), config(A, `${BASE}log: { level: debug }\nretry: { baseDelayMs: 100 }\nffmpeg: { stallTimeoutSeconds: 5 }\n`));
    expect(plan.needsRestart).toEqual([]);
    expect(plan.settings).toEqual(['log.level', 'retry.baseDelayMs', 'ffmpeg.stallTimeoutSeconds']);
  });
});
