/**
 * Attack class: key rotation under a pin, with real DNS servers (INFRA.md §6). knot serves a signed zone and an
 * unsigned one, unbound validates in front of it on loopback; a sender (the daemon's KeyService and recipient
 * policy) holds a pin of a site and the site changes its records with zone reloads between messages.
 *
 * - Signed zone: the answers carry AD, so they speak for the site: a new key without any certification is
 *   followed at once, and `ma=0` removes the pin.
 * - Unsigned zone: anyone on the path could have forged the answer, so a new key nobody vouches for is never
 *   encrypted to (the pinned key only while both are published, deferred 451 4.7.1 once the old key is gone), a
 *   shrunk lifetime is ignored and a removed record defers; a key `muse-milter rotate`'s certification vouches for
 *   is followed.
 * - The whole rotation with the command line: `genkey`, publish, pin, `rotate`, publish the printed overlap,
 *   follow, withdraw the old key's records, still encrypted (to the new key).
 *
 * Each step waits until unbound answers with the new records (polling it, never sleeping a fixed time).
 * Fails (does not skip) when knot or unbound cannot start.
 *
 * Ports: picked free by the kernel for knot and unbound.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readKey, type PrivateKey, type PublicKey } from 'openpgp';
import type { RecipientDecision } from '../../src/daemon/recipient-policy.ts';
import { createResolver } from '../../src/dns/index.ts';
import {
  certifySuccessor,
  createSiteKeyFinder,
  formatZoneRecords,
  generateSiteKey,
  siteKeyZoneRecords,
  type SitePolicy,
} from '../../src/keys/index.ts';
import { cli } from '../cli/run-cli.ts';
import { startKnotUnbound, type KnotUnbound } from '../support/dns-servers.ts';
import { waitFor } from '../support/processes.ts';
import { startResolverSender, type ResolverSender } from './support/pinned-site.ts';

const SIGNED = 'signed.test';
const UNSIGNED = 'plain.test';
/** The zone the command-line rotation publishes into (unsigned). */
const ROTATING = 'rotating.test';
const DAY = 86_400;
const YEAR = 31_536_000;
const ALL_TYPES = ['TXT', 'KEY', 'OPENPGPKEY'];

let dns: KnotUnbound;

before(async () => {
  dns = await startKnotUnbound(
    [
      { name: SIGNED, trust: 'signed', records: '' },
      { name: UNSIGNED, trust: 'unsigned', records: '' },
      { name: ROTATING, trust: 'unsigned', records: '' },
    ],
    undefined,
    // Changed records show through unbound within a second.
    { maxTtl: 1, maxNegativeTtl: 1 },
  );
});
after(() => dns?.stop());

/** What a site publishes: its keys (all three record types each) with one policy and lifetime. */
interface Published {
  readonly keys: readonly PublicKey[];
  readonly policy: SitePolicy;
  readonly maxAge: number;
}

/** The zone lines of `published` for `domain`, as genkey writes them. */
function zoneLines(domain: string, published: Published): string {
  return published.keys.map((key) => formatZoneRecords(siteKeyZoneRecords(key, { domain, policy: published.policy, maxAge: published.maxAge, ttl: 1 }))).join('');
}

/**
 * Waits until unbound answers for `domain` with exactly `keys`, each through all three record types, and the
 * given policy and lifetime (with no keys: until no usable key is published), with AD exactly when `dnssec`.
 */
async function untilVisible(domain: string, keys: readonly string[], expect: { policy: SitePolicy | null; maxAge: number; dnssec: boolean }): Promise<void> {
  const wanted = [...keys].sort();
  await waitFor(
    async () => {
      const lookup = await createSiteKeyFinder(createResolver({ servers: [dns.resolver] })).findSiteKeys(domain);
      const seen = lookup.keys.map((k) => k.fingerprint).sort();
      const complete = lookup.keys.every((k) => k.sources.join() === ALL_TYPES.join());
      const settled =
        lookup.status === (wanted.length > 0 ? 'found' : 'none') &&
        seen.join() === wanted.join() &&
        complete &&
        lookup.policy === expect.policy &&
        lookup.maxAge === expect.maxAge &&
        lookup.dnssec === expect.dnssec;
      return settled ? true : undefined;
    },
    { timeoutMs: 20_000, what: `${domain} publishing ${wanted.join(', ') || 'no key'}`, intervalMs: 100 },
  );
}

