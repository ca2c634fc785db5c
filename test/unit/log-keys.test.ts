import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = new URL('../../src', import.meta.url).pathname;
/** Keys every line already has: pino's own and the logger's base (src/util/logger.ts). */
const RESERVED = ['level', 'time', 'msg', 'app'];
const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : []);
}

describe('log calls', () => {
  it('no log call or child logger sets a key every line already has (it would be written twice in the JSON)', () => {
    const offences: string[] = [];
    let calls = 0;
    for (const file of sources(SRC)) {
      const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
      const visit = (n: ts.Node): void => {
        if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression)) {
          const method = n.expression.name.text;
          const arg = n.arguments[0];
          if ((LEVELS.has(method) || method === 'child') && arg && ts.isObjectLiteralExpression(arg) && /log/i.test(n.expression.expression.getText(sf))) {
            calls++;
            for (const p of arg.properties) {
              const key = p.name && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) ? p.name.text : undefined;
              if (key !== undefined && RESERVED.includes(key)) {
                offences.push(`${relative(SRC, file)}:${sf.getLineAndCharacterOfPosition(p.getStart()).line + 1}: ${key}`);
              }
            }
          }
        }
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
    expect(calls).toBeGreaterThan(50); // the scan sees the log calls at all
    expect(offences).toEqual([]);
  });
});
