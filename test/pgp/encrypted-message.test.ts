import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMessage, encrypt, readMessage, sign } from 'openpgp';
import { armorBytes, dearmor } from '../../src/pgp/armor.ts';
import { EncryptedMessageShape, isEncryptedArmor, isEncryptedPackets } from '../../src/pgp/encrypted-message.ts';
import { packet } from '../../src/pgp/fast/packet-framing.ts';
import { FIXED_NOW, testKeys } from '../engine/fixtures.ts';
import { PLAIN_TEXT, pgpSamples } from '../support/encrypted-mail.ts';

const PKESK = packet(1, Buffer.from([3, 1, 2, 3, 4, 5, 6, 7, 8, 18, 0xaa]));
const SKESK = packet(3, Buffer.from([4, 9, 3, 8, 0xbb]));
const SEIPD = packet(18, Buffer.concat([Buffer.from([1]), Buffer.alloc(40, 0xcc)]));
const LITERAL = packet(11, Buffer.from('b\0\0\0\0\0hello'));

/** An old-format packet (RFC 9580 §4.2.2) with the length type given: 0, 1 or 2 (one, two, four octets) or 3 (to the end). */
function oldPacket(tag: number, body: Buffer, lengthType: 0 | 1 | 2 | 3): Buffer {
  const size = lengthType === 3 ? 0 : 1 << lengthType;
  const length = Buffer.alloc(size);
  if (size > 0) length.writeUIntBE(body.length, 0, size);
  return Buffer.concat([Buffer.from([0x80 | (tag << 2) | lengthType]), length, body]);
}

/** A new-format data packet in partial-length parts of 2^`exponents` octets, then a final definite part. */
function partialPacket(tag: number, first: number, exponents: readonly number[], last: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from([0xc0 | tag])];
  exponents.forEach((e, i) => parts.push(Buffer.from([0xe0 | e]), Buffer.alloc(2 ** e, i === 0 ? first : 0xdd)));
  parts.push(Buffer.from([last.length]), last);
  return Buffer.concat(parts);
}

test('session keys then one encrypted-data packet is encrypted, in every packet format', () => {
  assert.equal(isEncryptedPackets(Buffer.concat([PKESK, SEIPD])), true);
  assert.equal(isEncryptedPackets(Buffer.concat([SKESK, PKESK, PKESK, SEIPD])), true);
  assert.equal(isEncryptedPackets(Buffer.concat([PKESK, packet(9, Buffer.alloc(30, 0xee))])), true);
  assert.equal(isEncryptedPackets(Buffer.concat([PKESK, packet(20, Buffer.from([1, 9, 2, 0, 0, 0]))])), true);
  assert.equal(isEncryptedPackets(Buffer.concat([PKESK, packet(18, Buffer.from([2, 9, 2, 16]))])), true);
  const oldKey = oldPacket(1, Buffer.from([3, 1, 2, 3, 4, 5, 6, 7, 8, 18, 0xaa]), 1);
  assert.equal(isEncryptedPackets(Buffer.concat([oldKey, oldPacket(9, Buffer.alloc(300, 1), 2)])), true);
  assert.equal(isEncryptedPackets(Buffer.concat([oldKey, oldPacket(9, Buffer.alloc(10, 1), 3)])), true);
  assert.equal(isEncryptedPackets(Buffer.concat([PKESK, partialPacket(18, 1, [9, 10], Buffer.alloc(7, 2))])), true);
  assert.equal(isEncryptedPackets(Buffer.concat([PKESK, partialPacket(18, 1, [9], Buffer.alloc(0))])), true);
});

