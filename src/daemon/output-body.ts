/**
 * A replacement body that cleans up after itself: the engine may have spooled it to a file, which must
 * be removed once the MTA has it — or once the message is abandoned, whichever comes first.
 */
import type { OutputBody } from '../engine/index.ts';
import type { ByteRate } from '../stream/byte-rate.ts';

/** Streams `body` (at the pace of large bodies, `pacer`) and disposes of it at the end, or when `signal` fires. */
export function disposingChunks(body: OutputBody, signal: AbortSignal, pacer: ByteRate): AsyncIterable<Buffer> {
  const dispose = (): void => void body.dispose();
  signal.addEventListener('abort', dispose, { once: true });
  return (async function* () {
    try {
      yield* pacer.paced(body.chunks());
    } finally {
      signal.removeEventListener('abort', dispose);
      await body.dispose();
    }
  })();
}
