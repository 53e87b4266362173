/**
 * One UDP exchange with one server: a fresh socket (so a fresh random source port, RFC 5452 §10), connected to the
 * server so the kernel drops datagrams from anyone else, waiting at most `timeoutMs` for a datagram that answers
 * our question. Datagrams that do not (wrong ID, wrong question, not DNS at all) are ignored, not believed.
 */
import { createSocket } from 'node:dgram';
import type { Packet } from 'dns2';
import type { ServerAddress } from './server-address.ts';
import { boundedExchange, ExchangeError } from './exchange.ts';
import { isResponseTo, parseMessage, type Question } from './message.ts';

export { ExchangeError } from './exchange.ts';

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
  const socket = createSocket(server.family === 6 ? 'udp6' : 'udp4');
  let ignored = 0;
  const release = (): void => {
    socket.removeAllListeners('message');
    socket.removeAllListeners('error');
    // An ICMP error can still arrive on a socket being closed; keep a listener so it is not thrown.
    socket.on('error', () => undefined);
    socket.close();
  };
  const timeoutError = (): ExchangeError => {
    const note = ignored > 0 ? ` (${ignored} unrelated datagram(s) ignored)` : '';
    return new ExchangeError('timeout', `no UDP answer within ${timeoutMs} ms${note}`);
  };
  return boundedExchange<Packet>({ timeoutMs, signal, timeoutError, release }, (finish, settled) => {
    socket.on('message', (bytes: Buffer) => {
      const message = parseMessage(bytes);
      if (message && isResponseTo(message, id, question)) finish(undefined, message);
      else ignored++;
    });
    // On a connected socket an ICMP port-unreachable surfaces as ECONNREFUSED: the server is down, move on.
    socket.on('error', (error: NodeJS.ErrnoException) =>
      finish(new ExchangeError('network', `UDP ${error.code ?? error.message}`)),
    );
    socket.connect(server.port, server.host, () => {
      if (settled()) return;
      socket.send(query, (error) => {
        if (error) finish(new ExchangeError('network', `UDP send: ${(error as NodeJS.ErrnoException).code ?? error.message}`));
      });
    });
  });
}
