import type { StorageConfig } from '../config/index.js';
import type { Logger } from '../util/logger.js';
import { FsStore } from './fs/fs-store.js';
import { OssStore } from './oss/oss-store.js';
import type { AppendableStore } from './types.js';

/** The backend a config names. */
export function createStore(cfg: StorageConfig, logger?: Logger): AppendableStore {
  switch (cfg.kind) {
    case 'fs':
      return new FsStore({ root: cfg.root, maxObjectBytes: cfg.maxObjectBytes, fsync: cfg.fsync });
    case 'oss':
      return new OssStore(cfg, logger ? { logger } : {});
  }
}
