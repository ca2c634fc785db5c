/**
 * A second process that appends to an fs store as fast as it can for `ms` (argv: root, key, ms
 * [, 'acks']): the writer side of the cross-process reader test. With 'acks' it uses fsync always,
 * appends chunks of varying size and prints `ack <nextPosition>` after each acknowledged append,
 * for the kill -9 test (the parent kills it mid-append and checks every acknowledged byte).
 */
import { FsStore } from '../../src/store/fs/fs-store.js';

const [root, key, ms, mode] = process.argv.slice(2);
const acks = mode === 'acks';
const store = new FsStore({ root: root!, fsync: acks ? 'always' : 'never' });
const end = Date.now() + Number(ms);
let position = (await store.head(key!))?.size ?? 0;
let appends = 0;
while (Date.now() < end && appends < 100_000) {
  // Byte i of the object is i % 251: what the parent checks.
  const size = acks ? 1000 + (appends % 7) * 3000 : 1000;
  const chunk = Buffer.alloc(size);
  for (let i = 0; i < size; i++) chunk[i] = (position + i) % 251;
  position = (await store.append(key!, position, [chunk])).nextPosition;
  appends++;
  if (acks) process.stdout.write(`ack ${position}\n`);
}
await store.close();
process.stdout.write(`${appends}\n`);
