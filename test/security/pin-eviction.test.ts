/**
 * Attack: pushing a site's pin out of a full pin store. Pins are learnt from lookups that senders trigger (a local
 * sender's recipient domains, a remote site's own domain), so a sender controlling many domains could fill the
 * store. The store used to drop, past its bound, the pins expiring soonest: domains publishing the largest `ma`
 * evicted a real site's pin, after which a forged answer without its key would have sent that site's mail in
 * clear. Now a pin in force is never evicted; a full store learns no new pin until pins expire.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MAX_AGE_LIMIT } from '../../src/keys/txt-record.ts';
import { REFUSALS_PER_WARNING, warnWhenPinStoreFull } from '../../src/daemon/pin-store-full.ts';
import { silentLogger, type LogFields } from '../../milter/src/index.ts';
import { evaluatePin, PIN_FILE_NAME, PIN_FILE_VERSION, PinStore, type Pin, type PinInput } from '../../src/pins/index.ts';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'muse-pin-eviction-'));
  dirs.push(dir);
  return dir;
}

const NOW = new Date();
const DAY = 86_400_000;

/** What a lookup of `domain` found: one key, the `ma` asked, not DNSSEC-validated. */
function found(domain: string, maxAge: number, fingerprint = `${domain.length.toString(16).padStart(2, '0')}${'C'.repeat(38)}`): PinInput {
  return { domain, status: 'found', keys: [{ fingerprint }], policy: 'opportunistic', maxAge, dnssec: false };
}

/** Learns what `lookup` teaches, as the key service does; returns whether the store kept it. */
async function learn(store: PinStore, lookup: PinInput, at = NOW): Promise<boolean> {
  return store.apply(lookup.domain, evaluatePin(store.get(lookup.domain), lookup, at).update, at);
}

async function storedDomains(store: PinStore): Promise<string[]> {
  const file = JSON.parse(await readFile(store.path, 'utf8')) as { pins: Record<string, unknown> };
  return Object.keys(file.pins);
}

describe('pin eviction', () => {
  test('a flood of long-lived pins for a sender’s own domains does not evict a site’s pin in force', async () => {
    const store = await PinStore.open(await tempDir(), { maxPins: 3 });
    // The site asks for one day; the sender's domains ask for the largest lifetime there is.
    assert.equal(await learn(store, found('bank.test', 86_400)), true);
    assert.equal(await learn(store, found('flood1.evil.test', MAX_AGE_LIMIT)), true);
    assert.equal(await learn(store, found('flood2.evil.test', MAX_AGE_LIMIT)), true);
    for (let i = 3; i < 10; i++) assert.equal(await learn(store, found(`flood${i}.evil.test`, MAX_AGE_LIMIT)), false);

    assert.equal(store.refused, 7);
    assert.equal(store.get('flood3.evil.test'), undefined);
    assert.deepEqual(store.get('bank.test')?.fingerprints, [found('bank.test', 0).keys[0]?.fingerprint]);
    assert.deepEqual(await storedDomains(store), ['bank.test', 'flood1.evil.test', 'flood2.evil.test']);

    // The site's pin still does its work: a forged answer without its key is a downgrade, not a first contact.
    const forged: PinInput = { domain: 'bank.test', status: 'none', keys: [], policy: null, maxAge: 0, dnssec: false };
    assert.equal(evaluatePin(store.get('bank.test'), forged, NOW).state, 'downgrade');
  });

  test('a full store still renews and rotates the pins it holds', async () => {
    const store = await PinStore.open(await tempDir(), { maxPins: 2 });
    await learn(store, found('a.test', 3600));
    await learn(store, found('b.test', 3600));
    const later = new Date(NOW.getTime() + 3_000_000);
    // A DNSSEC-validated answer with a new key and a longer lifetime replaces the pin of a.test.
    const rotated: PinInput = { ...found('a.test', 7200, 'D'.repeat(40)), dnssec: true };
    assert.equal(await learn(store, rotated, later), true);
    assert.deepEqual(store.get('a.test')?.fingerprints, ['D'.repeat(40)]);
    assert.equal(store.get('a.test')?.expiresAt, new Date(later.getTime() + 7200 * 1000).toISOString());
    assert.equal(store.refused, 0);
  });

  test('expired pins make room for a new one; pins in force stay', async () => {
    const dir = await tempDir();
    const pin = (expiresAt: Date): Omit<Pin, 'domain'> => ({
      fingerprints: ['E'.repeat(40)],
      policy: 'opportunistic',
      maxAge: 86_400,
      firstSeen: '2025-01-01T00:00:00.000Z',
      lastSeen: '2025-01-01T00:00:00.000Z',
      expiresAt: expiresAt.toISOString(),
      dnssec: false,
      publicKeys: {},
    });
    const pins = {
      'expired.test': pin(new Date(NOW.getTime() - DAY)),
      'live1.test': pin(new Date(NOW.getTime() + DAY)),
      'live2.test': pin(new Date(NOW.getTime() + 2 * DAY)),
    };
    await writeFile(join(dir, PIN_FILE_NAME), JSON.stringify({ version: PIN_FILE_VERSION, pins }));
    const store = await PinStore.open(dir, { maxPins: 3 });
    assert.equal(await learn(store, found('new.test', 3600)), true);
    assert.deepEqual(await storedDomains(store), ['live1.test', 'live2.test', 'new.test']);
    assert.equal(await learn(store, found('another.test', 3600)), false);
    assert.deepEqual(await storedDomains(store), ['live1.test', 'live2.test', 'new.test']);
    assert.equal(store.refused, 1);
  });

  test('a full store says so: the store reports each refused domain, the daemon warns on the first and every 1000th', async () => {
    const told: Array<[string, number]> = [];
    const store = await PinStore.open(await tempDir(), { maxPins: 1, onFull: (domain, refused) => told.push([domain, refused]) });
    assert.equal(await learn(store, found('bank.test', 86_400)), true);
    assert.equal(await learn(store, found('flood1.evil.test', MAX_AGE_LIMIT)), false);
    assert.equal(await learn(store, found('flood2.evil.test', MAX_AGE_LIMIT)), false);
    // A renewal of the pin in force is not a refusal.
    assert.equal(await learn(store, found('bank.test', 2 * 86_400)), true);
    assert.deepEqual(told, [['flood1.evil.test', 1], ['flood2.evil.test', 2]]);

    const warnings: Array<[string, LogFields | undefined]> = [];
    const warn = warnWhenPinStoreFull({ ...silentLogger, warn: (message, fields) => warnings.push([message, fields]) }, '/var/lib/muse/pins');
    for (let refused = 1; refused <= 2 * REFUSALS_PER_WARNING + 1; refused++) warn(`d${refused}.evil.test`, refused);
    const message = 'pin store full: no pin kept for a new domain (pins in force are never evicted; expired ones make room)';
    assert.deepEqual(warnings, [
      [message, { directory: '/var/lib/muse/pins', domain: 'd1.evil.test', refused: 1 }],
      [message, { directory: '/var/lib/muse/pins', domain: 'd1000.evil.test', refused: 1000 }],
      [message, { directory: '/var/lib/muse/pins', domain: 'd2000.evil.test', refused: 2000 }],
    ]);
  });
});
