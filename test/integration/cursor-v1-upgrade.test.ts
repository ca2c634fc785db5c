import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { crc64Of } from '../../src/store/crc64.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import { readObject } from '../helpers/objects.js';
import { appenderFor, feed, fixture, spoolOptions, startSpool } from '../helpers/appender-fixture.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/**
 * A gateway upgraded while an append was in flight: its cursor.json has the previous format (the
 * in-flight batch inside the appender's state, v 1). The spool lifts the record out and pins it,
 * the appender settles it by HEAD and carries on: every byte once.
 */
describe('upgrading a spool whose cursor has the v1 format', () => {
  for (const landed of [true, false]) {
    it(`the batch in flight ${landed ? 'had landed' : 'had not landed'}: settled once, the rest appended`, async () => {
      const { bytes, init, fragments } = await fixture();
      const dir = await mkdtemp(join(tmpdir(), 'apc-v1-'));
      dirs.push(dir);
      const store = new FsStore({ root: join(dir, 'objects'), fsync: 'never' });
      const key = 'cam1/v1.mp4';
      // The previous run: the spool holds the whole publish; the store has the init and the
      // first fragment (entries 0 and 1, acknowledged), and maybe the batch [2, 4) in flight.
      const first = await startSpool(spoolOptions(dir));
      const session = await first.spool.openSession('cam1', 'old');
      feed(session, init, fragments);
      await session.seal();
      await first.spool.close();
      const acked = [init.bytes, fragments[0]!.bytes];
      const inflight = [fragments[1]!.bytes, fragments[2]!.bytes];
      await store.append(key, 0, acked, { metadata: { 'appendcast-stream': 'cam1', 'appendcast-session': 'old', 'appendcast-object-seq': '0' } });
      const position = acked.reduce((n, b) => n + b.length, 0);
      const crc = crc64Of(acked);
      if (landed) await store.append(key, position, inflight);
      await writeFile(join(session.dir, 'cursor.json'), JSON.stringify({
        nextSeq: 2,
        state: {
          v: 1,
          object: { key, seq: 0, position, crc: crc.toString(), openedAt: 1, index: { key: `${key}.index.jsonl`, position: 0, crc: '0', broken: false } },
          nextObjectSeq: 1,
          inflight: { uptoSeq: 4, fromSeq: 2, position, bytes: inflight.reduce((n, b) => n + b.length, 0), crcAfter: crc64Of(inflight, crc).toString(), withInit: false },
          gapAfter: null,
        },
      }));

      const { spool, sessions } = await startSpool(spoolOptions(dir));
      const s = sessions[0]!;
      expect(s.cursor.inflight).toMatchObject({ fromSeq: 2, uptoSeq: 4 });
      const appender = appenderFor(s, store, { keyTemplate: '{stream}/new.mp4' });
      const reconciled: string[] = [];
      appender.on('reconciled', (o) => reconciled.push(o));
      appender.start();
      expect(await appender.whenDone()).toBe('finished');
      expect(reconciled[0]).toBe(landed ? 'landed' : 'absent');
      expect((await readObject(store, key)).equals(bytes)).toBe(true);
      expect((await store.list('cam1/')).map((e) => e.key).filter((k) => !k.endsWith('.jsonl'))).toEqual([key]);
      await spool.close();
      await store.close();
    });
  }
});
