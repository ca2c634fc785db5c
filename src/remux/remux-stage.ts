/**
 * One remuxer session's media path: packets in, container outputs (init segment, fragments) out.
 * Two kinds: `native` (in process, H.264/H.265/AAC) and `ffmpeg` (a supervised child, for what
 * needs a codec: G.711 → AAC). The session above does not care which one runs.
 */
import type { ContainerOutput } from '../container/index.js';
import type { MediaPacket } from '../media/types.js';

export type RemuxKind = 'native' | 'ffmpeg';

export interface RemuxExit {
  /** The stage ended because its input ended and it flushed everything. */
  clean: boolean;
  /** ffmpeg's exit code and signal (ffmpeg stages only). */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why it ended early while input was still coming (ffmpeg died or stalled); undefined for a normal end. */
  lost?: string;
  /** Output bytes that never became a whole box (the child ended mid-box), or were left unflushed. */
  droppedBytes: number;
  /** Why the stage failed, for the log (e.g. the native remuxer's MediaError at flush). */
  error?: unknown;
}

export interface RemuxStageEvents {
  /** Every byte the remuxer produced, in order (for the session's SHA-256 and byte counts). */
  onBytes(chunk: Buffer): void;
  /** Whole init segments and fragments, in order. */
  onOutputs(outputs: ContainerOutput[]): void;
}

export interface RemuxStage {
  readonly kind: RemuxKind;
  readonly pid: number | undefined;
  /** Throws MediaError on input the native remuxer cannot make sense of (the publish is then ended). */
  push(p: MediaPacket, receivedAt: number): void;
  /** No more input: flush what is buffered and resolve once all output was delivered. */
  end(): Promise<RemuxExit>;
  /** Resolves when the stage is over, however that happened. */
  done(): Promise<RemuxExit>;
}
