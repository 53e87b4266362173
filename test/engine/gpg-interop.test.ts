/**
 * Interoperability with the real GnuPG 2.2 (`gpg`), run offline in a temporary home: gpg opens
 * what this project produces, and this project opens what gpg produces. The tests fail, not skip,
 * when gpg cannot be started.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { applyHeaderEdits } from '../../src/engine/header-edits.ts';
import { openInbound, type InboundResult } from '../../src/engine/inbound.ts';
import { protectOutbound } from '../../src/engine/outbound.ts';
import { parseContentType } from '../../src/mime/content-fields.ts';
import { toCrlf } from '../../src/mime/crlf.ts';
import type { HeaderField } from '../../src/mime/header-fields.ts';
import { readPgpMime, type PgpMimeContainer } from '../../src/mime/pgp-mime-read.ts';
import { createGpgHome, type GpgHome, type GpgResult } from '../support/gpg.ts';
import { countingBoundary, FIXED_NOW, readCorpusMessage, testKeys, type RawMessage } from './fixtures.ts';

const TIMEOUT = { timeout: 120_000 };
let gpg: GpgHome;

before(async () => {
  const keys = await testKeys();
  gpg = await createGpgHome();
  await gpg.importKeys(keys.receiverSite.secretArmored);
  await gpg.importKeys(keys.senderSite.publicArmored);
  await gpg.importKeys(keys.gpgSite.secretArmored);
});

after(async () => {
  await gpg?.dispose();
});

/** Status keywords with their arguments, e.g. `VALIDSIG` → its fields. */
function statusOf(result: GpgResult, keyword: string): string[] | undefined {
  const line = result.status.find((l) => l === keyword || l.startsWith(keyword + ' '));
  return line?.split(' ').slice(1);
}

async function protect(message: RawMessage, encrypt: boolean, compression: 'none' | 'zlib' = 'none'): Promise<PgpMimeContainer> {
  const keys = await testKeys();
  const result = await protectOutbound({
    headers: message.headers,
    body: message.body,
    siteKey: keys.senderSite.secret,
    recipientKeys: encrypt ? [keys.receiverSite.public] : [],
    headerEncoding: 'latin1',
    now: () => FIXED_NOW,
    boundary: countingBoundary(),
    compression,
  });
  if (result.kind !== 'protected') assert.fail(result.kind);
  const wire = applyHeaderEdits(message.headers, result.headerEdits);
  const container = readPgpMime(parseContentType(wire.find((h) => h.name === 'Content-Type')?.value ?? ''), await result.body.toBuffer());
  if (container === null) assert.fail('not PGP/MIME');
  return container;
}

test('gpg decrypts our multipart/encrypted and verifies the site signature', TIMEOUT, async () => {
  const keys = await testKeys();
  const signer = keys.senderSite.public.getFingerprint().toUpperCase();
  const cases = [
    ['02-utf8-8bit.eml', 'none'],
    ['08-bare-lf-body.eml', 'none'],
    ['11-binary-part.eml', 'none'],
    ['10-nul-bytes.eml', 'zlib'],
  ] as const;
  for (const [name, compression] of cases) {
    const message = await readCorpusMessage(name, 'latin1');
    const container = await protect(message, true, compression);
    if (container.kind !== 'encrypted') assert.fail(container.kind);
    const result = await gpg.run(['--decrypt'], container.armoredMessage);
    assert.equal(result.code, 0, `${name}: ${result.stderr}`);
    assert.ok(statusOf(result, 'DECRYPTION_OKAY'), name);
    assert.ok(statusOf(result, 'GOODSIG'), name);
    const validsig = statusOf(result, 'VALIDSIG');
    // VALIDSIG <sig fpr> <date> <ts> <expire> <version> <reserved> <pk algo> <hash algo> <class> <primary fpr>
    assert.deepEqual(validsig?.slice(4, 9), ['4', '0', '22', '10', '00'], name);
    assert.equal(validsig?.[9], signer, name);
    assert.deepEqual(statusOf(result, 'DECRYPTION_INFO'), ['2', '9', '0'], name);
    assert.ok(result.stdout.toString('latin1').endsWith(toCrlf(message.body).toString('latin1')), name);
    assert.match(result.stdout.toString('latin1'), /^From: /, name);
  }
});

test('gpg verifies our multipart/signed, and reports BADSIG after one changed byte', TIMEOUT, async () => {
  const message = await readCorpusMessage('16-nested-multipart.eml', 'latin1');
  const container = await protect(message, false);
  if (container.kind !== 'signed') assert.fail(container.kind);
  const data = join(gpg.dir, 'signed-part');
  const signature = join(gpg.dir, 'signature.asc');
  await writeFile(data, container.signedPart);
  await writeFile(signature, container.signature);
  const good = await gpg.run(['--verify', signature, data]);
  assert.equal(good.code, 0, good.stderr);
  assert.ok(statusOf(good, 'GOODSIG'));
  assert.equal(statusOf(good, 'VALIDSIG')?.[8], '00');
  const altered = Buffer.from(container.signedPart);
  altered[altered.length - 10] = (altered[altered.length - 10] as number) ^ 0x01;
  await writeFile(data, altered);
  const bad = await gpg.run(['--verify', signature, data]);
  assert.notEqual(bad.code, 0);
  assert.ok(statusOf(bad, 'BADSIG'));
});

