/**
 * The native streamed sign+encrypt against the real GnuPG 2.2, offline: partial lengths at every
 * boundary, odd chunkings and several recipients decrypt with a good site signature, and what a
 * failed input stream left behind is refused. Fails, never skips, when gpg cannot run.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fastStreamSignEncrypt } from '../../../src/pgp/fast/streaming-sign-encrypt.ts';
import { FIXED_NOW } from '../../engine/fixtures.ts';
import { fastTestKeys, publicKeys, type FastTestKeys } from './fixtures.ts';
import { assertDecryptedAndVerified, createRecipientHomes, statusOf, type RecipientHomes } from './gpg-check.ts';
import { LITERAL_EDGE_SIZES, PART, plaintext, reusingChunks, sizeForSeipdBody, streamed } from './streaming-fixtures.ts';

const TIMEOUT = { timeout: 600_000 };
let keys: FastTestKeys;
let homes: RecipientHomes | undefined;

before(async () => {
  keys = await fastTestKeys();
  homes = await createRecipientHomes([keys.receiver, keys.stranger, keys.gpgSite, keys.rsa, keys.fifth], keys.sender);
});

after(async () => {
  await homes?.dispose();
});

test('gpg decrypts and verifies every size around 512 octets and the literal and SEIPD part boundaries', TIMEOUT, async () => {
  const seipdEdges: number[] = [];
  for (const body of [PART - 1, PART, PART + 1]) seipdEdges.push(await sizeForSeipdBody(body));
  for (const size of [0, 1, 511, 512, 513, ...LITERAL_EDGE_SIZES, ...seipdEdges]) {
    const data = plaintext(size);
    const binary = await streamed(data, { deterministicSignatures: true, chunks: [4096, 65_537, 7] });
    const result = await (homes ?? assert.fail()).of(keys.receiver).run(['--decrypt'], binary);
    assertDecryptedAndVerified(result, data, keys.sender, `${size} octets`);
  }
});

test('gpg: a few MiB in odd chunks (1, 7, 65 537, ...) to five recipients (RSA among them), salted signature, each decrypts', TIMEOUT, async () => {
  const recipients = [keys.receiver, keys.stranger, keys.gpgSite, keys.rsa, keys.fifth];
  const data = plaintext(3 * 1024 * 1024 + 777);
  const binary = await streamed(data, { recipients: publicKeys(recipients), fixedSessionKey: false, chunks: [1, 7, 65_537, 3, PART + 9, 4096] });
  for (const recipient of recipients) {
    const result = await (homes ?? assert.fail()).of(recipient).run(['--decrypt'], binary);
    assertDecryptedAndVerified(result, data, keys.sender, String(recipient.public.getUserIDs()[0]));
  }
});

test('gpg refuses what a failed input stream left behind: no decryption, no good signature', TIMEOUT, async () => {
  for (const before of [1000, 2 * PART + 100]) {
    const error = new Error('body read failed');
    const data = (async function* () {
      yield* reusingChunks(plaintext(before), [65_536]);
      throw error;
    })();
    const stream = await fastStreamSignEncrypt({ data, signingKey: keys.sender.secret, encryptionKeys: [keys.receiver.public], date: FIXED_NOW });
    const written: Uint8Array[] = [];
    const consumed = (async () => {
      for await (const chunk of stream ?? assert.fail('declined')) written.push(chunk);
    })();
    await assert.rejects(consumed, (e: unknown) => e === error);
    const result = await (homes ?? assert.fail()).of(keys.receiver).run(['--decrypt'], Buffer.concat(written));
    const where = `${before} octets, then the failure`;
    // With less than a part written nothing but the PKESK is out, and gpg finds nothing to decrypt.
    if (result.code === 0) assert.equal(result.stdout.length, 0, where);
    if (before > PART) assert.ok(statusOf(result, 'DECRYPTION_FAILED'), where);
    assert.equal(statusOf(result, 'DECRYPTION_OKAY'), undefined, where);
    assert.equal(statusOf(result, 'GOODSIG'), undefined, where);
  }
});
