/**
 * A message body handed over while it arrives: the milter's body step pushes the chunks, the engine reads
 * them once, as a stream. What waits between the two is bounded: a push returns only once the reader is
 * less than `limit` bytes behind, so the MTA's socket is read no faster than the message is encrypted and
 * the body never piles up in memory.
 */

/** Default bound on the bytes waiting for the reader. */
export const BODY_FEED_LIMIT = 1024 * 1024;

/** A body fed chunk by chunk and read once. */
export class BodyFeed implements AsyncIterable<Buffer> {
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #waiting = 0;
  #ended = false;
  #failure: Error | undefined;
  /** Set once the reader stopped (finished, failed or gave up): nothing is kept for it any more. */
  #readerGone = false;
  #iterated = false;
  #wakeReader: (() => void) | undefined;
  #wakeWriter: (() => void) | undefined;

  /** @param limit bytes that may wait for the reader before a push waits */
  constructor(limit = BODY_FEED_LIMIT) {
    this.#limit = limit;
  }

  /**
   * Appends a copy of `chunk` (milter frames are views of socket buffers) and waits while the reader is too
   * far behind. Chunks after {@link end} or {@link fail}, or once the reader stopped, are dropped.
   */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.#ended || this.#failure !== undefined || this.#readerGone || chunk.length === 0) return;
    this.#chunks.push(Buffer.from(chunk));
    this.#waiting += chunk.length;
    this.#wake('reader');
    while (this.#waiting > this.#limit && this.#failure === undefined && !this.#readerGone) {
      await new Promise<void>((resolve) => {
        this.#wakeWriter = resolve;
      });
    }
  }

  /**
   * The reader is done, having read all, part or none of the body (it failed, or found it needed none): what is
   * waiting is dropped, a waiting push returns, and later chunks are dropped.
   */
  readerDone(): void {
    this.#readerGone = true;
    this.#drop();
  }

  /** The body is complete: the reader gets what is left, then the end. */
  end(): void {
    this.#ended = true;
    this.#wake('reader');
  }

  /** The body will not be complete: the reader gets `error` instead of more chunks, and a waiting push returns. */
  fail(error: Error): void {
    if (this.#ended || this.#failure !== undefined) return;
    this.#failure = error;
    this.#drop();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    if (this.#iterated) throw new Error('a body feed can be read only once');
    this.#iterated = true;
    try {
      for (;;) {
        const chunk = this.#chunks.shift();
        if (chunk !== undefined) {
          this.#waiting -= chunk.length;
          this.#wake('writer');
          yield chunk;
          continue;
        }
        if (this.#failure !== undefined) throw this.#failure;
        if (this.#ended) return;
        await new Promise<void>((resolve) => {
          this.#wakeReader = resolve;
        });
      }
    } finally {
      this.readerDone();
    }
  }

  #drop(): void {
    this.#chunks = [];
    this.#waiting = 0;
    this.#wake('reader');
    this.#wake('writer');
  }

  #wake(which: 'reader' | 'writer'): void {
    const wake = which === 'reader' ? this.#wakeReader : this.#wakeWriter;
    if (which === 'reader') this.#wakeReader = undefined;
    else this.#wakeWriter = undefined;
    wake?.();
  }
}
