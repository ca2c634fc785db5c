import { AppendcastError, ErrorCode } from '../errors.js';

/**
 * Something no policy expected stopped a session's appender (a spool file it could not write, a
 * bug): the appender reports it with this code, then resumes after a backoff. The original error is
 * the cause.
 */
export class AppenderFailedError extends AppendcastError {
  readonly stream: string;
  readonly sessionId: string;
  constructor(stream: string, sessionId: string, cause: unknown) {
    super(ErrorCode.AppenderFailed, `appender of ${stream}/${sessionId} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.stream = stream;
    this.sessionId = sessionId;
  }
}

/** A new object must start with an init segment, and the spool has none before this entry. */
export class MissingInitError extends AppendcastError {
  constructor(stream: string, sessionId: string, seq: number) {
    super(ErrorCode.AppenderNoInit, `no init segment in the spool of ${stream}/${sessionId} before entry ${seq}`);
  }
}

/** Every key near the rendered one is taken (keys are never reused). */
export class NoFreeKeyError extends AppendcastError {
  constructor(base: string, tried: number) {
    super(ErrorCode.AppenderNoFreeKey, `no free key near ${base} (${tried} taken)`);
  }
}

/** A key template names a placeholder that does not exist; the config refuses such templates, so this is a bug. */
export class KeyTemplateError extends AppendcastError {
  constructor(placeholder: string) {
    super(ErrorCode.AppenderKeyTemplate, `unknown key template placeholder ${placeholder}`);
  }
}
