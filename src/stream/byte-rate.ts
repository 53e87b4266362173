/**
 * A byte rate shared by every large body a process moves: what the milter connections read beyond
 * `milter.maxBufferedBody` and what they write back of a replacement body beyond it. Moving bytes costs the event
 * loop that also serves ordinary mail (frames, spool files, the socket), and a sender streaming large bodies back
 * to back could otherwise take it whole (docs/security.md §7). A token bucket: one second's worth may go at once,
 * beyond that each taker waits its turn, in order. Ordinary messages stay below the threshold and never wait, and
 * large bodies wait only while {@link ByteRate.contended} has said, within the last {@link CONTENDED_MS}, that other
 * messages are in flight beside them: a large message alone moves at full speed. The bytes are counted either way
 * (down to an empty bucket, never into debt), so pacing starts at once when ordinary mail comes in rather than
 * after a second's worth saved while alone.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { BodyPacer } from '../../milter/src/index.ts';

/** How long (ms) the pacing holds after the last sight of another message in flight: ordinary mail comes and goes. */
export const CONTENDED_MS = 1000;

/** The pacer; `bytesPerSecond` 0 turns it off. */
export class ByteRate implements BodyPacer {
  #tokens: number;
  #at: number;
  #contendedAt = Number.NEGATIVE_INFINITY;
  readonly #clock: () => number;
  /** Whether other messages are in flight beside the large ones (the daemon sets it from its milter server). */
  contended: () => boolean = () => true;

  /**
   * @param bytesPerSecond the rate (0: unlimited); may be changed later (a reload)
   * @param aboveBytes bytes of each body that go at full speed
   * @param clock milliseconds (tests give their own)
   */
  constructor(
    public bytesPerSecond: number,
    public aboveBytes: number,
    clock: () => number = () => performance.now(),
  ) {
    this.#clock = clock;
    this.#at = clock();
    this.#tokens = bytesPerSecond;
  }

  /** Takes `bytes`: nothing to wait for while the bucket holds them, else a promise of when they are earned. */
  take(bytes: number): Promise<void> | undefined {
    const rate = this.bytesPerSecond;
    if (rate <= 0) return undefined;
    const now = this.#clock();
    // At most one second's worth saved up.
    this.#tokens = Math.min(rate, this.#tokens + ((now - this.#at) / 1000) * rate);
    this.#at = now;
    this.#tokens -= bytes;
    if (this.contended()) this.#contendedAt = now;
    if (now - this.#contendedAt >= CONTENDED_MS) {
      this.#tokens = Math.max(0, this.#tokens);
      return undefined;
    }
    if (this.#tokens >= 0) return undefined;
    // In debt: the bytes taken after this one wait for this one's debt too, so takers go in order.
    return sleep((-this.#tokens / rate) * 1000);
  }

  /**
   * Yields `chunks`, taking what goes past {@link aboveBytes} from the bucket. A chunk's wait comes after it was
   * handed on, before the next is read: a chunk held through its wait would outlive the event loop's young
   * collections, and the old generation's collections that then free them pause the event loop for every message.
   */
  async *paced(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    let seen = 0;
    for await (const chunk of chunks) {
      const before = seen;
      seen += chunk.length;
      yield chunk;
      if (seen > this.aboveBytes) {
        const wait = this.take(seen - Math.max(before, this.aboveBytes));
        if (wait !== undefined) await wait;
      }
    }
  }
}
