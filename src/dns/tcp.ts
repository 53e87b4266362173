/**
 * One TCP exchange with one server (RFC 7766), used after a truncated UDP answer. It has its own time bound,
 * covering connect, write and the whole read, because a server may accept the connection and then say nothing.
 */
import { connect } from 'node:net';
import type { Packet } from 'dns2';
import type { ServerAddress } from './server-address.ts';
import { isResponseTo, parseMessage, type Question } from './message.ts';
import { boundedExchange, ExchangeError } from './exchange.ts';

/**
 * Sends `query` over TCP with its 2-octet length prefix and resolves with the one message that comes back.
 * The length prefix caps a message at 65535 octets, so the read buffer is bounded by construction.
 * @param signal aborts the exchange (the caller's overall deadline); rejects with a `timeout` ExchangeError
 */
export function exchangeTcp(
  server: ServerAddress,
  query: Buffer,
  id: number,
  question: Question,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Packet> {
  const socket = connect({ host: server.host, port: server.port });
  const chunks: Buffer[] = [];
  let received = 0;
  const timeoutError = (): ExchangeError =>
    new ExchangeError('timeout', `no complete TCP answer within ${timeoutMs} ms (${received} octets read)`);
  return boundedExchange<Packet>({ timeoutMs, signal, timeoutError, release: () => socket.destroy() }, (finish) => {
    socket.setNoDelay(true);
    socket.on('connect', () => {
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(query.length);
      socket.write(Buffer.concat([prefix, query]));
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      const buffered = chunks.length === 1 ? chunk : Buffer.concat(chunks);
      if (buffered.length < 2) return;
      const length = buffered.readUInt16BE(0);
      if (buffered.length < 2 + length) return;
      const message = parseMessage(buffered.subarray(2, 2 + length));
      // One connection carries only our query, so anything else on it is a broken server, not noise to skip.
      if (message && isResponseTo(message, id, question)) finish(undefined, message);
      else finish(new ExchangeError('bad-response', 'TCP answer does not match the question or ID'));
    });
    socket.on('end', () => finish(new ExchangeError('network', `TCP connection closed after ${received} octets`)));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      finish(new ExchangeError('network', `TCP ${error.code ?? error.message}`)),
    );
  });
}
