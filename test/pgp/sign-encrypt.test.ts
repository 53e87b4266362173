import assert from 'node:assert/strict';
import { test } from 'node:test';
import { enums, readMessage } from 'openpgp';
import { armorBytes } from '../../src/pgp/armor.ts';
import { decryptMessage, isAddressedTo, readEncrypted, verifyDecrypted } from '../../src/pgp/decrypt.ts';
import { PgpError } from '../../src/pgp/errors.ts';
import { signAndEncrypt } from '../../src/pgp/sign-encrypt.ts';
import { FIXED_NOW, testKeys } from '../engine/fixtures.ts';

const ENTITY = Buffer.from('Content-Type: text/plain\r\n\r\nline one\r\nline two\r\n\x00\xff binary-safe\r\n', 'latin1');

async function encryptTo(recipients: 'receiver' | 'stranger' | 'both', plaintext: Buffer[] = [ENTITY], compression: 'none' | 'zlib' = 'none'): Promise<Buffer> {
  const keys = await testKeys();
  const encryptionKeys =
    recipients === 'receiver' ? [keys.receiverSite.public] : recipients === 'stranger' ? [keys.stranger.public] : [keys.receiverSite.public, keys.stranger.public];
  const stream = await signAndEncrypt({
    plaintext: (async function* () { yield* plaintext; })(),
    signingKey: keys.senderSite.secret,
    encryptionKeys,
    date: FIXED_NOW,
    compression,
  });
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

test('one signed message in SEIPDv1 with v3 PKESKs and no compression: what GnuPG 2.2 reads', async () => {
  const keys = await testKeys();
  const binary = await encryptTo('both');
  const message = await readMessage({ binaryMessage: binary });
  const tags = [...message.packets].map((p) => (p.constructor as unknown as { tag: number }).tag);
  assert.deepEqual(tags, [enums.packet.publicKeyEncryptedSessionKey, enums.packet.publicKeyEncryptedSessionKey, enums.packet.symEncryptedIntegrityProtectedData]);
  for (const packet of message.packets) assert.equal((packet as unknown as { version: number }).version, packet === message.packets[2] ? 1 : 3);
  const decrypted = await message.decrypt([keys.receiverSite.secret]);
  const inner = [...decrypted.packets].map((p) => (p.constructor as unknown as { tag: number }).tag);
  assert.ok(!inner.includes(enums.packet.compressedData));
  assert.equal(inner[0], enums.packet.onePassSignature);
});

test('decrypts byte-exactly (CRLF, NUL, 8-bit) and the signature verifies against the site key', async () => {
  const keys = await testKeys();
  const encrypted = await readEncrypted(armorBytes('MESSAGE', await encryptTo('receiver', [ENTITY.subarray(0, 7), ENTITY.subarray(7)])));
  assert.equal(isAddressedTo(encrypted, [keys.receiverSite.secret]), true);
  assert.equal(isAddressedTo(encrypted, [keys.senderSite.secret]), false);
  const decrypted = await decryptMessage(encrypted, [keys.receiverSite.secret], FIXED_NOW, 1 << 20);
  assert.deepEqual(Buffer.from(decrypted.plaintext), ENTITY);
  const check = await verifyDecrypted(decrypted, [keys.stranger.public, keys.senderSite.public], FIXED_NOW);
  assert.equal(check.status, 'valid');
  assert.equal(check.status === 'valid' && check.fingerprint, keys.senderSite.public.getFingerprint().toUpperCase());
  const signingKey = await keys.senderSite.public.getSigningKey(undefined, FIXED_NOW);
  assert.equal(check.status === 'valid' && check.keyId, signingKey.getKeyID().toHex().toUpperCase());
});

test('compression on request: a compressed packet inside, same plaintext', async () => {
  const keys = await testKeys();
  const message = await readMessage({ binaryMessage: await encryptTo('receiver', [ENTITY], 'zlib') });
  const decrypted = await message.decrypt([keys.receiverSite.secret]);
  assert.deepEqual([...decrypted.packets].map((p) => (p.constructor as unknown as { tag: number }).tag), [enums.packet.compressedData]);
  const ours = await decryptMessage(await readEncrypted(armorBytes('MESSAGE', await encryptTo('receiver', [ENTITY], 'zlib'))), [keys.receiverSite.secret], FIXED_NOW, 1 << 20);
  assert.deepEqual(Buffer.from(ours.plaintext), ENTITY);
  assert.equal((await verifyDecrypted(ours, [keys.senderSite.public], FIXED_NOW)).status, 'valid');
});

test('a signature by a key the domain does not publish is an unknown signer', async () => {
  const keys = await testKeys();
  const encrypted = await readEncrypted(armorBytes('MESSAGE', await encryptTo('receiver')));
  const decrypted = await decryptMessage(encrypted, [keys.receiverSite.secret], FIXED_NOW, 1 << 20);
  const check = await verifyDecrypted(decrypted, [keys.stranger.public], FIXED_NOW);
  assert.equal(check.status, 'unknown-signer');
});

test('a flipped ciphertext byte fails decryption (integrity check), never yields plaintext', async () => {
  const keys = await testKeys();
  const binary = await encryptTo('receiver');
  for (const offset of [binary.length - 1, binary.length - 30, binary.length - 100]) {
    const changed = Buffer.from(binary);
    changed[offset] = (changed[offset] as number) ^ 0x01;
    const encrypted = await readEncrypted(armorBytes('MESSAGE', changed)).catch((e: unknown) => e);
    if (encrypted instanceof PgpError) continue;
    await assert.rejects(
      decryptMessage(encrypted as Awaited<ReturnType<typeof readEncrypted>>, [keys.receiverSite.secret], FIXED_NOW, 1 << 20),
      (e: unknown) => e instanceof PgpError && e.code === 'DECRYPT_FAILED',
    );
  }
});

test('garbage is MESSAGE_INVALID or ARMOR_INVALID', async () => {
  await assert.rejects(readEncrypted(armorBytes('MESSAGE', new Uint8Array([1, 2, 3]))), (e: unknown) => e instanceof PgpError && e.code === 'MESSAGE_INVALID');
  await assert.rejects(readEncrypted(Buffer.from('not armor')), (e: unknown) => e instanceof PgpError && e.code === 'ARMOR_INVALID');
});
