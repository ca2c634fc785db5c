/**
 * What the appender tests share: the 200 ms-fragment fixture split into its init segment and
 * fragments, a spool on a temp directory (started), feeding a publish into a spool session, and an
 * appender that flushes at once, retries fast and never rolls over.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { SessionAppender, type SessionAppenderOptions } from '../../src/appender/session-appender.js';
import { Fmp4Splitter, type InitSegment, type MediaFragment } from '../../src/container/index.js';
import type { SessionSpool } from '../../src/spool/session-spool.js';
import { Spool, type SpoolHooks } from '../../src/spool/spool.js';
import type { SpoolOptions } from '../../src/spool/types.js';
import type { AppendableStore } from '../../src/store/types.js';
import { createLogger } from '../../src/util/logger.js';
import { waitFor } from './wait.js';

export const FIXTURE = new URL('../../fixtures/av-frag200ms.mp4', import.meta.url).pathname;

export async function fixture(): Promise<{ bytes: Buffer; init: InitSegment; fragments: MediaFragment[] }> {
  const bytes = await readFile(FIXTURE);
  const s = new Fmp4Splitter();
  const out = [...s.push(bytes, 1_000_000), ...s.flush()];
  expect(out.every((o) => o.type !== 'trailer')).toBe(true);
  return {
    bytes,
    init: out.find((o): o is InitSegment => o.type === 'init')!,
    fragments: out.filter((o): o is MediaFragment => o.type === 'fragment'),
  };
}

export function spoolOptions(dir: string, over: Partial<SpoolOptions> = {}): SpoolOptions {
  return {
    dir: join(dir, 'spool'), fsync: 'never', fsyncIntervalMs: 1000, quotaBytesPerStream: 1 << 30, quotaBytesTotal: 1 << 30,
    memoryBytesPerStream: 64 << 20, segmentBytes: 1 << 20, ...over,
  };
}

/** A started spool and the sessions it recovered. */
export async function startSpool(opts: SpoolOptions, hooks: SpoolHooks = {}): Promise<{ spool: Spool; sessions: SessionSpool[] }> {
  const spool = new Spool(opts, hooks);
  const sessions = await spool.start();
  return { spool, sessions };
}

/** The init segment (received at `t0`), then every fragment (`stepMs` apart), as the remuxer hands them to the spool. */
export function feed(session: SessionSpool, init: InitSegment, fragments: readonly MediaFragment[], t0 = 1, stepMs = 1): void {
  session.append({ kind: 'init', receivedAt: t0 }, init.bytes);
  fragments.forEach((f, i) => session.append({ kind: 'fragment', receivedAt: t0 + (i + 1) * stepMs, mediaTime: f.startTime, duration: f.duration, keyframe: f.keyframe }, f.bytes));
}

/** An appender of stream cam1 writing `{stream}/object.mp4`: no flush delay, fast retries, no rollover. */
export function appenderFor(session: SessionSpool, store: AppendableStore, over: Partial<SessionAppenderOptions> = {}): SessionAppender {
  return new SessionAppender({
    stream: 'cam1', spool: session, store, keyTemplate: '{stream}/object.mp4', contentType: 'video/mp4',
    flush: { maxBytes: 4 << 20, maxDelayMs: 0 }, rollover: { maxBytes: 4 * 1024 ** 3, maxDurationSeconds: null, alignToClock: false },
    retry: { baseDelayMs: 5, maxDelayMs: 50, haltedProbeSeconds: 0.2 }, logger: createLogger('silent'), ...over,
  });
}

/**
 * A previous run left an unfinished session (not sealed, nothing acknowledged) in the spool under
 * `dataDir`: the init segment and the first `fragments` fragments. Returns its directory and bytes.
 */
export async function leaveUnfinishedSession(dataDir: string, sessionId = 'previous-run', fragments = 5): Promise<{ dir: string; bytes: number; expected: Buffer }> {
  const f = await fixture();
  const { spool } = await startSpool(spoolOptions(dataDir));
  const s = await spool.openSession('cam1', sessionId);
  const frags = f.fragments.slice(0, fragments);
  feed(s, f.init, frags);
  await waitFor('the session spooled', () => s.readableSeq >= frags.length + 1, 10_000, 5);
  const bytes = s.bytes;
  await spool.close();
  return { dir: s.dir, bytes, expected: Buffer.concat([f.init.bytes, ...frags.map((x) => x.bytes)]) };
}
