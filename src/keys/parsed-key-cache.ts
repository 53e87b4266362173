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

/** Keys kept by default: far more than the domains a site mails to within a DNS TTL, and a few MiB at most. */
export const PARSED_KEY_CACHE_SIZE = 2000;

/** {@link readPublicKeyBytes} with a memory of the keys it parsed. */
export class ParsedKeyCache {
  readonly #keys: LRUCache<string, Promise<PublicKey>>;

  constructor(maxEntries: number = PARSED_KEY_CACHE_SIZE) {
    this.#keys = new LRUCache({ max: maxEntries });
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
    this.#keys.set(id, parsed);
    parsed.catch(() => this.#keys.delete(id));
    return parsed;
  }
}
