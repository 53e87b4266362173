/**
 * Full garbage collections paced by the bytes of spooled data read back. A large message passes through the
 * daemon several times (the body from the spool, the decrypted data, the literal data, the delivered body), each
 * pass in chunks that live a few milliseconds: long enough, with frequent young-generation collections, to be
 * promoted to the old generation, which V8 collects only when its external memory has grown by about 64 MiB.
 * Without pacing, the chunks already used wait there, and a 50 MiB message's peak memory is that much above
 * what is in flight (docs/security.md §7). Asking for a full collection after every {@link COLLECT_EVERY_BYTES}
 * read bounds that garbage; the collection is scheduled (`execution: 'async'`), not run inside the read, and
 * costs a few milliseconds on the daemon's small heap. Ordinary messages read a few kilobytes and almost never
 * reach the threshold.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Bytes read between two full collections. */
export const COLLECT_EVERY_BYTES = 16 * 1024 * 1024;

/** V8's `gc()` with options (`type`, `execution`), as `--expose-gc` provides it. */
type Collect = (options: { type: 'major'; execution: 'async' }) => unknown;

/**
 * The collector function: the global one when the process runs with `--expose-gc`, else one taken from a fresh
 * context created with the flag set for that moment only (so no other code sees a global `gc`).
 */
function exposeCollector(): Collect {
  const global = (globalThis as { gc?: unknown }).gc;
  if (typeof global === 'function') return global as Collect;
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as Collect;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

let collect: Collect | undefined;
let sinceCollection = 0;

/** Counts `bytes` read; every {@link COLLECT_EVERY_BYTES}, schedules a full collection. */
export function countRead(bytes: number): void {
  sinceCollection += bytes;
  if (sinceCollection < COLLECT_EVERY_BYTES) return;
  sinceCollection = 0;
  collect ??= exposeCollector();
  collect({ type: 'major', execution: 'async' });
}

/** `chunks`, each counted by {@link countRead} as it is handed on. */
export async function* pacedChunks<T extends Uint8Array>(chunks: AsyncIterable<T>): AsyncGenerator<T> {
  for await (const chunk of chunks) {
    countRead(chunk.byteLength);
    yield chunk;
  }
}

/** A body store that may have gone to a file (the milter library's `BodySpool`). */
export interface ReadBackSource {
  readonly spilled: boolean;
  chunks(): AsyncIterable<Buffer>;
}

/**
 * The chunks of `source`, paced when they are read back from its file; a body kept in memory hands out its own
 * buffers, allocates nothing, and is passed through without a wrapper.
 */
export function readBack(source: ReadBackSource): AsyncIterable<Buffer> {
  return source.spilled ? pacedChunks(source.chunks()) : source.chunks();
}