/** Publishes `published` for `domain` in knot and waits until unbound answers with it. */
async function publish(domain: string, published: Published): Promise<void> {
  await dns.setZoneRecords(domain, zoneLines(domain, published));
  await untilVisible(domain, published.keys.map(fp), { policy: published.policy, maxAge: published.maxAge, dnssec: domain === SIGNED });
}

/** Withdraws every record of `domain`'s site key and waits until unbound answers without them. */
async function withdraw(domain: string): Promise<void> {
  await dns.setZoneRecords(domain, '');
  await untilVisible(domain, [], { policy: null, maxAge: 0, dnssec: domain === SIGNED });
}

function fp(key: PublicKey | PrivateKey): string {
  return key.getFingerprint().toUpperCase();
}

function deferred(domain: string): { temporary: boolean; reply: { code: number; enhanced: string; text: string } } {
  return { temporary: true, reply: { code: 451, enhanced: '4.7.1', text: `Encryption to ${domain} is required but not possible now` } };
}

/** The fingerprints a decision encrypts to, or its kind when it does not encrypt. */
function encryptsTo(decision: RecipientDecision): readonly string[] | string {
  return decision.kind === 'encrypt' ? decision.fingerprints : decision.kind;
}

/** Runs `body` with a sender holding a pin store of its own. */
async function withSender(body: (sender: ResolverSender) => Promise<void>): Promise<void> {
  const sender = await startResolverSender(dns.resolver);
  try {
    await body(sender);
  } finally {
    await sender.close();
  }
}

async function newKey(domain: string): Promise<PrivateKey> {
  return generateSiteKey(domain, new Date(Date.now() - 60_000));
}

describe('pin rotation with knot and unbound: signed zone', () => {
  it('follows a new key without certification, since the answer is DNSSEC-validated; ma=0 then removes the pin', async () => {
    const [old, next] = await Promise.all([newKey(SIGNED), newKey(SIGNED)]);
    await withSender(async (sender) => {
      await publish(SIGNED, { keys: [old.toPublic()], policy: 'enforce', maxAge: DAY });
      const first = await sender.send(SIGNED);
      assert.deepEqual(first.kind === 'encrypt' && { fingerprints: first.fingerprints, dnssec: first.dnssec }, { fingerprints: [fp(old)], dnssec: true });
      const pinned = (await sender.store()).get(SIGNED);
      assert.deepEqual(pinned && { fingerprints: pinned.fingerprints, dnssec: pinned.dnssec, policy: pinned.policy }, { fingerprints: [fp(old)], dnssec: true, policy: 'enforce' });

      // The new key alone, not certified by the old one: the validated answer is the site's word.
      await publish(SIGNED, { keys: [next.toPublic()], policy: 'enforce', maxAge: DAY });
      const rotated = await sender.send(SIGNED);
      assert.deepEqual(rotated.kind === 'encrypt' && { fingerprints: rotated.fingerprints, dnssec: rotated.dnssec }, { fingerprints: [fp(next)], dnssec: true });
      assert.deepEqual((await sender.store()).get(SIGNED)?.fingerprints, [fp(next)], 'the pin moved to the new key');

      // A validated ma=0 removes the pin, as the site asks.
      await publish(SIGNED, { keys: [next.toPublic()], policy: 'enforce', maxAge: 0 });
      assert.deepEqual(encryptsTo(await sender.send(SIGNED)), [fp(next)]);
      assert.equal((await sender.store()).get(SIGNED), undefined, 'ma=0 under DNSSEC removes the pin');

      // With the pin gone, a validated answer without records means a site without keys: signed clear text.
      await withdraw(SIGNED);
      assert.deepEqual(await sender.send(SIGNED), { kind: 'clear', signed: true, reason: 'no usable site key published' });
    });
  });
});

