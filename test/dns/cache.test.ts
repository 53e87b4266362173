/**
 * The DNS cache: TTL honoured (with a fake clock), negative answers cached by their RFC 2308 TTL, bounds on both,
 * failures not cached, concurrent lookups coalesced (also against a real dns2 server on loopback).
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { CachingResolver, DnsError, DnsTransport, parseServerAddress, RR_TYPE } from '../../src/dns/index.ts';
import type { DnsQuerier, DnsResponse } from '../../src/dns/index.ts';
import { delay, startFakeDns, zoneHandler, type FakeDnsServer } from '../support/dns-servers.ts';

/** A fake clock for lru-cache: starts above zero, because lru-cache treats a start time of 0 as "no TTL". */
function fakeClock(): { now(): number; advance(ms: number): void } {
  let now = 1_000_000;
  return { now: () => now, advance: (ms) => void (now += ms) };
}

/** An upstream that answers from a script and counts the questions it got. */
class ScriptedUpstream implements DnsQuerier {
  calls = 0;
  constructor(private readonly answer: (name: string, type: number) => Promise<DnsResponse>) {}
  query(name: string, type: number): Promise<DnsResponse> {
    this.calls++;
    return this.answer(name, type);
  }
}

function response(outcome: DnsResponse['outcome'], ttl: number): DnsResponse {
  return {
    name: '_muse.example.test',
    type: RR_TYPE.TXT,
    outcome,
    records: outcome === 'answer' ? [{ kind: 'txt', type: 16, ttl, strings: ['v=MUSE1'] }] : [],
    malformed: [],
    ttl,
    authenticData: false,
    dnssec: { authenticated: false, reason: 'test' },
    server: '127.0.0.1:53',
    transport: 'udp',
  };
}

