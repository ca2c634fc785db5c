/**
 * Cuts `data` into pieces of 1 B … `maxBytes`, log-uniformly so that tiny and large pieces both
 * occur: how bytes arrive from a pipe or a TCP socket.
 */
export function randomChunks(data: Buffer, rand: () => number, maxBytes = 64 * 1024): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; ) {
    const size = Math.max(1, Math.floor(Math.exp(rand() * Math.log(maxBytes))));
    out.push(data.subarray(at, at + size));
    at += size;
  }
  return out;
}
