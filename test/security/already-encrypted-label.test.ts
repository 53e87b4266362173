/**
 * Attack: mail labelled as already encrypted, or holding something that only looks like ciphertext,
 * must not leave in clear to a domain whose policy requires encryption. Whatever the label says,
 * only real ciphertext passes unchanged; everything else is wrapped (signed and encrypted) with
 * its body, byte for byte, inside.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { protectOutbound, type OutboundResult } from '../../src/engine/outbound.ts';
import { parseContentType } from '../../src/mime/content-fields.ts';
import type { HeaderField } from '../../src/mime/header-fields.ts';
import { readPgpMime } from '../../src/mime/pgp-mime-read.ts';
import { armorBytes, dearmor } from '../../src/pgp/armor.ts';
import { decryptMessage, readEncrypted } from '../../src/pgp/decrypt.ts';
import { countingBoundary, FIXED_NOW, testKeys } from '../engine/fixtures.ts';
import { cmsSamples, PGP_MIME_TYPE, pgpMimeBody, pgpSamples, PLAIN_TEXT, smimeBody } from '../support/encrypted-mail.ts';
import { createGpgHome, type GpgHome } from '../support/gpg.ts';

const HEADERS: HeaderField[] = [
  { name: 'From', value: ' Alice <alice@sender.test>' },
  { name: 'To', value: ' bob@receiver.test' },
  { name: 'Subject', value: ' Plans' },
  { name: 'MIME-Version', value: ' 1.0' },
];

function withType(value: string, encoding?: string): HeaderField[] {
  const fields = [...HEADERS, { name: 'Content-Type', value: ' ' + value }];
  return encoding === undefined ? fields : [...fields, { name: 'Content-Transfer-Encoding', value: ' ' + encoding }];
}

const PGP_MIME = withType(PGP_MIME_TYPE.trim());
const INLINE = withType('text/plain; charset=us-ascii', '7bit');

async function protect(headers: HeaderField[], body: Buffer): Promise<OutboundResult> {
  const keys = await testKeys();
  return protectOutbound({ headers, body, siteKey: keys.senderSite.secret, recipientKeys: [keys.receiverSite.public], now: () => FIXED_NOW, boundary: countingBoundary() });
}

/** Asserts the message was wrapped: encrypted to the receiving site, the original body exactly inside, none of it outside. */
async function assertWrapped(headers: HeaderField[], body: Buffer): Promise<void> {
  const keys = await testKeys();
  const result = await protect(headers, body);
  assert.ok(result.kind === 'protected', `expected protected, got ${JSON.stringify(result)}`);
  assert.equal(result.protection, 'signed+encrypted');
  const contentType = result.headerEdits.find((e) => e.name === 'Content-Type');
  assert.deepEqual(contentType, { op: 'change', name: 'Content-Type', index: 1, value: ' multipart/encrypted; protocol="application/pgp-encrypted";\r\n boundary="=_test_1"' });
  const output = await result.body.toBuffer();
  assert.equal(output.includes(PLAIN_TEXT), false);
  const container = readPgpMime(parseContentType(contentType.value), output);
  assert.ok(container?.kind === 'encrypted');
  const inner = Buffer.from((await decryptMessage(await readEncrypted(container.armoredMessage), [keys.receiverSite.secret], FIXED_NOW, 1 << 26)).plaintext);
  const separator = inner.indexOf('\r\n\r\n');
  assert.ok(inner.subarray(separator + 4).equals(body), 'the original body, byte for byte, inside');
}

async function assertUnchanged(headers: HeaderField[], body: Buffer, format: string): Promise<void> {
  assert.deepEqual(await protect(headers, body), { kind: 'unchanged', reason: 'already-encrypted', format });
}

/** Drops the last `octets` octets of an armored message's packets and armors the rest again. */
function truncated(armored: Buffer, octets: number): Buffer {
  const binary = dearmor('MESSAGE', armored);
  return armorBytes('MESSAGE', binary.subarray(0, binary.length - octets));
}

let gpg: GpgHome;
/** Made by GnuPG: encrypted to the receiving site, signed only, and stored (compressed literal data). */
let gpgMade: { encrypted: Buffer; signedOnly: Buffer; stored: Buffer };

