/**
 * End to end with real DNS servers (INFRA.md §6): zones made by `genkey` served and signed by knot, validated by
 * unbound; `lookup` finds the key through each of the three record types with AD set, `testkey` passes; an
 * unsigned zone gives no AD, a zone with a wrong trust anchor gives SERVFAIL, a long TXT takes TCP.
 * Fails (does not skip) when knot or unbound cannot start.
 *
 * Ports: knot and unbound listen on ports the kernel picked (free for UDP and TCP), so nothing else can collide with them.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DnsTransport, parseServerAddress, RR_TYPE } from '../../src/dns/index.ts';
import { loadSitePrivateKey, siteKeyZoneRecords } from '../../src/keys/index.ts';
import { startKnotUnbound, type KnotUnbound } from '../support/dns-servers.ts';
import { HarnessError } from '../support/errors.ts';
import { cli } from './run-cli.ts';

let dir = '';
let dns: KnotUnbound | undefined;
let fingerprint = '';

/** Runs genkey for a domain into `keyDir` and returns the zone lines it printed. */
async function genkey(domain: string, keyDir: string): Promise<string> {
  const result = await cli('genkey', '--domain', domain, '--key-dir', keyDir, '--policy', 'enforce', '--max-age', '86400');
  assert.equal(result.code, 0, result.stderr);
  return result.stdout;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muse-knot-'));
  const keyDir = join(dir, 'keys');
  const exampleZone = await genkey('example.test', keyDir);
  const local = await loadSitePrivateKey(join(keyDir, 'example.test.private.asc'), 'refuse');
  fingerprint = local.fingerprint;
  // One name per record type, each publishing the same key through that type alone.
  const single = (type: 'TXT' | 'KEY' | 'OPENPGPKEY') =>
    siteKeyZoneRecords(local.publicKey, { domain: `${type.toLowerCase()}-only.example.test`, policy: 'enforce', maxAge: 86400, ttl: 300 })[type];
  const longTxt = Array.from({ length: 10 }, (_, i) => `"${String(i).repeat(255)}"`).join(' ');
  dns = await startKnotUnbound([
    {
      name: 'example.test',
      trust: 'signed',
      records: [exampleZone, single('TXT'), single('KEY'), single('OPENPGPKEY'), `long TXT ${longTxt}`].join('\n'),
    },
    { name: 'insecure.test', trust: 'unsigned', records: await genkey('insecure.test', keyDir) },
    { name: 'bogus.test', trust: 'bogus', records: await genkey('bogus.test', keyDir) },
  ]);
});

