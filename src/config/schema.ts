import { join } from 'node:path';
import { z } from 'zod';
import { DEFAULT_RTMP_LIMITS, type RtmpServerLimits } from '../ingest/rtmp/server-limits.js';

// ---------------------------------------------------------------------------------------------
// Public model: what consumers get after loading (every default applied, streams merged).
// ---------------------------------------------------------------------------------------------

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const STREAM_FORMATS = ['fmp4', 'mpegts'] as const;
export type StreamFormat = (typeof STREAM_FORMATS)[number];

/** Placeholders a key template may use; all times are the object's opening time. */
export const KEY_TEMPLATE_PLACEHOLDERS = ['stream', 'yyyy', 'MM', 'dd', 'HH', 'mm', 'ss', 'SSS', 'seq'] as const;
export const DEFAULT_KEY_TEMPLATE = '{stream}/{yyyy}/{MM}/{dd}/{stream}-{HH}{mm}{ss}.mp4';
/** The default template and content type follow the format unless set. */
export const DEFAULT_KEY_TEMPLATE_TS = '{stream}/{yyyy}/{MM}/{dd}/{stream}-{HH}{mm}{ss}.ts';
const DEFAULT_CONTENT_TYPE: Record<StreamFormat, string> = { fmp4: 'video/mp4', mpegts: 'video/mp2t' };
const DEFAULT_TEMPLATE: Record<StreamFormat, string> = { fmp4: DEFAULT_KEY_TEMPLATE, mpegts: DEFAULT_KEY_TEMPLATE_TS };
/** OSS's limit on one appendable object, and the fs store's default cap. */
export const MAX_OBJECT_BYTES = 5 * 1024 ** 3;

export interface ListenConfig {
  host: string;
  port: number;
}

/** The HTTP listener: metrics, health, the API, HLS and the web page. */
export interface HttpConfig extends ListenConfig {
  /**
   * Secret protecting /api, /live, /vod and / (bearer token, or a signed expiring URL made from it);
   * null leaves them open. /metrics and /healthz stay open either way.
   */
  apiToken: string | null;
}

/** The RTMP listener: where, which application, and its limits against hostile or broken peers. */
export interface RtmpConfig extends ListenConfig {
  /** The RTMP application cameras publish to: rtmp://host:port/<app>/<stream>?key=… */
  app: string;
  limits: RtmpServerLimits;
}

export interface FsStorageConfig {
  kind: 'fs';
  /** Requests in flight to the store at once, across all streams (always set by the loader; default 32). */
  concurrency?: number;
  /** Directory holding the objects; defaults to `<dataDir>/objects`. Relative to the process cwd. */
  root: string;
  maxObjectBytes: number;
  fsync: 'always' | 'never';
}

export interface OssTimeouts {
  connectMs: number;
  headersMs: number;
  bodyMs: number;
}

export interface OssStorageConfig {
  kind: 'oss';
  /** Requests in flight to the store at once, across all streams (always set by the loader; default 32). */
  concurrency?: number;
  endpoint: string;
  bucket: string;
  region: string;
  /** Unset: the store reads OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET / OSS_SESSION_TOKEN. */
  accessKeyId?: string | undefined;
  accessKeySecret?: string | undefined;
  securityToken?: string | undefined;
  signatureVersion: 'v4' | 'v1';
  pathStyle: boolean;
  timeouts: OssTimeouts;
}

export type StorageConfig = FsStorageConfig | OssStorageConfig;

export interface FlushPolicy {
  /** Flush a batch once it holds this many bytes. */
  maxBytes: number;
  /** ...or once its oldest fragment has waited this long. */
  maxDelayMs: number;
}

export interface RolloverPolicy {
  /** Open a new object before an append would take the object past this size (≤ 5 GiB). */
  maxBytes: number;
  /** Open a new object once the current one spans this long (wall clock); null = never. */
  maxDurationSeconds: number | null;
  /** Cut on multiples of maxDurationSeconds since 00:00 UTC instead of from the object's start. */
  alignToClock: boolean;
}

