import { KeyTemplateError } from './errors.js';

export interface KeyTemplateValues {
  stream: string;
  /** When the object is opened; rendered in UTC. */
  date: Date;
  /** Per-stream object sequence number (0 for the first object of a publish). */
  seq: number;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/**
 * Renders a key template such as `{stream}/{yyyy}/{MM}/{dd}/{stream}-{HH}{mm}{ss}.mp4`, in UTC.
 * The config validates the placeholders; an unknown one here is a programming error.
 */
export function renderKey(template: string, v: KeyTemplateValues): string {
  const d = v.date;
  const values: Record<string, string> = {
    stream: v.stream,
    yyyy: String(d.getUTCFullYear()),
    MM: pad(d.getUTCMonth() + 1),
    dd: pad(d.getUTCDate()),
    HH: pad(d.getUTCHours()),
    mm: pad(d.getUTCMinutes()),
    ss: pad(d.getUTCSeconds()),
    SSS: pad(d.getUTCMilliseconds(), 3),
    seq: String(v.seq),
  };
  return template.replace(/\{([A-Za-z]+)\}/g, (m, name: string) => {
    const val = values[name];
    if (val === undefined) throw new KeyTemplateError(m);
    return val;
  });
}

/**
 * A key is never reused: when the rendered key exists already (two publishes within the same
 * second, say), `-1`, `-2`… is inserted before the extension.
 */
export function withCollisionSuffix(key: string, n: number): string {
  if (n === 0) return key;
  const slash = key.lastIndexOf('/');
  const dot = key.lastIndexOf('.');
  return dot > slash + 1 ? `${key.slice(0, dot)}-${n}${key.slice(dot)}` : `${key}-${n}`;
}
