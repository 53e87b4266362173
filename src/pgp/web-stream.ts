/**
 * Bridges between async iterables and the Web streams openpgp.js v6 requires (it rejects Node
 * streams). The pull-based source reads the next chunk only when openpgp.js asks, so a large body
 * is never buffered here.
 */

/** A `ReadableStream` that pulls from `source`; cancelling it ends the source's iteration. */
export function iterableToWebStream(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await iterator.next();
        if (next.done === true) controller.close();
        else controller.enqueue(next.value);
      } catch (error) {
        controller.error(error);
      }
    },
    async cancel(reason) {
      await iterator.return?.(reason);
    },
  });
}
