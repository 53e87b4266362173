/**
 * The native sign+encrypt path against the real GnuPG 2.2, offline: one home per recipient key
 * (holding only that secret key and the sender's public key), so every recipient of every
 * message is shown to decrypt it. Fails, never skips, when gpg cannot run.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createMessage, encrypt, enums, type PublicKey, type SessionKey } from 'openpgp';
import { pgpConfig } from '../../../src/pgp/config.ts';
import { fastSignEncrypt } from '../../../src/pgp/fast/sign-encrypt.ts';
import type { TestKey } from '../../engine/fixtures.ts';
import { FIXED_NOW } from '../../engine/fixtures.ts';
import type { GpgHome, GpgResult } from '../../support/gpg.ts';
import { fastTestKeys, publicKeys, recipientSets, SHAPES, type FastTestKeys } from './fixtures.ts';
import { assertDecryptedAndVerified as assertOpened, createRecipientHomes, statusOf, type RecipientHomes } from './gpg-check.ts';
import { decryptSeipd, packetEnd, walkPackets } from './packet-walk.ts';

const TIMEOUT = { timeout: 600_000 };
let homes: RecipientHomes | undefined;
let keys: FastTestKeys;

before(async () => {
  keys = await fastTestKeys();
  homes = await createRecipientHomes([keys.receiver, keys.stranger, keys.gpgSite, keys.rsa, keys.fifth], keys.sender);
});

after(async () => {
  await homes?.dispose();
});

function homeOf(recipient: TestKey): GpgHome {
  return (homes ?? assert.fail('no gpg homes')).of(recipient);
}

/** Asserts that gpg decrypted `data` and found a good signature by the sender site key. */
function assertDecryptedAndVerified(result: GpgResult, data: Buffer, where: string): void {
  assertOpened(result, data, keys.sender, where);
}

async function fast(data: Uint8Array, recipients: readonly PublicKey[], sessionKey?: SessionKey): Promise<Buffer> {
  const input = { data, signingKey: keys.sender.secret, encryptionKeys: recipients, date: FIXED_NOW };
  const out = await fastSignEncrypt(sessionKey === undefined ? input : { ...input, sessionKey });
  return out === null ? assert.fail('the native path declined supported keys') : Buffer.from(out);
}

test('gpg decrypts every shape for every recipient (1, 2, 5 recipients, RSA-3072) and verifies the site signature', TIMEOUT, async () => {
  for (const set of recipientSets(keys)) {
    for (const shape of SHAPES) {
      const binary = await fast(shape.data, publicKeys(set.recipients));
      for (const recipient of set.recipients) {
        const result = await homeOf(recipient).run(['--decrypt'], binary);
        assertDecryptedAndVerified(result, shape.data, `${set.name}, ${shape.name}, ${recipient.public.getUserIDs()[0]}`);
      }
    }
  }
});

/**
 * Offsets, in a message, of PKESK fields gpg does not check: the version octet (gpg reads 2 as 3)
 * and the low octet of the ephemeral key's MPI bit count.
 */
function fieldsGpgIgnores(binary: Buffer): number[] {
  return walkPackets(binary)
    .filter((p) => p.tag === enums.packet.publicKeyEncryptedSessionKey)
    .flatMap((p) => [p.offset + p.headerLength, p.offset + p.headerLength + 11]);
}

/**
 * Runs gpg on `binary` with one octet changed at each of `offsets`: gpg must never report a
 * successful decryption of altered data, and may report a good signature only over the original
 * plaintext (a changed MDC or length is caught after the signature). Returns the offsets at
 * which gpg decrypted successfully.
 */
async function flipEach(home: GpgHome, binary: Buffer, original: Buffer, offsets: Iterable<number>): Promise<number[]> {
  const decrypted: number[] = [];
  for (const offset of offsets) {
    const changed = Buffer.from(binary);
    changed[offset] = (changed[offset] as number) ^ 0x01;
    const result = await home.run(['--decrypt'], changed);
    const where = `offset ${offset}`;
    if (statusOf(result, 'DECRYPTION_OKAY') !== undefined) {
      assertDecryptedAndVerified(result, original, where);
      decrypted.push(offset);
    } else {
      // gpg exits 0 without output when it finds no OpenPGP data at all (status NODATA).
      if (result.code === 0) assert.equal(result.stdout.length, 0, where);
      if (statusOf(result, 'GOODSIG') !== undefined) {
        assert.ok(result.stdout.equals(original), `${where}: good signature over altered plaintext`);
        assert.notEqual(result.code, 0, where);
      }
    }
  }
  return decrypted;
}

