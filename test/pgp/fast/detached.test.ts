/**
 * Native detached signatures: byte-identical to openpgp.js's when deterministic, verified by
 * openpgp.js and by the real GnuPG 2.2 when salted, and refused (null) for a signer it does not
 * handle, in which case signDetached still signs through openpgp.js.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createMessage, readSignature, sign } from 'openpgp';
import { pgpConfig } from '../../../src/pgp/config.ts';
import { readDetachedSignature, signDetached, verifyDetached } from '../../../src/pgp/detached.ts';
import { fastSignDetached } from '../../../src/pgp/fast/detached.ts';
import { FIXED_NOW } from '../../engine/fixtures.ts';
import { createGpgHome, type GpgHome, type GpgResult } from '../../support/gpg.ts';
import { fastTestKeys, SHAPES, type FastTestKeys } from './fixtures.ts';
import { statusOf } from './gpg-check.ts';

const TIMEOUT = { timeout: 300_000 };
let gpg: GpgHome;
let keys: FastTestKeys;

before(async () => {
  keys = await fastTestKeys();
  gpg = await createGpgHome();
  await gpg.importKeys(keys.sender.publicArmored);
  await gpg.importKeys(keys.rsa.publicArmored);
});

after(async () => {
  await gpg?.dispose();
});

/** Runs `gpg --verify` on a binary or armored signature over `data`. */
async function gpgVerify(signature: Uint8Array, data: Uint8Array): Promise<GpgResult> {
  const sigFile = join(gpg.dir, 'sig');
  const dataFile = join(gpg.dir, 'data');
  await writeFile(sigFile, signature);
  await writeFile(dataFile, data);
  return gpg.run(['--verify', sigFile, dataFile]);
}

async function nativeSignature(data: Uint8Array, deterministicSignatures: boolean): Promise<Uint8Array> {
  const out = await fastSignDetached({ data, signingKey: keys.sender.secret, date: FIXED_NOW, deterministicSignatures });
  if (out === null) assert.fail('the native path declined the site key');
  assert.equal(out.hash, 10, 'SHA-512');
  return out.signature;
}

test('deterministic native signatures are byte-identical to openpgp.js’s for every shape', TIMEOUT, async () => {
  for (const shape of SHAPES) {
    const reference = await sign({
      message: await createMessage({ binary: shape.data, date: FIXED_NOW, format: 'binary' }),
      signingKeys: keys.sender.secret,
      detached: true,
      format: 'binary',
      date: FIXED_NOW,
      config: pgpConfig({ deterministicSignatures: true }),
    });
    assert.deepEqual(Buffer.from(await nativeSignature(shape.data, true)), Buffer.from(reference), shape.name);
  }
});

test('salted native signatures verify in openpgp.js and gpg; one changed byte of data is BADSIG', TIMEOUT, async () => {
  const fingerprint = keys.sender.public.getFingerprint().toUpperCase();
  for (const shape of SHAPES) {
    const signature = await nativeSignature(shape.data, false);
    const parsed = await readSignature({ binarySignature: signature });
    assert.equal((await verifyDetached(shape.data, parsed, [keys.sender.public], FIXED_NOW)).status, 'valid', shape.name);
    const good = await gpgVerify(signature, shape.data);
    assert.equal(good.code, 0, `${shape.name}: ${good.stderr}`);
    assert.ok(statusOf(good, 'GOODSIG'), shape.name);
    // VALIDSIG fields 3-10: timestamp, expiry, version, reserved, EdDSA, SHA-512, binary, primary key.
    const expected = [String(FIXED_NOW.getTime() / 1000), '0', '4', '0', '22', '10', '00', fingerprint];
    assert.deepEqual(statusOf(good, 'VALIDSIG')?.slice(2, 10), expected, shape.name);
    if (shape.data.length === 0) continue;
    const altered = Buffer.from(shape.data);
    altered[altered.length >> 1] = (altered[altered.length >> 1] as number) ^ 0x01;
    const bad = await gpgVerify(signature, altered);
    assert.notEqual(bad.code, 0, shape.name);
    assert.ok(statusOf(bad, 'BADSIG'), shape.name);
    assert.equal(statusOf(bad, 'GOODSIG'), undefined, shape.name);
    assert.equal((await verifyDetached(altered, parsed, [keys.sender.public], FIXED_NOW)).status, 'invalid', shape.name);
  }
});

test('signDetached signs natively by default (pgp-sha512, gpg GOODSIG); deterministic, same bytes as without it', async () => {
  const data = Buffer.from('Content-Type: text/plain\r\n\r\nsigned\r\n');
  const native = await signDetached(data, keys.sender.secret, FIXED_NOW, true);
  const library = await signDetached(data, keys.sender.secret, FIXED_NOW, true, false);
  assert.deepEqual(native, library);
  assert.equal(native.micalg, 'pgp-sha512');
  const salted = await signDetached(data, keys.sender.secret, FIXED_NOW);
  assert.ok(statusOf(await gpgVerify(salted.armored, data), 'GOODSIG'));
  assert.equal((await verifyDetached(data, await readDetachedSignature(salted.armored), [keys.sender.public], FIXED_NOW)).status, 'valid');
});

test('an RSA signer is not handled natively: null, and signDetached signs through openpgp.js (RSA signature)', async () => {
  const data = Buffer.from('rsa signed\r\n');
  assert.equal(await fastSignDetached({ data, signingKey: keys.rsa.secret, date: FIXED_NOW }), null);
  const signature = await signDetached(data, keys.rsa.secret, FIXED_NOW);
  const result = await gpgVerify(signature.armored, data);
  assert.ok(statusOf(result, 'GOODSIG'), result.stderr);
  assert.equal(statusOf(result, 'VALIDSIG')?.[6], '1', 'RSA');
});