after(async () => {
  await dns?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function lookupJson(target: string, server = dns?.resolver ?? '') {
  const result = await cli('lookup', target, '--dns', server, '--pin-dir', join(dir, 'pins'), '--json');
  return { code: result.code, json: JSON.parse(result.stdout) };
}

describe('genkey zone behind knot and unbound', () => {
  it('lookup finds the key through TXT, KEY and OPENPGPKEY with AD from the validating resolver', async () => {
    const { code, json } = await lookupJson('postmaster@example.test');
    assert.equal(code, 0);
    assert.equal(json.lookup.status, 'found');
    assert.deepEqual(
      json.lookup.keys.map((k: { fingerprint: string; sources: string[] }) => [k.fingerprint, k.sources]),
      [[fingerprint, ['TXT', 'KEY', 'OPENPGPKEY']]],
    );
    assert.equal(json.lookup.policy, 'enforce');
    assert.equal(json.lookup.dnssec, true);
    assert.deepEqual(
      json.lookup.sources.map((s: { type: string; dnssec: { authenticated: boolean } }) => [s.type, s.dnssec.authenticated]),
      [
        ['TXT', true],
        ['KEY', true],
        ['OPENPGPKEY', true],
      ],
    );
    assert.equal(json.outlook.action, 'encrypt');
    assert.deepEqual(json.outlook.encryptTo, [fingerprint]);
  });

  for (const type of ['TXT', 'KEY', 'OPENPGPKEY'] as const) {
    it(`lookup finds the key through ${type} alone, with AD`, async () => {
      const { json } = await lookupJson(`${type.toLowerCase()}-only.example.test`);
      assert.equal(json.lookup.status, 'found');
      assert.deepEqual(
        json.lookup.keys.map((k: { fingerprint: string; sources: string[] }) => [k.fingerprint, k.sources]),
        [[fingerprint, [type]]],
      );
      assert.equal(json.lookup.dnssec, true);
      const source = json.lookup.sources.find((s: { type: string }) => s.type === type);
      assert.equal(source.outcome, 'records');
      assert.equal(source.dnssec.authenticated, true);
    });
  }

  it('testkey passes against the validating resolver, without warnings', async () => {
    const result = await cli('testkey', '--domain', 'example.test', '--key-dir', join(dir, 'keys'), '--dns', dns?.resolver ?? '');
    assert.equal(result.code, 0, result.stdout);
    assert.match(result.stdout, /\nresult: +OK\n$/);
    assert.equal(result.stderr, '');
  });

  it('testkey fails for a local key that DNS does not publish', async () => {
    const otherDir = join(dir, 'other-keys');
    await genkey('example.test', otherDir);
    const result = await cli('testkey', '--domain', 'example.test', '--key-dir', otherDir, '--dns', dns?.resolver ?? '');
    assert.equal(result.code, 1);
    assert.match(result.stdout, /\nproblem: +the TXT records do not carry the local key as a usable key\n/);
  });

  it('proves a missing record with an authenticated NXDOMAIN: no key, DNSSEC yes, signed clear text', async () => {
    const { code, json } = await lookupJson('nokey.example.test');
    assert.equal(code, 0);
    assert.equal(json.lookup.status, 'none');
    assert.equal(json.lookup.dnssec, true);
    assert.deepEqual(
      json.lookup.sources.map((s: { outcome: string }) => s.outcome),
      ['nxdomain', 'nxdomain', 'nxdomain'],
    );
    assert.equal(json.outlook.action, 'sign-only');
  });

  it('reports an unsigned zone without DNSSEC, and testkey warns about it', async () => {
    const { json } = await lookupJson('insecure.test');
    assert.equal(json.lookup.status, 'found');
    assert.equal(json.lookup.dnssec, false);
    assert.equal(json.lookup.dnssecReason, `TXT: resolver ${dns?.resolver} did not set AD: the answer is not DNSSEC-validated`);
    const result = await cli('testkey', '--domain', 'insecure.test', '--key-dir', join(dir, 'keys'), '--dns', dns?.resolver ?? '');
    assert.equal(result.code, 0);
    assert.match(result.stderr, /testkey: warning: the records are not DNSSEC-validated/);
  });

  it('turns a bogus zone (wrong trust anchor) into SERVFAIL: temporary failure, defer', async () => {
    const { code, json } = await lookupJson('bogus.test');
    assert.equal(code, 1);
    assert.equal(json.lookup.status, 'temporary-failure');
    assert.equal(json.lookup.error.code, 'DNS_SERVFAIL');
    assert.equal(json.outlook.action, 'tempfail-dns');
  });

  it('sees no AD when asking knot directly: an authoritative server does not validate', async () => {
    const { json } = await lookupJson('example.test', dns?.authoritative);
    assert.equal(json.lookup.status, 'found');
    assert.equal(json.lookup.dnssec, false);
  });

  it('harness: throws START_FAILED, leaving nothing running, when knot refuses its configuration', async () => {
    await assert.rejects(
      startKnotUnbound([{ name: 'bad name.test', trust: 'signed', records: '' }]),
      (error: unknown) => error instanceof HarnessError && error.code === 'START_FAILED' && /knot configuration rejected/.test(error.message),
    );
  });

  it('gets a 2.5 KB TXT record over TCP after truncation, with AD', async () => {
    for (const [server, ad] of [
      [dns?.resolver ?? '', true],
      [dns?.authoritative ?? '', false],
    ] as const) {
      const transport = new DnsTransport({ servers: [parseServerAddress(server)] });
      const response = await transport.query('long.example.test', RR_TYPE.TXT);
      assert.equal(response.transport, 'tcp', server);
      assert.equal(response.authenticData, ad, server);
      assert.deepEqual(
        response.records.map((r) => (r.kind === 'txt' ? r.strings.length : 0)),
        [10],
      );
    }
  });
});
