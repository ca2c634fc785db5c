import { execFile } from 'node:child_process';

/** `promtool check metrics` on a Prometheus text exposition: its complaints (empty when clean). */
export function promtoolComplaints(text: string): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], { timeout: 30_000 }, (_err, stdout, stderr) => resolve(stdout + stderr));
    child.stdin!.end(text);
  });
}
