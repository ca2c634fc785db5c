export { Spool, type SpoolHooks } from './spool.js';
export { SessionSpool, type SessionSpoolEvents } from './session-spool.js';
export type { SpoolDropReason, SpoolDroppedRange } from './drop-ledger.js';
export type { SpoolPort } from './spool-port.js';
export * from './errors.js';
export type * from './types.js';
