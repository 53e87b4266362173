import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseContentType } from '../../src/mime/content-fields.ts';
import { encryptedContentType, encryptedEnvelope, signedBody, signedContentType } from '../../src/mime/pgp-mime-build.ts';
import { pgpMimeLayer, readPgpMime } from '../../src/mime/pgp-mime-read.ts';

const ARMOR = '-----BEGIN PGP MESSAGE-----\r\n\r\nAAAA\r\n-----END PGP MESSAGE-----\r\n';

test('multipart/encrypted: exact framing, and it reads back to the armor', () => {
  const envelope = encryptedEnvelope('B');
  const body = Buffer.concat([envelope.head, Buffer.from(ARMOR), envelope.tail]);
  assert.equal(
    body.toString('latin1'),
    'This is an encrypted message in PGP/MIME format (RFC 3156).\r\n--B\r\nContent-Type: application/pgp-encrypted\r\n' +
      'Content-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n--B\r\n' +
      'Content-Type: application/octet-stream; name="encrypted.asc"\r\nContent-Description: OpenPGP encrypted message\r\n' +
      'Content-Disposition: inline; filename="encrypted.asc"\r\n\r\n' +
      ARMOR +
      '--B--\r\n',
  );
  const type = parseContentType(encryptedContentType('B'));
  assert.equal(pgpMimeLayer(type), 'encrypted');
  const read = readPgpMime(type, body);
  assert.equal(read?.kind, 'encrypted');
  assert.equal(read?.kind === 'encrypted' && read.armoredMessage.toString('latin1'), ARMOR.slice(0, -2));
});

test('multipart/signed: the first part is exactly the signed entity', () => {
  const entity = Buffer.from('Content-Type: text/plain\r\n\r\nsigned text\r\n');
  const signature = Buffer.from('-----BEGIN PGP SIGNATURE-----\r\n\r\nAAAA\r\n-----END PGP SIGNATURE-----\r\n');
  const body = Buffer.concat(signedBody('S', entity, signature));
  const type = parseContentType(signedContentType('S', 'pgp-sha512'));
  assert.equal(type.params['micalg'], 'pgp-sha512');
  const read = readPgpMime(type, body);
  assert.ok(read?.kind === 'signed');
  assert.deepEqual(read.signedPart, entity);
  assert.equal(read.signature.toString('latin1'), signature.toString('latin1').slice(0, -2));
});

test('transfer-encoded OpenPGP parts are decoded', () => {
  const body = Buffer.from(
    '--B\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--B\r\nContent-Type: application/octet-stream\r\n' +
      `Content-Transfer-Encoding: base64\r\n\r\n${Buffer.from(ARMOR).toString('base64')}\r\n--B--\r\n`,
  );
  const read = readPgpMime(parseContentType(' multipart/encrypted; protocol="application/pgp-encrypted"; boundary=B'), body);
  assert.equal(read?.kind === 'encrypted' && read.armoredMessage.toString('latin1'), ARMOR);
});

test('malformed containers and foreign protocols', () => {
  const encrypted = parseContentType(' multipart/encrypted; protocol="application/pgp-encrypted"; boundary=B');
  assert.deepEqual(readPgpMime(encrypted, Buffer.from('no parts')), { kind: 'malformed', layer: 'encrypted', detail: 'fewer than two body parts' });
  assert.equal(readPgpMime(encrypted, Buffer.from('--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B\r\n\r\ny\r\n--B--'))?.kind, 'malformed');
  assert.equal(pgpMimeLayer(parseContentType(' multipart/signed; protocol="application/pkcs7-signature"; boundary=B')), null);
  assert.equal(readPgpMime(parseContentType(' multipart/mixed; boundary=B'), Buffer.alloc(0)), null);
});
