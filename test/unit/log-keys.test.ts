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

/** The literal keys of an object literal (spreads and computed names are left out). */
function keysOf(o: ts.ObjectLiteralExpression): Array<{ key: string; node: ts.Node }> {
  return o.properties.flatMap((p) => p.name && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) ? [{ key: p.name.text, node: p }] : []);
}

/** `this.log?.warn` and `this.log.warn` name the same logger. */
const receiver = (e: ts.Expression, sf: ts.SourceFile): string => e.getText(sf).replace(/\?\./g, '.').replace(/\s+/g, '');

interface LogCall { file: string; sf: ts.SourceFile; receiver: string; method: string; arg: ts.ObjectLiteralExpression }

/** Every `<something log-ish>.<level|child>({ … })` in src, and per file what each `x = y.child({…})` binds. */
function scan(): { calls: LogCall[]; bindings: Map<string, Map<string, string[]>> } {
  const calls: LogCall[] = [];
  const bindings = new Map<string, Map<string, string[]>>();
  for (const file of sources(SRC)) {
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const bound = new Map<string, string[]>();
    bindings.set(file, bound);
    const childKeys = (init: ts.Expression | undefined): string[] | undefined => {
      const e = init && ts.isCallExpression(init) ? init : undefined;
      if (!e || !ts.isPropertyAccessExpression(e.expression) || e.expression.name.text !== 'child') return undefined;
      const arg = e.arguments[0];
      return arg && ts.isObjectLiteralExpression(arg) ? keysOf(arg).map((k) => k.key) : undefined;
    };
    const visit = (n: ts.Node): void => {
      if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
        const keys = childKeys(n.right);
        if (keys) bound.set(receiver(n.left, sf), keys);
      } else if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name)) {
        const keys = childKeys(n.initializer);
        if (keys) bound.set(n.name.text, keys);
      }
      if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression)) {
        const method = n.expression.name.text;
        const arg = n.arguments[0];
        if ((LEVELS.has(method) || method === 'child') && arg && ts.isObjectLiteralExpression(arg) && /log/i.test(n.expression.expression.getText(sf))) {
          calls.push({ file, sf, receiver: receiver(n.expression.expression, sf), method, arg });
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return { calls, bindings };
}

const where = (c: LogCall, node: ts.Node): string => `${relative(SRC, c.file)}:${c.sf.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;

describe('log calls (pino writes a key set twice as two: a JSON line with a duplicate key)', () => {
  const { calls, bindings } = scan();

  it('the scan sees the log calls and the child loggers', () => {
    expect(calls.length).toBeGreaterThan(50);
    expect([...bindings.values()].reduce((n, b) => n + b.size, 0)).toBeGreaterThan(5);
  });

  it('no log call or child logger sets a key every line already has (level, time, msg, app)', () => {
    const offences = calls.flatMap((c) => keysOf(c.arg).filter((k) => RESERVED.includes(k.key)).map((k) => `${where(c, k.node)}: ${k.key}`));
    expect(offences).toEqual([]);
  });

  it('no log call sets a key its own child logger already binds (same file, same logger)', () => {
    const offences = calls.flatMap((c) => {
      const bound = bindings.get(c.file)?.get(c.receiver) ?? [];
      return keysOf(c.arg).filter((k) => bound.includes(k.key)).map((k) => `${where(c, k.node)}: ${c.receiver} binds ${k.key}`);
    });
    expect(offences).toEqual([]);
  });
});