export interface SpoolConfig {
  /** Where journals live; default <dataDir>/spool. */
  dir: string;
  fsync: 'always' | 'interval' | 'never';
  fsyncIntervalMs: number;
  quotaBytesPerStream: number;
  quotaBytesTotal: number;
  memoryBytesPerStream: number;
  segmentBytes: number;
  /** Keep acknowledged journal segments instead of deleting them (audits and tests). */
  retainAcked: boolean;
  /** Hash every byte a session spools (SHA-256, in the API as remuxSha256): audits and tests; costs CPU per byte. */
  sessionSha256: boolean;
}

export interface RetryPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
  /** After a non-retryable error (bad credentials, no bucket), probe the store again this often. */
  haltedProbeSeconds: number;
}

/** native: in-process remux (H.264/H.265 + AAC; G.711 goes to ffmpeg by itself); ffmpeg: always a child ffmpeg (H.264). */
export const REMUX_SETTINGS = ['native', 'ffmpeg'] as const;
export type RemuxSetting = (typeof REMUX_SETTINGS)[number];

/** auto: AAC passes through, G.711 (and other non-AAC audio) becomes AAC; copy; aac: always transcode; drop: no audio. */
export const AUDIO_POLICIES = ['auto', 'copy', 'aac', 'drop'] as const;
export type AudioPolicy = (typeof AUDIO_POLICIES)[number];

export const RTSP_TRANSPORTS = ['tcp', 'udp', 'auto'] as const;

/** A stream the gateway pulls from a camera's RTSP server (instead of waiting for an RTMP publish). */
export interface RtspSourceConfig {
  kind: 'rtsp';
  /** rtsp://[user:pass@]host[:port]/path — a secret when it carries credentials. */
  url: string;
  transport: (typeof RTSP_TRANSPORTS)[number];
  /** Credentials kept apart from the URL (e.g. from the environment); they override the URL's. */
  user: string | undefined;
  password: string | undefined;
  /** Nothing received for this long: the source is down and is reconnected. */
  stallTimeoutSeconds: number;
  /** Reconnect backoff: exponential with full jitter from base, capped at max. */
  reconnectBaseSeconds: number;
  reconnectMaxSeconds: number;
}

export interface StreamDefaults {
  format: StreamFormat;
  remux: RemuxSetting;
  audio: AudioPolicy;
  flush: FlushPolicy;
  rollover: RolloverPolicy;
  keyTemplate: string;
  /** ffmpeg -frag_duration in ms; null = one fragment per GOP. */
  fragmentDurationMs: number | null;
  contentType: string;
  /**
   * A camera back within this many seconds (same codec parameters) continues the same object, its
   * timestamps moved to follow the last fragment plus the real gap; 0 = every publish is a new object.
   */
  reconnectGraceSeconds: number;
}

/** One stream with `streamDefaults` already merged in: every field present. */
export interface StreamConfig extends StreamDefaults {
  id: string;
  /** RTMP publish key (secret); '' for a pulled stream, which nobody publishes to. */
  key: string;
  enabled: boolean;
  /** null: the camera publishes over RTMP; else the gateway pulls it. */
  source: RtspSourceConfig | null;
}

export interface Config {
  dataDir: string;
  log: { level: LogLevel };
  server: { rtmp: RtmpConfig; http: HttpConfig };
  ffmpeg: { path: string | null; stallTimeoutSeconds: number };
  storage: StorageConfig;
  spool: SpoolConfig;
  retry: RetryPolicy;
  streamDefaults: StreamDefaults;
  streams: StreamConfig[];
}

// ---------------------------------------------------------------------------------------------
// Scalar helpers. `${VAR}` substitution always yields strings, so numeric and boolean fields accept
// their string spelling ("1935", "true"); anything else still fails with the usual type error.
// ---------------------------------------------------------------------------------------------

const NUMERIC = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

function fromNumericString(value: unknown): unknown {
  return typeof value === 'string' && NUMERIC.test(value.trim()) ? Number(value.trim()) : value;
}

function fromBooleanString(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const lower = value.trim().toLowerCase();
  return lower === 'true' ? true : lower === 'false' ? false : value;
}

