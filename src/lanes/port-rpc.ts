/**
 * Requests and replies over a worker thread's message port: each side registers what it answers, and asks the
 * other side with {@link PortRpc.request}. The opening lanes use it for jobs, for the body chunks a thread pulls
 * from the connection, for the decrypted body the connection pulls back, and for sender key lookups.
 */
import type { MessagePort, Transferable, Worker } from 'node:worker_threads';

/** What carries the messages: a `Worker` (main side) or the thread's `parentPort`. */
export type RpcEndpoint = Pick<MessagePort | Worker, 'postMessage' | 'on' | 'off'>;

/** A request handler: its value is the reply; a rejection is sent back as an error. */
export type RpcHandler = (payload: unknown) => Promise<RpcReply> | RpcReply;

/** A reply, with the buffers to move rather than copy. */
export interface RpcReply {
  readonly value: unknown;
  readonly transfer?: readonly Transferable[];
}

interface Request {
  readonly kind: 'request';
  readonly id: number;
  readonly type: string;
  readonly payload: unknown;
}

interface Response {
  readonly kind: 'response';
  readonly id: number;
  readonly value?: unknown;
  /** The error's message, when the handler failed. */
  readonly error?: string;
}

/** An error the other side sent back in place of a reply. */
export class RemoteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RemoteError';
  }
}

/** One end of the request channel. */
export class PortRpc {
  readonly #endpoint: RpcEndpoint;
  readonly #handlers = new Map<string, RpcHandler>();
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  #nextId = 1;
  /** Why the channel was closed; every request after it fails at once with it. */
  #closed: Error | undefined;
  readonly #listener = (message: unknown): void => this.#receive(message as Request | Response);

  constructor(endpoint: RpcEndpoint) {
    this.#endpoint = endpoint;
    endpoint.on('message', this.#listener);
  }

  /** Answers requests of `type` with `handler`. */
  handle(type: string, handler: RpcHandler): void {
    this.#handlers.set(type, handler);
  }

  /** Asks the other side; resolves with its reply. */
  request(type: string, payload: unknown, transfer?: readonly Transferable[]): Promise<unknown> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const request: Request = { kind: 'request', id, type, payload };
      this.#endpoint.postMessage(request, transfer as Transferable[] | undefined);
    });
  }

  /** Fails every request still waiting (the other side is gone) and stops listening. */
  close(reason: Error): void {
    this.#closed = reason;
    this.#endpoint.off('message', this.#listener);
    for (const waiter of this.#pending.values()) waiter.reject(reason);
    this.#pending.clear();
  }

  #receive(message: Request | Response): void {
    if (message.kind === 'response') {
      const waiter = this.#pending.get(message.id);
      if (waiter === undefined) return;
      this.#pending.delete(message.id);
      if (message.error !== undefined) waiter.reject(new RemoteError(message.error));
      else waiter.resolve(message.value);
      return;
    }
    void this.#answer(message);
  }

  async #answer(request: Request): Promise<void> {
    const handler = this.#handlers.get(request.type);
    let response: Response;
    let transfer: readonly Transferable[] | undefined;
    try {
      if (handler === undefined) throw new Error(`no handler for ${request.type}`);
      const reply = await handler(request.payload);
      response = { kind: 'response', id: request.id, value: reply.value };
      transfer = reply.transfer;
    } catch (error) {
      response = { kind: 'response', id: request.id, error: error instanceof Error ? error.message : String(error) };
    }
    this.#endpoint.postMessage(response, transfer as Transferable[] | undefined);
  }
}
