/**
 * What bench:scale checks per camera once the run is over: every byte the gateway spooled is in the
 * store (exactly, per stream), and for a sample of streams the stored media decodes cleanly and is
 * as long as what the load generator sent.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfigFile, resolvePaths } from '../../src/config/index.js';
import { readFlv } from '../../src/media/flv/flv-file.js';
import { createStore } from '../../src/store/create-store.js';
import { OssStore } from '../../src/store/oss/oss-store.js';
import type { ListEntry } from '../../src/store/types.js';
import { decodeCheck, ffprobeOf, type DecodeResult } from './decode.js';
import type { ApiStream } from './gateway-proc.js';
import { round } from './num.js';

const run = promisify(execFile);

/** The sidecar index next to each object: not media, not counted as stored media bytes. */
export const isIndex = (key: string): boolean => key.endsWith('.index.jsonl');

/**
 * Every object in the store the gateway's config names, listed through our own store client (fs:
 * the FsStore over its root, whose sizes are the acknowledged lengths; oss: ListObjectsV2).
 */
export async function listStored(configFile: string, env: NodeJS.ProcessEnv): Promise<ListEntry[]> {
  const cfg = resolvePaths(await loadConfigFile(configFile, env));
  const store = cfg.storage.kind === 'oss' ? new OssStore(cfg.storage, { env }) : createStore(cfg.storage);
  try {
    return await store.list('');
  } finally {
    await store.close();
  }
}

export interface CameraCheck {
  stream: string;
  sessions: number;
  /** sum of the sessions' spooledBytes (null: a session has no summary yet) */
  spooledBytes: number | null;
  /** sum of the stream's objects in the store, index files excluded */
  storedBytes: number;
  objects: string[];
  match: boolean;
  /** why it does not match, or anything else odd (objects the API does not name, halted sessions) */
  problems: string[];
}

/** Stored vs spooled bytes for each stream id; the stream of a key is its first path segment (keyTemplate {stream}/…). */
export function compareStoredSpooled(ids: readonly string[], api: readonly ApiStream[], listed: readonly ListEntry[]): CameraCheck[] {
  return ids.map((id) => {
    const sessions = api.find((s) => s.id === id)?.sessions ?? [];
    const objs = listed.filter((e) => e.key.startsWith(`${id}/`) && !isIndex(e.key));
    const storedBytes = objs.reduce((a, e) => a + e.size, 0);
    const unfinished = sessions.filter((s) => s.spooledBytes === undefined);
    const spooledBytes = unfinished.length ? null : sessions.reduce((a, s) => a + (s.spooledBytes ?? 0), 0);
    const problems: string[] = [];
    if (sessions.length === 0) problems.push('no session');
    if (unfinished.length) problems.push(`${unfinished.length} session(s) without a summary (not ended)`);
    if (spooledBytes !== null && spooledBytes !== storedBytes) problems.push(`stored ${storedBytes} B != spooled ${spooledBytes} B (${storedBytes - spooledBytes > 0 ? '+' : ''}${storedBytes - spooledBytes})`);
    const named = new Set(sessions.flatMap((s) => s.objects));
    const unnamed = objs.filter((e) => !named.has(e.key)).map((e) => e.key);
    if (unnamed.length) problems.push(`objects the API does not name: ${unnamed.join(', ')}`);
    const missing = [...named].filter((k) => !objs.some((e) => e.key === k));
    if (missing.length) problems.push(`objects the API names but the store does not have: ${missing.join(', ')}`);
    for (const s of sessions) {
      if (s.halted) problems.push(`session ${s.id} halted`);
      if (s.draining) problems.push(`session ${s.id} still draining`);
    }
    return { stream: id, sessions: sessions.length, spooledBytes, storedBytes, objects: objs.map((e) => e.key), match: spooledBytes !== null && spooledBytes === storedBytes, problems };
  });
}

/**
 * Media time the load generator had sent after publishing for `elapsedMs`, on the source's own
 * video timeline. It mirrors loadgen.ts: tags paced in real time from the publish, the file looped
 * with timestamps offset by period = last video timestamp + one frame. Sent = the last video frame
 * due by then, plus its duration (what a decoder counts as the video's end).
 */
export class SentMedia {
  private readonly videoTs: number[];
  readonly frameMs: number;
  readonly periodMs: number;

