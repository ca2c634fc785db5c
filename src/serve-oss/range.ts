/**
 * GetObject `Range` handling with OSS's two behaviours (dossier §3.3):
 * - default: any range that is malformed or not wholly inside the object is ignored → 200 + whole object;
 * - `x-oss-range-behavior: standard` (RFC 9110): an end past EOF is clamped (206), a start at or past
 *   EOF is unsatisfiable (416 InvalidRange).
 * OSS serves only the first range of a multi-range header. A syntactically invalid header (wrong
 * unit, `5-2`) is ignored in both behaviours, as RFC 9110 says.
 */
export type RangeDecision =
  | { kind: 'whole' }
  /** Inclusive byte positions, `end < size`. */
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

const SPEC = /^bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i;

function toInt(digits: string): number | undefined {
  if (digits === '') return undefined;
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : Number.MAX_SAFE_INTEGER; // huge numbers are simply "past EOF"
}

export function decideRange(header: string | undefined, size: number, standard: boolean): RangeDecision {
  if (header === undefined) return { kind: 'whole' };
  const first = header.split(',')[0]!;
  const m = SPEC.exec(first.trim());
  if (!m) return { kind: 'whole' };
  const a = toInt(m[1]!);
  const b = toInt(m[2]!);
  const outside: RangeDecision = standard ? { kind: 'unsatisfiable' } : { kind: 'whole' };

  if (a === undefined) {
    if (b === undefined) return { kind: 'whole' }; // "bytes=-"
    // Suffix range: the last b bytes.
    if (b === 0 || size === 0) return outside;
    if (b > size) return standard ? { kind: 'partial', start: 0, end: size - 1 } : { kind: 'whole' };
    return { kind: 'partial', start: size - b, end: size - 1 };
  }
  if (b !== undefined && b < a) return { kind: 'whole' };
  if (a >= size) return outside;
  if (b === undefined) return { kind: 'partial', start: a, end: size - 1 };
  if (b >= size) return standard ? { kind: 'partial', start: a, end: size - 1 } : { kind: 'whole' };
  return { kind: 'partial', start: a, end: b };
}