const int = (min: number, max: number) => z.preprocess(fromNumericString, z.number().int().min(min).max(max));
const positive = () => z.preprocess(fromNumericString, z.number().positive().finite());
const bool = () => z.preprocess(fromBooleanString, z.boolean());
/** '' (e.g. `${FFMPEG_PATH:-}`) means "not set". */
const optionalString = () => z.preprocess((v) => (v === '' ? undefined : v), z.string().optional());
const nullableString = () => z.preprocess((v) => (v === '' ? null : v), z.string().nullable());
const nullablePositiveInt = () =>
  z.preprocess((v) => (v === '' || v === 'null' ? null : fromNumericString(v)), z.number().int().positive().nullable());

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

const listen = (port: number) =>
  z.strictObject({
    host: z.string().min(1).default('0.0.0.0'),
    port: int(0, 65535).default(port),
  });

/** Returns the problems with a key template, [] when it is fine. */
export function keyTemplateProblems(template: string): string[] {
  const problems: string[] = [];
  if (template.startsWith('/')) problems.push('must not start with "/"');
  const allowed: readonly string[] = KEY_TEMPLATE_PLACEHOLDERS;
  const unknown = new Set<string>();
  // Anything between braces is a placeholder; a lone brace is almost certainly a typo.
  const rest = template.replace(/\{([^{}]*)\}/g, (_match, name: string) => {
    if (!allowed.includes(name)) unknown.add(name);
    return '';
  });
  for (const name of unknown) {
    problems.push(`unknown placeholder "{${name}}" (allowed: ${KEY_TEMPLATE_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')})`);
  }
  if (/[{}]/.test(rest)) problems.push('unbalanced "{" or "}"');
  if (problems.length === 0) problems.push(...objectKeyProblems(template));
  return problems;
}

/** The longest each placeholder renders (a stream id is ≤ 64 characters, {seq} a safe integer). */
const LONGEST_PLACEHOLDER: Record<(typeof KEY_TEMPLATE_PLACEHOLDERS)[number], string> = {
  stream: 'x'.repeat(64), yyyy: '9999', MM: '12', dd: '31', HH: '23', mm: '59', ss: '59', SSS: '999', seq: String(Number.MAX_SAFE_INTEGER),
};
/** OSS's limit on a key, in bytes of UTF-8. */
const MAX_KEY_BYTES = 1023;
/** The fs store keeps its own files under this first segment. */
const FS_META_DIR = '.appendcast-meta';

/**
 * Whether every key the template can render is a storable object key (for OSS and the fs store
 * alike): otherwise the stream would halt at its first object, at run time. Placeholders render to
 * non-empty text without "/" or ".", so the template's literal text decides the segments.
 */
function objectKeyProblems(template: string): string[] {
  const problems: string[] = [];
  const longest = template.replace(/\{([A-Za-z]+)\}/g, (_m, name: keyof typeof LONGEST_PLACEHOLDER) => LONGEST_PLACEHOLDER[name]);
  // validateKey splits on "\\" too for "..": a Windows-style traversal is refused as well.
  const anySeparator = longest.split(/[/\\]/);
  const segments = longest.split('/');
  if (template.startsWith('\\')) problems.push('must not start with "\\"');
  if (template.includes('\0')) problems.push('must not contain NUL');
  if (anySeparator.includes('..')) problems.push('must not have a ".." path segment (the object key would be refused)');
  if (segments.includes('.')) problems.push('must not have a "." path segment (the object key would be refused)');
  if (segments.slice(1).includes('')) problems.push('must not have an empty path segment ("//" or a trailing "/"): the object key would be refused');
  if (segments[0] === FS_META_DIR) problems.push(`must not start with "${FS_META_DIR}/" (reserved by the fs store)`);
  const bytes = Buffer.byteLength(longest, 'utf8');
  if (bytes > MAX_KEY_BYTES) problems.push(`renders keys of up to ${bytes} bytes, over the ${MAX_KEY_BYTES}-byte limit on an object key`);
  if (segments.some((segment) => Buffer.byteLength(segment, 'utf8') > 255)) {
    problems.push('has a path segment that can exceed 255 bytes (not storable by the fs store)');
  }
  return problems;
}

const keyTemplate = () =>
  z
    .string()
    .min(1)
    .superRefine((template, ctx) => {
      for (const problem of keyTemplateProblems(template)) ctx.addIssue({ code: 'custom', message: `key template ${problem}` });
    });

const format = () => z.enum(STREAM_FORMATS);
const audio = () => z.enum(AUDIO_POLICIES);
const remux = () => z.enum(REMUX_SETTINGS);

