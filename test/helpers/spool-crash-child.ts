/**
 * Crash-test subject for test/integration/spool.test.ts: appends deterministic entries to a spool with
 * fsync 'always', acks some of them, and reports on stdout, one line each:
 *   "D <readableSeq>"  every entry below is durable
 *   "A <uptoSeq>"      commit of [cursor, uptoSeq) as landed, state { acked: uptoSeq }, has resolved
 * at about 2 entries per ms until the parent SIGKILLs it (or a bounded time/entry count passes).
 * Run: node --import tsx test/helpers/spool-crash-child.ts <spoolDir>
 */
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Spool } from '../../src/spool/spool.js';
import type { SpoolEntryMeta } from '../../src/spool/types.js';

/** Deterministic entry `seq`: size 1..20000, content derived from seq; seq 0 is the init. */
export function crashEntry(seq: number): { meta: SpoolEntryMeta; bytes: Buffer } {
  const digest = createHash('sha256').update(`entry-${seq}`).digest();
  const size = seq === 0 ? 700 : 1 + (digest.readUInt32BE(0) % 20_000);
  const bytes = Buffer.alloc(size, digest);
  const meta: SpoolEntryMeta = seq === 0
    ? { kind: 'init', receivedAt: 1_700_000_000_000 }
    : { kind: 'fragment', receivedAt: 1_700_000_000_000 + seq, mediaTime: seq * 0.5, duration: 0.5, keyframe: seq % 3 === 1 };
  return { meta, bytes };
}

export const CRASH_SPOOL_OPTIONS = {
  fsync: 'always' as const,
  fsyncIntervalMs: 1000,
  quotaBytesPerStream: 1 << 30,
  quotaBytesTotal: 1 << 30,
  memoryBytesPerStream: 64 << 20,
  segmentBytes: 128 * 1024,
};

async function main(dir: string): Promise<void> {
  const spool = new Spool({ dir, ...CRASH_SPOOL_OPTIONS });
  await spool.start();
  const session = await spool.openSession('cam', 's1');
  // This test is about crashes, not quotas: any drop would make its accounting meaningless.
  session.on('dropped', (r) => {
    process.stderr.write(`unexpected drop ${JSON.stringify(r)}\n`);
    process.exit(4);
  });
  let lastReported = 0;
  let acking = false;
  session.on('readable', (upto) => {
    if (upto > lastReported) {
      lastReported = upto;
      process.stdout.write(`D ${upto}\n`);
    }
    // Ack everything durable but the last few, now and then, with a state naming the cursor.
    const target = upto - 5;
    if (!acking && target > session.cursor.nextSeq + 20) {
      acking = true;
      session.commit({ fromSeq: session.cursor.nextSeq, uptoSeq: target, fence: {} }, { landed: true, state: { acked: target } }).then(
        () => {
          process.stdout.write(`A ${target}\n`);
          acking = false;
        },
        (err: unknown) => {
          process.stderr.write(`ack failed: ${String(err)}\n`);
          process.exit(3);
        },
      );
    }
  });
  const deadline = Date.now() + 30_000;
  let seq = 0;
  const tick = (): void => {
    if (Date.now() > deadline || seq > 200_000) return;
    for (let i = 0; i < 2; i++) {
      const e = crashEntry(seq);
      const got = session.append(e.meta, e.bytes);
      if (got !== seq) throw new Error(`append returned ${got}, expected ${seq}`);
      seq++;
    }
    setTimeout(tick, 1);
  };
  tick();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv[2]!).catch((err: unknown) => {
    process.stderr.write(`child failed: ${String(err)}\n`);
    process.exit(2);
  });
}