describe('pin rotation with knot and unbound: unsigned zone', () => {
  it('encrypts to the pinned key only while an uncertified new key is published beside it, and defers once the old key is gone', async () => {
    const [old, stranger] = await Promise.all([newKey(UNSIGNED), newKey(UNSIGNED)]);
    await withSender(async (sender) => {
      await publish(UNSIGNED, { keys: [old.toPublic()], policy: 'enforce', maxAge: DAY });
      assert.deepEqual(encryptsTo(await sender.send(UNSIGNED)), [fp(old)]);
      const pinned = (await sender.store()).get(UNSIGNED);
      assert.deepEqual(pinned && { fingerprints: pinned.fingerprints, dnssec: pinned.dnssec }, { fingerprints: [fp(old)], dnssec: false });

      await publish(UNSIGNED, { keys: [old.toPublic(), stranger.toPublic()], policy: 'enforce', maxAge: DAY });
      const overlap = await sender.send(UNSIGNED);
      assert.deepEqual(overlap.kind === 'encrypt' && { fingerprints: overlap.fingerprints, dnssec: overlap.dnssec }, { fingerprints: [fp(old)], dnssec: false });
      assert.deepEqual((await sender.store()).get(UNSIGNED)?.fingerprints, [fp(old)], 'the uncertified key is not pinned');

      await publish(UNSIGNED, { keys: [stranger.toPublic()], policy: 'enforce', maxAge: DAY });
      const alone = await sender.send(UNSIGNED);
      assert.equal(alone.kind, 'refuse');
      assert.deepEqual(alone.kind === 'refuse' && { temporary: alone.temporary, reply: alone.reply }, deferred(UNSIGNED));
      assert.match(alone.reason, new RegExp(`^suspicious-change: published key\\(s\\) ${fp(stranger)} differ from the key\\(s\\) pinned until `));
      assert.deepEqual((await sender.store()).get(UNSIGNED)?.fingerprints, [fp(old)], 'the pin still names the old key');
    });
  });

  it("follows a new key that the old one certified (muse-milter rotate's certification): both during the overlap, the new one after", async () => {
    const old = await newKey(UNSIGNED);
    const next = await certifySuccessor(old, await newKey(UNSIGNED));
    await withSender(async (sender) => {
      await publish(UNSIGNED, { keys: [old.toPublic()], policy: 'enforce', maxAge: DAY });
      assert.deepEqual(encryptsTo(await sender.send(UNSIGNED)), [fp(old)]);

      await publish(UNSIGNED, { keys: [old.toPublic(), next.toPublic()], policy: 'enforce', maxAge: DAY });
      assert.deepEqual(encryptsTo(await sender.send(UNSIGNED)), [fp(old), fp(next)].sort());
      assert.deepEqual((await sender.store()).get(UNSIGNED)?.fingerprints, [fp(old), fp(next)].sort());

      await publish(UNSIGNED, { keys: [next.toPublic()], policy: 'enforce', maxAge: DAY });
      const after = await sender.send(UNSIGNED);
      assert.deepEqual(after.kind === 'encrypt' && { fingerprints: after.fingerprints, dnssec: after.dnssec }, { fingerprints: [fp(next)], dnssec: false });
      assert.deepEqual((await sender.store()).get(UNSIGNED)?.fingerprints, [fp(next)], 'the certified successor replaced its certifier');
    });
  });

  it('shrink then remove: keeps the pin through ma=0, and defers once the records are gone', async () => {
    const key = await newKey(UNSIGNED);
    await withSender(async (sender) => {
      await publish(UNSIGNED, { keys: [key.toPublic()], policy: 'enforce', maxAge: YEAR });
      assert.deepEqual(encryptsTo(await sender.send(UNSIGNED)), [fp(key)]);
      const pinned = (await sender.store()).get(UNSIGNED);
      assert.deepEqual(pinned?.fingerprints, [fp(key)]);

      await publish(UNSIGNED, { keys: [key.toPublic()], policy: 'enforce', maxAge: 0 });
      assert.deepEqual(encryptsTo(await sender.send(UNSIGNED)), [fp(key)]);
      const kept = (await sender.store()).get(UNSIGNED);
      assert.deepEqual(kept && { fingerprints: kept.fingerprints, expiresAt: kept.expiresAt, maxAge: kept.maxAge }, {
        fingerprints: [fp(key)],
        expiresAt: pinned?.expiresAt,
        maxAge: YEAR,
      });

      await withdraw(UNSIGNED);
      const removed = await sender.send(UNSIGNED);
      assert.equal(removed.kind, 'refuse');
      assert.deepEqual(removed.kind === 'refuse' && { temporary: removed.temporary, reply: removed.reply }, deferred(UNSIGNED));
      assert.match(removed.reason, /^downgrade: no usable key published, yet 1 key\(s\) pinned until /);
    });
  });
});

