import { open, type FileHandle } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { LineCounter, isMap, isNode, isScalar, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from './errors.js';
import type { ConfigIssue } from './errors.js';
import { ConfigSchema, configJsonSchema } from './schema.js';
import { closestKey, knownKeysAt } from './suggest.js';
import type { Config, DuplicateIdParams } from './schema.js';
import { substituteDocument } from './substitute.js';
import type { SubstitutionEnv } from './substitute.js';

type Path = readonly PropertyKey[];

/** `streams[1].id`, `server.rtmp.port`; '' for the root. */
export function formatPath(path: Path): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** Maps source offsets and field paths of one parsed document to 1-based line/column. */
class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  at(offset: number | undefined): { line?: number; column?: number } {
    if (offset === undefined) return {};
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }

  /** The deepest node that exists along `path` (a missing field is reported at its parent). */
  node(path: Path): { offset: number | undefined; exact: boolean } {
    for (let depth = path.length; depth >= 0; depth--) {
      const node: unknown = depth === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, depth), true);
      if (isNode(node)) return { offset: node.range?.[0], exact: depth === path.length };
    }
    return { offset: undefined, exact: false };
  }

  /** The key of `name` in the map at `path`, for unknown-key errors. */
  key(path: Path, name: string): number | undefined {
    const map: unknown = path.length === 0 ? this.doc.contents : this.doc.getIn(path, true);
    if (!isMap(map)) return undefined;
    const pair = map.items.find((p) => isScalar(p.key) && String(p.key.value) === name);
    return pair !== undefined && isNode(pair.key) ? pair.key.range?.[0] : undefined;
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${String(value)}`;
}

/** Per-parse error map: plainer words than zod's defaults for the two commonest mistakes. */
const errorMap: z.core.$ZodErrorMap = (issue) => {
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return 'required field is missing';
    const expected = issue.expected === 'object' ? 'a mapping' : issue.expected === 'array' ? 'a list' : issue.expected;
    return `expected ${expected}, got ${describeValue(issue.input)}`;
  }
  return undefined;
};

function valueAt(data: unknown, path: Path): unknown {
  let value = data;
  for (const part of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

let cachedJsonSchema: Record<string, unknown> | undefined;
/** Built on the first unknown key only: a good file never pays for it. */
function jsonSchema(): Record<string, unknown> {
  cachedJsonSchema ??= configJsonSchema();
  return cachedJsonSchema;
}

function validationIssues(issues: readonly z.core.$ZodIssue[], data: unknown, locate: Locator): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        const offset = locate.key(issue.path, key) ?? locate.node(issue.path).offset;
        const suggestion = closestKey(key, knownKeysAt(jsonSchema(), issue.path));
        const hint = suggestion !== undefined ? ` (did you mean "${suggestion}"?)` : '';
        out.push({ path: formatPath(path), ...locate.at(offset), message: `unknown key "${key}"${hint}` });
      }
      continue;
    }
    let message = issue.message;
    // A discriminated union's tag (storage.kind): zod sets `options` at runtime (not in its types) and
    // its message bypasses the error map.
    const options: unknown = issue.code === 'invalid_union' ? (issue as { options?: unknown }).options : undefined;
    if (Array.isArray(options) && options.length > 0) {
      const got = valueAt(data, issue.path);
      const expected = options.map((o: unknown) => JSON.stringify(o)).join(', ');
      message = got === undefined ? `required field is missing (one of ${expected})` : `expected one of ${expected}, got ${describeValue(got)}`;
    }
    const params = issue.code === 'custom' ? (issue.params as Partial<DuplicateIdParams> | undefined) : undefined;
    if (params?.firstDefinedAt !== undefined) {
      const first = locate.at(locate.node(params.firstDefinedAt).offset);
      message += first.line !== undefined ? ` (first defined at line ${first.line})` : ` (first defined at ${formatPath(params.firstDefinedAt)})`;
    }
    out.push({ path: formatPath(issue.path), ...locate.at(locate.node(issue.path).offset), message });
  }
  return out;
}

function byPosition(a: ConfigIssue, b: ConfigIssue): number {
  return (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
}

/**
 * Parses, substitutes and validates config text. `file` is only used to name the source in errors.
 * Relative paths (dataDir, storage.root) are kept as written; see {@link resolvePaths}.
 * @throws ConfigError listing every issue found at the first failing stage (syntax, substitution, validation).
 */
export function parseConfig(text: string, file: string, env: SubstitutionEnv = process.env): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const locate = new Locator(doc, lines);

  if (doc.errors.length > 0) {
    const issues = doc.errors.map((err): ConfigIssue => ({ path: '', ...locate.at(err.pos[0]), message: `YAML syntax error: ${err.message}` }));
    throw new ConfigError(file, issues.sort(byPosition));
  }

  const substitution = substituteDocument(doc, env);
  if (substitution.length > 0) {
    const issues = substitution.map((err): ConfigIssue => ({ path: formatPath(err.path), ...locate.at(err.offset), message: err.message }));
    throw new ConfigError(file, issues.sort(byPosition));
  }

  const data: unknown = doc.toJS();
  if (data === null || data === undefined) throw new ConfigError(file, [{ path: '', message: 'config file is empty' }]);

  const result = ConfigSchema.safeParse(data, { error: errorMap });
  if (!result.success) throw new ConfigError(file, validationIssues(result.error.issues, data, locate).sort(byPosition), { cause: result.error });
  return result.data;
}

/** A config file is a few KiB; past this it is not one (and is not read into memory). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/**
 * A config file's text, at most MAX_CONFIG_BYTES.
 * @throws ConfigError when it cannot be read or is too large; `cause` is the I/O error if any.
 */
export async function readConfigText(path: string): Promise<string> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    const { size } = await handle.stat();
    if (size > MAX_CONFIG_BYTES) {
      throw new ConfigError(path, [{ path: '', message: `config file is ${size} bytes, over the ${MAX_CONFIG_BYTES}-byte limit` }]);
    }
    // Read at most one byte past the limit: a file growing meanwhile is still bounded.
    const buf = Buffer.alloc(Math.min(size, MAX_CONFIG_BYTES) + 1);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_CONFIG_BYTES) throw new ConfigError(path, [{ path: '', message: `config file is over the ${MAX_CONFIG_BYTES}-byte limit` }]);
    return buf.subarray(0, bytesRead).toString('utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConfigError(path, [{ path: '', message: `cannot read config file: ${reason}` }], { cause: err });
  } finally {
    await handle?.close();
  }
}

/** Reads and parses a config file; errors name `path` as given. */
export async function loadConfigFile(path: string, env: SubstitutionEnv = process.env): Promise<Config> {
  return parseConfig(await readConfigText(path), path, env);
}

/**
 * A copy with relative paths (dataDir, fs storage root, an ffmpeg path containing a slash) made
 * absolute against `baseDir` (default: the process cwd, which is how the gateway interprets them).
 */
export function resolvePaths(config: Config, baseDir: string = process.cwd()): Config {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const ffmpegPath = config.ffmpeg.path;
  return {
    ...config,
    dataDir: abs(config.dataDir),
    ffmpeg: { ...config.ffmpeg, path: ffmpegPath !== null && /[/\\]/.test(ffmpegPath) ? abs(ffmpegPath) : ffmpegPath },
    storage: config.storage.kind === 'fs' ? { ...config.storage, root: abs(config.storage.root) } : { ...config.storage },
    spool: { ...config.spool, dir: abs(config.spool.dir) },
  };
}

const REDACTED = '***';

/** A deep copy safe to log: stream keys and OSS secrets replaced by "***" (unset ones stay unset). */
/** `rtsp://user:pass@host/…` → `rtsp://user:***@host/…` (the URL is kept readable; only the secret goes). */
export function redactUrlCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/@\s]*)@/i, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return `${scheme}${colon < 0 ? userinfo : `${userinfo.slice(0, colon)}:${REDACTED}`}@`;
  });
}

export function redactConfig(config: Config): Config {
  const copy = structuredClone(config);
  for (const stream of copy.streams) {
    if (stream.key !== '') stream.key = REDACTED;
    if (stream.source) {
      stream.source.url = redactUrlCredentials(stream.source.url);
      if (stream.source.password !== undefined) stream.source.password = REDACTED;
    }
  }
  if (copy.server.http.apiToken !== null) copy.server.http.apiToken = REDACTED;
  if (copy.storage.kind === 'oss') {
    if (copy.storage.accessKeySecret !== undefined) copy.storage.accessKeySecret = REDACTED;
    if (copy.storage.securityToken !== undefined) copy.storage.securityToken = REDACTED;
  }
  return copy;
}
