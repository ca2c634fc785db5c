import type { AddressInfo, Server } from 'node:net';
import { AppendcastError, type ErrorCode } from '../errors.js';

/**
 * Binds a server, turning a busy or forbidden port into a typed error that names what it is for
 * (the CLI prints it in one line and exits 1, instead of a stack trace).
 */
export function listenOn(server: Server, port: number, host: string, what: string, code: ErrorCode): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new AppendcastError(code,
        err.code === 'EADDRINUSE' ? `${what} port ${host}:${port} is already in use` : `cannot listen on ${what} ${host}:${port}: ${err.message}`,
        { cause: err }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.removeListener('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}
