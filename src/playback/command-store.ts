import { loadConfigFile, resolvePaths, type Config, type StreamConfig } from '../config/index.js';
import { createStore } from '../store/create-store.js';
import type { AppendableStore } from '../store/types.js';

/** What the read-side commands share: the config file loaded, its store open for `fn`, closed after. */
export async function withConfiguredStore<T>(configFile: string, fn: (store: AppendableStore, config: Config) => Promise<T>): Promise<T> {
  const config = resolvePaths(await loadConfigFile(configFile));
  const store = createStore(config.storage);
  try {
    return await fn(store, config);
  } finally {
    await store.close();
  }
}

/** The configured stream `id`, or undefined after saying so on stderr (`cmd`: the command's name). */
export function configuredStream(config: Config, id: string, cmd: string, configFile: string): StreamConfig | undefined {
  const stream = config.streams.find((s) => s.id === id);
  if (!stream) process.stderr.write(`appendcast ${cmd}: no stream "${id}" in ${configFile}\n`);
  return stream;
}
