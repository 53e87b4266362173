/**
 * Decrypting a SEIPD v1 packet body (RFC 4880 §5.13) as it streams, natively: full-block CFB with a zero IV over
 * the random prefix, the inner packets and the MDC packet (§5.14). The inner packets are passed on as they are
 * decrypted, but the caller must not use any of them before {@link IntegrityProtectedReader.finish} has checked
 * the MDC: until then they may be an attacker's.
 *
 * The check is openpgp.js's: SHA-1 over everything before the last 20 octets (the prefix, the packets and the MDC
 * packet's two header octets) equals those 20 octets; the two header octets are then dropped unread.
 */
import { createDecipheriv, createHash, timingSafeEqual, type Decipher } from 'node:crypto';
import { Unstreamable } from '../../stream/unstreamable.ts';
import { AES_BLOCK_BYTES, type SymmetricAlgorithm } from '../fast/algorithms.ts';
import { PgpError } from '../errors.ts';

const PREFIX_BYTES = AES_BLOCK_BYTES + 2;
const DIGEST_BYTES = 20;
/** The MDC packet: two header octets and the digest. */
const MDC_BYTES = 2 + DIGEST_BYTES;
const ZERO_IV = Buffer.alloc(AES_BLOCK_BYTES);

/** Decrypts one SEIPD v1 body (after its version octet), chunk by chunk. */
export class IntegrityProtectedReader {
  readonly #decipher: Decipher;
  readonly #mdc = createHash('sha1');
  #prefixLeft = PREFIX_BYTES;
  /** The last decrypted octets (at most MDC_BYTES), held back: the MDC packet is them once the data ends. */
  #tail: Buffer = Buffer.alloc(0);

  constructor(cipher: SymmetricAlgorithm, sessionKey: Uint8Array) {
    if (sessionKey.length !== cipher.keyBytes) throw new Unstreamable('session key length does not fit its cipher');
    this.#decipher = createDecipheriv(cipher.cfb, sessionKey, ZERO_IV);
  }

  /**
   * Decrypts the next ciphertext; returns the inner-packet octets it frees (not yet authenticated), in at most two
   * pieces (the octets held back before, and the new ones but the last few).
   */
  update(ciphertext: Uint8Array): Buffer[] {
    return this.#take(this.#decipher.update(ciphertext));
  }

  /**
   * Decrypts what is left and checks the MDC; returns the last inner-packet octets. Throws `DECRYPT_FAILED` when
   * the MDC does not match (the data was altered or is not whole).
   */
  finish(): Buffer[] {
    const last = this.#take(this.#decipher.final());
    // Shorter than a prefix and an MDC packet: openpgp.js refuses it too, but in its own words; read it whole.
    if (this.#prefixLeft > 0 || this.#tail.length < MDC_BYTES) throw new Unstreamable('integrity-protected data too short');
    this.#mdc.update(this.#tail.subarray(0, MDC_BYTES - DIGEST_BYTES));
    const expected = this.#mdc.digest();
    if (!timingSafeEqual(expected, this.#tail.subarray(MDC_BYTES - DIGEST_BYTES))) {
      throw new PgpError('DECRYPT_FAILED', 'decryption failed: Modification detected.');
    }
    return last;
  }

  #take(plain: Buffer): Buffer[] {
    let data = plain;
    if (this.#prefixLeft > 0) {
      const prefix = data.subarray(0, this.#prefixLeft);
      this.#mdc.update(prefix);
      this.#prefixLeft -= prefix.length;
      data = data.subarray(prefix.length);
    }
    if (data.length < MDC_BYTES) {
      // Few octets: they join the held-back ones (the tail stays at most two MDC packets long).
      const all = Buffer.concat([this.#tail, data]);
      const free = Math.max(0, all.length - MDC_BYTES);
      this.#tail = all.subarray(free);
      return this.#free([all.subarray(0, free)]);
    }
    // The held-back octets are all free now, and the new ones but their last MDC_BYTES: no copy of the chunk.
    const out = [this.#tail, data.subarray(0, data.length - MDC_BYTES)];
    this.#tail = Buffer.from(data.subarray(data.length - MDC_BYTES));
    return this.#free(out);
  }

  #free(pieces: Buffer[]): Buffer[] {
    const out = pieces.filter((p) => p.length > 0);
    for (const piece of out) this.#mdc.update(piece);
    return out;
  }
}
