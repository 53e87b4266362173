/**
 * A memory of whole site-key lookups, for as long as the DNS answers they rest on stay in the resolver's cache.
 * With the answers cached, a lookup would otherwise still re-read three answers, decode the TXT key, parse the
 * KEY record and re-judge each key for every message (about a third of a millisecond per domain, more than a
 * tenth of a small message's cost with five recipient domains). The result only changes when an answer expires
 * or when time alone changes a key's verdict (it expires), so a lookup is reused until the first of those:
 * - lookups that failed, or rest on answers that did not come through the cache, are never kept;
 * - lookups that rejected a key for a reason that time can change (expired, not yet valid) are never kept;
 * - a kept lookup serves only times from when it was made until its first answer or usable key expires.
 */
import { LRUCache } from 'lru-cache';
import type { SiteKeyLookup } from './lookup.ts';

/** Rejections that may read differently at another time. */
const TIME_DEPENDENT = new Set(['expired', 'invalid']);

interface Kept {
  readonly lookup: SiteKeyLookup;
  /** Milliseconds since the epoch: the lookup's time, and the end of its validity. */
  readonly from: number;
  readonly until: number;
}

/** Until when `lookup`, made at `now`, may be reused; undefined when it may not be kept at all. */
function validity(lookup: SiteKeyLookup, now: number): number | undefined {
  if (lookup.status === 'temporary-failure' || lookup.sources.length === 0) return undefined;
  if (lookup.rejected.some((r) => TIME_DEPENDENT.has(r.reason))) return undefined;
  let until = Number.POSITIVE_INFINITY;
  for (const source of lookup.sources) {
    if (source.cache === null) return undefined;
    until = Math.min(until, now + source.cache.remainingMs);
  }
  for (const key of lookup.keys) if (key.expires !== null) until = Math.min(until, key.expires.getTime());
  return until > now ? until : undefined;
}

/**
 * Record bytes of the keys the memory keeps, at most. Each lookup holds its parsed keys, about 16 times their bytes
 * of heap, and a sender with a wildcard record can publish a different 16 KiB key under every name: counted in
 * domains alone, 10 000 lookups of such keys would hold gigabytes. 2 MiB is about 32 MiB of parsed keys, and still
 * the lookups of about 2 600 domains with Ed25519 keys (the rest are looked up again, from the DNS cache).
 */
export const LOOKUP_MEMO_BYTES = 2 * 1024 * 1024;

/** What one kept lookup counts against {@link LOOKUP_MEMO_BYTES}: its keys' record bytes, and 256 for the rest. */
export function keptBytes(lookup: SiteKeyLookup): number {
  return lookup.keys.reduce((sum, key) => sum + key.bytes.length, 256);
}

/** Wraps a lookup function (by normalised domain) with the memory described above. */
export function memoiseLookups(
  lookup: (domain: string, now: Date) => Promise<SiteKeyLookup>,
  maxEntries: number,
  maxBytes: number = LOOKUP_MEMO_BYTES,
): (domain: string, now: Date) => Promise<SiteKeyLookup> {
  const kept = new LRUCache<string, Kept>({ max: maxEntries, maxSize: maxBytes });
  return async (domain, now) => {
    const at = now.getTime();
    const known = kept.get(domain);
    if (known !== undefined && at >= known.from && at < known.until) {
      // Reported as what it is: answers from the cache, with the time they have left.
      const remainingMs = known.until - at;
      return { ...known.lookup, sources: known.lookup.sources.map((s) => (s.cache === null ? s : { ...s, cache: { state: 'hit', remainingMs } })) };
    }
    const fresh = await lookup(domain, now);
    const until = validity(fresh, at);
    if (until === undefined) kept.delete(domain);
    else kept.set(domain, { lookup: fresh, from: at, until }, { size: keptBytes(fresh) });
    return fresh;
  };
}
