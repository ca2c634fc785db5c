import { createServer } from 'node:net';

/**
 * A TCP port that was free a moment ago on 127.0.0.1. Racy by nature (another process may take it
 * before it is used): only for a port nothing may listen on, or one a test must name before the
 * server that will use it exists (ffmpeg's one-shot listener, a store that comes up later, a port
 * checked to stay free). A server that can bind port 0 and report its port does that instead.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Kept here too for older imports (scripts/bench-ingest.ts); the home is ./wait.ts. */
export { waitFor } from './wait.js';