test('one changed byte anywhere: gpg never decrypts altered data and never gives a good signature over it', TIMEOUT, async () => {
  const original = Buffer.from('z');
  const binary = await fast(original, [keys.receiver.public]);
  const decrypted = await flipEach(homeOf(keys.receiver), binary, original, binary.keys());
  // Only the two fields gpg ignores: a change there is no change of the message.
  assert.deepEqual(decrypted, fieldsGpgIgnores(binary));
});

test('gpg ignores those two fields in openpgp.js’s messages just the same', TIMEOUT, async () => {
  const original = Buffer.from('z');
  const reference = Buffer.from(
    await encrypt({
      message: await createMessage({ binary: original, date: FIXED_NOW, format: 'binary' }),
      encryptionKeys: keys.receiver.public,
      signingKeys: keys.sender.secret,
      format: 'binary',
      date: FIXED_NOW,
      config: pgpConfig(),
    }),
  );
  const ignored = fieldsGpgIgnores(reference);
  assert.deepEqual(await flipEach(homeOf(keys.receiver), reference, original, ignored), ignored);
});

test('one changed byte in a 4 KiB message to an ECDH and an RSA recipient: neither gpg home decrypts altered data', TIMEOUT, async () => {
  const original = SHAPES[2]?.data ?? assert.fail();
  const binary = await fast(original, [keys.receiver.public, keys.rsa.public]);
  const offsets = [...binary.keys()].filter((o) => o % 41 === 0 || o >= binary.length - 24);
  const packets = walkPackets(binary);
  const recipients = [keys.receiver, keys.rsa];
  for (const [index, recipient] of recipients.entries()) {
    const decrypted = await flipEach(homeOf(recipient), binary, original, offsets);
    // Allowed: changes to the other recipient's PKESK, and the fields gpg ignores in its own.
    const other = packets[1 - index] ?? assert.fail();
    const own = packets[index] ?? assert.fail();
    const ownIgnored = fieldsGpgIgnores(binary.subarray(own.offset, packetEnd(own))).map((o) => o + own.offset);
    const allowed = (o: number): boolean => (o >= other.offset && o < packetEnd(other)) || ownIgnored.includes(o);
    assert.deepEqual(decrypted.filter((o) => !allowed(o)), [], recipient.public.getUserIDs()[0]);
  }
});

/** Bit counts of the two signature MPIs (R, S) at the end of a decrypted message's signature packet. */
function signatureMpiBits(binary: Buffer, sessionKey: Uint8Array): [number, number] {
  const seipd = walkPackets(binary).at(-1) ?? assert.fail();
  const plain = decryptSeipd(binary.subarray(seipd.offset + seipd.headerLength), sessionKey).subarray(18);
  const signature = walkPackets(plain)[2] ?? assert.fail();
  let at = signature.offset + signature.headerLength + 4;
  at += 2 + plain.readUInt16BE(at); // hashed subpackets
  at += 2 + plain.readUInt16BE(at) + 2; // unhashed subpackets, left 16 bits of the hash
  const r = plain.readUInt16BE(at);
  return [r, plain.readUInt16BE(at + 2 + Math.ceil(r / 8))];
}

test('signatures whose R or S starts with zero octets (shorter MPIs) verify in gpg', TIMEOUT, async () => {
  const sessionKey = { data: new Uint8Array(32).fill(3), algorithm: 'aes256' as const };
  const found = { r: false, s: false };
  for (let attempt = 0; attempt < 5000 && !(found.r && found.s); attempt++) {
    const data = Buffer.from(`attempt ${attempt}`);
    const binary = await fast(data, [keys.receiver.public], sessionKey);
    const [rBits, sBits] = signatureMpiBits(binary, sessionKey.data);
    const part = rBits <= 248 && !found.r ? 'r' : sBits <= 248 && !found.s ? 's' : null;
    if (part === null) continue;
    found[part] = true;
    assertDecryptedAndVerified(await homeOf(keys.receiver).run(['--decrypt'], binary), data, `short ${part} (${rBits}/${sBits} bits)`);
  }
  assert.deepEqual(found, { r: true, s: true });
});

test('an RSA session key whose ciphertext starts with a zero octet (shorter MPI) decrypts in gpg', TIMEOUT, async () => {
  for (let attempt = 0; attempt < 5000; attempt++) {
    const data = Buffer.from(`rsa ${attempt}`);
    const binary = await fast(data, [keys.rsa.public]);
    const pkesk = walkPackets(binary)[0] ?? assert.fail();
    const bits = binary.readUInt16BE(pkesk.offset + pkesk.headerLength + 10);
    if (bits > 3064) continue;
    assertDecryptedAndVerified(await homeOf(keys.rsa).run(['--decrypt'], binary), data, `${bits}-bit RSA MPI`);
    return;
  }
  assert.fail('no short RSA ciphertext in 5000 attempts');
});
