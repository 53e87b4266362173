/**
 * Intended Recipient Fingerprint subpackets (RFC 9580 §5.2.3.36) without external tools: every
 * sign+encrypt path names every recipient's primary key, non-critically, after the issuer
 * fingerprint; OpenPGP.js decrypts and verifies the result; our reader reports exactly the
 * fingerprints of the hashed area and nothing from the unhashed one; detached signatures carry
 * none. Also recorded: what OpenPGP.js writes by itself, and how it treats the critical form.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { createMessage, encrypt, PacketList, readSignature, Signature, type SignaturePacket } from 'openpgp';
import { pgpConfig } from '../../src/pgp/config.ts';
import { readDetachedSignature, signDetached, verifyDetached } from '../../src/pgp/detached.ts';
import { signatureWithHashedSubpackets } from '../../src/pgp/fallback-signature.ts';
import { intendedRecipientBody, intendedRecipientsOf, intendedRecipientSubpackets } from '../../src/pgp/intended-recipient.ts';
import { FIXED_NOW, type TestKey } from '../engine/fixtures.ts';
import { fastTestKeys, openSigned, publicKeys, type FastTestKeys } from './fast/fixtures.ts';
import { expectedSubpackets, fingerprintsOf, PATHS, readerCheck, recipientSetsFor } from './intended-recipient-fixtures.ts';

const TIMEOUT = { timeout: 600_000 };
let keys: FastTestKeys;

before(async () => {
  keys = await fastTestKeys();
});

/** The hashed subpacket area of a v4 signature packet, raw. */
function hashedArea(signature: Signature): Buffer {
  const data = signature.packets[0]?.signatureData ?? assert.fail('no signature data');
  return Buffer.from(data.subarray(6, 6 + ((data[4] as number) << 8) + (data[5] as number)));
}

test('every path names each recipient primary key, in order, after the issuer fingerprint; OpenPGP.js and our reader agree', TIMEOUT, async () => {
  for (const path of PATHS) {
    for (const set of recipientSetsFor(keys)) {
      const binary = await path.make(keys, publicKeys(set.recipients));
      for (const recipient of set.recipients) {
        const where = `${path.name}, ${set.name}, ${recipient.public.getUserIDs()[0]}`;
        // OpenPGP.js decrypts and verifies; the subpackets end its hashed area, none is critical.
        const opened = await openSigned(binary, recipient.secret, keys.sender.public);
        assert.ok(opened.data.equals(path.data), where);
        const area = hashedArea(opened.signature);
        const issuerFingerprint = Buffer.concat([Buffer.from([22, 33, 4]), Buffer.from(keys.sender.public.getFingerprint(), 'hex')]);
        assert.deepEqual(area.subarray(area.length - 23 * (set.recipients.length + 1)), Buffer.concat([issuerFingerprint, expectedSubpackets(set.recipients)]), where);
        // Our reader: the exact primary-key fingerprints (not the encryption subkeys'), in order.
        const { data, check } = await readerCheck(binary, recipient, keys.sender);
        assert.ok(data.equals(path.data), where);
        assert.deepEqual(check, {
          status: 'valid',
          fingerprint: keys.sender.public.getFingerprint().toUpperCase(),
          keyId: keys.sender.public.getKeyID().toHex().toUpperCase(),
          intendedRecipients: fingerprintsOf(set.recipients),
        }, where);
      }
    }
  }
});

test('the subpacket body is the primary key version and fingerprint, never the encryption subkey', async () => {
  const subkey = (await keys.rsa.public.getEncryptionKey(undefined, FIXED_NOW)).getFingerprint();
  assert.notEqual(subkey, keys.rsa.public.getFingerprint());
  assert.deepEqual(intendedRecipientBody(keys.rsa.public), Buffer.concat([Buffer.from([4]), Buffer.from(keys.rsa.public.getFingerprint(), 'hex')]));
  assert.deepEqual(intendedRecipientSubpackets([keys.receiver.public, keys.rsa.public]), expectedSubpackets([keys.receiver, keys.rsa]));
});

/**
 * A message to `recipients` signed by the sender with `hashed` appended to the hashed area and
 * `unhashed` subpackets (type 35) in the unhashed area, which the signature does not cover.
 */
async function custom(recipients: readonly TestKey[], hashed: Buffer, unhashed: readonly Buffer[] = [], critical = false): Promise<Buffer> {
  const config = pgpConfig();
  const message = await createMessage({ binary: Buffer.from('custom\r\n'), date: FIXED_NOW, format: 'binary' });
  const input = { message, signingKey: keys.sender.secret, encryptionKeys: publicKeys(recipients), date: FIXED_NOW, config };
  const signature = await signatureWithHashedSubpackets(input, hashed);
  const packet = signature.packets[0] ?? assert.fail();
  for (const body of unhashed) packet.unhashedSubpackets.push({ type: 35, critical, body });
  return Buffer.from(await encrypt({ message, encryptionKeys: publicKeys(recipients), signature, format: 'binary', date: FIXED_NOW, config }));
}

