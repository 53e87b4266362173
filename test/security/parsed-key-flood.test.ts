/**
 * Attack: filling the parsed-key memory through DNS. Sender keys come from DNS; anyone with a wildcard record can
 * publish a different key, up to the 16 KiB record limit, under every name they send from. A parsed key takes about
 * 16 times its bytes of heap, so a cache bounded only by its count (2 000 keys) could be made to hold hundreds of
 * MiB. The cache is bounded by the record bytes it keeps too: the least recently used keys go first, whatever their
 * number. The next variants: the memory of whole lookups keeps each domain's parsed keys as well, 10 000 domains
 * of them, and the DNS cache keeps 10 000 answers of up to 64 KiB; both are bounded by bytes too.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateKey, type PublicKey } from 'openpgp';
import { MAX_KEY_BYTES, PARSED_KEY_CACHE_BYTES, PARSED_KEY_CACHE_SIZE, ParsedKeyCache, type SiteKeyLookup } from '../../src/keys/index.ts';
import { keptBytes, LOOKUP_MEMO_BYTES, memoiseLookups } from '../../src/keys/lookup-memo.ts';
import { answerBytes, CachingResolver, DNS_CACHE_BYTES, RR_TYPE, type DnsQuerier, type DnsResponse } from '../../src/dns/index.ts';

/** A valid Ed25519 key padded with user IDs to about `bytes` (below the record limit), different for each `n`. */
async function bulkyKey(n: number, userIds: number): Promise<Uint8Array> {
  const { publicKey } = await generateKey({
    type: 'ecc',
    curve: 'ed25519Legacy',
    userIDs: Array.from({ length: userIds }, (_, i) => ({ email: `u${i}.${n}@flood.attacker.example` })),
    format: 'binary',
  });
  return publicKey;
}

describe('parsed-key memory flood', () => {
  it('keys near the record limit, one per name: the cache holds no more than its byte budget, the newest kept', async () => {
    const keys = await Promise.all(Array.from({ length: 5 }, (_, n) => bulkyKey(n, 50)));
    for (const key of keys) assert.ok(key.length > 10_000 && key.length <= MAX_KEY_BYTES, `key of ${key.length} bytes`);
    // Room for two of them, not three; the count alone (100) would keep all five.
    const budget = keys[3]!.length + keys[4]!.length;
    const cache = new ParsedKeyCache(100, budget);
    const parsed: PublicKey[] = [];
    for (const key of keys) parsed.push(await cache.read(key));
    assert.equal(cache.heldBytes, budget);
    // The two newest are still the same parsed objects; the oldest is parsed anew.
    assert.equal(await cache.read(keys[4]!), parsed[4]);
    assert.equal(await cache.read(keys[3]!), parsed[3]);
    assert.notEqual(await cache.read(keys[0]!), parsed[0]);
    assert.ok(cache.heldBytes <= budget);
  });

  it('the default budget bounds the worst case far below the count: 2 MiB of records, at most 128 keys of 16 KiB', () => {
    assert.equal(PARSED_KEY_CACHE_BYTES, 2 * 1024 * 1024);
    assert.equal(Math.floor(PARSED_KEY_CACHE_BYTES / MAX_KEY_BYTES), 128);
    assert.ok(PARSED_KEY_CACHE_SIZE * MAX_KEY_BYTES > 10 * PARSED_KEY_CACHE_BYTES);
  });
});

