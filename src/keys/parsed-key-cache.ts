/**
 * Parsed site keys by their record bytes. The resolver's cache answers a domain's records for every message,
 * but parsing their key again each time would also verify its self-signatures again (two Ed25519
 * verifications for a site key: most of a cached lookup's cost). A key parsed once is kept here, and
 * openpgp.js remembers on the parsed key that its signatures verified, so judging it again at another time
 * (expiry, revocation, validity dates) runs no cryptography. Keys are shared read-only between messages.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { PublicKey } from 'openpgp';
import { readPublicKeyBytes } from './openpgp-key.ts';

/** Keys kept by default: far more than the domains a site mails to within a DNS TTL. */
export const PARSED_KEY_CACHE_SIZE = 2000;

/**
 * Record bytes of the keys kept, at most. A parsed key takes about 16 times its bytes of heap (8.5 KiB for an
 * Ed25519 site key of 532 bytes; 260 KiB for a key of 23 KB made of 100 user IDs), and the keys come from DNS,
 * where anyone with a wildcard record can publish a different 16 KiB key for every name: counted in entries
 * alone, 2 000 such keys would hold hundreds of MiB. 2 MiB of keys is about 32 MiB of heap, and still every
 * Ed25519 key of 2 000 domains or the RSA-4096 keys of about 880.
 */
export const PARSED_KEY_CACHE_BYTES = 2 * 1024 * 1024;

/** {@link readPublicKeyBytes} with a memory of the keys it parsed. */
export class ParsedKeyCache {
  readonly #keys: LRUCache<string, Promise<PublicKey>>;

  /**
   * @param maxEntries - keys kept at most
   * @param maxBytes - record bytes of the keys kept at most; the least recently used go first
   */
  constructor(maxEntries: number = PARSED_KEY_CACHE_SIZE, maxBytes: number = PARSED_KEY_CACHE_BYTES) {
    this.#keys = new LRUCache({ max: maxEntries, maxSize: maxBytes });
  }

  /** Record bytes of the keys kept now. */
  get heldBytes(): number {
    return this.#keys.calculatedSize;
  }

  /**
   * The key in `bytes`, parsed once; concurrent calls for the same bytes share one parse. Failures are not
   * kept: the same bytes fail again the same way.
   * @throws KeyError `KEY_MALFORMED`, as {@link readPublicKeyBytes}
   */
  read(bytes: Uint8Array): Promise<PublicKey> {
    // The digest, not the bytes, is the map key: keys may be up to 16 KiB.
    const id = createHash('sha256').update(bytes).digest('base64');
    const known = this.#keys.get(id);
    if (known !== undefined) return known;
    const parsed = readPublicKeyBytes(bytes);
    this.#keys.set(id, parsed, { size: Math.max(1, bytes.length) });
    parsed.catch(() => this.#keys.delete(id));
    return parsed;
  }
}
