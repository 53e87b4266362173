/**
 * The native sign+encrypt path against openpgp.js, the reference: every message shape and
 * recipient set decrypts with each recipient's key and verifies as signed by the site key, byte
 * for byte; the packets are those openpgp.js writes (same signature bytes when deterministic);
 * and no single changed byte ever yields altered plaintext or a good signature over it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { decryptSessionKeys, enums, readMessage, verify, type PrivateKey, type PublicKey } from 'openpgp';
import type { MessageData } from '../../../src/pgp/fast/literal-data.ts';
import { fastSignEncrypt } from '../../../src/pgp/fast/sign-encrypt.ts';
import { signAndEncrypt } from '../../../src/pgp/sign-encrypt.ts';
import { FIXED_NOW } from '../../engine/fixtures.ts';
import { fastTestKeys, openSigned, publicKeys, recipientSets, SHAPES } from './fixtures.ts';
import { decryptSeipd, walkPackets } from './packet-walk.ts';

const TIMEOUT = { timeout: 300_000 };

async function fast(data: MessageData, recipients: readonly PublicKey[], deterministicSignatures = false): Promise<Uint8Array> {
  const signingKey = (await fastTestKeys()).sender.secret;
  const out = await fastSignEncrypt({ data, signingKey, encryptionKeys: recipients, date: FIXED_NOW, deterministicSignatures });
  if (out === null) assert.fail('the native path declined supported keys');
  return out;
}

/** Decrypts with `key`, requiring a good signature by the sender site key; returns the plaintext. */
async function openWith(binary: Uint8Array, key: PrivateKey): Promise<Buffer> {
  return (await openSigned(binary, key, (await fastTestKeys()).sender.public)).data;
}

test('every shape to 1, 2, 5 recipients and RSA-3072: each recipient decrypts byte-exactly, the signature verifies', TIMEOUT, async () => {
  const keys = await fastTestKeys();
  for (const set of recipientSets(keys)) {
    for (const shape of SHAPES) {
      const binary = await fast(shape.data, publicKeys(set.recipients));
      for (const recipient of set.recipients) {
        const where = `${set.name}, ${shape.name}, ${recipient.public.getUserIDs()[0]}`;
        assert.deepEqual(await openWith(binary, recipient.secret), shape.data, where);
      }
    }
  }
});

test('the packets are v3 PKESKs then SEIPD v1 holding one-pass signature, literal data, signature and MDC: no compression', async () => {
  const keys = await fastTestKeys();
  const sessionKey = { data: new Uint8Array(32).fill(0x5a), algorithm: 'aes256' as const };
  const data = Buffer.from('packets');
  const encryptionKeys = [keys.receiver.public, keys.rsa.public];
  const binary = await fastSignEncrypt({ data, signingKey: keys.sender.secret, encryptionKeys, date: FIXED_NOW, sessionKey });
  if (binary === null) assert.fail('declined');
  const outer = walkPackets(binary);
  assert.deepEqual(outer.map((p) => [p.tag, binary[p.offset + p.headerLength]]), [
    [enums.packet.publicKeyEncryptedSessionKey, 3],
    [enums.packet.publicKeyEncryptedSessionKey, 3],
    [enums.packet.symEncryptedIntegrityProtectedData, 1],
  ]);
  const seipd = outer[2] ?? assert.fail();
  const plain = decryptSeipd(binary.subarray(seipd.offset + seipd.headerLength), sessionKey.data);
  assert.deepEqual(plain.subarray(14, 16), plain.subarray(16, 18), 'prefix check octets');
  const inner = walkPackets(plain.subarray(18));
  const { onePassSignature, literalData, signature, modificationDetectionCode } = enums.packet;
  assert.deepEqual(inner.map((p) => p.tag), [onePassSignature, literalData, signature, modificationDetectionCode]);
  const literal = inner[1] ?? assert.fail();
  const body = plain.subarray(18 + literal.offset + literal.headerLength, 18 + literal.offset + literal.headerLength + literal.bodyLength);
  // Binary format, empty file name, the date in seconds, then the data.
  assert.deepEqual(body, Buffer.concat([Buffer.from([0x62, 0]), Buffer.from((FIXED_NOW.getTime() / 1000).toString(16), 'hex'), data]));
  const mdcAt = 18 + (inner[3]?.offset ?? 0);
  assert.deepEqual(plain.subarray(mdcAt + 2), createHash('sha1').update(plain.subarray(0, mdcAt + 2)).digest());
  const [recovered] = await decryptSessionKeys({ message: await readMessage({ binaryMessage: binary }), decryptionKeys: keys.rsa.secret });
  assert.deepEqual(recovered?.data, sessionKey.data);
});

test('with deterministic signatures the decrypted packets equal the openpgp.js path’s byte for byte (3 recipients)', async () => {
  const keys = await fastTestKeys();
  const data = Buffer.from('Content-Type: text/plain\r\n\r\nsame bytes\r\n\x00\xff\r\n', 'latin1');
  const recipients = publicKeys([keys.receiver, keys.rsa, keys.gpgSite]);
  const input = { plaintext: data, signingKey: keys.sender.secret, encryptionKeys: recipients, date: FIXED_NOW, deterministicSignatures: true };
  const reference = await collect(await signAndEncrypt({ ...input, fastPath: false }));
  const inner = async (binary: Uint8Array) => {
    const decrypted = await (await readMessage({ binaryMessage: binary })).decrypt([keys.receiver.secret], undefined, undefined, FIXED_NOW);
    const options = { message: decrypted, verificationKeys: keys.sender.public, date: FIXED_NOW, expectSigned: true } as const;
    const result = await verify({ ...options, format: 'binary' });
    const signature = await result.signatures[0]?.signature;
    const onePass = Buffer.from(decrypted.packets[0]?.write() ?? []);
    return { literal: Buffer.from(result.data), signature: Buffer.from(signature?.write() ?? []), onePass };
  };
  const native = await inner(await fast(data, recipients, true));
  assert.deepEqual(native, await inner(reference));
  // Both name the three recipients' primary keys after openpgp.js's own hashed subpackets.
  const named = Buffer.concat(recipients.map((key) => Buffer.from([22, 35, 4, ...(key.keyPacket.getFingerprintBytes() ?? [])])));
  assert.equal(native.signature.indexOf(named), 2 + 4 + 2 + 6 + 10 + 23);
});

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