before(async () => {
  const keys = await testKeys();
  gpg = await createGpgHome();
  await gpg.importKeys(keys.receiverSite.publicArmored);
  await gpg.importKeys(keys.gpgSite.secretArmored);
  const run = async (args: string[]): Promise<Buffer> => {
    const result = await gpg.run(['--armor', ...args], PLAIN_TEXT);
    assert.equal(result.code, 0, result.stderr);
    // Mail travels with CRLF line ends; gpg writes LF.
    return Buffer.from(result.stdout.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
  };
  gpgMade = {
    encrypted: await run(['--encrypt', '--recipient', keys.receiverSite.public.getFingerprint()]),
    signedOnly: await run(['--sign', '--local-user', keys.gpgSite.public.getFingerprint()]),
    stored: await run(['--store']),
  };
});

after(async () => {
  await gpg?.dispose();
});

test('multipart/encrypted holding plain text is wrapped', async () => {
  await assertWrapped(PGP_MIME, pgpMimeBody(PLAIN_TEXT));
  await assertWrapped(PGP_MIME, pgpMimeBody(Buffer.concat([Buffer.from('-----BEGIN PGP MESSAGE-----\r\n\r\n'), PLAIN_TEXT, Buffer.from('-----END PGP MESSAGE-----\r\n')])));
});

test('multipart/encrypted whose armored block is only signed is wrapped', async () => {
  await assertWrapped(PGP_MIME, pgpMimeBody((await pgpSamples()).signedOnly));
  await assertWrapped(PGP_MIME, pgpMimeBody(gpgMade.signedOnly));
});

test('pkcs7-mime labelled enveloped-data holding signed data is wrapped', async () => {
  await assertWrapped(withType('application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m', 'base64'), smimeBody((await cmsSamples()).signed));
});

test('pkcs7-mime without smime-type holding signed data is wrapped', async () => {
  await assertWrapped(withType('application/pkcs7-mime; name=smime.p7m', 'base64'), smimeBody((await cmsSamples()).signed));
  await assertWrapped(withType('application/x-pkcs7-mime', 'base64'), smimeBody((await cmsSamples()).signed));
});

test('an inline signed-only PGP MESSAGE block is wrapped', async () => {
  await assertWrapped(INLINE, (await pgpSamples()).signedOnly);
  await assertWrapped(INLINE, gpgMade.signedOnly);
});

test('a compressed-only PGP MESSAGE block is wrapped', async () => {
  await assertWrapped(INLINE, (await pgpSamples()).compressedOnly);
  await assertWrapped(INLINE, gpgMade.stored);
  await assertWrapped(PGP_MIME, pgpMimeBody(gpgMade.stored));
});

test('garbage base64 is wrapped', async () => {
  const garbage = Buffer.from('VGhlIGxhdW5jaCBpcyBvbiBGcmlkYXku\r\n!!not base64 at all!!\r\n');
  await assertWrapped(withType('application/pkcs7-mime; smime-type=enveloped-data', 'base64'), garbage);
  await assertWrapped(PGP_MIME, pgpMimeBody(Buffer.concat([Buffer.from('-----BEGIN PGP MESSAGE-----\r\n\r\n'), garbage, Buffer.from('-----END PGP MESSAGE-----\r\n')])));
  await assertWrapped(INLINE, Buffer.from('-----BEGIN PGP MESSAGE-----\r\n\r\nVGhlIGxhdW5jaCBpcyBvbiBGcmlkYXku\r\n-----END PGP MESSAGE-----\r\n'));
});

test('truncated packets are wrapped', async () => {
  const pgp = await pgpSamples();
  await assertWrapped(PGP_MIME, pgpMimeBody(truncated(pgp.encrypted, 1)));
  await assertWrapped(INLINE, truncated(gpgMade.encrypted, 1));
  await assertWrapped(INLINE, truncated(pgp.encrypted, dearmor('MESSAGE', pgp.encrypted).length - 20));
  const cms = await cmsSamples();
  await assertWrapped(withType('application/pkcs7-mime; smime-type=enveloped-data', 'base64'), smimeBody(cms.enveloped.subarray(0, cms.enveloped.length - 1)));
});

test('genuine PGP/MIME (openpgp.js and gpg), inline PGP and S/MIME enveloped data stay unchanged', async () => {
  const pgp = await pgpSamples();
  const cms = await cmsSamples();
  await assertUnchanged(PGP_MIME, pgpMimeBody(pgp.encrypted), 'pgp-mime');
  await assertUnchanged(PGP_MIME, pgpMimeBody(gpgMade.encrypted), 'pgp-mime');
  await assertUnchanged(INLINE, pgp.encrypted, 'pgp-inline');
  await assertUnchanged(INLINE, gpgMade.encrypted, 'pgp-inline');
  await assertUnchanged(withType('application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m', 'base64'), smimeBody(cms.enveloped), 'smime');
  await assertUnchanged(withType('application/pkcs7-mime; smime-type=authEnveloped-data; name=smime.p7m', 'base64'), smimeBody(cms.authEnveloped), 'smime');
});