test('a type-35 subpacket in the unhashed area is ignored: none hashed gives null, hashed ones are reported alone', async () => {
  const strangerBody = intendedRecipientBody(keys.stranger.public);
  const onlyUnhashed = await custom([keys.receiver], Buffer.alloc(0), [strangerBody, intendedRecipientBody(keys.receiver.public)]);
  const read = await readerCheck(onlyUnhashed, keys.receiver, keys.sender);
  assert.equal(read.check.status, 'valid');
  assert.equal(read.check.status === 'valid' && read.check.intendedRecipients, null);
  // The unhashed subpackets really are in the message as sent (openpgp.js keeps them there).
  assert.deepEqual((await openSigned(onlyUnhashed, keys.receiver.secret, keys.sender.public)).signature.packets[0]?.unhashedSubpackets.map((s) => s.type), [35, 35]);

  const both = await custom([keys.receiver], intendedRecipientSubpackets([keys.receiver.public]), [strangerBody]);
  const check = (await readerCheck(both, keys.receiver, keys.sender)).check;
  assert.deepEqual(check.status === 'valid' && check.intendedRecipients, fingerprintsOf([keys.receiver]));
});

test('a detached signature with a type-35 subpacket added to its unhashed area leaves it valid, recipients null', async () => {
  const data = Buffer.from('signed only\r\n');
  const signed = await signDetached(data, keys.sender.secret, FIXED_NOW);
  const packet = (await readDetachedSignature(signed.armored)).packets[0] ?? assert.fail();
  packet.unhashedSubpackets.push({ type: 35, critical: false, body: intendedRecipientBody(keys.receiver.public) });
  const list = new PacketList<SignaturePacket>();
  list.push(packet);
  const altered = await readSignature({ binarySignature: new Signature(list).write() });
  assert.equal(altered.packets[0]?.unhashedSubpackets.length, 1);
  const check = await verifyDetached(data, altered, [keys.sender.public], FIXED_NOW);
  assert.deepEqual(check, {
    status: 'valid',
    fingerprint: keys.sender.public.getFingerprint().toUpperCase(),
    keyId: keys.sender.public.getKeyID().toHex().toUpperCase(),
    intendedRecipients: null,
  });
});

test('detached signatures (sign-only mail, native and openpgp.js) name no recipients: verifyDetached reports null', async () => {
  const data = Buffer.from('sign-only\r\n');
  for (const fastPath of [true, false]) {
    const signed = await signDetached(data, keys.sender.secret, FIXED_NOW, false, fastPath);
    const signature = await readDetachedSignature(signed.armored);
    assert.equal(signature.packets[0]?.unknownSubpackets.length, 0, `fastPath ${fastPath}`);
    const check = await verifyDetached(data, signature, [keys.sender.public], FIXED_NOW);
    assert.equal(check.status === 'valid' && check.intendedRecipients, null, `fastPath ${fastPath}`);
  }
});

test('malformed hashed subpackets (fingerprint length not that of the version) name no key: the list is empty, not null', async () => {
  const fingerprint = Buffer.from(keys.receiver.public.getFingerprint(), 'hex');
  const short = Buffer.concat([Buffer.from([21, 35, 4]), fingerprint.subarray(1)]);
  const unknownVersion = Buffer.concat([Buffer.from([22, 35, 9]), fingerprint]);
  const empty = Buffer.from([1, 35]);
  const check = (await readerCheck(await custom([keys.receiver], Buffer.concat([short, unknownVersion, empty])), keys.receiver, keys.sender)).check;
  assert.deepEqual(check.status === 'valid' && check.intendedRecipients, []);
  // A well-formed one beside them is still reported.
  const mixed = await custom([keys.receiver], Buffer.concat([short, intendedRecipientSubpackets([keys.receiver.public])]));
  const mixedCheck = (await readerCheck(mixed, keys.receiver, keys.sender)).check;
  assert.deepEqual(mixedCheck.status === 'valid' && mixedCheck.intendedRecipients, fingerprintsOf([keys.receiver]));
});

test('a forwarded message (signature names another key than the one that decrypts) still verifies: the reader reports the list as signed', async () => {
  const forwarded = await custom([keys.rsa], intendedRecipientSubpackets([keys.receiver.public]));
  const check = (await readerCheck(forwarded, keys.rsa, keys.sender)).check;
  assert.deepEqual(check.status === 'valid' && check.intendedRecipients, fingerprintsOf([keys.receiver]));
});

test('the critical form would break OpenPGP.js: "Unknown critical signature subpacket type 35", an invalid signature (why ours is not critical)', async () => {
  const critical = Buffer.concat([Buffer.from([22, 35 | 0x80]), intendedRecipientBody(keys.receiver.public)]);
  const check = (await readerCheck(await custom([keys.receiver], critical), keys.receiver, keys.sender)).check;
  assert.deepEqual(check, {
    status: 'invalid',
    fingerprint: keys.sender.public.getFingerprint().toUpperCase(),
    keyId: keys.sender.public.getKeyID().toHex().toUpperCase(),
    detail: 'Unknown critical signature subpacket type 35',
  });
});

test('recorded: OpenPGP.js 6 signing and encrypting by itself writes no intended recipient subpacket', async () => {
  const binary = await encrypt({
    message: await createMessage({ binary: Buffer.from('by openpgp.js\r\n'), date: FIXED_NOW, format: 'binary' }),
    encryptionKeys: publicKeys([keys.receiver, keys.rsa]),
    signingKeys: keys.sender.secret,
    format: 'binary',
    date: FIXED_NOW,
    config: pgpConfig(),
  });
  const opened = await openSigned(binary, keys.receiver.secret, keys.sender.public);
  assert.equal(intendedRecipientsOf(opened.signature.packets[0] ?? assert.fail()), null);
  const check = (await readerCheck(binary, keys.receiver, keys.sender)).check;
  assert.equal(check.status === 'valid' && check.intendedRecipients, null);
});
