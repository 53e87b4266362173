/**
 * CRLF canonicalisation (RFC 3156 §3 and §5: signed and encrypted MIME data must be in canonical
 * form, lines ending in CRLF). The only change made is that a LF not preceded by CR becomes CRLF;
 * lone CRs and every other byte are left alone, so already-canonical input passes through without
 * being copied.
 */

const LF = 0x0a;
const CR = 0x0d;

/** Returns `data` with every bare LF turned into CRLF (the same buffer when there is none). */
export function toCrlf(data: Buffer): Buffer {
  return new CrlfCanonicalizer().push(data);
}

/**
 * Incremental canonicaliser for a body arriving in chunks: remembers whether the previous chunk
 * ended in CR, so a CRLF split across two chunks is not doubled.
 */
export class CrlfCanonicalizer {
  #lastWasCr = false;

  /** Canonicalises the next chunk; returns the chunk itself when it needs no change. */
  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    const bare = this.#countBareLf(chunk);
    if (bare === 0) {
      this.#lastWasCr = chunk[chunk.length - 1] === CR;
      return chunk;
    }
    const out = Buffer.allocUnsafe(chunk.length + bare);
    let o = 0;
    let prevCr = this.#lastWasCr;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i] as number;
      if (c === LF && !prevCr) out[o++] = CR;
      out[o++] = c;
      prevCr = c === CR;
    }
    this.#lastWasCr = prevCr;
    return out;
  }

  #countBareLf(chunk: Buffer): number {
    let count = 0;
    let at = chunk.indexOf(LF);
    while (at !== -1) {
      const prev = at === 0 ? this.#lastWasCr : chunk[at - 1] === CR;
      if (!prev) count++;
      at = chunk.indexOf(LF, at + 1);
    }
    return count;
  }
}

/** Canonicalises a chunk stream lazily (see {@link CrlfCanonicalizer}). */
export async function* canonicalizeChunks(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const canon = new CrlfCanonicalizer();
  for await (const chunk of chunks) {
    const out = canon.push(chunk);
    if (out.length > 0) yield out;
  }
}