describe('CachingResolver', () => {
  it('serves a positive answer from the cache until its TTL runs out', async () => {
    const clock = fakeClock();
    const upstream = new ScriptedUpstream(async () => response('answer', 300));
    const cache = new CachingResolver(upstream, { perf: clock });
    const first = await cache.query('_muse.example.test', RR_TYPE.TXT);
    assert.deepEqual(first.cache, { state: 'miss', remainingMs: 300_000 });
    clock.advance(299_000);
    const second = await cache.query('_MUSE.Example.Test.', RR_TYPE.TXT);
    assert.deepEqual(second.cache, { state: 'hit', remainingMs: 1000 });
    assert.equal(upstream.calls, 1);
    clock.advance(2000);
    const third = await cache.query('_muse.example.test', RR_TYPE.TXT);
    assert.equal(third.cache?.state, 'miss');
    assert.equal(upstream.calls, 2);
  });

  it('keeps separate entries per type', async () => {
    const upstream = new ScriptedUpstream(async () => response('nodata', 60));
    const cache = new CachingResolver(upstream, { perf: fakeClock() });
    await cache.query('_muse.example.test', RR_TYPE.TXT);
    await cache.query('_muse.example.test', RR_TYPE.KEY);
    await cache.query('_muse.example.test', RR_TYPE.OPENPGPKEY);
    await cache.query('_muse.example.test', RR_TYPE.KEY);
    assert.equal(upstream.calls, 3);
  });

  it('caches NXDOMAIN and NODATA by their negative TTL, bounded by maxNegativeTtlSeconds', async () => {
    const clock = fakeClock();
    const upstream = new ScriptedUpstream(async () => response('nxdomain', 86400));
    const cache = new CachingResolver(upstream, { perf: clock, maxNegativeTtlSeconds: 900 });
    const first = await cache.query('_muse.absent.test', RR_TYPE.TXT);
    assert.deepEqual(first.cache, { state: 'miss', remainingMs: 900_000 });
    clock.advance(899_000);
    assert.equal((await cache.query('_muse.absent.test', RR_TYPE.TXT)).cache?.state, 'hit');
    clock.advance(2000);
    assert.equal((await cache.query('_muse.absent.test', RR_TYPE.TXT)).cache?.state, 'miss');
    assert.equal(upstream.calls, 2);
  });

  it('bounds a positive TTL by maxTtlSeconds', async () => {
    const upstream = new ScriptedUpstream(async () => response('answer', 10 * 86400));
    const cache = new CachingResolver(upstream, { perf: fakeClock(), maxTtlSeconds: 3600 });
    assert.equal((await cache.query('_muse.example.test', RR_TYPE.TXT)).cache?.remainingMs, 3_600_000);
  });

  it('raises a positive TTL to minTtlSeconds, but not a negative one', async () => {
    const positive = new CachingResolver(new ScriptedUpstream(async () => response('answer', 5)), { perf: fakeClock(), minTtlSeconds: 60 });
    assert.equal((await positive.query('_muse.example.test', RR_TYPE.TXT)).cache?.remainingMs, 60_000);
    const negative = new CachingResolver(new ScriptedUpstream(async () => response('nodata', 5)), { perf: fakeClock(), minTtlSeconds: 60 });
    assert.equal((await negative.query('_muse.example.test', RR_TYPE.TXT)).cache?.remainingMs, 5000);
    const capped = new CachingResolver(new ScriptedUpstream(async () => response('answer', 5)), { perf: fakeClock(), minTtlSeconds: 600, maxTtlSeconds: 300 });
    assert.equal((await capped.query('_muse.example.test', RR_TYPE.TXT)).cache?.remainingMs, 300_000);
  });

  it('does not keep an answer with TTL 0', async () => {
    const clock = fakeClock();
    const upstream = new ScriptedUpstream(async () => response('answer', 0));
    const cache = new CachingResolver(upstream, { perf: clock });
    await cache.query('_muse.example.test', RR_TYPE.TXT);
    clock.advance(2);
    await cache.query('_muse.example.test', RR_TYPE.TXT);
    assert.equal(upstream.calls, 2);
  });

  it('does not cache failures: the next lookup asks again', async () => {
    let fail = true;
    const upstream = new ScriptedUpstream(async () => {
      if (fail) throw new DnsError('DNS_SERVFAIL', 'scripted');
      return response('answer', 300);
    });
    const cache = new CachingResolver(upstream, { perf: fakeClock() });
    await assert.rejects(cache.query('_muse.example.test', RR_TYPE.TXT), (e: unknown) => e instanceof DnsError && e.code === 'DNS_SERVFAIL');
    fail = false;
    assert.equal((await cache.query('_muse.example.test', RR_TYPE.TXT)).outcome, 'answer');
    assert.equal(upstream.calls, 2);
  });

  it('coalesces concurrent lookups of the same question into one upstream query, failures included', async () => {
    let fail = false;
    const upstream = new ScriptedUpstream(async () => {
      await delay(30);
      if (fail) throw new DnsError('DNS_TIMEOUT', 'scripted');
      return response('answer', 300);
    });
    const cache = new CachingResolver(upstream, { perf: fakeClock() });
    const results = await Promise.all([1, 2, 3].map(() => cache.query('_muse.example.test', RR_TYPE.TXT)));
    assert.equal(upstream.calls, 1);
    assert.deepEqual(
      results.map((r) => r.cache?.state),
      ['miss', 'coalesced', 'coalesced'],
    );
    fail = true;
    const failures = await Promise.allSettled([1, 2].map(() => cache.query('_muse.other.test', RR_TYPE.TXT)));
    assert.equal(upstream.calls, 2);
    assert.deepEqual(
      failures.map((f) => f.status),
      ['rejected', 'rejected'],
    );
  });

  describe('in front of a real transport', () => {
    let server: FakeDnsServer | undefined;
    after(async () => server?.close());

    it('sends one query for concurrent lookups and none for a cached one', async () => {
      server = await startFakeDns(async (query, via) => {
        await delay(50);
        return zoneHandler([{ name: '_muse.example.test', type: RR_TYPE.TXT, ttl: 600, data: ['v=MUSE1'] }])(query, via);
      });
      const transport = new DnsTransport({ servers: [parseServerAddress(server.address)], udpTimeoutMs: 1000 });
      const cache = new CachingResolver(transport);
      await Promise.all([1, 2, 3, 4].map(() => cache.query('_muse.example.test', RR_TYPE.TXT)));
      const cached = await cache.query('_muse.example.test', RR_TYPE.TXT);
      assert.equal(cached.cache?.state, 'hit');
      assert.equal(server.queries.length, 1);
    });
  });
});
