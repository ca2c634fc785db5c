/**
 * Validates data against a JSON Schema. A real validator (ajv, draft 2020-12) when one is installed;
 * until then a strict subset validator for the keywords our generated config schema uses, which
 * throws on any keyword it does not know (so a schema it cannot judge never passes by accident).
 */

export interface SchemaValidator {
  /** Which validator judged: 'ajv' or 'subset'. */
  kind: 'ajv' | 'subset';
  /** Problems with `data`, [] when it is valid. */
  errors(data: unknown): string[];
}

type Schema = Record<string, unknown>;

/** Keywords that only annotate. */
const ANNOTATIONS = new Set(['$schema', 'title', 'description', 'default', 'format', 'examples']);
const CHECKED = new Set([
  'type', 'properties', 'additionalProperties', 'required', 'enum', 'const', 'pattern', 'minLength', 'maxLength',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'items', 'minItems', 'maxItems', 'anyOf', 'oneOf',
]);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function matchesType(v: unknown, type: string): boolean {
  const t = typeOf(v);
  return t === type || (type === 'number' && t === 'integer');
}

function check(schema: Schema, data: unknown, at: string, out: string[]): void {
  for (const k of Object.keys(schema)) {
    if (!ANNOTATIONS.has(k) && !CHECKED.has(k)) throw new Error(`subset JSON Schema validator: keyword "${k}" at ${at} is not supported`);
  }
  const type = schema['type'];
  if (type !== undefined) {
    const types = Array.isArray(type) ? (type as string[]) : [type as string];
    if (!types.some((t) => matchesType(data, t))) {
      out.push(`${at}: expected ${types.join(' or ')}, got ${typeOf(data)}`);
      return;
    }
  }
  if (schema['enum'] !== undefined && !(schema['enum'] as unknown[]).some((e) => e === data)) out.push(`${at}: not one of ${JSON.stringify(schema['enum'])}`);
  if ('const' in schema && schema['const'] !== data) out.push(`${at}: expected ${JSON.stringify(schema['const'])}`);
  if (typeof data === 'string') {
    if (typeof schema['pattern'] === 'string' && !new RegExp(schema['pattern'], 'u').test(data)) out.push(`${at}: does not match ${schema['pattern']}`);
    const length = [...data].length;
    if (typeof schema['minLength'] === 'number' && length < schema['minLength']) out.push(`${at}: shorter than ${schema['minLength']}`);
    if (typeof schema['maxLength'] === 'number' && length > schema['maxLength']) out.push(`${at}: longer than ${schema['maxLength']}`);
  }
  if (typeof data === 'number') {
    if (typeof schema['minimum'] === 'number' && data < schema['minimum']) out.push(`${at}: below ${schema['minimum']}`);
    if (typeof schema['maximum'] === 'number' && data > schema['maximum']) out.push(`${at}: above ${schema['maximum']}`);
    if (typeof schema['exclusiveMinimum'] === 'number' && data <= schema['exclusiveMinimum']) out.push(`${at}: not above ${schema['exclusiveMinimum']}`);
    if (typeof schema['exclusiveMaximum'] === 'number' && data >= schema['exclusiveMaximum']) out.push(`${at}: not below ${schema['exclusiveMaximum']}`);
  }
  if (Array.isArray(data)) {
    if (typeof schema['minItems'] === 'number' && data.length < schema['minItems']) out.push(`${at}: fewer than ${schema['minItems']} items`);
    if (typeof schema['maxItems'] === 'number' && data.length > schema['maxItems']) out.push(`${at}: more than ${schema['maxItems']} items`);
    if (schema['items'] !== undefined) data.forEach((item, i) => check(schema['items'] as Schema, item, `${at}[${i}]`, out));
  }
  if (typeOf(data) === 'object') {
    const obj = data as Record<string, unknown>;
    const props = (schema['properties'] ?? {}) as Record<string, Schema>;
    for (const r of (schema['required'] ?? []) as string[]) if (!(r in obj)) out.push(`${at}: missing required "${r}"`);
    for (const [k, v] of Object.entries(obj)) {
      const p = props[k];
      if (p !== undefined) check(p, v, `${at}.${k}`, out);
      else if (schema['additionalProperties'] === false) out.push(`${at}: unknown key "${k}"`);
      else if (typeof schema['additionalProperties'] === 'object') check(schema['additionalProperties'] as Schema, v, `${at}.${k}`, out);
    }
  }
  const passes = (s: Schema): boolean => {
    const sub: string[] = [];
    check(s, data, at, sub);
    return sub.length === 0;
  };
  if (schema['anyOf'] !== undefined && !(schema['anyOf'] as Schema[]).some(passes)) out.push(`${at}: matches none of anyOf`);
  if (schema['oneOf'] !== undefined) {
    const n = (schema['oneOf'] as Schema[]).filter(passes).length;
    if (n !== 1) out.push(`${at}: matches ${n} of oneOf (exactly 1 wanted)`);
  }
}

/** ajv's 2020-12 build when it can be imported, else the subset validator. */
export async function jsonSchemaValidator(schema: Schema): Promise<SchemaValidator> {
  const specifier = 'ajv/dist/2020.js'; // a variable: ajv is optional, not a dependency of the build
  try {
    const mod = (await import(specifier)) as { default: new (o: object) => { compile(s: Schema): ((d: unknown) => boolean) & { errors?: unknown[] | null } } };
    const validate = new mod.default({ allErrors: true, strict: false }).compile(schema);
    return { kind: 'ajv', errors: (data) => (validate(data) ? [] : (validate.errors ?? []).map((e) => JSON.stringify(e))) };
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw err;
  }
  return {
    kind: 'subset',
    errors: (data) => {
      const out: string[] = [];
      check(schema, data, '$', out);
      return out;
    },
  };
}
