/**
 * The gateway's logs as an operator meets them: readable on a terminal (a real pseudo-terminal,
 * util-linux `script`), JSON through a pipe, either one forced; every JSON line free of duplicate
 * keys over a run that refuses publishes, records, reconnects and stops; and the startup warnings.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { startCamera } from '../helpers/camera.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { duplicateJsonKeys } from '../helpers/json-keys.js';
import { PublishRefused, RtmpTestPublisher } from '../helpers/rtmp-publisher.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const TSX = import.meta.resolve('tsx');

const cleanup = cleanupAfterEach('apc-logs-');
const tempDir = (): Promise<string> => cleanup.tempDir();

const yaml = (dir: string, key: string, p = { rtmp: 0, http: 0 }) => `
dataDir: ${join(dir, 'data')}
log: { level: info }
server: { rtmp: { host: 127.0.0.1, port: ${p.rtmp} }, http: { host: 127.0.0.1, port: ${p.http} } }
storage: { kind: fs, fsync: never }
spool: { fsync: never }
streams:
  - { id: cam1, key: ${key} }
  - { id: viaffmpeg, key: ffmpeg-key-0123, remux: ffmpeg }
`;

/** Printable text of a terminal's output: no colours, no carriage returns. */
const plain = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r/g, '');

/** The pid of the only child of `pid` (Linux /proc). */
function childOf(pid: number): number | undefined {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return kids.length === 1 ? kids[0] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `appendcast run` on a pseudo-terminal (`script -qfec CMD /dev/null`: the gateway's stdout is a
 * TTY); output until `until` shows in it, then SIGTERM to the gateway and its exit code.
 */
async function runOnTerminal(dir: string, extraArgs: string[], env: Record<string, string>, until: RegExp): Promise<{ out: string; code: number | null }> {
  const config = join(dir, 'appendcast.yaml');
  await writeFile(config, yaml(dir, 'change-me'));
  const cmd = [process.execPath, '--import', TSX, join(ROOT, 'src/cli.ts'), 'run', '--config', config, ...extraArgs].map((a) => `'${a}'`).join(' ');
  // `exec`: the gateway is script's child itself, whichever shell runs the command.
  const proc = spawn('script', ['-qfec', `exec ${cmd}`, '/dev/null'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SHELL: '/bin/sh', ...env } });
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
  proc.stderr.setEncoding('utf8').on('data', (s: string) => { out += s; });
  const exited = new Promise<number | null>((resolve) => proc.once('close', (c) => resolve(c)));
  cleanup.push(async () => { if (proc.exitCode === null) proc.kill('SIGKILL'); });
  await waitFor(`${until} on the terminal`, () => {
    if (proc.exitCode !== null) throw new Error(`exited ${proc.exitCode}:\n${out}`);
    return until.test(plain(out));
  }, 20_000, 50);
  const gateway = await waitFor('the gateway under script', () => childOf(proc.pid!), 5_000, 20);
  process.kill(gateway, 'SIGTERM');
  const code = await withTimeout(exited, 20_000, 'the gateway to exit');
  return { out: plain(out), code };
}

