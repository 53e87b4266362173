/**
 * A cache in front of a {@link DnsQuerier}: answers (positive and negative) are kept for their DNS TTL, bounded
 * above; concurrent lookups of the same question share one network query. Failures are never cached: the next
 * lookup asks again.
 */
import { LRUCache } from 'lru-cache';
import { DnsError } from './errors.ts';
import { normaliseQueryName, type Question } from './message.ts';
import type { CacheInfo, DnsQuerier, DnsResponse } from './transport.ts';

/** Size and TTL bounds of a {@link CachingResolver}. */
export interface CacheOptions {
  /** Most questions kept; the least recently used go first. Default 10000. */
  readonly maxEntries?: number;
  /**
   * Most bytes of answers kept ({@link answerBytes}); the least recently used go first. Default
   * {@link DNS_CACHE_BYTES}.
   */
  readonly maxBytes?: number;
  /** Upper bound on a positive answer's lifetime, seconds. Default 86400. */
  readonly maxTtlSeconds?: number;
  /**
   * Lower bound on a positive answer's lifetime, seconds, so a zone with very short TTLs does not turn
   * every message into a DNS query. Default 0 (the TTL as published).
   */
  readonly minTtlSeconds?: number;
  /** Upper bound on a negative answer's lifetime, seconds (RFC 2308 §5 suggests 1–3 hours). Default 3600. */
  readonly maxNegativeTtlSeconds?: number;
  /** Clock for TTLs, milliseconds; tests pass a fake one. It must not return 0. Default `performance`. */
  readonly perf?: { now(): number };
}

/**
 * Bytes of answers kept by default. Anyone with a wildcard record can have every message ask about another name
 * and answer with up to 64 KiB over TCP: counted in questions alone, 10 000 of them would hold hundreds of MiB.
 * 16 MiB still keeps the answers of about 10 000 domains with a TXT record of 1 KiB.
 */
export const DNS_CACHE_BYTES = 16 * 1024 * 1024;

/**
 * What an answer counts against the byte bound: the bytes of its records' data (TXT strings, raw RDATA), its
 * name and error texts, and 64 for each record and for the answer itself.
 */
export function answerBytes(response: DnsResponse): number {
  let bytes = 64 + response.name.length;
  for (const record of response.records) {
    bytes += 64;
    if (record.kind === 'txt') for (const text of record.strings) bytes += text.length;
    else if (record.kind === 'raw') bytes += record.rdata.length;
  }
  for (const text of response.malformed) bytes += text.length;
  return bytes;
}

/** Caches DNS outcomes by TTL and coalesces concurrent identical lookups. */
export class CachingResolver implements DnsQuerier {
  readonly #cache: LRUCache<string, DnsResponse, Question>;

  /**
   * @param upstream what to ask on a miss
   * @param options bounds; see {@link CacheOptions}
   */
  constructor(upstream: DnsQuerier, options: CacheOptions = {}) {
    const maxTtl = options.maxTtlSeconds ?? 86400;
    const minTtl = Math.min(options.minTtlSeconds ?? 0, maxTtl);
    const maxNegativeTtl = options.maxNegativeTtlSeconds ?? 3600;
    this.#cache = new LRUCache<string, DnsResponse, Question>({
      max: options.maxEntries ?? 10000,
      maxSize: options.maxBytes ?? DNS_CACHE_BYTES,
      sizeCalculation: answerBytes,
      // Read the clock on every check instead of caching it for a millisecond: exact, and no timer per lookup.
      ttlResolution: 0,
      ...(options.perf ? { perf: options.perf } : {}),
      fetchMethod: async (_key, _stale, { options: entry, context }) => {
        const response = await upstream.query(context.name, context.type);
        const positive = response.outcome === 'answer';
        const ttl = Math.min(positive ? Math.max(response.ttl, minTtl) : response.ttl, positive ? maxTtl : maxNegativeTtl);
        // lru-cache reads a TTL of 0 as "forever"; 1 ms is the closest to RFC 1035's "do not cache".
        entry.ttl = Math.max(1, ttl * 1000);
        return response;
      },
    });
  }

  /** {@inheritDoc DnsQuerier.query} */
  async query(name: string, type: number): Promise<DnsResponse> {
    const question: Question = { name: normaliseQueryName(name), type };
    const key = `${type}/${question.name}`;
    const status: LRUCache.Status<string, DnsResponse, Question> = {};
    const response = await this.#cache.fetch(key, { context: question, status });
    if (!response) throw new DnsError('DNS_BAD_RESPONSE', `no cached or fetched answer for ${question.name}`);
    const cache: CacheInfo = {
      state: status.fetch === 'hit' ? 'hit' : status.fetch === 'inflight' ? 'coalesced' : 'miss',
      remainingMs: Math.max(0, this.#cache.getRemainingTTL(key)),
    };
    return { ...response, cache };
  }

  /** Forgets every cached answer. */
  clear(): void {
    this.#cache.clear();
  }
}
