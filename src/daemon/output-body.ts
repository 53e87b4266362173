/**
 * A replacement body that cleans up after itself: the engine may have spooled it to a file, which must
 * be removed once the MTA has it — or once the message is abandoned, whichever comes first.
 */
import type { OutputBody } from '../engine/index.ts';

/** Streams `body` and disposes of it at the end, or when `signal` fires. */
export function disposingChunks(body: OutputBody, signal: AbortSignal): AsyncIterable<Buffer> {
  const dispose = (): void => void body.dispose();
  signal.addEventListener('abort', dispose, { once: true });
  return (async function* () {
    try {
      yield* body.chunks();
    } finally {
      signal.removeEventListener('abort', dispose);
      await body.dispose();
    }
  })();
}
