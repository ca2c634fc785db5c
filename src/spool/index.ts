export { Spool, type SpoolHooks } from './spool.js';
export {
  SessionSpool, type SessionSpoolEvents, type SpoolDropReason, type SpoolDroppedRange,
} from './session-spool.js';
export { SpoolError, type SpoolErrorKind } from './errors.js';
export type * from './types.js';