const seconds = (max: number) => z.preprocess(fromNumericString, z.number().positive().max(max));
const rtmpLimitsSchema = z
  .strictObject({
    handshakeTimeoutSeconds: seconds(3600).default(DEFAULT_RTMP_LIMITS.handshakeTimeoutMs / 1000),
    publishTimeoutSeconds: seconds(3600).default(DEFAULT_RTMP_LIMITS.publishTimeoutMs / 1000),
    mediaTimeoutSeconds: seconds(3600).default(DEFAULT_RTMP_LIMITS.mediaTimeoutMs / 1000),
    maxMessageBytes: int(1024, 64 * 1024 * 1024).default(DEFAULT_RTMP_LIMITS.maxMessageBytes),
    maxChunkStreams: int(4, 65_599).default(DEFAULT_RTMP_LIMITS.maxChunkStreams),
    maxChunkSize: int(128, 0x7fffffff).default(DEFAULT_RTMP_LIMITS.maxChunkSize),
    maxAmfDepth: int(2, 64).default(DEFAULT_RTMP_LIMITS.maxAmfDepth),
    maxHeldBytesPerConnection: int(4096, 1024 * 1024 * 1024).optional(),
    maxHeldBytesTotal: int(4096, Number.MAX_SAFE_INTEGER).default(DEFAULT_RTMP_LIMITS.maxHeldBytesTotal),
    maxConnections: int(1, 1_000_000).default(DEFAULT_RTMP_LIMITS.maxConnections),
    maxConnectionsPerAddress: int(1, 1_000_000).default(DEFAULT_RTMP_LIMITS.maxConnectionsPerAddress),
  })
  .prefault({})
  .transform((l): RtmpServerLimits => ({
    handshakeTimeoutMs: l.handshakeTimeoutSeconds * 1000,
    publishTimeoutMs: l.publishTimeoutSeconds * 1000,
    mediaTimeoutMs: l.mediaTimeoutSeconds * 1000,
    maxMessageBytes: l.maxMessageBytes,
    maxChunkStreams: l.maxChunkStreams,
    maxChunkSize: l.maxChunkSize,
    maxAmfDepth: l.maxAmfDepth,
    // By default one maximal message plus a little interleaved audio.
    maxHeldBytesPerConnection: l.maxHeldBytesPerConnection ?? l.maxMessageBytes + 1024 * 1024,
    maxHeldBytesTotal: l.maxHeldBytesTotal,
    maxConnections: l.maxConnections,
    maxConnectionsPerAddress: l.maxConnectionsPerAddress,
    maxWriteBufferBytes: DEFAULT_RTMP_LIMITS.maxWriteBufferBytes,
  }));

const httpSchema = listen(8080).extend({
  apiToken: z
    .string()
    .min(16, 'the API token is at least 16 characters (use a random one, e.g. `openssl rand -hex 24`)')
    .nullable()
    .default(null),
});

const rtmpSchema = z.strictObject({
  host: z.string().min(1).default('0.0.0.0'),
  port: int(0, 65535).default(1935),
  app: z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/, 'the RTMP app is 1-64 characters of a-z, A-Z, 0-9, "_", "." and "-"').default('live'),
  limits: rtmpLimitsSchema,
});
const contentType = () => z.string().min(1);

/** Requests in flight to the store at once, across all streams. */
export const DEFAULT_STORE_CONCURRENCY = 32;
const concurrency = () => int(1, 4096).default(DEFAULT_STORE_CONCURRENCY);

const fsStorageSchema = z.strictObject({
  kind: z.literal('fs'),
  concurrency: concurrency(),
  root: z.string().min(1).optional(),
  maxObjectBytes: int(1, MAX_OBJECT_BYTES).default(MAX_OBJECT_BYTES),
  fsync: z.enum(['always', 'never']).default('always'),
});

const ossStorageSchema = z.strictObject({
  kind: z.literal('oss'),
  concurrency: concurrency(),
  endpoint: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
  bucket: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/, 'OSS bucket names are 3-63 characters of a-z, 0-9 and "-", not starting or ending with "-"'),
  region: z.string().min(1),
  accessKeyId: optionalString(),
  accessKeySecret: optionalString(),
  securityToken: optionalString(),
  signatureVersion: z.enum(['v4', 'v1']).default('v4'),
  pathStyle: bool().default(false),
  timeouts: z
    .strictObject({
      connectMs: int(1, 3_600_000).default(5000),
      headersMs: int(1, 3_600_000).default(15_000),
      bodyMs: int(1, 3_600_000).default(30_000),
    })
    .prefault({}),
});

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

