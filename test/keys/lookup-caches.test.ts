/**
 * The two memories that keep site-key lookups off the per-message path: parsed keys by record bytes, and whole
 * lookups while their DNS answers stay cached — when each reuses, and when it must not.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyError, ParsedKeyCache, type SiteKeyLookup } from '../../src/keys/index.ts';
import { memoiseLookups } from '../../src/keys/lookup-memo.ts';
import { eccKey } from './test-keys.ts';

describe('ParsedKeyCache', () => {
  it('parses the same bytes once and hands out the same key, concurrent reads included', async () => {
    const key = await eccKey();
    const cache = new ParsedKeyCache();
    const [a, b] = await Promise.all([cache.read(key.bytes), cache.read(Uint8Array.from(key.bytes))]);
    assert.equal(a, b);
    assert.equal(await cache.read(key.bytes), a);
    assert.equal(a.getFingerprint().toUpperCase(), key.fingerprint);
    const other = await eccKey(1);
    assert.notEqual(await cache.read(other.bytes), a);
  });

  it('does not keep failures: the same bad bytes fail the same way each time', async () => {
    const cache = new ParsedKeyCache();
    for (let attempt = 0; attempt < 2; attempt++) {
      await assert.rejects(cache.read(new Uint8Array([1, 2, 3])), (e: unknown) => e instanceof KeyError && e.code === 'KEY_MALFORMED');
    }
  });

  it('forgets the least recently used key beyond its size', async () => {
    const [one, two] = [await eccKey(), await eccKey(1)];
    const cache = new ParsedKeyCache(1);
    const first = await cache.read(one.bytes);
    await cache.read(two.bytes);
    assert.notEqual(await cache.read(one.bytes), first);
  });
});

/** A lookup as the finder makes it, with answers that have `remainingMs` left in the DNS cache. */
function lookupOf(overrides: Partial<SiteKeyLookup> & { remainingMs?: number | null } = {}): SiteKeyLookup {
  const { remainingMs = 60_000, ...rest } = overrides;
  const source = (type: 'TXT' | 'KEY' | 'OPENPGPKEY') => ({
    type,
    outcome: 'records' as const,
    records: 1,
    foreign: 0,
    dnssec: { authenticated: true, reason: 'AD' },
    cache: remainingMs === null ? null : { state: 'miss' as const, remainingMs },
    server: '127.0.0.1:53',
    transport: 'udp' as const,
  });
  return {
    domain: 'example.test',
    owner: '_muse.example.test',
    status: 'found',
    keys: [],
    rejected: [],
    policy: 'opportunistic',
    maxAge: 0,
    dnssec: true,
    dnssecReason: 'TXT: AD',
    sources: [source('TXT'), source('KEY'), source('OPENPGPKEY')],
    ...rest,
  } as SiteKeyLookup;
}

/** A memoised lookup that counts the real lookups and returns what `make` gives. */
function counted(make: () => SiteKeyLookup): { find: (domain: string, now: Date) => Promise<SiteKeyLookup>; calls: () => number } {
  let calls = 0;
  const find = memoiseLookups(async () => {
    calls++;
    return make();
  }, 100);
  return { find, calls: () => calls };
}

const T0 = new Date('2026-11-23T10:00:00Z');
const at = (ms: number): Date => new Date(T0.getTime() + ms);

describe('memoiseLookups', () => {
  it('reuses a lookup while its answers stay cached, reported as cache hits with the time left', async () => {
    const { find, calls } = counted(() => lookupOf());
    const first = await find('example.test', T0);
    assert.deepEqual(first.sources.map((s) => s.cache?.state), ['miss', 'miss', 'miss']);
    const again = await find('example.test', at(59_000));
    assert.equal(calls(), 1);
    assert.deepEqual(again.sources.map((s) => s.cache), [1, 2, 3].map(() => ({ state: 'hit', remainingMs: 1000 })));
    assert.equal(again.status, 'found');
    await find('example.test', at(60_000));
    assert.equal(calls(), 2, 'the answers expired: a fresh lookup');
  });

  it('keeps domains apart and never serves a time before the lookup', async () => {
    const { find, calls } = counted(() => lookupOf());
    await find('example.test', T0);
    await find('other.test', T0);
    assert.equal(calls(), 2);
    await find('example.test', at(-1));
    assert.equal(calls(), 3);
  });

  it('does not keep failed lookups, answers from outside the cache, or time-dependent rejections', async () => {
    const cases: SiteKeyLookup[] = [
      lookupOf({ status: 'temporary-failure', error: { code: 'DNS_TIMEOUT', message: 'no answer' } }),
      lookupOf({ remainingMs: null }),
      lookupOf({ status: 'none', rejected: [{ source: 'TXT', fingerprint: 'A'.repeat(40), reason: 'expired', detail: 'expired yesterday' }] }),
      lookupOf({ status: 'none', rejected: [{ source: 'TXT', fingerprint: 'A'.repeat(40), reason: 'invalid', detail: 'created in the future' }] }),
      lookupOf({ remainingMs: 0 }),
    ];
    for (const lookup of cases) {
      const { find, calls } = counted(() => lookup);
      await find('example.test', T0);
      await find('example.test', T0);
      assert.equal(calls(), 2, JSON.stringify(lookup.rejected[0]?.reason ?? lookup.status));
    }
  });

  it('keeps a lookup with a time-independent rejection, and only until its first usable key expires', async () => {
    const key = await eccKey();
    const usable = { fingerprint: key.fingerprint, key: key.publicKey, bytes: key.bytes, created: T0, expires: at(10_000), algorithm: 'eddsaLegacy', encryptionKeyId: '0'.repeat(16), userIds: [], sources: ['TXT' as const] };
    const { find, calls } = counted(() => lookupOf({ keys: [usable], rejected: [{ source: 'KEY', reason: 'not-in-txt', detail: 'not listed' }] }));
    await find('example.test', T0);
    await find('example.test', at(9_999));
    assert.equal(calls(), 1);
    await find('example.test', at(10_000));
    assert.equal(calls(), 2);
  });
});
