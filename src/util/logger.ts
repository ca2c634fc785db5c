import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * JSON logs on stdout through an asynchronous destination: logging never blocks the event loop
 * that feeds ffmpeg and the store (pino's advice). `flush()` before a planned exit.
 */
export function createLogger(level: LevelWithSilent = 'info', dest: number | string = 1): Logger {
  return pino(
    {
      level,
      base: { app: 'appendcast' },
      // Defence in depth: secrets should never be logged, but redact the usual suspects anyway.
      // (Not `key`: that is an object key everywhere in our logs; stream keys are never logged.)
      redact: {
        paths: ['accessKeySecret', '*.accessKeySecret', 'securityToken', '*.securityToken', 'authorization', '*.authorization'],
        censor: '***',
      },
    },
    pino.destination({ dest, sync: false }),
  );
}
