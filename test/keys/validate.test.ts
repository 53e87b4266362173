/** Which keys a sender accepts (docs/dns-records.md §5): one case per refusal, and the accepted kinds. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyError, readPublicKeyBytes, validateSiteKey } from '../../src/keys/index.ts';
import {
  eccKey,
  expiredKey,
  futureKey,
  p256Key,
  revokedKey,
  rfc9580Key,
  rsaKey,
  signOnlyKey,
  v6Key,
  type TestKey,
} from './test-keys.ts';

async function verdict(make: () => Promise<TestKey>) {
  const key = await make();
  return validateSiteKey(await readPublicKeyBytes(key.bytes), key.bytes, new Date());
}

describe('validateSiteKey', () => {
  it('accepts a genkey-style Ed25519/Curve25519 v4 key and describes it', async () => {
    const key = await eccKey();
    const result = await verdict(eccKey);
    assert.ok(result.ok);
    assert.equal(result.key.fingerprint, key.fingerprint);
    assert.equal(result.key.algorithm, 'eddsaLegacy/ed25519Legacy + ecdh/curve25519Legacy');
    assert.equal(result.key.expires, null);
    assert.deepEqual(result.key.userIds, ['Test site key <postmaster@example.test>']);
    assert.equal(result.key.encryptionKeyId, (await key.publicKey.getEncryptionKey()).getKeyID().toHex().toUpperCase());
    assert.deepEqual(result.key.bytes, key.bytes);
  });

  it('accepts RSA 2048 and NIST P-256 keys', async () => {
    const rsa = await verdict(() => rsaKey(2048));
    assert.ok(rsa.ok);
    assert.equal(rsa.key.algorithm, 'rsaEncryptSign/2048 bits + rsaEncryptSign/2048 bits');
    const p256 = await verdict(p256Key);
    assert.ok(p256.ok);
    assert.equal(p256.key.algorithm, 'ecdsa/nistP256 + ecdh/nistP256');
  });

  const refusals: [string, () => Promise<TestKey>, string, RegExp][] = [
    ['RSA below 2048 bits', () => rsaKey(1024), 'weak-key', /RSA 1024 bits, less than 2048/],
    ['a v6 key', v6Key, 'unsupported-key-version', /OpenPGP v6 key: GnuPG 2\.2 reads only v4/],
    ['RFC 9580 Ed25519/X25519 in a v4 key', rfc9580Key, 'unsupported-algorithm', /algorithm ed25519 \(27\)/],
    ['an expired key', expiredKey, 'expired', /expired on/],
    ['a revoked key', revokedKey, 'revoked', /revoked/],
    ['a key from the future', futureKey, 'invalid', /in the future/],
    ['a key without an encryption subkey', signOnlyKey, 'no-encryption-key', /Could not find valid encryption key/],
  ];
  for (const [what, make, reason, detail] of refusals) {
    it(`refuses ${what}`, async () => {
      const key = await make();
      const result = await verdict(make);
      assert.equal(result.ok, false);
      assert.ok(!result.ok);
      assert.equal(result.reason, reason);
      assert.match(result.detail, detail);
      assert.equal(result.fingerprint, key.fingerprint);
    });
  }
});

describe('readPublicKeyBytes', () => {
  const malformed = (pattern: RegExp) => (error: unknown) => error instanceof KeyError && error.code === 'KEY_MALFORMED' && pattern.test(error.message);

  it('reads one binary public key', async () => {
    const key = await eccKey();
    assert.equal((await readPublicKeyBytes(key.bytes)).getFingerprint().toUpperCase(), key.fingerprint);
  });

  it('refuses garbage, two keys, trailing bytes and oversized input', async () => {
    const a = await eccKey();
    const b = await eccKey(1);
    await assert.rejects(readPublicKeyBytes(new Uint8Array([1, 2, 3, 4, 5])), malformed(/not an OpenPGP key/));
    await assert.rejects(readPublicKeyBytes(new Uint8Array([...a.bytes, ...b.bytes])), malformed(/2 keys where one is expected/));
    await assert.rejects(readPublicKeyBytes(new Uint8Array([...a.bytes, 9, 9])), malformed(/not an OpenPGP key/));
    await assert.rejects(readPublicKeyBytes(new Uint8Array(16385)), malformed(/16385 octets, more than 16384/));
  });

  it('refuses a published secret key and says so without using it', async () => {
    const key = await eccKey();
    await assert.rejects(readPublicKeyBytes(key.privateKey.write()), malformed(new RegExp(`secret key material published for ${key.fingerprint}`)));
  });
});
