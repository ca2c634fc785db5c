import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { locateFfmpeg } from '../../src/remux/ffmpeg-path.js';
import { renderKey, withCollisionSuffix } from '../../src/appender/key-template.js';

const run = promisify(execFile);
const CLI = [ '--import', import.meta.resolve('tsx'), new URL('../../src/cli.ts', import.meta.url).pathname ];

async function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [...CLI, ...args], { env });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('appendcast CLI', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'apc-cli-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('validate: exit 0 on the example config', async () => {
    const r = await cli(['validate', 'config/appendcast.example.yaml']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ok (1 stream, storage fs)');
  });

  it('validate: non-zero with file, line and field on a broken config', async () => {
    const r = await cli(['validate', 'test/fixtures/config/duplicate-stream-id.yaml']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/duplicate-stream-id\.yaml:\d+:\d+: streams\[\d\]\.id: duplicate stream id/);
  });

  it('run: a clear error, naming the three places, when ffmpeg cannot be found', async () => {
    const file = join(dir, 'c.yaml');
    await writeFile(file, 'dataDir: ' + join(dir, 'data') + '\nserver: { rtmp: { port: 0 }, http: { port: 0 } }\nstreams: [{ id: cam1, key: k }]\n');
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: join(dir, 'empty-bin') };
    delete env.FFMPEG_PATH;
    const r = await cli(['run', '--config', file], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ffmpeg not found');
    expect(r.stderr).toContain('FFMPEG_PATH');
    expect(r.stderr).toContain('ffmpeg-static');
    expect(r.stderr).toContain('PATH');
  });

  it('unknown command: usage and exit 2', async () => {
    const r = await cli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage');
  });
});

describe('ffmpeg lookup order', () => {
  it('FFMPEG_PATH wins over PATH; a bad FFMPEG_PATH is an error, not a silent fallback', () => {
    const onPath = locateFfmpeg();
    expect(onPath.path).toMatch(/ffmpeg$/);
    expect(locateFfmpeg({ env: { FFMPEG_PATH: onPath.path, PATH: '' } })).toEqual({ path: onPath.path, source: 'FFMPEG_PATH' });
    expect(() => locateFfmpeg({ env: { FFMPEG_PATH: '/nonexistent/ffmpeg', PATH: process.env.PATH } })).toThrow(/FFMPEG_PATH is \/nonexistent\/ffmpeg/);
    expect(() => locateFfmpeg({ env: { PATH: '' } })).toThrow(expect.objectContaining({ code: 'APC_ERR_FFMPEG_NOT_FOUND' }));
  });
});

describe('object key template', () => {
  it('renders in UTC and never reuses a key', () => {
    const date = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6));
    expect(renderKey('{stream}/{yyyy}/{MM}/{dd}/{stream}-{HH}{mm}{ss}.mp4', { stream: 'cam1', date, seq: 0 })).toBe('cam1/2026/01/02/cam1-030405.mp4');
    expect(renderKey('{stream}-{SSS}-{seq}', { stream: 'c', date, seq: 7 })).toBe('c-006-7');
    expect(withCollisionSuffix('a/b/c.mp4', 0)).toBe('a/b/c.mp4');
    expect(withCollisionSuffix('a/b/c.mp4', 2)).toBe('a/b/c-2.mp4');
    expect(withCollisionSuffix('a.b/c', 1)).toBe('a.b/c-1');
  });
});