const flushSchema = () =>
  z.strictObject({
    maxBytes: int(1, 512 * MiB).default(4 * MiB),
    maxDelayMs: int(0, 60_000).default(200),
  });

const nullablePositive = () =>
  z.preprocess((v) => (v === '' || v === 'null' ? null : fromNumericString(v)), z.number().positive().finite().nullable());

const rolloverSchema = () =>
  z.strictObject({
    maxBytes: int(1, MAX_OBJECT_BYTES).default(4 * GiB),
    maxDurationSeconds: nullablePositive().default(3600),
    alignToClock: bool().default(false),
  });

/**
 * Spool quotas: below 64 KiB a stream cannot hold even a few fragments (a value in MB written as
 * bytes, say); above 1 PiB it is a typo too.
 */
export const MIN_QUOTA_BYTES = 64 * 1024;
export const MAX_QUOTA_BYTES = 1024 ** 5;
const quota = () =>
  z.preprocess(fromNumericString, z.number().int()
    .min(MIN_QUOTA_BYTES, `a spool quota is at least ${MIN_QUOTA_BYTES} bytes (64 KiB); sizes are in bytes`)
    .max(MAX_QUOTA_BYTES, `a spool quota is at most ${MAX_QUOTA_BYTES} bytes (1 PiB); sizes are in bytes`));

const spoolSchema = z.strictObject({
  dir: z.string().min(1).optional(),
  fsync: z.enum(['always', 'interval', 'never']).default('always'),
  fsyncIntervalMs: int(1, 60_000).default(1000),
  quotaBytesPerStream: quota().default(2 * GiB),
  quotaBytesTotal: quota().default(20 * GiB),
  memoryBytesPerStream: int(0, 4 * GiB).default(16 * MiB),
  segmentBytes: int(4096, 4 * GiB).default(64 * MiB),
  retainAcked: bool().default(false),
  sessionSha256: bool().default(false),
});

const retrySchema = z.strictObject({
  baseDelayMs: int(1, 600_000).default(250),
  maxDelayMs: int(1, 3_600_000).default(15_000),
  haltedProbeSeconds: positive().default(60),
});

const streamDefaultsSchema = z.strictObject({
  format: format().default('fmp4'),
  remux: remux().default('native'),
  audio: audio().default('auto'),
  flush: flushSchema().prefault({}),
  rollover: rolloverSchema().prefault({}),
  // Unset: follows the format (.mp4 / .ts, video/mp4 / video/mp2t).
  keyTemplate: keyTemplate().optional(),
  fragmentDurationMs: nullablePositiveInt().default(null),
  contentType: contentType().optional(),
  reconnectGraceSeconds: z.preprocess(fromNumericString, z.number().min(0).max(3600)).default(10),
});

const rtspSourceSchema = z
  .strictObject({
    rtsp: z.string().regex(/^rtsps?:\/\/[^\s/]+/i, 'expected an rtsp:// URL'),
    transport: z.enum(RTSP_TRANSPORTS).default('tcp'),
    user: optionalString(),
    password: optionalString(),
    stallTimeoutSeconds: seconds(3600).default(10),
    reconnectBaseSeconds: seconds(3600).default(1),
    reconnectMaxSeconds: seconds(3600).default(30),
  })
  .transform((r): RtspSourceConfig => ({
    kind: 'rtsp', url: r.rtsp, transport: r.transport, user: r.user, password: r.password,
    stallTimeoutSeconds: r.stallTimeoutSeconds, reconnectBaseSeconds: r.reconnectBaseSeconds, reconnectMaxSeconds: r.reconnectMaxSeconds,
  }));

