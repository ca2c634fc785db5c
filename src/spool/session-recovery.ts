import { open, readdir, readFile, stat, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';
import type { SpoolDroppedRange } from './drop-ledger.js';
import { DEAD_DROPPED, newEntryRec, type EntryRec, type Segment } from './entry-record.js';
import { errnoCode } from './fs-util.js';
import { readFrameAt } from './frame.js';
import { readCursorFiles, type CursorFiles } from './cursor-log.js';
import { DROPS_FILE, SEALED_FILE, SESSION_FILE, initFileName, type SessionFileBody } from './session-files.js';
import type { RecoveredSession } from './session-spool.js';
import type { InFlightRecord, SessionCursor } from './types.js';

export interface ScannedSession {
  meta: SessionFileBody;
  recovered: RecoveredSession;
}

const SEG_RE = /^(\d+)\.seg$/;
const INIT_RE = /^(\d+)\.init$/;

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseCursor(v: unknown): SessionCursor | undefined {
  if (!isObject(v) || !Number.isSafeInteger(v.nextSeq) || (v.nextSeq as number) < 0) return undefined;
  if (v.state !== null && !isObject(v.state)) return undefined;
  // Cursors written before the spool kept the in-flight record had it inside the appender's state.
  const legacy = v.inflight === undefined && isObject(v.state) && isObject(v.state.inflight) ? { ...v.state.inflight, fence: v.state.inflight } : undefined;
  const raw = legacy ?? v.inflight;
  const inflight = raw === undefined || raw === null ? null : parseInFlight(raw);
  if (inflight === undefined) return undefined;
  return { nextSeq: v.nextSeq as number, state: v.state, inflight };
}

function parseInFlight(v: unknown): InFlightRecord | undefined {
  if (!isObject(v) || !Number.isSafeInteger(v.fromSeq) || !Number.isSafeInteger(v.uptoSeq) || !isObject(v.fence)) return undefined;
  return { fromSeq: v.fromSeq as number, uptoSeq: v.uptoSeq as number, fence: v.fence };
}

function parseDrops(v: unknown, meta: SessionFileBody): SpoolDroppedRange[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: SpoolDroppedRange[] = [];
  for (const d of v) {
    if (!isObject(d) || !Number.isSafeInteger(d.fromSeq) || !Number.isSafeInteger(d.toSeq) || typeof d.bytes !== 'number' || typeof d.reason !== 'string') return undefined;
    out.push({ stream: meta.stream, sessionId: meta.sessionId, fromSeq: d.fromSeq as number, toSeq: d.toSeq as number, bytes: d.bytes, reason: d.reason as SpoolDroppedRange['reason'] });
  }
  return out;
}

/**
 * Rebuilds one session from its directory: cursor, drop record, sealed marker, init files, then
 * every segment frame by frame. A segment's scan stops at its first frame that is torn, corrupt or
 * out of order (a crash mid-write, or a write that failed): the file is truncated there and it is
 * logged. Entries below the cursor are skipped. Returns undefined for a directory that is not a
 * session or whose cursor is unreadable (left alone, logged).
 */
export async function scanSession(dir: string, logger: Logger | undefined): Promise<ScannedSession | undefined> {
  const body = await readJson(join(dir, SESSION_FILE)).catch(() => undefined);
  if (!isObject(body) || typeof body.stream !== 'string' || typeof body.sessionId !== 'string' || typeof body.createdAt !== 'number') {
    logger?.warn({ dir }, 'spool: not a session directory (no valid session.json); left alone');
    return undefined;
  }
  const meta: SessionFileBody = { stream: body.stream, sessionId: body.sessionId, createdAt: body.createdAt };
  const log = logger?.child({ stream: meta.stream, session: meta.sessionId });

  let cursor: SessionCursor | undefined = { nextSeq: 0, state: null, inflight: null };
  let files: CursorFiles = { value: undefined, gen: 0, logEnd: 0 };
  try {
    files = await readCursorFiles(dir);
    if (files.value !== undefined) cursor = parseCursor(files.value);
  } catch {
    cursor = undefined;
  }
  if (!cursor) {
    log?.error({ dir }, 'spool: unreadable cursor (cursor.json / cursor.log); session left alone (not recovered)');
    return undefined;
  }
  const floor = cursor.nextSeq;

  let drops: SpoolDroppedRange[] = [];
  try {
    drops = parseDrops((await readJson(join(dir, DROPS_FILE))) ?? [], meta) ?? [];
  } catch (err) {
    log?.error({ err }, 'spool: unreadable drops.json; dropped entries may come back');
  }
  drops = drops.filter((d) => d.toSeq > floor).sort((a, b) => a.fromSeq - b.fromSeq);
  const sealed = (await readJson(join(dir, SEALED_FILE)).catch(() => undefined)) !== undefined;

  const names = await readdir(dir);
  for (const n of names) if (n.endsWith('.tmp')) await unlink(join(dir, n)).catch(() => undefined);

  // Init files (verified frames).
  const inits = new Map<number, EntryRec>();
  for (const n of names) {
    const m = INIT_RE.exec(n);
    if (!m) continue;
    const path = join(dir, n);
    const fh = await open(path, 'r');
    try {
      const f = await readFrameAt(fh, 0);
      if (f && f.header.seq === Number(m[1]) && f.header.kind === 'init') {
        const rec = newEntryRec(f.header.seq, f.header, f.payload.length);
        rec.bytes = Buffer.from(f.payload);
        inits.set(rec.seq, rec);
      } else {
        log?.warn({ path }, 'spool: corrupt init file removed');
        await unlink(path).catch(() => undefined);
      }
    } finally {
      await fh.close();
    }
  }

  // Segments, in seq order.
  const segFiles = names
    .map((n) => ({ n, m: SEG_RE.exec(n) }))
    .filter((x): x is { n: string; m: RegExpExecArray } => x.m !== null)
    .map((x) => ({ path: join(dir, x.n), firstSeq: Number(x.m[1]) }))
    .sort((a, b) => a.firstSeq - b.firstSeq);
  const segments: Segment[] = [];
  const recs = new Map<number, EntryRec>();
  let lastSeq = -1;
  for (const sf of segFiles) {
    const seg: Segment = { firstSeq: sf.firstSeq, path: sf.path, size: 0, live: 0, closed: true };
    const size = (await stat(sf.path)).size;
    const fh = await open(sf.path, 'r');
    let offset = 0;
    try {
      while (offset < size) {
        const f = await readFrameAt(fh, offset);
        if (!f || f.header.seq <= lastSeq) break;
        lastSeq = f.header.seq;
        if (f.header.kind === 'init') {
          // Journal copy of an init: authoritative if its own file is missing.
          if (!inits.has(f.header.seq)) {
            const rec = newEntryRec(f.header.seq, f.header, f.payload.length);
            rec.bytes = Buffer.from(f.payload);
            inits.set(rec.seq, rec);
          }
        }
        if (f.header.seq >= floor) {
          const rec = inits.get(f.header.seq) ?? newEntryRec(f.header.seq, f.header, f.payload.length);
          rec.written = true;
          rec.segment = seg;
          rec.frameOffset = offset;
          rec.frameLength = f.length;
          recs.set(rec.seq, rec);
        }
        offset += f.length;
      }
    } finally {
      await fh.close();
    }
    if (offset < size) {
      log?.warn({ path: sf.path, validBytes: offset, tornBytes: size - offset }, 'spool: torn or corrupt journal tail truncated');
      await truncate(sf.path, offset);
    }
    seg.size = offset;
    segments.push(seg);
  }

  // Dense index [floor, tail): journal entries, init files, dropped ranges; anything else is lost.
  let tail = Math.max(floor, lastSeq + 1);
  for (const s of inits.keys()) tail = Math.max(tail, s + 1);
  for (const d of drops) tail = Math.max(tail, d.toSeq);
  const entries: EntryRec[] = [];
  const gaps: SpoolDroppedRange[] = [];
  let di = 0;
  for (let seq = floor; seq < tail; seq++) {
    while (di < drops.length && drops[di]!.toSeq <= seq) di++;
    const inDrop = di < drops.length && drops[di]!.fromSeq <= seq;
    const rec = recs.get(seq) ?? inits.get(seq);
    if (rec && rec.meta.kind === 'init') {
      entries.push(rec);
    } else if (rec && !inDrop) {
      if (rec.segment) rec.segment.live++;
      entries.push(rec);
    } else {
      if (!rec && !inDrop) {
        const g = gaps.at(-1);
        if (g && g.toSeq === seq) g.toSeq++;
        else gaps.push({ stream: meta.stream, sessionId: meta.sessionId, fromSeq: seq, toSeq: seq + 1, bytes: 0, reason: 'journal-corrupt' });
      }
      entries.push(DEAD_DROPPED);
    }
  }
  if (gaps.length > 0) log?.error({ gaps: gaps.map((g) => [g.fromSeq, g.toSeq]) }, 'spool: journal entries missing (lost, size unknown)');

  // Inits: the one current at the cursor, and all later ones.
  const sortedInits = [...inits.values()].sort((a, b) => a.seq - b.seq);
  let current = -1;
  for (let i = 0; i < sortedInits.length; i++) if (sortedInits[i]!.seq < floor) current = i;
  const keptInits = sortedInits.slice(Math.max(current, 0));
  for (const rec of sortedInits.slice(0, Math.max(current, 0))) await unlink(join(dir, initFileName(rec.seq))).catch(() => undefined);

  return {
    meta,
    recovered: { cursor, cursorGen: files.gen, cursorLogEnd: files.logEnd, nextSeq: tail, sealed, entries, segments, inits: keptInits, drops, gaps },
  };
}
