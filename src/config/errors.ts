import { AppendcastError, ErrorCode } from '../errors.js';

/** One problem found in a config file; `path` is the field path (`streams[1].id`), '' for the whole file. */
export interface ConfigIssue {
  path: string;
  /** 1-based line in the file, when the problem can be placed. */
  line?: number;
  /** 1-based column in the file. */
  column?: number;
  message: string;
}

/** `file:line:col: path: message`, the shape compilers use, so editors and terminals can jump to it. */
export function formatConfigIssue(file: string, issue: ConfigIssue): string {
  let where = file;
  if (issue.line !== undefined) {
    where += `:${issue.line}`;
    if (issue.column !== undefined) where += `:${issue.column}`;
  }
  return issue.path === '' ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`;
}

/** The config file could not be read, parsed, substituted or validated. The message lists every issue, one per line. */
export class ConfigError extends AppendcastError {
  readonly file: string;
  readonly issues: readonly ConfigIssue[];
  constructor(file: string, issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    super(ErrorCode.ConfigInvalid, issues.map((issue) => formatConfigIssue(file, issue)).join('\n'), options);
    this.file = file;
    this.issues = issues;
  }
}
