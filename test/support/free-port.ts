/**
 * Free loopback ports for daemons that take their port in a configuration file (knot, unbound, Postfix, sendmail)
 * instead of binding port 0 and reporting it. The kernel picks the port (bind to port 0), so a developer's
 * `npm start` or a parallel test run never collides with a fixed number; the port is released before the daemon
 * binds it, so a caller that can still lose the race retries with a fresh port ({@link isAddressInUse}).
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** Ports handed out by this process, never handed out twice (the kernel may offer a closed port again). */
const handedOut = new Set<number>();

/** What {@link freePort} must find free. */
export interface FreePortOptions {
  /** Also free for UDP on the same number (a DNS server listens on both). */
  readonly udp?: boolean;
}

/**
 * A port on 127.0.0.1 that was free a moment ago for TCP (and UDP when asked), and that this process has not
 * handed out before.
 * @throws Error when no such port is found in 50 tries
 */
export async function freePort(options: FreePortOptions = {}): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const tcp = createServer();
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve());
    });
    const address = tcp.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    let free = port !== 0 && !handedOut.has(port);
    if (free && options.udp === true) free = await udpFree(port);
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free loopback port found in 50 tries');
}

/** Whether UDP port `port` on 127.0.0.1 can be bound now. */
function udpFree(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    socket.once('error', () => {
      try {
        socket.close();
      } catch {
        // Never bound: nothing to close.
      }
      resolve(false);
    });
    socket.bind({ address: '127.0.0.1', port, exclusive: true }, () => socket.close(() => resolve(true)));
  });
}

/** Whether TCP port `port` on 127.0.0.1 can be bound now (false when another program holds it). */
export function tcpPortFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Whether a start-up failure says a port was taken meanwhile (then the caller retries with fresh ports). */
export function isAddressInUse(error: unknown): boolean {
  return error instanceof Error && /address already in use|EADDRINUSE/i.test(error.message);
}
