/**
 * "Did you mean": the known key closest to a mistyped one. Known keys come from the config's JSON
 * Schema (the same description editors get), so they never drift from the zod schema.
 */

type Path = readonly PropertyKey[];
type JsonSchemaNode = { properties?: Record<string, unknown>; items?: unknown; anyOf?: unknown[]; oneOf?: unknown[] };

function asNode(value: unknown): JsonSchemaNode | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonSchemaNode) : undefined;
}

/** The schema nodes that can describe the value at `path` (several where a union is open). */
function nodesAt(root: unknown, path: Path): JsonSchemaNode[] {
  let nodes = [asNode(root)].filter((n): n is JsonSchemaNode => n !== undefined);
  for (const part of path) {
    const next: JsonSchemaNode[] = [];
    const visit = (n: JsonSchemaNode): void => {
      for (const alt of [...(n.anyOf ?? []), ...(n.oneOf ?? [])]) {
        const a = asNode(alt);
        if (a) visit(a);
      }
      const child = typeof part === 'number' ? n.items : n.properties?.[String(part)];
      const c = asNode(child);
      if (c) next.push(c);
    };
    nodes.forEach(visit);
    nodes = next;
  }
  return nodes;
}

/** Every key a mapping at `path` may have, per the JSON Schema `schema`. */
export function knownKeysAt(schema: unknown, path: Path): string[] {
  const keys = new Set<string>();
  const collect = (n: JsonSchemaNode): void => {
    for (const k of Object.keys(n.properties ?? {})) keys.add(k);
    for (const alt of [...(n.anyOf ?? []), ...(n.oneOf ?? [])]) {
      const a = asNode(alt);
      if (a) collect(a);
    }
  };
  nodesAt(schema, path).forEach(collect);
  return [...keys];
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions), bounded inputs. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

/** Keys in a hostile file can be long: no suggestion past this (and no quadratic work on them). */
const MAX_SUGGESTABLE = 64;

/**
 * The candidate closest to `word`, ignoring case (`fragmentDurationMS` → `fragmentDurationMs`), when it
 * is close enough to be a typo: at most a third of its length in edits (at least 1, at most 3).
 */
export function closestKey(word: string, candidates: readonly string[]): string | undefined {
  if (word.length > MAX_SUGGESTABLE) return undefined;
  const w = word.toLowerCase();
  let best: { key: string; distance: number } | undefined;
  for (const key of candidates) {
    const distance = editDistance(w, key.toLowerCase());
    if (best === undefined || distance < best.distance) best = { key, distance };
  }
  if (best === undefined || best.key === word) return undefined;
  const allowed = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  return best.distance <= allowed ? best.key : undefined;
}
