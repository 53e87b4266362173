/**
 * Byte streams between the daemon's event loop and an opening thread, pulled one chunk at a time: a message body
 * (up to 50 MiB) never sits whole in a message queue, and the side that reads sets the pace. Each chunk is copied
 * once into a buffer of its own and moved, not cloned again.
 */
import type { PortRpc } from './port-rpc.ts';

/** Names one stream: the job it belongs to and which of its reads (a body may be read more than once). */
export interface StreamRef {
  readonly job: number;
  readonly stream: number;
}

interface Pulled {
  readonly chunk?: Uint8Array;
  readonly done: boolean;
}

/**
 * Serves streams named `name` over `rpc`: the first pull of a stream opens it with `open`, later pulls take the
 * next chunk, a close (the reader stopped early) ends it.
 */
export function serveChunks(rpc: PortRpc, name: string, open: (ref: StreamRef) => AsyncIterable<Uint8Array>): void {
  const open_ = new Map<string, AsyncIterator<Uint8Array>>();
  const key = (ref: StreamRef): string => `${ref.job}:${ref.stream}`;
  rpc.handle(`pull:${name}`, async (payload) => {
    const ref = payload as StreamRef;
    let iterator = open_.get(key(ref));
    if (iterator === undefined) {
      iterator = open(ref)[Symbol.asyncIterator]();
      open_.set(key(ref), iterator);
    }
    let next: IteratorResult<Uint8Array>;
    try {
      next = await iterator.next();
    } catch (error) {
      open_.delete(key(ref));
      throw error;
    }
    if (next.done === true) {
      open_.delete(key(ref));
      const value: Pulled = { done: true };
      return { value };
    }
    const copy = new Uint8Array(next.value);
    const value: Pulled = { chunk: copy, done: false };
    return { value, transfer: [copy.buffer] };
  });
  rpc.handle(`close:${name}`, async (payload) => {
    const ref = payload as StreamRef;
    const iterator = open_.get(key(ref));
    open_.delete(key(ref));
    await iterator?.return?.();
    return { value: null };
  });
}

/** Reads the stream `ref` served as `name` on the other side, a chunk per request. */
export async function* pullChunks(rpc: PortRpc, name: string, ref: StreamRef): AsyncGenerator<Buffer> {
  let finished = false;
  try {
    for (;;) {
      const pulled = (await rpc.request(`pull:${name}`, ref)) as Pulled;
      if (pulled.done) {
        finished = true;
        return;
      }
      const chunk = pulled.chunk as Uint8Array;
      yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
  } catch (error) {
    // A failed pull has already closed the stream on the serving side.
    finished = true;
    throw error;
  } finally {
    if (!finished) await rpc.request(`close:${name}`, ref).catch(() => undefined);
  }
}