test('default signatures carry a random salt: two messages differ in their signatures, both verify', async () => {
  const keys = await fastTestKeys();
  const signatureOf = async (binary: Uint8Array) => {
    const { signature } = await openSigned(binary, keys.receiver.secret, keys.sender.public);
    return { bytes: Buffer.from(signature.write()), notations: signature.packets[0]?.rawNotations.map((n) => [n.name, n.value.length]) };
  };
  const a = await signatureOf(await fast(Buffer.from('salted'), [keys.receiver.public]));
  const b = await signatureOf(await fast(Buffer.from('salted'), [keys.receiver.public]));
  assert.notDeepEqual(a.bytes, b.bytes);
  assert.deepEqual(a.notations, [['salt@notations.openpgpjs.org', 32]]);
});

test('data given in pieces equals the same data whole', async () => {
  const keys = await fastTestKeys();
  const data = SHAPES[5]?.data ?? assert.fail();
  const pieces = [data.subarray(0, 1), data.subarray(1, 300), Buffer.alloc(0), data.subarray(300)];
  assert.deepEqual(await openWith(await fast(pieces, [keys.receiver.public]), keys.receiver.secret), data);
});

test('a fixed session key is used as given (AES-128 and AES-256)', async () => {
  const keys = await fastTestKeys();
  for (const [algorithm, length] of [['aes128', 16], ['aes256', 32]] as const) {
    const sessionKey = { data: new Uint8Array(length).fill(7), algorithm };
    const input = { data: Buffer.from('k'), signingKey: keys.sender.secret, encryptionKeys: [keys.receiver.public], date: FIXED_NOW };
    const binary = (await fastSignEncrypt({ ...input, sessionKey })) ?? assert.fail();
    const message = await readMessage({ binaryMessage: binary });
    const [found] = await decryptSessionKeys({ message, decryptionKeys: keys.receiver.secret });
    assert.deepEqual([Buffer.from(found?.data ?? []), found?.algorithm], [Buffer.from(sessionKey.data), algorithm]);
    assert.deepEqual(await openWith(binary, keys.receiver.secret), Buffer.from('k'));
  }
});

test('signAndEncrypt (the engine’s entry) gives one opening message with the native path on (default) and off', async () => {
  const keys = await fastTestKeys();
  const data = Buffer.from('via signAndEncrypt\r\n');
  for (const fastPath of [undefined, false]) {
    const chunks: Uint8Array[] = [];
    const input = { plaintext: data, signingKey: keys.sender.secret, encryptionKeys: [keys.receiver.public], date: FIXED_NOW, fastPath };
    for await (const chunk of await signAndEncrypt(input)) chunks.push(chunk);
    assert.equal(chunks.length, 1);
    assert.deepEqual(await openWith(Buffer.concat(chunks), keys.receiver.secret), data);
  }
});

/** Decrypting `binary` with `key` must fail, or (for a change openpgp.js ignores) give back the original exactly. */
async function assertNoForgery(binary: Uint8Array, key: PrivateKey, original: Buffer, where: string): Promise<'failed' | 'unchanged'> {
  try {
    const plaintext = await openWith(binary, key);
    assert.deepEqual(plaintext, original, where);
    return 'unchanged';
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    return 'failed';
  }
}

test('one changed byte anywhere in a small message: openpgp.js never returns altered plaintext or a good signature', TIMEOUT, async () => {
  const keys = await fastTestKeys();
  const original = Buffer.from('y');
  const binary = Buffer.from(await fast(original, [keys.receiver.public]));
  const unchanged: number[] = [];
  for (let offset = 0; offset < binary.length; offset++) {
    const changed = Buffer.from(binary);
    changed[offset] = (changed[offset] as number) ^ 0x01;
    if ((await assertNoForgery(changed, keys.receiver.secret, original, `offset ${offset}`)) === 'unchanged') unchanged.push(offset);
  }
  // The only tolerated change: the low octet of the ephemeral key's MPI bit count (263 → 262
  // still spans 33 octets), a field outside the ciphertext that carries no information.
  assert.deepEqual(unchanged, [13]);
});

test('one changed byte in a 4 KiB message to three recipients (RSA among them): no recipient gets altered plaintext', TIMEOUT, async () => {
  const keys = await fastTestKeys();
  const original = SHAPES[2]?.data ?? assert.fail();
  const recipients = [keys.receiver, keys.rsa, keys.gpgSite];
  const binary = Buffer.from(await fast(original, publicKeys(recipients)));
  for (let offset = 0; offset < binary.length; offset += 37) {
    const changed = Buffer.from(binary);
    changed[offset] = (changed[offset] as number) ^ 0x80;
    for (const recipient of recipients) await assertNoForgery(changed, recipient.secret, original, `offset ${offset}`);
  }
});
