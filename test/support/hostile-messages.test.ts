/**
 * The hostile payloads shared by the security tests and the benchmark are what they claim to be: the PKESK flood
 * has exactly the asked number of key packets, every one naming our encryption key, then the encrypted data; the
 * header flood and the bomb have the exact entity bytes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { enums, generateKey, readMessage } from 'openpgp';
import { bombEntity, headerFloodEntity, sessionKeyPacketFlood } from './hostile-messages.ts';

test('a PKESK flood: the asked number of packets, all naming our encryption subkey, then the encrypted data', async () => {
  const key = async (email: string) => (await generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ email }], format: 'object' })).publicKey;
  const [ours, stranger] = await Promise.all([key('postmaster@ours.test'), key('someone@stranger.test')]);
  const flood = await sessionKeyPacketFlood(ours, stranger, 25);
  const packets = [...(await readMessage({ binaryMessage: flood })).packets];
  const tags = packets.map((p) => (p.constructor as unknown as { tag: number }).tag);
  assert.deepEqual(tags, [...Array(25).fill(enums.packet.publicKeyEncryptedSessionKey), enums.packet.symEncryptedIntegrityProtectedData]);
  const ourId = (await ours.getEncryptionKey()).getKeyID().toHex();
  for (const packet of packets.slice(0, 25)) assert.equal((packet as unknown as { publicKeyID: { toHex(): string } }).publicKeyID.toHex(), ourId);
});

test('the header flood and the bomb entities, byte for byte', () => {
  assert.equal(headerFloodEntity(2).toString('latin1'), 'From: a@attacker.test\r\nContent-X0: v0\r\nContent-X1: v1\r\n\r\nhi\r\n');
  assert.deepEqual(bombEntity(3), Buffer.from('Content-Type: text/plain\r\n\r\nAAA'));
});
