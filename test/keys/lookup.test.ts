/**
 * The site-key lookup (docs/dns-records.md §6) against a dns2 server on loopback: all three record types, each
 * alone, several keys, disagreeing types, unusable and malformed records, too many records, and DNS failures of
 * the primary and the compatibility types.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { Packet } from 'dns2';
import { CachingResolver, DnsTransport, parseServerAddress, RR_TYPE } from '../../src/dns/index.ts';
import {
  KeyError,
  buildKeyRdata,
  buildSiteTxt,
  createSiteKeyFinder,
  lookupSiteKeys,
  splitCharacterStrings,
  type SitePolicy,
  type SiteKeyLookup,
} from '../../src/keys/index.ts';
import { rawReply, reply, startFakeDns, zoneHandler, type FakeHandler, type FakeRecord, type FakeDnsServer } from '../support/dns-servers.ts';
import { eccKey, expiredKey, revokedKey, rsaKey, v6Key, type TestKey } from './test-keys.ts';

const OWNER = '_muse.example.test';
const servers: FakeDnsServer[] = [];
after(async () => Promise.all(servers.map((s) => s.close())));

function txt(key: TestKey, policy: SitePolicy = 'opportunistic', maxAge = 86400): FakeRecord {
  return { name: OWNER, type: RR_TYPE.TXT, data: splitCharacterStrings(buildSiteTxt({ policy, maxAge, key: key.bytes })) };
}
function keyRr(key: TestKey): FakeRecord {
  return { name: OWNER, type: RR_TYPE.KEY, data: buildKeyRdata(key.bytes) };
}
function pgp(bytes: Uint8Array): FakeRecord {
  return { name: OWNER, type: RR_TYPE.OPENPGPKEY, data: Buffer.from(bytes) };
}

async function lookupWith(handler: FakeHandler, options: { udpTimeoutMs?: number } = {}): Promise<SiteKeyLookup> {
  const server = await startFakeDns(handler);
  servers.push(server);
  const transport = new DnsTransport({ servers: [parseServerAddress(server.address)], udpTimeoutMs: options.udpTimeoutMs ?? 500, tries: 1 });
  return lookupSiteKeys('Example.Test.', { resolver: transport });
}

describe('lookupSiteKeys', () => {
  it('finds one key through all three record types, with policy, max-age and DNSSEC from a loopback resolver', async () => {
    const key = await eccKey();
    const result = await lookupWith(zoneHandler([txt(key, 'enforce', 604800), keyRr(key), pgp(key.bytes)], { ad: true }));
    assert.equal(result.domain, 'example.test');
    assert.equal(result.owner, OWNER);
    assert.equal(result.status, 'found');
    assert.deepEqual(
      result.keys.map((k) => [k.fingerprint, k.sources]),
      [[key.fingerprint, ['TXT', 'KEY', 'OPENPGPKEY']]],
    );
    assert.deepEqual(result.rejected, []);
    assert.equal(result.policy, 'enforce');
    assert.equal(result.maxAge, 604800);
    assert.equal(result.dnssec, true);
    assert.match(result.dnssecReason, /^TXT: AD set by the loopback resolver 127\.0\.0\.1:\d+$/);
    assert.deepEqual(
      result.sources.map((s) => [s.type, s.outcome, s.records, s.foreign, s.dnssec?.authenticated]),
      [
        ['TXT', 'records', 1, 0, true],
        ['KEY', 'records', 1, 0, true],
        ['OPENPGPKEY', 'records', 1, 0, true],
      ],
    );
  });

  it('uses OPENPGPKEY alone, as opportunistic without pinning', async () => {
    const key = await eccKey();
    const result = await lookupWith(zoneHandler([pgp(key.bytes)]));
    assert.equal(result.status, 'found');
    assert.deepEqual(
      result.keys.map((k) => [k.fingerprint, k.sources]),
      [[key.fingerprint, ['OPENPGPKEY']]],
    );
    assert.equal(result.policy, null);
    assert.equal(result.maxAge, 0);
    assert.equal(result.dnssec, false);
    assert.match(result.dnssecReason, /^TXT: resolver .* did not set AD/);
  });

  it('uses a KEY record alone', async () => {
    const key = await eccKey();
    const result = await lookupWith(zoneHandler([keyRr(key)]));
    assert.deepEqual(
      result.keys.map((k) => [k.fingerprint, k.sources]),
      [[key.fingerprint, ['KEY']]],
    );
  });

  it('takes every key of several TXT records (rotation), newest first, the strongest policy and the longest max-age', async () => {
    const older = await eccKey(0);
    const newer = await eccKey(1);
    const result = await lookupWith(zoneHandler([txt(older, 'testing', 3600), txt(newer, 'enforce', 600)]));
    assert.deepEqual(
      result.keys.map((k) => k.fingerprint),
      [newer.fingerprint, older.fingerprint],
    );
    assert.equal(result.policy, 'enforce');
    assert.equal(result.maxAge, 3600);
  });

  it('lets TXT decide when record types disagree: other keys are reported as not-in-txt', async () => {
    const listed = await eccKey(0);
    const stray = await eccKey(1);
    const result = await lookupWith(zoneHandler([txt(listed), pgp(stray.bytes), keyRr(stray)]));
    assert.deepEqual(
      result.keys.map((k) => [k.fingerprint, k.sources]),
      [[listed.fingerprint, ['TXT']]],
    );
    assert.deepEqual(
      result.rejected.map((r) => [r.source, r.fingerprint, r.reason]),
      [
        ['KEY', stray.fingerprint, 'not-in-txt'],
        ['OPENPGPKEY', stray.fingerprint, 'not-in-txt'],
      ],
    );
  });

  it('reports expired, revoked, weak and v6 keys and finds none, keeping the published policy', async () => {
    const keys = [await expiredKey(), await revokedKey(), await rsaKey(1024), await v6Key()];
    const result = await lookupWith(zoneHandler(keys.map((k) => txt(k, 'enforce'))));
    assert.equal(result.status, 'none');
    assert.deepEqual(result.keys, []);
    assert.equal(result.policy, 'enforce');
    assert.deepEqual(
      result.rejected.map((r) => [r.fingerprint, r.reason]).sort(),
      [
        [keys[0]?.fingerprint, 'expired'],
        [keys[1]?.fingerprint, 'revoked'],
        [keys[2]?.fingerprint, 'weak-key'],
        [keys[3]?.fingerprint, 'unsupported-key-version'],
      ].sort(),
    );
  });

  it('skips foreign TXT records silently and reports malformed MUSE records, then falls back to OPENPGPKEY', async () => {
    const key = await eccKey();
    const result = await lookupWith(
      zoneHandler([
        { name: OWNER, type: RR_TYPE.TXT, data: ['v=spf1 -all'] },
        { name: OWNER, type: RR_TYPE.TXT, data: ['v=MUSE1; p=enforce; ma=60'] },
        { name: OWNER, type: RR_TYPE.TXT, data: ['v=MUSE9; future=1'] },
        pgp(key.bytes),
      ]),
    );
    assert.equal(result.status, 'found');
    assert.equal(result.policy, null, 'no valid TXT record, so no policy');
    assert.deepEqual(
      result.rejected.map((r) => [r.source, r.reason, r.detail]),
      [
        ['TXT', 'malformed-record', 'missing k= (key)'],
        ['TXT', 'unsupported-record', 'record version v=MUSE9'],
      ],
    );
    assert.equal(result.sources[0]?.foreign, 1);
  });

  it('reports garbage key bytes and a published secret key as malformed-key', async () => {
    const key = await eccKey();
    const result = await lookupWith(zoneHandler([pgp(new Uint8Array([0x99, 0, 3, 1, 2, 3])), pgp(key.privateKey.write())]));
    assert.equal(result.status, 'none');
    assert.deepEqual(
      result.rejected.map((r) => [r.source, r.reason]),
      [
        ['OPENPGPKEY', 'malformed-key'],
        ['OPENPGPKEY', 'malformed-key'],
      ],
    );
    assert.ok(result.rejected.some((r) => /secret key material published/.test(r.detail)));
  });

  it('reports undecodable TXT RDATA as a malformed record', async () => {
    const result = await lookupWith((query) =>
      query.questions[0]?.type === RR_TYPE.TXT
        ? rawReply(query, { answers: [{ name: OWNER, type: 16, rdata: Buffer.from([200, 1]) }] })
        : reply(query, { soaTtl: 60 }),
    );
    assert.equal(result.status, 'none');
    assert.deepEqual(
      result.rejected.map((r) => [r.source, r.reason]),
      [['TXT', 'malformed-record']],
    );
  });

  it('refuses an oversized key record (20 KB OPENPGPKEY, fetched over TCP) without parsing it', async () => {
    const key = await eccKey();
    const server = await startFakeDns(zoneHandler([pgp(new Uint8Array(20_000).fill(0x99)), txt(key)]));
    servers.push(server);
    const result = await lookupSiteKeys('example.test', {
      resolver: new DnsTransport({ servers: [parseServerAddress(server.address)], udpTimeoutMs: 500 }),
    });
    assert.equal(result.sources[2]?.transport, 'tcp');
    assert.deepEqual(
      result.rejected.map((r) => [r.source, r.reason, r.detail]),
      [['OPENPGPKEY', 'malformed-key', 'key of 20000 octets, more than 16384']],
    );
    assert.equal(result.status, 'found', 'the TXT key is still used');
  });

  it('processes at most 8 records of a type', async () => {
    const keys = await Promise.all(Array.from({ length: 10 }, (_, i) => eccKey(i)));
    const result = await lookupWith(zoneHandler(keys.map((k) => pgp(k.bytes))));
    assert.equal(result.keys.length, 8);
    assert.deepEqual(
      result.rejected.map((r) => r.reason),
      ['too-many-records', 'too-many-records'],
    );
  });

  it('finds nothing at NXDOMAIN, with DNSSEC when every answer is authenticated', async () => {
    const result = await lookupWith(zoneHandler([], { ad: true }));
    assert.equal(result.status, 'none');
    assert.equal(result.dnssec, true);
    assert.deepEqual(
      result.sources.map((s) => s.outcome),
      ['nxdomain', 'nxdomain', 'nxdomain'],
    );
  });

  it('is a temporary failure when the TXT query fails (SERVFAIL)', async () => {
    const key = await eccKey();
    const zone = zoneHandler([pgp(key.bytes)]);
    const result = await lookupWith((query, via) =>
      query.questions[0]?.type === RR_TYPE.TXT ? reply(query, { rcode: Packet.RCODE.SERVFAIL }) : zone(query, via),
    );
    assert.equal(result.status, 'temporary-failure');
    assert.deepEqual(result.keys, []);
    assert.equal(result.error?.code, 'DNS_SERVFAIL');
    assert.equal(result.dnssec, false);
  });

  it('ignores a failing compatibility query when TXT records are there (a stalled KEY query)', async () => {
    const key = await eccKey();
    const zone = zoneHandler([txt(key)]);
    const result = await lookupWith((query, via) => (query.questions[0]?.type === RR_TYPE.KEY ? undefined : zone(query, via)), {
      udpTimeoutMs: 100,
    });
    assert.equal(result.status, 'found');
    assert.deepEqual(
      result.sources.map((s) => [s.type, s.outcome, s.error?.code]),
      [
        ['TXT', 'records', undefined],
        ['KEY', 'temporary-failure', 'DNS_TIMEOUT'],
        ['OPENPGPKEY', 'nodata', undefined],
      ],
    );
  });

  it('is a temporary failure when there is no TXT record and a compatibility query fails', async () => {
    const key = await eccKey();
    const zone = zoneHandler([pgp(key.bytes)]);
    const result = await lookupWith((query, via) =>
      query.questions[0]?.type === RR_TYPE.KEY ? reply(query, { rcode: Packet.RCODE.SERVFAIL }) : zone(query, via),
    );
    assert.equal(result.status, 'temporary-failure');
    assert.equal(result.error?.code, 'DNS_SERVFAIL');
    assert.equal(result.dnssecReason, 'the KEY query failed (DNS_SERVFAIL)');
  });

  it('reports cache state through a caching resolver and accepts addresses', async () => {
    const key = await eccKey();
    const server = await startFakeDns(zoneHandler([txt(key)]));
    servers.push(server);
    const resolver = new CachingResolver(new DnsTransport({ servers: [parseServerAddress(server.address)] }));
    const finder = createSiteKeyFinder(resolver);
    const first = await finder.findSiteKeys('alice@example.test');
    const second = await finder.findSiteKeys('<bob@EXAMPLE.test>');
    assert.deepEqual(
      first.sources.map((s) => s.cache?.state),
      ['miss', 'miss', 'miss'],
    );
    assert.deepEqual(
      second.sources.map((s) => s.cache?.state),
      ['hit', 'hit', 'hit'],
    );
    assert.equal(server.queries.length, 3);
  });

  it('refuses a name that cannot be a mail domain', async () => {
    const transport = new DnsTransport({ servers: [parseServerAddress('127.0.0.1:9')] });
    for (const bad of ['localhost', 'exa mple.test', '-x.test', 'a..test']) {
      await assert.rejects(lookupSiteKeys(bad, { resolver: transport }), (e: unknown) => e instanceof KeyError && e.code === 'KEY_BAD_DOMAIN');
    }
  });
});
