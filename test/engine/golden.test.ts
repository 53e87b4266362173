/**
 * Golden files: with the clock, boundaries and signature salt fixed, the output is compared byte
 * for byte. Sign-only output is fully deterministic (Ed25519 signatures are); encrypted output is
 * compared with its random ciphertext lines masked, and its decrypted payload in full.
 * Set MUSE_UPDATE_GOLDEN=1 to rewrite the files after an intended format change.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { applyHeaderEdits } from '../../src/engine/header-edits.ts';
import { openInbound } from '../../src/engine/inbound.ts';
import { protectOutbound } from '../../src/engine/outbound.ts';
import { parseContentType } from '../../src/mime/content-fields.ts';
import { readPgpMime } from '../../src/mime/pgp-mime-read.ts';
import { decryptMessage, readEncrypted } from '../../src/pgp/decrypt.ts';
import { countingBoundary, FIXED_NOW, joinMessage, readCorpusMessage, testKeys, type RawMessage } from './fixtures.ts';

const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), 'golden');

async function matchGolden(name: string, actual: Buffer | string): Promise<void> {
  const bytes = typeof actual === 'string' ? Buffer.from(actual, 'utf8') : actual;
  const path = join(GOLDEN, name);
  if (process.env['MUSE_UPDATE_GOLDEN'] === '1') await writeFile(path, bytes);
  assert.deepEqual(bytes, await readFile(path), name);
}

async function protect(message: RawMessage, encrypt: boolean) {
  const keys = await testKeys();
  const result = await protectOutbound({
    headers: message.headers,
    body: message.body,
    siteKey: keys.senderSite.secret,
    recipientKeys: encrypt ? [keys.receiverSite.public] : [],
    headerEncoding: 'latin1',
    now: () => FIXED_NOW,
    boundary: countingBoundary('=_golden_'),
    deterministicSignatures: true,
  });
  if (result.kind !== 'protected') assert.fail(result.kind);
  const wire: RawMessage = { headers: applyHeaderEdits(message.headers, result.headerEdits), body: await result.body.toBuffer() };
  return { result, wire };
}

async function open(wire: RawMessage) {
  const keys = await testKeys();
  const result = await openInbound({
    headers: wire.headers,
    body: wire.body,
    siteKeys: [keys.receiverSite.secret],
    senderKeys: async () => ({ keys: [keys.senderSite.public], dnssec: true }),
    authservId: 'mx.receiver.test',
    localDomains: ['receiver.test'],
    unwrapSigned: true,
    headerEncoding: 'latin1',
    now: () => FIXED_NOW,
  });
  if (result.kind !== 'opened') assert.fail(result.kind);
  return { result, restored: joinMessage(applyHeaderEdits(wire.headers, result.headerEdits), await result.body.toBuffer(), 'latin1') };
}

test('sign-only output is byte-identical to the golden file, and so is the opened message', async () => {
  const message = await readCorpusMessage('16-nested-multipart.eml', 'latin1');
  const { result, wire } = await protect(message, false);
  await matchGolden('signed-edits.json', JSON.stringify(result.headerEdits, null, 2) + '\n');
  await matchGolden('signed.eml', joinMessage(wire.headers, wire.body, 'latin1'));
  const opened = await open(wire);
  await matchGolden('signed-inbound-edits.json', JSON.stringify(opened.result.headerEdits, null, 2) + '\n');
  await matchGolden('signed-opened.eml', opened.restored);
});

test('encrypted output matches the golden structure, payload and opened message', async () => {
  const keys = await testKeys();
  const message = await readCorpusMessage('02-utf8-8bit.eml', 'latin1');
  const { result, wire } = await protect(message, true);
  await matchGolden('encrypted-edits.json', JSON.stringify(result.headerEdits, null, 2) + '\n');
  const masked = joinMessage(wire.headers, wire.body, 'latin1')
    .toString('latin1')
    .replace(/(-----BEGIN PGP MESSAGE-----\r\n\r\n)[\s\S]*?(-----END PGP MESSAGE-----)/, '$1<ciphertext>\r\n$2');
  await matchGolden('encrypted-masked.eml', Buffer.from(masked, 'latin1'));
  const contentType = wire.headers.find((h) => h.name === 'Content-Type')?.value ?? '';
  const container = readPgpMime(parseContentType(contentType), wire.body);
  if (container?.kind !== 'encrypted') assert.fail('not multipart/encrypted');
  const payload = await decryptMessage(await readEncrypted(container.armoredMessage), [keys.receiverSite.secret], FIXED_NOW, 1 << 20);
  await matchGolden('encrypted-payload.eml', Buffer.from(payload.plaintext));
  const opened = await open(wire);
  await matchGolden('encrypted-inbound-edits.json', JSON.stringify(opened.result.headerEdits, null, 2) + '\n');
  await matchGolden('encrypted-opened.eml', opened.restored);
});
