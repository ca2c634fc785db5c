/** Which code a benchmark ran: the checkout's HEAD and its uncommitted changes under src/. */
import { execFileSync } from 'node:child_process';

export function gitHead(dir: string): string {
  try {
    return execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
}

export function gitDirty(dir: string): string[] {
  try {
    return execFileSync('git', ['-C', dir, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}