test('anything else is not: no session key, no data, other packets, trailing octets, truncation', () => {
  const no = (data: Buffer, why: string) => assert.equal(isEncryptedPackets(data), false, why);
  no(Buffer.alloc(0), 'empty');
  no(SEIPD, 'no session key');
  no(PKESK, 'no encrypted data');
  no(Buffer.concat([PKESK, PKESK]), 'only session keys');
  no(LITERAL, 'literal data');
  no(packet(8, Buffer.from([1, 0x78, 0x9c])), 'compressed data');
  no(Buffer.concat([packet(4, Buffer.alloc(13, 3)), LITERAL, packet(2, Buffer.alloc(20, 4))]), 'one-pass signed');
  no(Buffer.concat([PKESK, SEIPD, LITERAL]), 'a packet after the encrypted data');
  no(Buffer.concat([PKESK, SEIPD, SEIPD]), 'two encrypted-data packets');
  no(Buffer.concat([PKESK, SEIPD, Buffer.from([0])]), 'one octet after the encrypted data');
  no(Buffer.concat([PKESK, LITERAL, SEIPD]), 'a literal packet in between');
  no(Buffer.concat([packet(10, Buffer.from('PGP')), PKESK, SEIPD]), 'a marker packet');
  no(Buffer.concat([PKESK, SEIPD]).subarray(0, PKESK.length + SEIPD.length - 1), 'truncated by one octet');
  no(Buffer.concat([PKESK, SEIPD.subarray(0, 1)]), 'truncated in the header');
  no(Buffer.concat([PKESK, Buffer.from([0xd2, 0xff, 0, 0])]), 'truncated five-octet length');
  no(Buffer.concat([PKESK, partialPacket(18, 1, [9], Buffer.alloc(3)).subarray(0, 300)]), 'truncated partial part');
  no(Buffer.concat([PKESK, packet(18, Buffer.alloc(0))]), 'empty encrypted data');
  no(Buffer.concat([PKESK, packet(18, Buffer.from([3, 0, 0]))]), 'SEIPD version 3');
  no(Buffer.concat([packet(1, Buffer.from([4, 0, 0])), SEIPD]), 'PKESK version 4');
  no(Buffer.concat([packet(3, Buffer.from([3, 0, 0])), SEIPD]), 'SKESK version 3');
  no(Buffer.concat([partialPacket(1, 3, [9], Buffer.alloc(2)), SEIPD]), 'partial length on a session-key packet');
  no(Buffer.concat([oldPacket(1, Buffer.from([3, 1]), 3)]), 'indeterminate length on a session-key packet');
  no(Buffer.concat([PKESK, Buffer.from('hello')]), 'text, not a packet');
});

test('the answer does not depend on how the octets are chunked, and stops early when it can', () => {
  const message = Buffer.concat([SKESK, PKESK, partialPacket(18, 1, [9], Buffer.alloc(3, 5))]);
  for (let cut = 0; cut <= message.length; cut++) {
    const shape = new EncryptedMessageShape();
    assert.equal(shape.update(message.subarray(0, cut)) && shape.update(message.subarray(cut)), true);
    assert.equal(shape.finish(), true, `cut at ${cut}`);
  }
  const oneByOne = new EncryptedMessageShape();
  for (const octet of message) oneByOne.update(Buffer.from([octet]));
  assert.equal(oneByOne.finish(), true);
  const signed = new EncryptedMessageShape();
  assert.equal(signed.update(packet(4, Buffer.alloc(13))), false);
  assert.equal(signed.update(SEIPD), false);
  assert.equal(signed.finish(), false);
});

test('openpgp.js: encrypted to a key or a password is encrypted; signed-only or compressed-only is not', async () => {
  const keys = await testKeys();
  const message = await createMessage({ binary: Buffer.from('the quarterly numbers\r\n') });
  const toKey = await encrypt({ message, encryptionKeys: keys.receiverSite.public, signingKeys: keys.senderSite.secret, date: FIXED_NOW, format: 'binary' });
  assert.equal(isEncryptedPackets(toKey), true);
  const toPassword = await encrypt({ message, passwords: 'secret', format: 'binary' });
  assert.equal(isEncryptedPackets(toPassword), true);
  const signedOnly = await sign({ message, signingKeys: keys.senderSite.secret, date: FIXED_NOW, format: 'binary' });
  assert.equal(isEncryptedPackets(signedOnly), false);
  const compressed = await readMessage({ binaryMessage: dearmor('MESSAGE', (await pgpSamples()).compressedOnly) });
  // Readable by anyone: the library unwraps it without any key.
  assert.deepEqual(Buffer.from(compressed.getLiteralData() as Uint8Array), PLAIN_TEXT);
  assert.equal(isEncryptedPackets(compressed.write() as Uint8Array), false);
  // Armored: the same verdicts, and the armor itself must be intact.
  assert.equal(isEncryptedArmor(armorBytes('MESSAGE', toKey)), true);
  assert.equal(isEncryptedArmor(armorBytes('MESSAGE', signedOnly)), false);
  assert.equal(isEncryptedArmor(armorBytes('SIGNATURE', toKey)), false);
  const damaged = armorBytes('MESSAGE', toKey);
  damaged[damaged.length - 40] = damaged[damaged.length - 40] === 0x41 ? 0x42 : 0x41;
  assert.equal(isEncryptedArmor(damaged), false);
  assert.equal(isEncryptedArmor(Buffer.concat([armorBytes('MESSAGE', toKey), Buffer.from('PS: and in clear\r\n')])), false);
});
