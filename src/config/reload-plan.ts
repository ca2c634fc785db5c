import type { Config, StreamConfig } from './schema.js';

/**
 * What a config reload would change, decided from the running config and the new one alone (no
 * I/O): the gateway applies the stream part; anything else that differs needs a restart.
 */
export interface ReloadPlan {
  /**
   * Fields that differ and are only read at start (listeners, storage, spool, dataDir, the ffmpeg
   * binary), as paths like `server.rtmp.port`. Non-empty: the reload is refused as a whole.
   * Paths only, never values: some of these fields are secrets.
   */
  needsRestart: string[];
  /** Enabled in the new config and not (or not as the same kind) in the running one: start taking them. */
  start: StreamConfig[];
  /** Enabled in the running config and removed, disabled or turned into another kind: their sessions drain. */
  stop: StreamConfig[];
  /** Enabled in both, same kind, some setting differs (key, keyTemplate, format, …): from the next publish on. */
  change: { before: StreamConfig; after: StreamConfig }[];
  /** Other hot settings that differ (log.level, retry, ffmpeg.stallTimeoutSeconds), as paths. */
  settings: string[];
}

/** Read at start only: a change needs a restart. `ffmpeg.path` is a leaf; the others are whole sections. */
const RESTART_ONLY: readonly (readonly string[])[] = [['dataDir'], ['server'], ['storage'], ['spool'], ['ffmpeg', 'path']];
/** Applied on reload, outside the streams. */
const HOT_SETTINGS: readonly (readonly string[])[] = [['log', 'level'], ['retry'], ['ffmpeg', 'stallTimeoutSeconds']];

function at(root: unknown, path: readonly string[]): unknown {
  let v = root;
  for (const p of path) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[p] : undefined;
  return v;
}

/** The leaf paths under `path` where `a` and `b` differ (a config is plain data: JSON-comparable). */
function differingLeaves(a: unknown, b: unknown, path: string[]): string[] {
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isMap(a) && isMap(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => differingLeaves(a[k], b[k], [...path, k]));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [path.join('.')];
}

const kind = (s: StreamConfig): 'rtmp' | 'pull' => (s.source ? 'pull' : 'rtmp');
const same = (a: StreamConfig, b: StreamConfig): boolean => JSON.stringify(a) === JSON.stringify(b);

export function planReload(current: Config, next: Config): ReloadPlan {
  const needsRestart = RESTART_ONLY.flatMap((p) => differingLeaves(at(current, p), at(next, p), [...p]));
  const settings = HOT_SETTINGS.flatMap((p) => differingLeaves(at(current, p), at(next, p), [...p]));
  const enabled = (c: Config) => new Map(c.streams.filter((s) => s.enabled).map((s) => [s.id, s]));
  const before = enabled(current);
  const after = enabled(next);
  const plan: ReloadPlan = { needsRestart, start: [], stop: [], change: [], settings };
  for (const [id, old] of before) {
    const now = after.get(id);
    if (!now || kind(now) !== kind(old)) plan.stop.push(old);
    else if (!same(old, now)) plan.change.push({ before: old, after: now });
  }
  for (const [id, now] of after) {
    const old = before.get(id);
    if (!old || kind(now) !== kind(old)) plan.start.push(now);
  }
  return plan;
}

/** True when the plan changes nothing at all (e.g. an editor saved the file unchanged). */
export function isEmptyPlan(plan: ReloadPlan): boolean {
  return plan.needsRestart.length + plan.start.length + plan.stop.length + plan.change.length + plan.settings.length === 0;
}
