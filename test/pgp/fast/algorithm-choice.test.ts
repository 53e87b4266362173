import assert from 'node:assert/strict';
import { test } from 'node:test';
import { enums } from 'openpgp';
import { sessionCipher, signatureHash } from '../../../src/pgp/fast/algorithm-choice.ts';
import type { KeySelection } from '../../../src/pgp/fast/key-selection.ts';

/** A selection with the given preferences (the key packet is not looked at by these rules). */
function prefs(symmetric: number[], hash: number[], seipdV2 = false): KeySelection {
  return { keyPacket: {} as KeySelection['keyPacket'], preferredSymmetric: symmetric, preferredHash: hash, seipdV2 };
}

const { aes128, aes256, cast5 } = enums.symmetric;
const { sha256, sha512, sha1 } = enums.hash;

test('session cipher: AES-256 when every recipient lists it, else AES-128, as openpgp.js chooses', () => {
  assert.equal(sessionCipher([prefs([aes256, aes128], []), prefs([aes128, aes256], [])])?.id, aes256);
  assert.equal(sessionCipher([prefs([aes256], []), prefs([cast5, aes128], [])])?.id, aes128);
  assert.equal(sessionCipher([prefs([], [])])?.id, aes128);
});

test('session cipher: none when every recipient announces SEIPD v2 (openpgp.js would use AEAD) or there are none', () => {
  assert.equal(sessionCipher([prefs([aes256], [], true)]), null);
  assert.equal(sessionCipher([prefs([aes256], [], true), prefs([aes256], [])])?.id, aes256);
  assert.equal(sessionCipher([]), null);
});

test('signature hash: SHA-512 when every target lists it; otherwise left to openpgp.js', () => {
  assert.equal(signatureHash([prefs([], [sha512, sha256]), prefs([], [sha256, sha512])])?.id, sha512);
  assert.equal(signatureHash([prefs([], [sha512]), prefs([], [sha256, sha1])]), null);
  assert.equal(signatureHash([prefs([], [])]), null);
});
