import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readDetachedSignature, signDetached, verifyDetached } from '../../src/pgp/detached.ts';
import { FIXED_NOW, testKeys } from '../engine/fixtures.ts';

const ENTITY = Buffer.from('Content-Type: text/plain\r\n\r\nsigned\r\n');

test('binary-mode detached signature with the RFC 3156 micalg, armored with CRLF', async () => {
  const keys = await testKeys();
  const signature = await signDetached(ENTITY, keys.senderSite.secret, FIXED_NOW);
  assert.equal(signature.micalg, 'pgp-sha512');
  const text = signature.armored.toString('latin1');
  assert.match(text, /^-----BEGIN PGP SIGNATURE-----\r\n\r\n[\s\S]*\r\n-----END PGP SIGNATURE-----\r\n$/);
  assert.doesNotMatch(text, /[^\r]\n/);
  const parsed = await readDetachedSignature(signature.armored);
  assert.equal(parsed.packets[0]?.signatureType, 0);
});

test('deterministic signatures are reproducible; default ones carry a random salt', async () => {
  const keys = await testKeys();
  const a = await signDetached(ENTITY, keys.senderSite.secret, FIXED_NOW, true);
  const b = await signDetached(ENTITY, keys.senderSite.secret, FIXED_NOW, true);
  assert.deepEqual(a.armored, b.armored);
  const c = await signDetached(ENTITY, keys.senderSite.secret, FIXED_NOW);
  const d = await signDetached(ENTITY, keys.senderSite.secret, FIXED_NOW);
  assert.notDeepEqual(c.armored, d.armored);
});

test('verification: valid, altered data, unknown signer', async () => {
  const keys = await testKeys();
  const signature = await readDetachedSignature((await signDetached(ENTITY, keys.senderSite.secret, FIXED_NOW)).armored);
  assert.equal((await verifyDetached(ENTITY, signature, [keys.senderSite.public], FIXED_NOW)).status, 'valid');
  const altered = Buffer.from(ENTITY);
  altered[altered.length - 3] = 0x45;
  const bad = await verifyDetached(altered, signature, [keys.senderSite.public], FIXED_NOW);
  assert.equal(bad.status, 'invalid');
  assert.equal(bad.status === 'invalid' && bad.fingerprint, keys.senderSite.public.getFingerprint().toUpperCase());
  assert.equal((await verifyDetached(ENTITY, signature, [keys.stranger.public], FIXED_NOW)).status, 'unknown-signer');
});

test('a signature dated after the verification time does not verify', async () => {
  const keys = await testKeys();
  const signature = await readDetachedSignature((await signDetached(ENTITY, keys.senderSite.secret, FIXED_NOW)).armored);
  const earlier = new Date(FIXED_NOW.getTime() - 3600_000);
  assert.equal((await verifyDetached(ENTITY, signature, [keys.senderSite.public], earlier)).status, 'invalid');
});
