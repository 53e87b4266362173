import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encryptionFromHeaders, isInlinePgpMessage, mayBeInlinePgp, opensInlinePgp } from '../../src/mime/encryption-detector.ts';

const type = (value: string) => [{ name: 'Content-Type', value: ' ' + value }];

test('PGP/MIME and S/MIME enveloped data are recognised from the header', () => {
  assert.equal(encryptionFromHeaders(type('multipart/encrypted; protocol="application/pgp-encrypted"; boundary=x')), 'pgp-mime');
  assert.equal(encryptionFromHeaders(type('application/pkcs7-mime; smime-type=enveloped-data')), 'smime');
  assert.equal(encryptionFromHeaders(type('application/x-pkcs7-mime; name=smime.p7m')), 'smime');
  assert.equal(encryptionFromHeaders(type('application/pkcs7-mime; smime-type=signed-data')), null);
  assert.equal(encryptionFromHeaders(type('multipart/signed; protocol="application/pgp-signature"; boundary=x')), null);
  assert.equal(encryptionFromHeaders([]), null);
});

test('inline OpenPGP only for an unencoded text/plain body that is exactly one armored message', () => {
  assert.equal(mayBeInlinePgp([]), true);
  assert.equal(mayBeInlinePgp([...type('text/plain'), { name: 'Content-Transfer-Encoding', value: ' base64' }]), false);
  assert.equal(mayBeInlinePgp(type('text/html')), false);
  const armored = Buffer.from('\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nabc\r\n-----END PGP MESSAGE-----\r\n');
  assert.equal(opensInlinePgp(armored), true);
  assert.equal(isInlinePgpMessage(armored), true);
  assert.equal(isInlinePgpMessage(Buffer.from('Hi,\r\n-----BEGIN PGP MESSAGE-----\r\nabc\r\n-----END PGP MESSAGE-----\r\n')), false);
  assert.equal(isInlinePgpMessage(Buffer.concat([armored, Buffer.from('PS: quoted text after\r\n')])), false);
});