const streamSchema = z.strictObject({
  // Stream ids become URL path segments, object keys and metric label values.
  id: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'stream ids are 1-64 characters of a-z, A-Z, 0-9, "_" and "-"'),
  // Required for RTMP streams; a pulled stream (source) has none.
  key: z.string().min(1, 'publish key must not be empty').optional(),
  enabled: bool().default(true),
  source: rtspSourceSchema.optional(),
  // Overrides of streamDefaults: absent means inherit.
  format: format().optional(),
  remux: remux().optional(),
  audio: audio().optional(),
  flush: flushSchema().partial().optional(),
  rollover: rolloverSchema().partial().optional(),
  keyTemplate: keyTemplate().optional(),
  fragmentDurationMs: nullablePositiveInt().optional(),
  contentType: contentType().optional(),
  reconnectGraceSeconds: z.preprocess(fromNumericString, z.number().min(0).max(3600)).optional(),
});

/** Params on the duplicate-id issue, so the loader can name the first definition's line. */
export interface DuplicateIdParams {
  firstDefinedAt: (string | number)[];
}

const streamsSchema = z
  .array(streamSchema.superRefine((s, ctx) => {
    if (s.key === undefined && s.source === undefined) {
      ctx.addIssue({ code: 'custom', path: ['key'], message: 'a publish key is required (or a source to pull from)' });
    }
  }))
  .min(1, 'at least one stream is required')
  .superRefine(
    (streams: unknown, ctx) => {
      // Runs even when some stream failed validation (`when`), so every duplicate is reported with
      // the rest; hence the defensive reads.
      if (!Array.isArray(streams)) return;
      const first = new Map<string, number>();
      streams.forEach((stream: unknown, index) => {
        const id = typeof stream === 'object' && stream !== null ? (stream as { id?: unknown }).id : undefined;
        if (typeof id !== 'string') return;
        const seen = first.get(id);
        if (seen === undefined) {
          first.set(id, index);
          return;
        }
        const params: DuplicateIdParams = { firstDefinedAt: ['streams', seen, 'id'] };
        ctx.addIssue({ code: 'custom', path: [index, 'id'], message: `duplicate stream id "${id}"`, params });
      });
    },
    { when: () => true },
  );

/** Per-stream partial overrides: keys present with `undefined` must not mask the defaults. */
function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  if (!o) return {};
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Addresses that listen on every interface, so they overlap with any other host. */
const ANY_HOST = new Set(['0.0.0.0', '::', '[::]', '']);

/** Both listeners would bind the same port on a shared address: the second one could never start. */
function hostsOverlap(a: string, b: string): boolean {
  const norm = (h: string) => h.trim().toLowerCase();
  return norm(a) === norm(b) || ANY_HOST.has(norm(a)) || ANY_HOST.has(norm(b));
}

interface CrossFieldInput {
  server: { rtmp: { host: string; port: number }; http: { host: string; port: number } };
  spool: { quotaBytesPerStream: number; quotaBytesTotal: number };
}

/** Fields that are each valid but cannot go together. */
function crossFieldProblems(raw: CrossFieldInput): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const { rtmp, http } = raw.server;
  if (rtmp.port !== 0 && rtmp.port === http.port && hostsOverlap(rtmp.host, http.host)) {
    out.push({ path: ['server', 'rtmp', 'port'], message: `the RTMP and HTTP listeners both use port ${rtmp.port} (server.http.port); give them different ports` });
  }
  const { quotaBytesPerStream: perStream, quotaBytesTotal: total } = raw.spool;
  if (perStream > total) {
    out.push({ path: ['spool', 'quotaBytesPerStream'], message: `the per-stream quota (${perStream} bytes) is larger than the total quota (spool.quotaBytesTotal, ${total} bytes)` });
  }
  return out;
}

