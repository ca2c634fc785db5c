/**
 * The RTSP test server (scripts/rtsp-test-server.py: GStreamer's gst-rtsp-server, run by Debian's
 * /usr/bin/python3, which has python3-gi) as a child process of the test. It binds 127.0.0.1 on
 * port 0 (or a given port: a server that went away comes back on the SAME port) and prints
 * `PORT <n>`, which is how readiness is known. stop() and kill() signal it by PID and resolve once it
 * has exited. It also exits on its own when its stdin (a pipe from this process) closes — so even a
 * crashed test run leaves no server behind — and after `maxSeconds`.
 *
 * Mounts: /h264aac, /h265pcma, /h264pcmu, /h264, /udponly/h264 (RTP over UDP only), /auth/h264aac
 * (digest; needs user and pass), and any `aliases` (`/cam` → `/h264aac`).
 */
import { type ChildProcessByStdio, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';

export const RTSP_SERVER_SCRIPT = fileURLToPath(new URL('../../scripts/rtsp-test-server.py', import.meta.url));
const PYTHON = '/usr/bin/python3';

export interface RtspServerOptions {
  /** 0 (default): any free port. */
  port?: number;
  user?: string;
  pass?: string;
  /** Extra mounts serving an existing mount's media: { '/cam': '/h264aac' }. */
  aliases?: Record<string, string>;
  /** The server exits by itself after this long (default 300 s). */
  maxSeconds?: number;
}

export interface RtspTestServer {
  port: number;
  pid: number;
  /** rtsp://[user:pass@]127.0.0.1:port/mount — credentials percent-encoded. */
  url(mount: string, creds?: { user: string; pass: string }): string;
  /** SIGTERM, SIGKILL after 5 s; resolves when it has exited. */
  stop(): Promise<void>;
  /** SIGKILL now (the server "goes away" without a goodbye); resolves when it has exited. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: the server keeps its connections open and sends nothing. */
  pause(): void;
  resume(): void;
  exited: boolean;
  /** Its stderr so far (GStreamer warnings), for failure messages. */
  stderr(): string;
}

/** Why the server cannot run here, or undefined when it can (python3-gi and gst-rtsp-server importable). */
export function rtspServerUnavailable(): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} is missing`;
  const r = spawnSync(PYTHON, ['-c', "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"], { timeout: 20_000, encoding: 'utf8' });
  if (r.status !== 0) return `python3-gi / gir1.2-gst-rtsp-server-1.0 not usable: ${(r.stderr || r.error?.message || '').trim().slice(-300)}`;
  return undefined;
}

const live = new Set<ChildProcessByStdio<Writable, Readable, Readable>>();
process.once('exit', () => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Stops every server this process started and has not stopped yet (an afterAll safety net). */
export async function stopAllRtspServers(): Promise<void> {
  await Promise.all(
    [...live].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('close', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
}

export async function startRtspServer(o: RtspServerOptions = {}): Promise<RtspTestServer> {
  const args = [RTSP_SERVER_SCRIPT, '--port', String(o.port ?? 0), '--max-seconds', String(o.maxSeconds ?? 300)];
  if (o.user !== undefined || o.pass !== undefined) args.push('--user', o.user ?? '', '--password', o.pass ?? '');
  for (const [path, target] of Object.entries(o.aliases ?? {})) args.push('--alias', `${path}=${target}`);
  const child = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    if (stderr.length < 64 * 1024) stderr += s;
  });
  child.stdin.on('error', () => {});
  const closed = new Promise<void>((resolve) =>
    child.once('close', () => {
      live.delete(child);
      resolve();
    }),
  );
  const waitClosed = (ms: number) => Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);

  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`RTSP test server printed no port within 20 s; stderr: ${stderr.slice(-2000)}`)), 20_000);
    function fail(err: Error): void {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    }
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /^PORT (\d+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      } else if (/^ERROR /m.test(out)) fail(new Error(`RTSP test server: ${out.trim()}`));
    });
    child.once('close', (code, signal) => fail(new Error(`RTSP test server exited (${code ?? signal}) before printing its port; stderr: ${stderr.slice(-2000)}`)));
  });

  const server: RtspTestServer = {
    port,
    pid: child.pid!,
    exited: false,
    url(mount, creds) {
      const auth = creds ? `${encodeURIComponent(creds.user)}:${encodeURIComponent(creds.pass)}@` : '';
      return `rtsp://${auth}127.0.0.1:${port}${mount}`;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGTERM');
        if (!(await waitClosed(5000))) child.kill('SIGKILL');
      }
      await closed;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await closed;
    },
    pause() {
      child.kill('SIGSTOP');
    },
    resume() {
      child.kill('SIGCONT');
    },
    stderr: () => stderr,
  };
  void closed.then(() => {
    server.exited = true;
  });
  return server;
}