  constructor(flvPath: string) {
    const { tags } = readFlv(readFileSync(flvPath));
    // Video frames only: not the sequence header (AVC packet type 0) nor end-of-sequence (2).
    this.videoTs = tags.filter((t) => t.type === 9 && t.body[1] === 1).map((t) => t.timestamp);
    const n = this.videoTs.length;
    this.frameMs = n > 1 ? Math.round((this.videoTs[n - 1]! - this.videoTs[0]!) / (n - 1)) : 40;
    this.periodMs = (this.videoTs[n - 1] ?? 0) + this.frameMs;
  }

  secondsAt(elapsedMs: number): number {
    if (elapsedMs < 0 || this.videoTs.length === 0) return 0;
    const k = Math.floor(elapsedMs / this.periodMs);
    const within = elapsedMs - k * this.periodMs;
    const due = this.videoTs.filter((t) => t <= within);
    // Nothing of loop k due yet: loop k-1 ended with its last frame.
    const last = due.length ? k * this.periodMs + due.at(-1)! : k * this.periodMs - this.frameMs;
    return round((last + this.frameMs) / 1000, 3);
  }
}

export interface SampleCheck {
  stream: string;
  /** media the load generator sent (from the publish to its stop), s */
  sentSeconds: number | null;
  /**
   * sum of the stored objects' VIDEO stream durations (ffprobe), s. Not the format duration: that
   * ends at the last presentation time, which B-frames' composition offset puts a few frames after
   * the last frame's decode time, so it reads longer than the media sent by that offset.
   */
  storedSeconds: number | null;
  /** sum of the objects' format durations (ffprobe), s */
  formatSeconds: number | null;
  /** stored − sent, s */
  diffSeconds: number | null;
  /** lines `ffmpeg -v error` printed over all the stream's objects */
  errorLines: number;
  objects: DecodeResult[];
  problems: string[];
}

/** ~`n` streams spread over the ids (first, last and evenly between). */
export function sampleIds(ids: readonly string[], n: number): string[] {
  if (ids.length <= n) return [...ids];
  return [...new Set(Array.from({ length: n }, (_, i) => ids[Math.round((i * (ids.length - 1)) / (n - 1))]!))];
}

/**
 * Decodes every object of the stream from where the store keeps its bytes (`dataDir`: the fs root,
 * or serve-oss's bucket directory, both FsStore layouts: key = path) and compares its duration with
 * what was sent. A file longer than its listed (acknowledged) size would carry an unacknowledged
 * tail, which the decoder would read too: said in problems.
 */
export async function checkSample(o: { ffmpeg: string; stream: string; check: CameraCheck; listed: readonly ListEntry[]; dataDir: string; sentSeconds: number | null }): Promise<SampleCheck> {
  const problems: string[] = [];
  const objects: DecodeResult[] = [];
  const video: Array<number | null> = [];
  for (const key of o.check.objects) {
    const file = join(o.dataDir, ...key.split('/'));
    const listedSize = o.listed.find((e) => e.key === key)?.size;
    const onDisk = await stat(file).then((s) => s.size, () => -1);
    if (onDisk !== listedSize) problems.push(`${key}: ${onDisk} B on disk, ${listedSize ?? '?'} B listed`);
    objects.push({ ...(await decodeCheck(o.ffmpeg, o.stream, file)), object: key });
    video.push(await videoSeconds(o.ffmpeg, file));
  }
  if (objects.length === 0) problems.push('no object');
  const storedSeconds = total(video);
  const formatSeconds = total(objects.map((d) => d.durationSeconds));
  const errorLines = objects.reduce((a, d) => a + Math.max(0, d.errorLines), 0);
  const diffSeconds = storedSeconds !== null && o.sentSeconds !== null ? round(storedSeconds - o.sentSeconds, 3) : null;
  return { stream: o.stream, sentSeconds: o.sentSeconds, storedSeconds, formatSeconds, diffSeconds, errorLines, objects, problems };
}

/** Sum, or null when there is nothing or any part is unknown. */
function total(xs: ReadonlyArray<number | null>): number | null {
  return xs.length && xs.every((x) => x !== null) ? round(xs.reduce<number>((a, x) => a + x!, 0), 3) : null;
}

/** The first video stream's duration as ffprobe reports it (fragmented MP4: from the fragments' sample durations), s. */
async function videoSeconds(ffmpeg: string, file: string): Promise<number | null> {
  try {
    const r = await run(ffprobeOf(ffmpeg), ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=duration', '-of', 'csv=p=0', file], { timeout: 60_000 });
    const d = Number(r.stdout.trim());
    return Number.isFinite(d) ? round(d, 3) : null;
  } catch {
    return null;
  }
}
