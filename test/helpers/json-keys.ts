/**
 * The keys that appear more than once in one JSON object anywhere in `text` (one JSON value),
 * e.g. `{"app":"a","app":"b"}` → ['app']. JSON.parse keeps the last silently; log pipelines
 * (Loki, Elasticsearch, jq) disagree on which wins. Throws on text that is not JSON.
 */
export function duplicateJsonKeys(text: string): string[] {
  const dups: string[] = [];
  const objects: Array<Set<string> | null> = []; // null: an array
  let expectKey = false;
  let i = 0;
  const readString = (): string => {
    let end = i + 1;
    while (text[end] !== '"') {
      if (end >= text.length) throw new Error('unterminated string');
      end += text[end] === '\\' ? 2 : 1;
    }
    const s = JSON.parse(text.slice(i, end + 1)) as string;
    i = end + 1;
    return s;
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '{') {
      objects.push(new Set());
      expectKey = true;
      i++;
    } else if (c === '[') {
      objects.push(null);
      expectKey = false;
      i++;
    } else if (c === '}' || c === ']') {
      objects.pop();
      expectKey = false;
      i++;
    } else if (c === ',') {
      expectKey = objects.at(-1) instanceof Set;
      i++;
    } else if (c === '"') {
      const s = readString();
      const keys = objects.at(-1);
      if (expectKey && keys) {
        if (keys.has(s)) dups.push(s);
        keys.add(s);
        expectKey = false;
      }
    } else {
      i++;
    }
  }
  JSON.parse(text); // and it is JSON at all
  return dups;
}
