/**
 * One async mutex per string key: `run(k, fn)` calls are serialized per `k`, unrelated keys run in
 * parallel. Entries are dropped when their queue drains, so the map stays as small as the set of
 * keys being worked on.
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn);
    // The next waiter starts once this one settles, whether it resolved or threw.
    const tail = result.then(() => undefined, () => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Number of keys with queued or running work (for tests). */
  get size(): number {
    return this.#tails.size;
  }
}
