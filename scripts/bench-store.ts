/**
 * Store benchmark: appends of 64 KiB, 1 MiB and 4 MiB chunks, for a bounded time each, to
 *   - fs      (FsStore, fsync always — the default — and never),
 *   - oss     (OssStore over undici, V4-signed → `serve-oss` in this process → FsStore),
 *   - baseline: a plain fs.appendFile loop on the same disk (no fsync),
 * and writes appends/s, MB/s, p50/p99 latency and the ratio to the baseline to bench/results/.
 *
 *   npm run bench:store [-- --seconds 3]
 *
 * Compare ratios within one run: the machine is shared and noisy.
 */
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FsStore } from '../src/store/fs/fs-store.js';
import { OssLocalServer } from '../src/serve-oss/server.js';
import { OssStore } from '../src/store/oss/oss-store.js';
import type { AppendableStore } from '../src/store/types.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, dir: { type: 'string' } } });
const SECONDS = Number(values.seconds);
const MAX_APPENDS = 5000; // bounded in count as well as time
const SIZES = [64 * 1024, 1024 * 1024, 4 * 1024 * 1024];

interface Row {
  target: string;
  chunkBytes: number;
  appends: number;
  seconds: number;
  appendsPerSec: number;
  mbPerSec: number;
  p50ms: number;
  p99ms: number;
  ratioToBaseline?: number;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function loop(target: string, chunkBytes: number, once: (i: number, chunk: Buffer) => Promise<void>): Promise<Row> {
  const chunk = randomBytes(chunkBytes);
  const lat: number[] = [];
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  let i = 0;
  while (performance.now() < deadline && i < MAX_APPENDS) {
    const t = performance.now();
    await once(i, chunk);
    lat.push(performance.now() - t);
    i++;
  }
  const secs = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  return {
    target, chunkBytes, appends: i, seconds: +secs.toFixed(3), appendsPerSec: +(i / secs).toFixed(1),
    mbPerSec: +((i * chunkBytes) / secs / 1e6).toFixed(1), p50ms: +pct(lat, 50).toFixed(3), p99ms: +pct(lat, 99).toFixed(3),
  };
}

async function storeLoop(target: string, store: AppendableStore, chunkBytes: number): Promise<Row> {
  const key = `bench/${target}-${chunkBytes}-${Date.now()}.bin`;
  let pos = 0;
  const row = await loop(target, chunkBytes, async (_i, chunk) => {
    pos = (await store.append(key, pos, [chunk])).nextPosition;
  });
  await store.delete(key);
  return row;
}

async function main(): Promise<void> {
  const base = values.dir ?? tmpdir();
  const dir = await mkdtemp(join(base, 'apc-bench-'));
  const rows: Row[] = [];
  const server = new OssLocalServer({ root: join(dir, 'oss'), port: 0, buckets: ['bench'], credentials: [{ accessKeyId: 'bench', accessKeySecret: 'bench-secret' }], fsync: 'always' });
  const addr = await server.start();
  const oss = new OssStore({
    kind: 'oss', endpoint: addr.url, bucket: 'bench', region: 'cn-hangzhou', signatureVersion: 'v4', pathStyle: true,
    accessKeyId: 'bench', accessKeySecret: 'bench-secret', timeouts: { connectMs: 5000, headersMs: 30_000, bodyMs: 30_000 },
  });
  const fsAlways = new FsStore({ root: join(dir, 'fs-always'), fsync: 'always' });
  const fsNever = new FsStore({ root: join(dir, 'fs-never'), fsync: 'never' });
  try {
    for (const size of SIZES) {
      await mkdir(join(dir, 'plain'), { recursive: true });
      const plain = join(dir, 'plain', `p-${size}.bin`);
      await writeFile(plain, '');
      const baseline = await loop('baseline fs.appendFile', size, (_i, c) => appendFile(plain, c));
      await rm(plain);
      const group = [
        baseline,
        await storeLoop('fs (fsync always)', fsAlways, size),
        await storeLoop('fs (fsync never)', fsNever, size),
        await storeLoop('oss → serve-oss (V4, fsync always)', oss, size),
      ];
      for (const r of group) r.ratioToBaseline = +(r.mbPerSec / baseline.mbPerSec).toFixed(3);
      rows.push(...group);
      for (const r of group) console.log(`${(size / 1024).toString().padStart(5)} KiB  ${r.target.padEnd(36)} ${String(r.appendsPerSec).padStart(8)}/s ${String(r.mbPerSec).padStart(8)} MB/s  p50 ${r.p50ms} ms  p99 ${r.p99ms} ms  ×${r.ratioToBaseline}`);
    }
  } finally {
    await oss.close();
    await server.close();
    await fsAlways.close();
    await fsNever.close();
    await rm(dir, { recursive: true, force: true });
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir = new URL('../bench/results/', import.meta.url).pathname;
  await mkdir(outDir, { recursive: true });
  const meta = { date: new Date().toISOString(), node: process.version, secondsPerCase: SECONDS, disk: base };
  const md = [
    `# store benchmark ${meta.date}`, '', `Node ${meta.node}; ${SECONDS} s per case (at most ${MAX_APPENDS} appends); temp dir on ${base}.`, '',
    '| chunk | target | appends/s | MB/s | p50 ms | p99 ms | × baseline MB/s |', '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.chunkBytes / 1024} KiB | ${r.target} | ${r.appendsPerSec} | ${r.mbPerSec} | ${r.p50ms} | ${r.p99ms} | ${r.ratioToBaseline} |`), '',
  ].join('\n');
  await writeFile(join(outDir, `store-${stamp}.json`), JSON.stringify({ ...meta, rows }, null, 2));
  await writeFile(join(outDir, `store-${stamp}.md`), md);
  console.log(`\nwritten to bench/results/store-${stamp}.{json,md}`);
}

await main();
