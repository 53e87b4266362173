/**
 * One UDP exchange with one server: a fresh socket (so a fresh random source port, RFC 5452 §10), connected to the
 * server so the kernel drops datagrams from anyone else, waiting at most `timeoutMs` for a datagram that answers
 * our question. Datagrams that do not (wrong ID, wrong question, not DNS at all) are ignored, not believed.
 */
import { createSocket } from 'node:dgram';
import type { Packet } from 'dns2';
import type { ServerAddress } from './server-address.ts';
import { isResponseTo, parseMessage, type Question } from './message.ts';

/** Why an exchange produced no message. */
export class ExchangeError extends Error {
  override readonly name = 'ExchangeError';

  /**
   * @param outcome `timeout` when the time ran out, `network` for socket errors, `bad-response` for a TCP peer
   *   that sent something other than our answer
   * @param message detail
   */
  constructor(
    readonly outcome: 'timeout' | 'network' | 'bad-response',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Sends `query` to `server` over UDP and resolves with the first datagram that answers `question` under `id`.
 * @param signal aborts the exchange (the caller's overall deadline); rejects with a `timeout` ExchangeError
 */
export function exchangeUdp(
  server: ServerAddress,
  query: Buffer,
  id: number,
  question: Question,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Packet> {
  return new Promise<Packet>((resolve, reject) => {
    const socket = createSocket(server.family === 6 ? 'udp6' : 'udp4');
    let ignored = 0;
    let settled = false;
    const finish = (error: Error | undefined, message?: Packet): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.removeAllListeners('message');
      socket.removeAllListeners('error');
      // An ICMP error can still arrive on a socket being closed; keep a listener so it is not thrown.
      socket.on('error', () => undefined);
      socket.close();
      if (error) reject(error);
      else if (message) resolve(message);
    };
    const onAbort = (): void => finish(new ExchangeError('timeout', 'overall deadline reached'));
    const timer = setTimeout(() => {
      const note = ignored > 0 ? ` (${ignored} unrelated datagram(s) ignored)` : '';
      finish(new ExchangeError('timeout', `no UDP answer within ${timeoutMs} ms${note}`));
    }, timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('message', (bytes: Buffer) => {
      const message = parseMessage(bytes);
      if (message && isResponseTo(message, id, question)) finish(undefined, message);
      else ignored++;
    });
    // On a connected socket an ICMP port-unreachable surfaces as ECONNREFUSED: the server is down, move on.
    socket.on('error', (error: NodeJS.ErrnoException) =>
      finish(new ExchangeError('network', `UDP ${error.code ?? error.message}`)),
    );
    if (signal.aborted) {
      onAbort();
      return;
    }
    socket.connect(server.port, server.host, () => {
      if (settled) return;
      socket.send(query, (error) => {
        if (error) finish(new ExchangeError('network', `UDP send: ${(error as NodeJS.ErrnoException).code ?? error.message}`));
      });
    });
  });
}
