/**
 * A second process that appends to an fs store as fast as it can for `ms` (argv: root, key, ms):
 * the writer side of the cross-process reader test.
 */
import { FsStore } from '../../src/store/fs/fs-store.js';

const [root, key, ms] = process.argv.slice(2);
const store = new FsStore({ root: root!, fsync: 'never' });
const chunk = Buffer.alloc(1000, 7);
const end = Date.now() + Number(ms);
let position = 0;
let appends = 0;
while (Date.now() < end && appends < 100_000) {
  position = (await store.append(key!, position, [chunk])).nextPosition;
  appends++;
}
await store.close();
process.stdout.write(`${appends}\n`);
