/**
 * A milter client over a real socket: the MTA side, for tests, diagnostics and load generation.
 */
import { connect, type Socket } from 'node:net';
import { parseMilterAddress } from './address.ts';
import { encodeCommand, type Command } from './codec/commands.ts';
import { FrameDecoder } from './codec/frame-decoder.ts';
import { decodeResponse, type Response } from './codec/responses.ts';
import { MilterProtocolError } from './errors.ts';
import { MtaConversation, POSTFIX_OFFER, type MtaOffer, type MtaTransport } from './mta.ts';

/** Options of {@link MilterClient.connect}. */
export interface MilterClientOptions {
  /** What to offer in OPTNEG (default: what Postfix offers with milter_protocol = 6). */
  offer?: MtaOffer;
  /** Milliseconds to wait for each reply (default 30 s, Postfix's milter_command_timeout). */
  replyTimeout?: number;
  /** Milliseconds to wait for the connection (default 10 s, Postfix's milter_connect_timeout). */
  connectTimeout?: number;
  /** Largest reply frame accepted (default 1 MiB + 1). */
  maxFrameSize?: number;
}

/** A socket transport: frames out in one write per command, replies decoded as they arrive. */
class SocketTransport implements MtaTransport {
  private readonly decoder: FrameDecoder;
  private readonly replies: Response[] = [];
  private waiter: { resolve: (reply: Response) => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;
  /** Frames queued by send() and flushed together, so macros and their command leave in one segment. */
  private outgoing: Buffer[] = [];

  constructor(
    private readonly socket: Socket,
    private readonly replyTimeout: number,
    maxFrameSize: number,
  ) {
    this.decoder = new FrameDecoder({ maxFrameSize });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of this.decoder.push(chunk)) this.deliver(decodeResponse(frame));
      } catch (error) {
        this.fail(error as Error);
        socket.destroy();
      }
    });
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new MilterProtocolError('truncated-frame', 'filter closed the connection')));
  }

  send(command: Command): void {
    this.outgoing.push(encodeCommand(command));
    queueMicrotask(() => this.flush());
  }

  receive(): Promise<Response> {
    this.flush();
    const ready = this.replies.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no reply from the filter within ${this.replyTimeout} ms`));
      }, this.replyTimeout);
      this.waiter = {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  private flush(): void {
    if (this.outgoing.length === 0 || this.socket.destroyed) return;
    this.socket.write(this.outgoing.length === 1 ? (this.outgoing[0] as Buffer) : Buffer.concat(this.outgoing));
    this.outgoing = [];
  }

  private deliver(reply: Response): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter !== undefined) waiter.resolve(reply);
    else this.replies.push(reply);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(this.failure);
  }
}

/** A connection to a filter, driven like Postfix drives it. */
export class MilterClient extends MtaConversation {
  private constructor(
    transport: MtaTransport,
    offer: MtaOffer,
    private readonly socket: Socket,
  ) {
    super(transport, offer);
  }

  /** Connects to `unix:/path`, `inet:HOST:PORT` or `inet:PORT@HOST` and negotiates. */
  static async connect(address: string, options: MilterClientOptions = {}): Promise<MilterClient> {
    const target = parseMilterAddress(address);
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = target.kind === 'unix' ? connect(target.path) : connect({ host: target.host, port: target.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`could not connect to ${address} within ${options.connectTimeout ?? 10_000} ms`));
      }, options.connectTimeout ?? 10_000);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const transport = new SocketTransport(socket, options.replyTimeout ?? 30_000, options.maxFrameSize ?? 1024 * 1024 + 1);
    const client = new MilterClient(transport, options.offer ?? POSTFIX_OFFER, socket);
    try {
      await client.negotiate();
    } catch (error) {
      socket.destroy();
      throw error;
    }
    return client;
  }

  /** Sends QUIT and closes the socket. */
  async close(): Promise<void> {
    if (!this.socket.destroyed) {
      this.quit();
      // send() flushes in a microtask; let it run before ending the socket.
      await Promise.resolve();
      await new Promise<void>((resolve) => {
        this.socket.end(() => resolve());
        setTimeout(resolve, 1000).unref();
      });
    }
    this.socket.destroy();
  }
}