describe('log format', () => {
  it('on a terminal: pretty (no JSON line), the example-key warning readable; exit 0', async () => {
    const dir = await tempDir();
    const { out, code } = await runOnTerminal(dir, [], {}, /gateway started/);
    expect(code).toBe(0);
    const lines = out.split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThan(3);
    expect(lines.filter((l) => l.trimStart().startsWith('{"'))).toEqual([]);
    expect(out).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: gateway started$/m);
    expect(out).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: stream key is the example config's default/m);
    expect(out).toMatch(/INFO: gateway stopped/);
  }, 40_000);

  it('on a terminal with --log-format json: JSON lines', async () => {
    const dir = await tempDir();
    const { out, code } = await runOnTerminal(dir, ['--log-format', 'json'], {}, /"msg":"gateway started"/);
    expect(code).toBe(0);
    const lines = out.split('\n').filter((l) => l.trim() !== '');
    for (const l of lines) expect(() => JSON.parse(l), l).not.toThrow();
  }, 40_000);

  it('through a pipe: JSON (auto), or pretty when APPENDCAST_LOG_FORMAT=pretty; a bad format is refused', async () => {
    const dir = await tempDir();
    const json = await startGateway(dir, (p) => yaml(dir, 'a-secret-key-0123', p));
    cleanup.push(() => json.kill());
    expect(await json.stop()).toBe(0);
    const lines = json.logs().split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(3);
    for (const l of lines) expect((JSON.parse(l) as { app?: string }).app, l).toBe('appendcast');

    const dir2 = await tempDir();
    await writeFile(join(dir2, 'appendcast.yaml'), yaml(dir2, 'a-secret-key-0123'));
    const pretty = spawn(process.execPath, ['--import', TSX, join(ROOT, 'src/cli.ts'), 'run', '--config', join(dir2, 'appendcast.yaml')], {
      cwd: dir2, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, APPENDCAST_LOG_FORMAT: 'pretty' },
    });
    cleanup.push(async () => { if (pretty.exitCode === null) pretty.kill('SIGKILL'); });
    let out = '';
    pretty.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
    const exited = new Promise<number | null>((resolve) => pretty.once('close', (c) => resolve(c)));
    await waitFor('pretty "gateway started"', () => / INFO: gateway started\n/.test(out), 20_000, 50);
    pretty.kill('SIGTERM');
    expect(await withTimeout(exited, 20_000, 'exit')).toBe(0);
    expect(out).not.toMatch(/\x1b\[/); // no colours into a pipe
    expect(out.split('\n').filter((l) => l.startsWith('{'))).toEqual([]);

    const bad = spawn(process.execPath, ['--import', TSX, join(ROOT, 'src/cli.ts'), 'run', '--config', join(dir2, 'appendcast.yaml'), '--log-format', 'xml'], {
      cwd: dir2, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    bad.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
    const badCode = await withTimeout(new Promise<number | null>((resolve) => bad.once('close', (c) => resolve(c))), 20_000, 'exit');
    expect(badCode).toBe(1);
    expect(err).toContain('--log-format must be one of auto, json, pretty');
  }, 60_000);
});

describe('JSON log lines', () => {
  it('no key twice in any line, over refused publishes, recordings (native and ffmpeg), a reconnect, a broken peer and a stop', async () => {
    const dir = await tempDir();
    const gw: GatewayProcess = await startGateway(dir, (p) => yaml(dir, 'a-secret-key-0123', p));
    cleanup.push(() => gw.kill());
    // Refused: wrong app, unknown stream, bad key (each logs 'publish refused').
    for (const [app, name] of [['other', 'cam1?key=a-secret-key-0123'], ['live', 'nope?key=x'], ['live', 'cam1?key=wrong']] as const) {
      const p = await RtmpTestPublisher.open({ port: gw.rtmpPort, app });
      await p.connect();
      await expect(p.publish(name)).rejects.toBeInstanceOf(PublishRefused);
      await p.end();
    }
    // A peer that is not RTMP at all.
    await new Promise<void>((resolve) => {
      const s = connect(gw.rtmpPort, '127.0.0.1', () => s.end(Buffer.alloc(1537, 0x42)));
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    // Two short publishes on each stream: the second is a reconnect.
    for (let round = 0; round < 2; round++) {
      const cams = [
        startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/cam1?key=a-secret-key-0123`, seconds: 2 }),
        startCamera({ url: `rtmp://127.0.0.1:${gw.rtmpPort}/live/viaffmpeg?key=ffmpeg-key-0123`, seconds: 2 }),
      ];
      for (const c of cams) cleanup.push(async () => c.stop());
      for (const c of cams) expect((await c.done).code).toBe(0);
      await waitFor(`round ${round} recorded`, async () => (await gw.streams()).every((s) => s.sessions.length === round + 1 && s.sessions.every((x) => !x.draining)), 20_000, 100);
    }
    expect(await gw.stop()).toBe(0);
    const lines = gw.logs().split('\n').filter((l) => l !== '');
    const msgs = new Set(lines.map((l) => (JSON.parse(l) as { msg: string }).msg));
    // The run did what it should have, so the lines checked are the interesting ones.
    for (const m of ['publish refused', 'gateway started', 'gateway stopped']) expect(msgs, m).toContain(m);
    expect(lines.filter((l) => l.includes('"msg":"publish refused"')).length).toBe(3);
    // A secret key, the API on loopback: neither startup warning.
    expect([...msgs].filter((m) => /example config's default|without server\.http\.apiToken/.test(m))).toEqual([]);
    const dups = lines.map((l) => ({ l, d: duplicateJsonKeys(l) })).filter((x) => x.d.length > 0);
    expect(dups).toEqual([]);
  }, 90_000);
});
