/**
 * Shared inputs of the native-path tests: the message shapes, the recipient sets, and two keys
 * made per process on top of the committed ones: an RSA-3072 key (recipients may publish RSA) and
 * one more site key from the project's own generator.
 */
import assert from 'node:assert/strict';
import { decrypt, generateKey, readKey, readMessage, readPrivateKey, type PrivateKey, type PublicKey, type Signature } from 'openpgp';
import { generateSiteKey } from '../../../src/keys/generate.ts';
import { FIXED_NOW, testKeys, type TestKey } from '../../engine/fixtures.ts';

/** Key creation time of the generated keys: that of the committed ones, before FIXED_NOW. */
const CREATED = new Date('2025-01-01T00:00:00Z');

/** One plaintext the tests encrypt. */
export interface Shape {
  readonly name: string;
  readonly data: Buffer;
}

/** Mail-like text with CRLF line ends, `bytes` long. */
function mailText(bytes: number): Buffer {
  const line = Buffer.from('The quick brown fox jumps over the lazy dog; 0123456789 =?:\r\n');
  return Buffer.alloc(bytes, line);
}

/** Every octet value, CR and LF alone and together, NUL runs: what a binary MIME part can hold. */
function binaryData(): Buffer {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  return Buffer.concat([all, Buffer.from('\r\n\n\r\0\0\0\xff\xfe\x80', 'latin1'), all.reverse(), Buffer.alloc(17)]);
}

/** The message shapes: empty, tiny, sizes needing one-, two- and five-octet packet lengths, raw binary. */
export const SHAPES: readonly Shape[] = [
  { name: 'empty', data: Buffer.alloc(0) },
  { name: '1 byte', data: Buffer.from('x') },
  { name: '4 KiB', data: mailText(4096) },
  { name: '100 KiB', data: mailText(100 * 1024) },
  { name: '1 MiB', data: mailText(1024 * 1024) },
  { name: 'binary with NUL and 8-bit', data: binaryData() },
];

/** The committed keys plus the generated ones. */
export interface FastTestKeys {
  readonly sender: TestKey;
  readonly receiver: TestKey;
  readonly stranger: TestKey;
  readonly gpgSite: TestKey;
  readonly rsa: TestKey;
  readonly fifth: TestKey;
}

async function asTestKey(secret: PrivateKey): Promise<TestKey> {
  const secretArmored = secret.armor();
  const publicArmored = secret.toPublic().armor();
  return {
    secret: await readPrivateKey({ armoredKey: secretArmored }),
    public: await readKey({ armoredKey: publicArmored }),
    secretArmored,
    publicArmored,
  };
}

let keys: Promise<FastTestKeys> | undefined;

/** Loads and generates (once per process) the keys of these tests. */
export function fastTestKeys(): Promise<FastTestKeys> {
  keys ??= (async () => {
    const committed = await testKeys();
    const rsa = await generateKey({
      type: 'rsa',
      rsaBits: 3072,
      userIDs: [{ name: 'rsa-recipient-test (TEST KEY)', email: 'postmaster@rsa.test' }],
      date: CREATED,
      format: 'object',
    });
    return {
      sender: committed.senderSite,
      receiver: committed.receiverSite,
      stranger: committed.stranger,
      gpgSite: committed.gpgSite,
      rsa: await asTestKey(rsa.privateKey),
      fifth: await asTestKey(await generateSiteKey('fifth.test', CREATED)),
    };
  })();
  return keys;
}

/** A named list of recipients. */
export interface RecipientSet {
  readonly name: string;
  readonly recipients: readonly TestKey[];
}

/** One, two and five recipients (openpgp.js, gpg and RSA keys among them), and RSA alone. */
export function recipientSets(k: FastTestKeys): RecipientSet[] {
  return [
    { name: '1 recipient', recipients: [k.receiver] },
    { name: '2 recipients', recipients: [k.receiver, k.gpgSite] },
    { name: '5 recipients', recipients: [k.receiver, k.stranger, k.gpgSite, k.rsa, k.fifth] },
    { name: 'RSA-3072 recipient', recipients: [k.rsa] },
  ];
}

/** The public halves of `recipients`. */
export function publicKeys(recipients: readonly TestKey[]): PublicKey[] {
  return recipients.map((r) => r.public);
}

/** A decrypted message and its one verified signature. */
export interface Opened {
  readonly data: Buffer;
  readonly signature: Signature;
}

/**
 * Decrypts `binary` with openpgp.js using `key`, requiring exactly one signature, by `signer`,
 * that verifies (at FIXED_NOW). Rejects when decryption or verification fails.
 */
export async function openSigned(binary: Uint8Array, key: PrivateKey, signer: PublicKey): Promise<Opened> {
  const message = await readMessage({ binaryMessage: binary });
  const options = { message, decryptionKeys: key, verificationKeys: signer, expectSigned: true, date: FIXED_NOW } as const;
  const result = await decrypt({ ...options, format: 'binary' });
  assert.equal(result.signatures.length, 1);
  const [verification] = result.signatures;
  assert.equal(await verification?.verified, true);
  assert.equal(verification?.keyID.toHex(), signer.getKeyID().toHex());
  return { data: Buffer.from(result.data), signature: await (verification?.signature ?? assert.fail()) };
}
