import type { StorageConfig } from '../config/index.js';
import { FsStore } from './fs/fs-store.js';
import type { AppendableStore } from './types.js';

/** The backend a config names. */
export function createStore(cfg: StorageConfig): AppendableStore {
  switch (cfg.kind) {
    case 'fs':
      return new FsStore({ root: cfg.root, maxObjectBytes: cfg.maxObjectBytes, fsync: cfg.fsync });
    case 'oss':
      throw new Error('storage.kind "oss" is not implemented yet');
  }
}
