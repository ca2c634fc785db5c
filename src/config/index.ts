export { ConfigError, formatConfigIssue } from './errors.js';
export type { ConfigIssue } from './errors.js';
export { formatPath, loadConfigFile, parseConfig, redactConfig, resolvePaths } from './load.js';
export {
  ConfigSchema,
  DEFAULT_KEY_TEMPLATE,
  KEY_TEMPLATE_PLACEHOLDERS,
  LOG_LEVELS,
  MAX_OBJECT_BYTES,
  STREAM_FORMATS,
  configJsonSchema,
  keyTemplateProblems,
} from './schema.js';
export type {
  Config,
  ConfigInput,
  FlushPolicy,
  FsStorageConfig,
  RetryPolicy,
  RolloverPolicy,
  SpoolConfig,
  HttpConfig,
  ListenConfig,
  LogLevel,
  OssStorageConfig,
  OssTimeouts,
  StorageConfig,
  StreamConfig,
  StreamDefaults,
  StreamFormat,
  AudioPolicy,
  RemuxSetting,
  RtspSourceConfig,
} from './schema.js';
export { substituteString } from './substitute.js';
export type { SubstitutionEnv, SubstitutionResult } from './substitute.js';
