/**
 * `lookup` and `testkey` against a dns2 server on loopback (ephemeral ports): the reports, JSON output, pin
 * states read from a pin store (never written), exit codes, permission warnings, and an IPv6 resolver.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packet } from 'dns2';
import { RR_TYPE } from '../../src/dns/index.ts';
import { buildKeyRdata, buildSiteTxt, loadSitePrivateKey, splitCharacterStrings, type SitePolicy } from '../../src/keys/index.ts';
import { PIN_FILE_NAME, PinStore } from '../../src/pins/index.ts';
import { reply, startFakeDns, zoneHandler, type FakeDnsServer, type FakeHandler, type FakeRecord } from '../support/dns-servers.ts';
import { eccKey } from '../keys/test-keys.ts';
import { cli } from './run-cli.ts';

const OWNER = '_muse.example.test';
let dir = '';
let siteKey: { bytes: Uint8Array; fingerprint: string };
const servers: FakeDnsServer[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muse-lookup-'));
  const made = await cli('genkey', '--domain', 'example.test', '--key-dir', join(dir, 'keys'));
  assert.equal(made.code, 0, made.stderr);
  const local = await loadSitePrivateKey(join(dir, 'keys', 'example.test.private.asc'), 'refuse');
  siteKey = { bytes: local.publicKey.write(), fingerprint: local.fingerprint };
});
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await rm(dir, { recursive: true, force: true });
});

function records(key: { bytes: Uint8Array }, types: readonly ('TXT' | 'KEY' | 'OPENPGPKEY')[], policy: SitePolicy = 'enforce'): FakeRecord[] {
  return types.map((type) =>
    type === 'TXT'
      ? { name: OWNER, type: RR_TYPE.TXT, data: splitCharacterStrings(buildSiteTxt({ policy, maxAge: 86400, key: key.bytes })) }
      : type === 'KEY'
        ? { name: OWNER, type: RR_TYPE.KEY, data: buildKeyRdata(key.bytes) }
        : { name: OWNER, type: RR_TYPE.OPENPGPKEY, data: Buffer.from(key.bytes) },
  );
}

async function serve(handler: FakeHandler, host?: string): Promise<string> {
  const server = await startFakeDns(handler, host);
  servers.push(server);
  return server.address;
}

describe('lookup', () => {
  it('reports keys, policy, DNSSEC, every record type, the pin state and the action', async () => {
    const dns = await serve(zoneHandler(records(siteKey, ['TXT', 'KEY', 'OPENPGPKEY']), { ad: true }));
    const result = await cli('lookup', 'alice@Example.Test', '--dns', dns, '--pin-dir', join(dir, 'no-pins'));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const lines = result.stdout.split('\n');
    assert.equal(lines[0], 'domain:     example.test (_muse.example.test)');
    assert.equal(lines[1], 'status:     found');
    assert.equal(lines[2], 'policy:     enforce, max-age 86400 s');
    assert.equal(lines[3], `dnssec:     yes (TXT: AD set by the loopback resolver ${dns})`);
    assert.equal(lines[4], `TXT:        1 record(s), AD trusted, from ${dns} over udp, cache miss (valid 300 s)`);
    assert.equal(lines[5], `KEY:        1 record(s), AD trusted, from ${dns} over udp, cache miss (valid 300 s)`);
    assert.equal(lines[6], `OPENPGPKEY: 1 record(s), AD trusted, from ${dns} over udp, cache miss (valid 300 s)`);
    assert.match(lines[7] ?? '', new RegExp(`^key: {8}${siteKey.fingerprint} from TXT, KEY, OPENPGPKEY; eddsaLegacy/ed25519Legacy \\+ ecdh/curve25519Legacy; created \\S+, expires never$`));
    assert.match(lines[8] ?? '', /^pin: {8}no-pin: no pin; keys trusted on first use; the milter would pin 1 key\(s\) until \S+$/);
    assert.match(lines[9] ?? '', new RegExp(`^action: {5}encrypt to ${siteKey.fingerprint} \\(1 usable key\\(s\\); no pin; keys trusted on first use\\)$`));
    assert.equal(lines[10], `milter:     encrypt to ${siteKey.fingerprint} (DNSSEC) (1 usable key(s); no pin; keys trusted on first use) [no configuration: defaults]`);
    assert.equal(lines.length, 12);
  });

  it('prints one JSON object with --json', async () => {
    const dns = await serve(zoneHandler(records(siteKey, ['OPENPGPKEY'])));
    const result = await cli('lookup', '--domain', 'example.test', '--dns', dns, '--pin-dir', join(dir, 'no-pins'), '--json');
    assert.equal(result.code, 0);
    const json = JSON.parse(result.stdout);
    assert.equal(json.lookup.status, 'found');
    assert.equal(json.lookup.policy, null);
    assert.equal(json.lookup.dnssec, false);
    assert.deepEqual(json.lookup.keys.map((k: { fingerprint: string; sources: string[] }) => [k.fingerprint, k.sources]), [[siteKey.fingerprint, ['OPENPGPKEY']]]);
    assert.deepEqual(json.pin.update, { kind: 'keep' });
    assert.deepEqual(json.outlook, { action: 'encrypt', encryptTo: [siteKey.fingerprint], policy: 'opportunistic', reason: '1 usable key(s); no pin; keys trusted on first use' });
  });

  describe('with a pin store', () => {
    let pinDir = '';
    let stored = '';
    const other = eccKey(7);

    before(async () => {
      pinDir = join(dir, 'pins');
      const store = await PinStore.open(pinDir);
      const now = new Date();
      await store.apply('example.test', {
        kind: 'set',
        pin: {
          domain: 'example.test',
          fingerprints: [siteKey.fingerprint],
          policy: 'enforce',
          maxAge: 86400,
          firstSeen: now.toISOString(),
          lastSeen: now.toISOString(),
          expiresAt: new Date(now.getTime() + 86_400_000).toISOString(),
          dnssec: false,
          publicKeys: { [siteKey.fingerprint]: Buffer.from(siteKey.bytes).toString('base64') },
        },
      });
      stored = await readFile(join(pinDir, PIN_FILE_NAME), 'utf8');
    });
    after(async () => {
      assert.equal(await readFile(join(pinDir, PIN_FILE_NAME), 'utf8'), stored, 'lookup never writes the pin store');
    });

    const action = (stdout: string) => /\naction: +(.*)\n/.exec(stdout)?.[1] ?? '';
    const pinLine = (stdout: string) => /\npin: +(.*)\n/.exec(stdout)?.[1] ?? '';

    it('is ok when the pinned key is published', async () => {
      const dns = await serve(zoneHandler(records(siteKey, ['TXT'])));
      const result = await cli('lookup', 'example.test', '--dns', dns, '--pin-dir', pinDir);
      assert.match(pinLine(result.stdout), /^ok: published key\(s\) match the pin \(pinned until \S+\)$/);
      assert.match(action(result.stdout), /^encrypt to /);
    });

    it('reports a downgrade and would defer when the records are gone', async () => {
      const dns = await serve(zoneHandler([]));
      const result = await cli('lookup', 'example.test', '--dns', dns, '--pin-dir', pinDir);
      assert.equal(result.code, 0);
      assert.match(result.stdout, /\nstatus: +none\n/);
      assert.match(pinLine(result.stdout), /^downgrade: no usable key published, yet 1 key\(s\) pinned until /);
      assert.match(action(result.stdout), /^tempfail-downgrade \(downgrade: /);
    });

    it('reports a suspicious change and would defer when only another key is published', async () => {
      const dns = await serve(zoneHandler(records(await other, ['TXT'])));
      const result = await cli('lookup', 'example.test', '--dns', dns, '--pin-dir', pinDir);
      assert.match(pinLine(result.stdout), /^suspicious-change: /);
      assert.match(action(result.stdout), /^tempfail-downgrade \(suspicious-change: /);
    });

    it('encrypts only to the pinned key while a new one is announced', async () => {
      const dns = await serve(zoneHandler([...records(siteKey, ['TXT']), ...records(await other, ['TXT'])]));
      const result = await cli('lookup', 'example.test', '--dns', dns, '--pin-dir', pinDir);
      assert.match(pinLine(result.stdout), /^new-key-announced: /);
      assert.equal(action(result.stdout).split(' (')[0], `encrypt to ${siteKey.fingerprint}`);
    });
  });

  it('exits 1 and would defer on a DNS failure', async () => {
    const dns = await serve((query) => reply(query, { rcode: Packet.RCODE.SERVFAIL }));
    const result = await cli('lookup', 'example.test', '--dns', dns, '--pin-dir', join(dir, 'no-pins'));
    assert.equal(result.code, 1);
    assert.match(result.stdout, /\nstatus: +temporary-failure: DNS_SERVFAIL\n/);
    assert.match(result.stdout, /\naction: +tempfail-dns \(DNS lookup failed: /);
  });

  it('asks an IPv6 resolver given as [::1]:port, and the next --dns when the first is down', async () => {
    const down = await startFakeDns(() => undefined);
    await down.close();
    const dns = await serve(zoneHandler(records(siteKey, ['TXT'])), '::1');
    const result = await cli('lookup', 'example.test', '--dns', down.address, '--dns', dns, '--pin-dir', join(dir, 'no-pins'));
    assert.equal(result.code, 0, result.stdout);
    assert.match(result.stdout, new RegExp(`\\nTXT: +1 record\\(s\\), no trusted AD, from \\[::1\\]:${dns.split(':').pop()} over udp`));
  });
});

describe('testkey', () => {
  const keyDir = () => join(dir, 'keys');

  it('passes when every record type carries the local key, warning only about missing DNSSEC', async () => {
    const dns = await serve(zoneHandler(records(siteKey, ['TXT', 'KEY', 'OPENPGPKEY'])));
    const result = await cli('testkey', '--domain', 'example.test', '--key-dir', keyDir(), '--dns', dns);
    assert.equal(result.code, 0, result.stdout);
    assert.match(result.stdout, new RegExp(`^domain: {5}example\\.test \\(_muse\\.example\\.test\\)\\nlocal key: +${siteKey.fingerprint} \\(`));
    assert.match(result.stdout, /\nresult: +OK\n$/);
    assert.doesNotMatch(result.stdout, /problem:/);
    assert.match(result.stderr, /^testkey: warning: the records are not DNSSEC-validated: TXT: resolver .* did not set AD/);
  });

  it('passes silently with DNSSEC, and warns about absent compatibility records', async () => {
    const full = await serve(zoneHandler(records(siteKey, ['TXT', 'KEY', 'OPENPGPKEY']), { ad: true }));
    const quiet = await cli('testkey', '--domain', 'example.test', '--key-dir', keyDir(), '--dns', full);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr, '');
    const txtOnly = await serve(zoneHandler(records(siteKey, ['TXT']), { ad: true }));
    const warned = await cli('testkey', '--domain', 'example.test', '--key-dir', keyDir(), '--dns', txtOnly);
    assert.equal(warned.code, 0);
    assert.equal(
      warned.stderr,
      'testkey: warning: no KEY record (optional, read for compatibility)\ntestkey: warning: no OPENPGPKEY record (optional, read for compatibility)\n',
    );
  });

  it('fails when DNS publishes another key', async () => {
    const dns = await serve(zoneHandler(records(await eccKey(5), ['TXT', 'KEY', 'OPENPGPKEY'])));
    const result = await cli('testkey', '--domain', 'example.test', '--key-dir', keyDir(), '--dns', dns);
    assert.equal(result.code, 1);
    for (const type of ['TXT', 'KEY', 'OPENPGPKEY']) {
      assert.match(result.stdout, new RegExp(`\\nproblem: +the ${type} records do not carry the local key as a usable key\\n`));
    }
    assert.match(result.stdout, /\nresult: +FAILED\n$/);
  });

  it('fails when a compatibility record is stale even though TXT matches', async () => {
    const dns = await serve(zoneHandler([...records(siteKey, ['TXT']), ...records(await eccKey(5), ['OPENPGPKEY'])]));
    const result = await cli('testkey', '--domain', 'example.test', '--key-dir', keyDir(), '--dns', dns);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /\nrejected: +OPENPGPKEY [0-9A-F]{40}: not-in-txt /);
    assert.match(result.stdout, /\nproblem: +the OPENPGPKEY records do not carry the local key as a usable key\n/);
  });

  it('fails without a TXT record', async () => {
    const dns = await serve(zoneHandler(records(siteKey, ['OPENPGPKEY'])));
    const result = await cli('testkey', '--domain', 'example.test', '--key-dir', keyDir(), '--dns', dns);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /\nproblem: +no MUSE TXT record: it is the primary record and carries the policy\n/);
  });

  it('warns about a private key file others may read', async () => {
    const path = join(keyDir(), 'example.test.private.asc');
    await chmod(path, 0o644);
    try {
      const dns = await serve(zoneHandler(records(siteKey, ['TXT', 'KEY', 'OPENPGPKEY']), { ad: true }));
      const result = await cli('testkey', '--domain', 'example.test', '--key', path, '--dns', dns);
      assert.equal(result.code, 0);
      assert.equal(result.stderr, `testkey: warning: private key file ${path} has mode 0644: group or others may read it; it should be 0600 (chmod 600 ${path})\n`);
    } finally {
      await chmod(path, 0o600);
    }
  });

  it('fails on a DNS failure and on a missing key file', async () => {
    const dns = await serve((query) => reply(query, { rcode: Packet.RCODE.SERVFAIL }));
    const failed = await cli('testkey', '--domain', 'example.test', '--key-dir', keyDir(), '--dns', dns);
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /\nproblem: +DNS lookup failed: /);
    const missing = await cli('testkey', '--domain', 'other.test', '--key-dir', keyDir(), '--dns', dns);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^muse-milter testkey: KEY_FILE_UNREADABLE: cannot read .*other\.test\.private\.asc: ENOENT\n$/);
  });
});