/** The document schema. Its output is the complete {@link Config}. */
export const ConfigSchema = z
  .strictObject({
    dataDir: z.string().min(1).default('./data'),
    log: z.strictObject({ level: z.enum(LOG_LEVELS).default('info') }).prefault({}),
    server: z.strictObject({ rtmp: rtmpSchema.prefault({}), http: httpSchema.prefault({}) }).prefault({}),
    ffmpeg: z
      .strictObject({
        path: nullableString().default(null),
        stallTimeoutSeconds: positive().default(20),
      })
      .prefault({}),
    storage: z.discriminatedUnion('kind', [fsStorageSchema, ossStorageSchema]).prefault({ kind: 'fs' }),
    spool: spoolSchema.prefault({}),
    retry: retrySchema.prefault({}),
    streamDefaults: streamDefaultsSchema.prefault({}),
    streams: streamsSchema,
  })
  .superRefine((raw, ctx) => {
    for (const { path, message } of crossFieldProblems(raw)) ctx.addIssue({ code: 'custom', path, message });
  })
  .transform((raw): Config => {
    const storage: StorageConfig =
      raw.storage.kind === 'fs' ? { ...raw.storage, root: raw.storage.root ?? join(raw.dataDir, 'objects') } : raw.storage;
    const d = raw.streamDefaults;
    const defaults: StreamDefaults = {
      ...d, keyTemplate: d.keyTemplate ?? DEFAULT_TEMPLATE[d.format], contentType: d.contentType ?? DEFAULT_CONTENT_TYPE[d.format],
    };
    const streams = raw.streams.map((s): StreamConfig => {
      const format = s.format ?? d.format;
      return {
        id: s.id,
        key: s.key ?? '',
        enabled: s.enabled,
        source: s.source ?? null,
        format,
        remux: s.remux ?? d.remux,
        audio: s.audio ?? d.audio,
        flush: { ...d.flush, ...definedOnly(s.flush) },
        rollover: { ...d.rollover, ...definedOnly(s.rollover) },
        keyTemplate: s.keyTemplate ?? d.keyTemplate ?? DEFAULT_TEMPLATE[format],
        fragmentDurationMs: s.fragmentDurationMs === undefined ? d.fragmentDurationMs : s.fragmentDurationMs,
        contentType: s.contentType ?? d.contentType ?? DEFAULT_CONTENT_TYPE[format],
        reconnectGraceSeconds: s.reconnectGraceSeconds ?? d.reconnectGraceSeconds,
      };
    });
    const spool: SpoolConfig = { ...raw.spool, dir: raw.spool.dir ?? join(raw.dataDir, 'spool') };
    return { ...raw, storage, spool, streamDefaults: defaults, streams };
  });

/** What the YAML may contain before defaults (loosely typed where strings are coerced). */
export type ConfigInput = z.input<typeof ConfigSchema>;

/** What `${VAR}` substitution or a quoted value may leave where a number or boolean goes (see fromNumericString). */
const NUMERIC_STRING = `^\\s*${NUMERIC.source.slice(1, -1)}\\s*$`;
const BOOLEAN_STRING = '^\\s*([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])\\s*$';
const SUBSTITUTION = '\\$\\{';

/**
 * JSON Schema (draft 2020-12) of the file as written (zod's input side), for editors
 * (yaml-language-server) and `appendcast schema`. Numeric and boolean fields also accept a string
 * the loader converts ("1935", "true") or one containing `${`, since substitution happens first.
 */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ConfigSchema, {
    io: 'input',
    unrepresentable: 'any',
    // zod leaves defaults out of the input side; editors show them, so put them back.
    override: (ctx) => {
      const def = ctx.zodSchema._zod.def;
      if (def.type === 'default' && ctx.jsonSchema.default === undefined) ctx.jsonSchema.default = (def as { defaultValue: unknown }).defaultValue;
    },
  }) as Record<string, unknown>;
  const allowStrings = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(allowStrings);
    if (typeof node !== 'object' || node === null) return node;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = allowStrings(v);
    const type = out['type'];
    if (type === 'integer' || type === 'number' || type === 'boolean') {
      const { default: def, description, ...typed } = out;
      const spelled = type === 'boolean' ? BOOLEAN_STRING : NUMERIC_STRING;
      const wrapped: Record<string, unknown> = { anyOf: [typed, { type: 'string', pattern: SUBSTITUTION }, { type: 'string', pattern: spelled }] };
      if (def !== undefined) wrapped['default'] = def;
      if (description !== undefined) wrapped['description'] = description;
      return wrapped;
    }
    return out;
  };
  const out = allowStrings(schema) as { properties: { streams: { items: Record<string, unknown> } } };
  // The refinement zod cannot express: an RTMP stream needs a key, a pulled one a source.
  out.properties.streams.items['anyOf'] = [{ required: ['key'] }, { required: ['source'] }];
  return { ...out, title: 'appendcast config', description: 'appendcast gateway configuration (YAML). Generated by `appendcast schema`; do not edit by hand.' };
}
