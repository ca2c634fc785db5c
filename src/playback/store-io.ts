import type { Writable } from 'node:stream';
import type { AppendableStore } from '../store/types.js';

/** Bytes [start, end) of an object, by one range read (end exclusive; an empty range reads nothing). */
export async function readRange(store: AppendableStore, key: string, start: number, end: number): Promise<Buffer> {
  if (end <= start) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  for await (const chunk of await store.read(key, { start, end: end - 1 })) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** Writes `b` to `out` honouring its backpressure; false once `out` is closed or destroyed (the reader went away). */
export function writeDrained(out: Writable, b: Buffer): Promise<boolean> {
  if (out.destroyed) return Promise.resolve(false);
  if (out.write(b)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (): void => {
      out.off('drain', done);
      out.off('close', done);
      resolve(!out.destroyed);
    };
    out.once('drain', done);
    out.once('close', done);
  });
}
