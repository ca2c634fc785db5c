import type { ReconcileOutcome } from '../appender/fenced-appender.js';
import type { RolloverReason } from '../appender/rollover.js';
import { ErrorCode } from '../errors.js';
import { RTMP_ERROR_REASONS } from '../ingest/rtmp/errors.js';
import type { RejectReason } from '../ingest/types.js';
import type { DropReason } from '../spool/types.js';

/**
 * Every value a labelled counter's `reason`/`code`/`outcome` label can take. The gateway creates
 * each series at 0 up front: a series that first appears already at 1 is invisible to rate() and
 * increase(), so the first refused publish or remuxer crash of a kind would never show. The
 * Record types make the compiler flag a reason added to a union but not here.
 */
const keysOf = <K extends string>(r: Record<K, true>): readonly K[] => Object.keys(r) as K[];

export const REJECT_REASONS = keysOf<RejectReason>({
  'unknown-stream': true, 'bad-key': true, 'wrong-app': true, disabled: true, 'already-publishing': true, 'unsupported-codec': true, 'pulled-stream': true,
});

export const ROLLOVER_REASONS = keysOf<RolloverReason>({ size: true, duration: true, 'init-change': true, 'foreign-writer': true, gap: true });

export const RECONCILE_OUTCOMES = keysOf<ReconcileOutcome>({ landed: true, absent: true, foreign: true });

/** The spool's reasons, and the remuxer output cut short at its end (session-recorder). */
export const DROP_REASONS = [...keysOf<DropReason>({
  'quota-stream': true, 'quota-total': true, 'write-error': true, 'write-backlog': true, 'journal-corrupt': true,
}), 'truncated-remux-output'] as const;

/**
 * Why a remuxer was replaced: 'stall', or how ffmpeg ended (`signal-<NAME>`, `exit-<code>`). The
 * common ones keep their name; anything else is folded into signal-other/exit-other/other, so the
 * label set stays finite and every value exists from the start.
 */
export const RESTART_REASONS = ['stall', 'signal-SIGKILL', 'signal-SIGSEGV', 'signal-SIGABRT', 'signal-SIGTERM', 'signal-other', 'exit-1', 'exit-other', 'other'] as const;

export function restartReason(raw: string): (typeof RESTART_REASONS)[number] {
  const known = RESTART_REASONS.find((r) => r === raw);
  if (known) return known;
  if (raw.startsWith('signal-')) return 'signal-other';
  if (raw.startsWith('exit-')) return 'exit-other';
  return 'other';
}

/** Error codes a failed append can carry (store errors, the appender's own); anything else is 'other'. */
export const APPEND_ERROR_CODES = [
  ErrorCode.PositionNotEqualToLength, ErrorCode.ObjectNotAppendable, ErrorCode.ObjectTooLarge, ErrorCode.NoSuchKey,
  ErrorCode.InvalidKey, ErrorCode.StoreIntegrity, ErrorCode.StoreService, ErrorCode.StoreTransport, ErrorCode.StoreClosed,
  ErrorCode.CredentialsMissing, ErrorCode.AppenderFailed, ErrorCode.AppenderNoInit, ErrorCode.AppenderNoFreeKey,
  ErrorCode.AppenderKeyTemplate, 'other',
] as const;

export function appendErrorCode(raw: string): string {
  return (APPEND_ERROR_CODES as readonly string[]).includes(raw) ? raw : 'other';
}

export const RTMP_CLOSE_REASONS = [...RTMP_ERROR_REASONS, 'max-connections', 'max-connections-per-address'] as const;

/** The stream label of refused publishes and drops for stream ids not in the config. */
export const UNKNOWN_STREAM = '_unknown';
