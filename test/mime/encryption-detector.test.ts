import assert from 'node:assert/strict';
import { test } from 'node:test';
import { claimedEncryption, isEncrypted, MAX_PGP_MIME_FRAME_TEXT, opensInlinePgp } from '../../src/mime/encryption-detector.ts';
import type { HeaderField } from '../../src/mime/header-fields.ts';
import { cmsSamples, PGP_MIME_TYPE, pgpMimeBody, pgpSamples, smimeBody } from '../support/encrypted-mail.ts';

const type = (value: string): HeaderField[] => [{ name: 'Content-Type', value: ' ' + value }];
const base64 = (value: string): HeaderField[] => [...type(value), { name: 'Content-Transfer-Encoding', value: ' base64' }];
const PGP_MIME = [{ name: 'Content-Type', value: PGP_MIME_TYPE }];

test('the header fields only name the check to run', () => {
  assert.equal(claimedEncryption(PGP_MIME), 'pgp-mime');
  assert.equal(claimedEncryption(type('multipart/encrypted; protocol="application/pkcs7-mime"; boundary=x')), null);
  assert.equal(claimedEncryption(type('application/pgp-encrypted')), null);
  assert.equal(claimedEncryption(type('application/pkcs7-mime; smime-type=enveloped-data')), 'smime');
  assert.equal(claimedEncryption(type('application/x-pkcs7-mime; name=smime.p7m')), 'smime');
  assert.equal(claimedEncryption(type('application/pkcs7-mime; smime-type=signed-data')), 'smime');
  assert.equal(claimedEncryption([]), 'pgp-inline');
  assert.equal(claimedEncryption(type('text/plain; charset=utf-8')), 'pgp-inline');
  assert.equal(claimedEncryption(base64('text/plain')), null);
  assert.equal(claimedEncryption(type('text/html')), null);
  assert.equal(claimedEncryption(type('multipart/signed; protocol="application/pgp-signature"; boundary=x')), null);
});

test('PGP/MIME counts only when well formed and holding an encrypted message', async () => {
  const pgp = await pgpSamples();
  const check = (body: Buffer) => isEncrypted('pgp-mime', PGP_MIME, body);
  assert.equal(check(pgpMimeBody(pgp.encrypted)), true);
  assert.equal(check(pgpMimeBody(PLAIN)), false);
  assert.equal(check(pgpMimeBody(pgp.signedOnly)), false);
  assert.equal(check(pgpMimeBody(pgp.compressedOnly)), false);
  assert.equal(check(pgpMimeBody(pgp.encrypted, 'Version: 2')), false);
  assert.equal(check(pgpMimeBody(Buffer.concat([pgp.encrypted, pgp.encrypted]))), false);
  assert.equal(check(pgpMimeBody(Buffer.concat([pgp.encrypted, PLAIN]))), false);
  const genuine = pgpMimeBody(pgp.encrypted);
  const text = genuine.toString('latin1');
  assert.equal(check(Buffer.from(text.replace('application/octet-stream', 'text/plain'))), false);
  assert.equal(check(Buffer.from(text.replace('Content-Type: application/pgp-encrypted', 'Content-Type: text/plain'))), false);
  assert.equal(check(Buffer.from(text.replace('\r\n--enc-b--\r\n', '\r\n'))), false, 'no close delimiter');
  assert.equal(check(Buffer.from(text.replace('\r\n--enc-b--\r\n', '\r\n--enc-b\r\n\r\nThe launch is on Friday.\r\n--enc-b--\r\n'))), false, 'a third part');
  assert.equal(check(Buffer.from(text.replace('application/octet-stream;', 'application/octet-stream;\r\nContent-Transfer-Encoding: base64\r\nX:'))), false);
  assert.equal(isEncrypted('pgp-mime', type('multipart/encrypted; protocol="application/pgp-encrypted"'), genuine), false, 'no boundary');
  // A short note around the parts is customary; a message hidden there is not.
  assert.equal(check(Buffer.concat([Buffer.alloc(MAX_PGP_MIME_FRAME_TEXT - 64, 0x61), genuine])), true);
  assert.equal(check(Buffer.concat([Buffer.alloc(MAX_PGP_MIME_FRAME_TEXT, 0x61), genuine])), false);
  assert.equal(check(Buffer.concat([genuine, Buffer.alloc(MAX_PGP_MIME_FRAME_TEXT, 0x61)])), true);
  assert.equal(check(Buffer.concat([genuine, Buffer.alloc(MAX_PGP_MIME_FRAME_TEXT + 1, 0x61)])), false);
});

const PLAIN = Buffer.from('-----BEGIN PGP MESSAGE-----\r\n\r\nThe launch is on Friday.\r\n-----END PGP MESSAGE-----\r\n');

test('S/MIME counts only for base64 enveloped or auth-enveloped CMS, whatever the smime-type says', async () => {
  const cms = await cmsSamples();
  const enveloped = base64('application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m');
  assert.equal(isEncrypted('smime', enveloped, smimeBody(cms.enveloped)), true);
  assert.equal(isEncrypted('smime', enveloped, smimeBody(cms.authEnveloped)), true);
  assert.equal(isEncrypted('smime', base64('application/x-pkcs7-mime'), smimeBody(cms.enveloped)), true);
  assert.equal(isEncrypted('smime', enveloped, smimeBody(cms.signed)), false);
  assert.equal(isEncrypted('smime', base64('application/pkcs7-mime'), smimeBody(cms.signed)), false);
  assert.equal(isEncrypted('smime', type('application/pkcs7-mime; smime-type=enveloped-data'), cms.enveloped), false, 'binary, not base64');
  assert.equal(isEncrypted('smime', enveloped, smimeBody(cms.enveloped.subarray(0, -1))), false, 'truncated');
  assert.equal(isEncrypted('smime', enveloped, smimeBody(Buffer.concat([cms.enveloped, Buffer.from([5, 0])]))), false, 'trailing element');
  assert.equal(isEncrypted('smime', enveloped, Buffer.from('The launch is on Friday. Tell nobody.\r\n')), false, 'text');
  assert.equal(isEncrypted('smime', enveloped, Buffer.alloc(0)), false, 'empty');
});

test('inline OpenPGP: an unencoded text body that is exactly one armored encrypted message', async () => {
  const pgp = await pgpSamples();
  const check = (body: Buffer) => isEncrypted('pgp-inline', [], body);
  assert.equal(opensInlinePgp(Buffer.concat([Buffer.from('\r\n  \r\n'), pgp.encrypted])), true);
  assert.equal(opensInlinePgp(Buffer.from('Hi,\r\n-----BEGIN PGP MESSAGE-----\r\n')), false);
  assert.equal(check(Buffer.concat([Buffer.from('\r\n'), pgp.encrypted, Buffer.from('\r\n\r\n')])), true);
  assert.equal(check(PLAIN), false);
  assert.equal(check(pgp.signedOnly), false);
  assert.equal(check(pgp.compressedOnly), false);
  assert.equal(check(Buffer.concat([Buffer.from('Hi,\r\n'), pgp.encrypted])), false);
  assert.equal(check(Buffer.concat([pgp.encrypted, Buffer.from('PS: quoted text after\r\n')])), false);
  assert.equal(check(Buffer.concat([pgp.encrypted, pgp.encrypted])), false);
});
