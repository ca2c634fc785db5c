import { isMap, isScalar, isSeq } from 'yaml';
import type { Document, Node } from 'yaml';

/** Environment to substitute from: `process.env` in production, a plain map in tests. */
export type SubstitutionEnv = Readonly<Record<string, string | undefined>>;

export interface SubstitutionResult {
  value: string;
  /** One message per reference that could not be resolved or is malformed; `value` keeps those as written. */
  errors: string[];
}

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/**
 * Shell-like substitution in one string:
 * - `${VAR}`: the variable's value (set but empty gives ''); unset is an error.
 * - `${VAR:-default}`: the default when VAR is unset or empty. The default is literal (no nesting) and
 *   cannot contain `}`.
 * - `$${`: a literal `${` (so `$${VAR}` stays `${VAR}`); any other `$` is kept as is.
 */
export function substituteString(input: string, env: SubstitutionEnv): SubstitutionResult {
  const errors: string[] = [];
  let out = '';
  let i = 0;
  while (i < input.length) {
    const dollar = input.indexOf('$', i);
    if (dollar < 0) {
      out += input.slice(i);
      break;
    }
    out += input.slice(i, dollar);
    if (input.startsWith('$${', dollar)) {
      out += '${';
      i = dollar + 3;
      continue;
    }
    if (!input.startsWith('${', dollar)) {
      out += '$';
      i = dollar + 1;
      continue;
    }
    const close = input.indexOf('}', dollar + 2);
    if (close < 0) {
      errors.push(`unterminated "\${" in "${input}" (write "$\${" for a literal "\${")`);
      out += input.slice(dollar);
      break;
    }
    const inner = input.slice(dollar + 2, close);
    const reference = input.slice(dollar, close + 1);
    i = close + 1;
    const match = REFERENCE.exec(inner);
    if (match === null) {
      errors.push(`invalid substitution "${reference}": expected \${NAME} or \${NAME:-default}`);
      out += reference;
      continue;
    }
    const name = match[1] as string;
    const fallback = match[2];
    const value = env[name];
    if (fallback !== undefined) {
      out += value === undefined || value === '' ? fallback : value;
    } else if (value !== undefined) {
      out += value;
    } else {
      errors.push(`environment variable "${name}" is not set and has no default (write \${${name}:-default} to give one)`);
      out += reference;
    }
  }
  return { value: out, errors };
}

export interface NodeSubstitutionError {
  /** Field path from the document root, e.g. ['streams', 0, 'key']. */
  path: (string | number)[];
  /** Source offset of the scalar holding the reference. */
  offset: number | undefined;
  message: string;
}

/**
 * Substitutes every string scalar value of a parsed document in place (keys are left alone), so
 * node ranges still point at the source and later validation errors keep their line numbers.
 * Aliases need no work: they resolve to the anchored node, which is substituted once.
 */
export function substituteDocument(doc: Document, env: SubstitutionEnv): NodeSubstitutionError[] {
  const errors: NodeSubstitutionError[] = [];
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        walk(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => walk(item, [...path, index]));
    } else if (isScalar(node) && typeof node.value === 'string') {
      const result = substituteString(node.value, env);
      node.value = result.value;
      for (const message of result.errors) errors.push({ path, offset: (node as Node).range?.[0], message });
    }
  };
  walk(doc.contents, []);
  return errors;
}
