/**
 * A deliberately small, tolerant reader for the few flat XML documents OSS sends us (error bodies,
 * ListObjectsV2 results). It finds elements by local name, ignoring namespaces, prefixes, attributes,
 * unknown siblings and the XML declaration; it does not validate. Text is unescaped (the five
 * predefined entities, numeric references, CDATA sections).
 */

const NAME = /^[A-Za-z_][\w.-]*$/;
const PREDEFINED: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (whole, ref: string) => {
    if (!ref.startsWith('#')) return PREDEFINED[ref] ?? whole;
    const cp = ref[1] === 'x' ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
    // An out-of-range reference is left as written rather than throwing.
    return Number.isInteger(cp) && cp >= 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : whole;
  });
}

/** Element content as text: CDATA sections verbatim, entities decoded everywhere else. */
export function unescapeXml(s: string): string {
  let out = '';
  let last = 0;
  for (const m of s.matchAll(/<!\[CDATA\[([\s\S]*?)\]\]>/g)) {
    out += decodeEntities(s.slice(last, m.index)) + (m[1] ?? '');
    last = m.index + m[0].length;
  }
  return out + decodeEntities(s.slice(last));
}

function elementPattern(name: string): RegExp {
  if (!NAME.test(name)) throw new TypeError(`not an XML element name: ${name}`);
  const prefix = '(?:[A-Za-z_][\\w.-]*:)?';
  return new RegExp(`<${prefix}${name}(?:\\s[^>]*?)?(?:/>|>([\\s\\S]*?)</${prefix}${name}\\s*>)`, 'g');
}

/** The raw (still escaped) inner XML of every `<name>` element, in document order; `<name/>` gives ''. */
export function xmlElementsRaw(xml: string, name: string): string[] {
  return [...xml.matchAll(elementPattern(name))].map((m) => m[1] ?? '');
}

/** The unescaped text of the first `<name>` element, or undefined when there is none. */
export function xmlText(xml: string, name: string): string | undefined {
  const first = xmlElementsRaw(xml, name)[0];
  return first === undefined ? undefined : unescapeXml(first);
}
