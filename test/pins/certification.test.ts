/** Key-transition statements (pins/certification.ts): which new keys a pinned key certified, checked exactly. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readKey, type PrivateKey, type PublicKey } from 'openpgp';
import { certifySuccessor, generateSiteKey } from '../../src/keys/index.ts';
import { certifiedByPin, withCertifications, type FoundKey, type Pin } from '../../src/pins/index.ts';

const NOW = new Date();

async function siteKey(): Promise<PrivateKey> {
  return generateSiteKey('example.test', new Date(NOW.getTime() - 60_000));
}

/** The key as a lookup finds it: parsed from its published bytes. */
async function found(key: PrivateKey): Promise<FoundKey> {
  const bytes = key.toPublic().write();
  const parsed = (await readKey({ binaryKey: bytes })) as PublicKey;
  return { fingerprint: parsed.getFingerprint().toUpperCase(), key: parsed, bytes };
}

function pinOf(keys: readonly PrivateKey[], withBytes = true): Pin {
  const fingerprints = keys.map((k) => k.getFingerprint().toUpperCase()).sort();
  return {
    domain: 'example.test',
    fingerprints,
    policy: 'enforce',
    maxAge: 86_400,
    firstSeen: NOW.toISOString(),
    lastSeen: NOW.toISOString(),
    expiresAt: new Date(NOW.getTime() + 86_400_000).toISOString(),
    dnssec: false,
    publicKeys: withBytes ? Object.fromEntries(keys.map((k) => [k.getFingerprint().toUpperCase(), Buffer.from(k.toPublic().write()).toString('base64')])) : {},
  };
}

describe('certifiedByPin', async () => {
  const old = await siteKey();
  const other = await siteKey();
  const plain = await siteKey();
  const successor = await certifySuccessor(old, await siteKey(), new Date(NOW.getTime() - 30_000));
  const forged = await certifySuccessor(other, await siteKey(), new Date(NOW.getTime() - 30_000));
  const fp = (k: PrivateKey): string => k.getFingerprint().toUpperCase();

  it('accepts a new key the pinned key certified, from the key bytes the pin stores, the old key no longer published', async () => {
    assert.deepEqual(await certifiedByPin(pinOf([old]), [await found(successor)], NOW), { [fp(successor)]: fp(old) });
  });

  it('uses the published old key when a version 1 pin holds no bytes, and cannot check without either', async () => {
    assert.deepEqual(await certifiedByPin(pinOf([old], false), [await found(old), await found(successor)], NOW), { [fp(successor)]: fp(old) });
    assert.deepEqual(await certifiedByPin(pinOf([old], false), [await found(successor)], NOW), {});
  });

  it('refuses a key without a certification, and one certified by a key that is not pinned', async () => {
    assert.deepEqual(await certifiedByPin(pinOf([old]), [await found(plain), await found(forged)], NOW), {});
  });

  it('refuses stored bytes that are not the pinned key', async () => {
    const pin = pinOf([old]);
    const swapped: Pin = { ...pin, publicKeys: { [fp(old)]: Buffer.from(other.toPublic().write()).toString('base64') } };
    assert.deepEqual(await certifiedByPin(swapped, [await found(forged)], NOW), {});
  });

  it('refuses a certification made after the time of the check', async () => {
    const later = await certifySuccessor(old, await siteKey(), new Date(NOW.getTime() + 3_600_000));
    assert.deepEqual(await certifiedByPin(pinOf([old]), [await found(later)], NOW), {});
  });

  it('refuses a certification lifted from the certified key onto another key with the same user ID', async () => {
    const target = await found(plain);
    const [theft] = (await found(successor)).key.users[0]?.otherCertifications ?? [];
    assert.ok(theft, 'the successor carries a certification');
    const user = target.key.users[0];
    assert.equal(user?.userID?.userID, (await found(successor)).key.users[0]?.userID?.userID);
    user?.otherCertifications.push(theft);
    const bytes = target.key.write();
    const parsed = (await readKey({ binaryKey: bytes })) as PublicKey;
    assert.equal(parsed.users[0]?.otherCertifications.length, 1);
    assert.deepEqual(await certifiedByPin(pinOf([old]), [{ fingerprint: target.fingerprint, key: parsed, bytes }], NOW), {});
  });

  it('is skipped for a DNSSEC-validated answer, an expired pin and no pin', async () => {
    const keys = [await found(successor)];
    assert.equal((await withCertifications(pinOf([old]), { keys, dnssec: true }, NOW)).certifiedBy, undefined);
    assert.equal((await withCertifications({ ...pinOf([old]), expiresAt: '2020-01-01T00:00:00.000Z' }, { keys, dnssec: false }, NOW)).certifiedBy, undefined);
    assert.equal((await withCertifications(undefined, { keys, dnssec: false }, NOW)).certifiedBy, undefined);
    assert.deepEqual((await withCertifications(pinOf([old]), { keys, dnssec: false }, NOW)).certifiedBy, { [fp(successor)]: fp(old) });
  });
});
