/**
 * A flood of bad RTMP connections is counted in full but logged thinly: every connection that
 * breaks the handshake ends with a protocolError event (the metric), while at most 20 "rtmp
 * connection closed" lines a minute per reason reach the log (LogBudget), so a peer cannot fill the
 * disk with one warning.
 */
import { connect } from 'node:net';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { RtmpServer } from '../../src/ingest/rtmp/rtmp-server.js';
import { waitFor } from '../helpers/wait.js';

const BAD = 45;

describe('RTMP: peer-caused log lines are rate-limited', () => {
  const lines: Array<{ msg: string; reason?: string }> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as { msg: string; reason?: string }) });
  const server = new RtmpServer({
    host: '127.0.0.1', port: 0, logger, limits: {},
    authorize: () => ({ ok: false, reason: 'unknown-stream' }),
    onPublish: () => ({ packet: () => undefined, end: () => undefined }),
  });
  afterAll(() => server.close());

  it(`${BAD} connections with a bad handshake: ${BAD} counted, at most 20 logged`, async () => {
    let errors = 0;
    server.on('protocolError', () => errors++);
    const { port } = await server.listen();
    for (let i = 0; i < BAD; i++) {
      const s = connect({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      s.on('connect', () => s.write(Buffer.alloc(1537, 0x06))); // RTMP version 6: refused at C0
      await new Promise((r) => s.once('close', r));
    }
    await waitFor('every bad connection counted', () => errors === BAD, 10_000);
    const logged = lines.filter((l) => l.msg.startsWith('rtmp connection closed'));
    expect(logged.length).toBe(20);
    expect(new Set(logged.map((l) => l.reason)).size).toBe(1);
  });
});
