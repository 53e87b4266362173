/**
 * Pulls exact byte counts out of a chunk stream, for the packet readers: a few octets at a time for headers,
 * whole chunks (as views, not copies) for packet bodies.
 */
import { Unstreamable } from '../../stream/unstreamable.ts';

const EMPTY = Buffer.alloc(0);

/** Raised when the stream ends inside a structure that needs more octets. */
export class Truncated extends Unstreamable {
  constructor() {
    super('data ends early');
  }
}

/** A reader over an async chunk stream. */
export class ChunkReader {
  readonly #source: AsyncIterator<Buffer>;
  #chunk: Buffer = EMPTY;
  #at = 0;
  #ended = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  /** Whether the stream has no more octets. */
  async atEnd(): Promise<boolean> {
    return !(await this.#fill());
  }

  /** The next octet. Throws {@link Truncated} at the end. */
  async byte(): Promise<number> {
    if (!(await this.#fill())) throw new Truncated();
    return this.#chunk[this.#at++] as number;
  }

  /** Exactly `n` octets (a copy when they span chunks). Throws {@link Truncated}. */
  async exact(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const piece = await this.upTo(left);
      if (piece === null) throw new Truncated();
      parts.push(piece);
      left -= piece.length;
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, n);
  }

  /** Between one and `max` octets (a view into the current chunk), or null at the end. */
  async upTo(max: number): Promise<Buffer | null> {
    if (!(await this.#fill())) return null;
    const end = Math.min(this.#chunk.length, this.#at + max);
    const piece = this.#chunk.subarray(this.#at, end);
    this.#at = end;
    return piece;
  }

  async #fill(): Promise<boolean> {
    while (this.#at >= this.#chunk.length) {
      if (this.#ended) return false;
      const next = await this.#source.next();
      if (next.done === true) {
        this.#ended = true;
        return false;
      }
      this.#chunk = next.value;
      this.#at = 0;
    }
    return true;
  }
}
