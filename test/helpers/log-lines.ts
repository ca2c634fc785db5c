/**
 * The first complete pino JSON line in `text` (a process's stdout so far) whose `msg` is `msg`,
 * parsed; undefined until it has arrived (a line still being written does not parse and is skipped).
 */
export function logLine<T extends object = Record<string, unknown>>(text: string, msg: string): (T & { msg: string }) | undefined {
  const needle = JSON.stringify(msg);
  for (const line of text.split('\n')) {
    if (!line.includes(needle)) continue;
    try {
      const j = JSON.parse(line) as T & { msg?: unknown };
      if (j.msg === msg) return j as T & { msg: string };
    } catch {
      // not (yet) a whole JSON line
    }
  }
  return undefined;
}