const FROM_GPG: HeaderField[] = [
  { name: 'From', value: ' Gina <gina@gpg-sender.test>' },
  { name: 'To', value: ' bob@receiver.test' },
  { name: 'Subject', value: ' ...' },
  { name: 'MIME-Version', value: ' 1.0' },
];
/** What a site signs: its protected header (the signed From names the author domain) and the entity. */
const ENTITY = Buffer.from(
  'From: Gina <gina@gpg-sender.test>\r\nTo: bob@receiver.test\r\nSubject: Von gpg\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nVon gpg: Grüße.\r\nZweite Zeile\r\n',
);

async function openFromGpg(message: RawMessage, publishedKey: 'gpg' | 'sender' = 'gpg'): Promise<InboundResult> {
  const keys = await testKeys();
  const published = publishedKey === 'gpg' ? keys.gpgSite.public : keys.senderSite.public;
  return openInbound({
    headers: message.headers,
    body: message.body,
    siteKeys: [keys.receiverSite.secret],
    senderKeys: async (domain) => (domain === 'gpg-sender.test' ? { keys: [published], dnssec: false } : null),
    authservId: 'mx.receiver.test',
    localDomains: ['receiver.test'],
    unwrapSigned: true,
    now: () => new Date(),
  });
}

/** Runs gpg on ENTITY and returns its armored output with CRLF line ends, as an MTA delivers it. */
async function gpgArmor(args: string[], input: Buffer = ENTITY): Promise<Buffer> {
  const result = await gpg.run(['--armor', ...args], input);
  assert.equal(result.code, 0, result.stderr);
  return toCrlf(result.stdout);
}

function multipartEncrypted(armored: Buffer): RawMessage {
  return {
    headers: [...FROM_GPG, { name: 'Content-Type', value: ' multipart/encrypted; protocol="application/pgp-encrypted"; boundary="gpg"' }],
    body: Buffer.concat([
      Buffer.from('--gpg\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--gpg\r\nContent-Type: application/octet-stream\r\n\r\n'),
      armored,
      Buffer.from('\r\n--gpg--\r\n'),
    ]),
  };
}

function multipartSigned(entity: Buffer, armoredSignature: Buffer): RawMessage {
  return {
    headers: [...FROM_GPG, { name: 'Content-Type', value: ' multipart/signed; micalg=pgp-sha512; protocol="application/pgp-signature"; boundary="gpg"' }],
    body: Buffer.concat([
      Buffer.from('--gpg\r\n'),
      entity,
      Buffer.from('\r\n--gpg\r\nContent-Type: application/pgp-signature\r\n\r\n'),
      armoredSignature,
      Buffer.from('\r\n--gpg--\r\n'),
    ]),
  };
}

test('we open PGP/MIME that gpg signed and encrypted (compressed and uncompressed)', TIMEOUT, async () => {
  const keys = await testKeys();
  for (const compression of [[], ['-z', '0']]) {
    const armored = await gpgArmor(['--sign', '--encrypt', '-u', 'postmaster@gpg-sender.test', '-r', 'postmaster@receiver.test', ...compression]);
    const result = await openFromGpg(multipartEncrypted(armored));
    assert.ok(result.kind === 'opened', JSON.stringify(result));
    assert.equal(result.verdict.result, 'pass');
    assert.equal(result.verdict.fingerprint, keys.gpgSite.public.getFingerprint().toUpperCase());
    assert.equal((await result.body.toBuffer()).toString('utf8'), 'Von gpg: Grüße.\r\nZweite Zeile\r\n');
    const contentType = result.headerEdits.find((e) => e.name === 'Content-Type');
    assert.equal(contentType?.value, ' text/plain; charset=utf-8');
  }
});

test('we verify gpg detached signatures (binary and text mode) in multipart/signed', TIMEOUT, async () => {
  for (const mode of [[], ['--textmode']]) {
    const signature = await gpgArmor(['--detach-sign', '-u', 'postmaster@gpg-sender.test', ...mode]);
    const result = await openFromGpg(multipartSigned(ENTITY, signature));
    assert.ok(result.kind === 'opened', `${mode.join(' ')}: ${JSON.stringify(result)}`);
    assert.equal(result.verdict.result, 'pass');
    assert.equal((await result.body.toBuffer()).toString('utf8'), 'Von gpg: Grüße.\r\nZweite Zeile\r\n');
  }
});

test('gpg-made messages: a changed signed byte fails, a key the domain does not publish fails, another recipient is left alone', TIMEOUT, async () => {
  const signature = await gpgArmor(['--detach-sign', '-u', 'postmaster@gpg-sender.test']);
  const altered = Buffer.from(ENTITY);
  altered[altered.length - 4] = 0x58;
  const tampered = await openFromGpg(multipartSigned(altered, signature));
  assert.ok(tampered.kind === 'annotated');
  assert.deepEqual([tampered.verdict.result, tampered.verdict.reason], ['fail', 'bad-signature']);

  const encrypted = multipartEncrypted(await gpgArmor(['--sign', '--encrypt', '-u', 'postmaster@gpg-sender.test', '-r', 'postmaster@receiver.test']));
  const wrongKey = await openFromGpg(encrypted, 'sender');
  assert.ok(wrongKey.kind === 'annotated');
  assert.deepEqual([wrongKey.verdict.result, wrongKey.verdict.reason], ['fail', 'signer-not-published']);

  const toSomeoneElse = multipartEncrypted(await gpgArmor(['--sign', '--encrypt', '-u', 'postmaster@gpg-sender.test', '-r', 'postmaster@gpg-sender.test']));
  assert.deepEqual(await openFromGpg(toSomeoneElse), { kind: 'unchanged', reason: 'not-for-us', headerEdits: [] });
});
