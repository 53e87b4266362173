/**
 * Attack: filling the parsed-key memory through DNS. Sender keys come from DNS; anyone with a wildcard record can
 * publish a different key, up to the 16 KiB record limit, under every name they send from. A parsed key takes about
 * 16 times its bytes of heap, so a cache bounded only by its count (2 000 keys) could be made to hold hundreds of
 * MiB. The cache is bounded by the record bytes it keeps too: the least recently used keys go first, whatever their
 * number.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateKey, type PublicKey } from 'openpgp';
import { MAX_KEY_BYTES, PARSED_KEY_CACHE_BYTES, PARSED_KEY_CACHE_SIZE, ParsedKeyCache } from '../../src/keys/index.ts';

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