describe('site key rotation with the command line, a sender holding a pin (unsigned zone)', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'muse-rotate-knot-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('genkey, pin, rotate, publish the overlap, follow; the old records withdrawn, mail is still encrypted to the new key', async () => {
    const keyDir = join(dir, 'keys');
    const record = ['--policy', 'enforce', '--max-age', String(DAY), '--ttl', '1'];
    const genkey = await cli('genkey', '--domain', ROTATING, '--key-dir', keyDir, ...record);
    assert.equal(genkey.code, 0, genkey.stderr);
    const old = (await readKey({ armoredKey: await readFile(join(keyDir, `${ROTATING}.public.asc`), 'utf8') })) as PublicKey;
    const expect = { policy: 'enforce' as const, maxAge: DAY, dnssec: false };

    await withSender(async (sender) => {
      // The records exactly as genkey printed them.
      await dns.setZoneRecords(ROTATING, genkey.stdout);
      await untilVisible(ROTATING, [fp(old)], expect);
      assert.deepEqual(encryptsTo(await sender.send(ROTATING)), [fp(old)]);
      assert.deepEqual((await sender.store()).get(ROTATING)?.fingerprints, [fp(old)]);

      const rotate = await cli('rotate', '--domain', ROTATING, '--key-dir', keyDir, ...record);
      assert.equal(rotate.code, 0, rotate.stderr);
      const newZoneFile = (/, (\S+\.zone)\n$/.exec(rotate.stderr) ?? [])[1] ?? '';
      const next = (await readKey({ armoredKey: await readFile(newZoneFile.replace(/\.zone$/, '.public.asc'), 'utf8') })) as PublicKey;
      assert.notEqual(fp(next), fp(old));

      // The overlap: rotate's standard output is the zone fragment with both keys.
      await dns.setZoneRecords(ROTATING, rotate.stdout);
      await untilVisible(ROTATING, [fp(old), fp(next)], expect);
      const overlap = await sender.send(ROTATING);
      assert.deepEqual(overlap.kind === 'encrypt' && { fingerprints: overlap.fingerprints, dnssec: overlap.dnssec }, { fingerprints: [fp(old), fp(next)].sort(), dnssec: false });
      assert.deepEqual((await sender.store()).get(ROTATING)?.fingerprints, [fp(old), fp(next)].sort());

      // The old key's records withdrawn: only the new key's zone file is published.
      await dns.setZoneRecords(ROTATING, await readFile(newZoneFile, 'utf8'));
      await untilVisible(ROTATING, [fp(next)], expect);
      const after = await sender.send(ROTATING);
      assert.deepEqual(after.kind === 'encrypt' && { fingerprints: after.fingerprints, dnssec: after.dnssec }, { fingerprints: [fp(next)], dnssec: false });
      assert.deepEqual((await sender.store()).get(ROTATING)?.fingerprints, [fp(next)], 'the pin moved to the new key');
    });
  });
});