describe('parsed-key memory flood, through the memory of whole lookups', () => {
  /** A found lookup of `domain` holding `key`, its answers cached for a minute. */
  const lookupOf = (domain: string, key: Uint8Array): SiteKeyLookup =>
    ({
      domain,
      owner: `_muse.${domain}`,
      status: 'found',
      keys: [{ bytes: key, expires: null }],
      rejected: [],
      policy: 'opportunistic',
      maxAge: 0,
      dnssec: false,
      dnssecReason: 'TXT: no AD',
      sources: [{ type: 'TXT', outcome: 'records', records: 1, foreign: 0, dnssec: null, cache: { state: 'miss', remainingMs: 60_000 }, server: '127.0.0.1:53' }],
    }) as unknown as SiteKeyLookup;

  it('one name after another, each with its own 16 KiB key: the lookups kept stay within the byte budget, the newest kept', async () => {
    const key = (n: number): Uint8Array => new Uint8Array(MAX_KEY_BYTES).fill(n);
    const calls: string[] = [];
    const budget = 2 * (MAX_KEY_BYTES + 256);
    const find = memoiseLookups(
      async (domain) => {
        calls.push(domain);
        return lookupOf(domain, key(calls.length));
      },
      10_000,
      budget,
    );
    const now = new Date('2026-12-07T12:00:00Z');
    for (let n = 0; n < 5; n++) await find(`n${n}.flood.attacker.example`, now);
    assert.equal(calls.length, 5);
    // The two newest are answered from the memory; the oldest is looked up again.
    await find('n4.flood.attacker.example', now);
    await find('n3.flood.attacker.example', now);
    assert.equal(calls.length, 5);
    await find('n0.flood.attacker.example', now);
    assert.deepEqual(calls.slice(5), ['n0.flood.attacker.example']);
  });

  it('what a lookup counts: its keys\' record bytes and 256; the default budget holds 126 lookups of 16 KiB keys', () => {
    assert.equal(keptBytes(lookupOf('a.example', new Uint8Array(532))), 788);
    assert.equal(LOOKUP_MEMO_BYTES, 2 * 1024 * 1024);
    assert.equal(Math.floor(LOOKUP_MEMO_BYTES / (MAX_KEY_BYTES + 256)), 126);
  });
});

describe('parsed-key memory flood, through the DNS cache', () => {
  /** A TXT answer for `name` of `bytes` of record text (as a wildcard zone would give every name). */
  const bigAnswer = (name: string, bytes: number): DnsResponse => ({
    name,
    type: RR_TYPE.TXT,
    outcome: 'answer',
    records: [{ kind: 'txt', type: 16, ttl: 3600, strings: Array.from({ length: Math.ceil(bytes / 255) }, () => 'k'.repeat(255)) }],
    malformed: [],
    ttl: 3600,
    authenticData: false,
    dnssec: { authenticated: false, reason: 'test' },
    server: '127.0.0.1:53',
    transport: 'tcp',
  });

  it('one name after another, each answered with 60 KiB: the answers kept stay within the byte budget, the newest kept', async () => {
    const asked: string[] = [];
    const upstream: DnsQuerier = { query: async (name) => (asked.push(name), bigAnswer(name, 60 * 1024)) };
    const one = answerBytes(bigAnswer('_muse.n0.flood.attacker.example', 60 * 1024));
    const cache = new CachingResolver(upstream, { maxBytes: 2 * one });
    for (let n = 0; n < 5; n++) await cache.query(`_muse.n${n}.flood.attacker.example`, RR_TYPE.TXT);
    assert.equal(asked.length, 5);
    assert.equal((await cache.query('_muse.n4.flood.attacker.example', RR_TYPE.TXT)).cache?.state, 'hit');
    assert.equal((await cache.query('_muse.n3.flood.attacker.example', RR_TYPE.TXT)).cache?.state, 'hit');
    assert.equal((await cache.query('_muse.n0.flood.attacker.example', RR_TYPE.TXT)).cache?.state, 'miss');
    assert.equal(asked.length, 6);
  });

  it('what an answer counts: record data, name and 64 per record and per answer; 16 MiB by default', () => {
    // 241 strings of 255 bytes, 31 bytes of name, one record.
    assert.equal(answerBytes(bigAnswer('_muse.n0.flood.attacker.example', 60 * 1024)), 241 * 255 + 31 + 64 + 64);
    assert.equal(DNS_CACHE_BYTES, 16 * 1024 * 1024);
  });
});
