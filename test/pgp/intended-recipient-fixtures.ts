/**
 * What the intended-recipient tests share: every path that signs and encrypts (native whole and
 * streamed, openpgp.js whole, streamed and compressed), the recipient sets (one key; three keys:
 * ECC made by openpgp.js, RSA-3072, ECC made by GnuPG), the expected fingerprint lists, and our
 * own inbound reader run on a message.
 */
import assert from 'node:assert/strict';
import type { PublicKey } from 'openpgp';
import { armorBytes } from '../../src/pgp/armor.ts';
import { decryptMessage, readEncrypted, verifyDecrypted } from '../../src/pgp/decrypt.ts';
import { fastSignEncrypt } from '../../src/pgp/fast/sign-encrypt.ts';
import { fastStreamSignEncrypt } from '../../src/pgp/fast/streaming-sign-encrypt.ts';
import { signAndEncrypt } from '../../src/pgp/sign-encrypt.ts';
import type { SignatureCheck } from '../../src/pgp/signature-check.ts';
import type { TestKey } from '../engine/fixtures.ts';
import { FIXED_NOW } from '../engine/fixtures.ts';
import type { FastTestKeys } from './fast/fixtures.ts';
import { collect, plaintext, reusingChunks } from './fast/streaming-fixtures.ts';

/** One way of making a signed and encrypted message, and the plaintext it is tried with. */
export interface SignEncryptPath {
  readonly name: string;
  readonly data: Buffer;
  make(keys: FastTestKeys, recipients: readonly PublicKey[]): Promise<Buffer>;
}

/** Small whole input, and streamed input over 1 MiB (several 64 KiB parts, chunks of odd sizes). */
const WHOLE = plaintext(4096);
const STREAMED = plaintext(1024 * 1024 + 12_345);
const CHUNKS = [65_537, 7, 4096];

async function viaEngineEntry(keys: FastTestKeys, recipients: readonly PublicKey[], data: Buffer, streamed: boolean, compression: 'none' | 'zlib'): Promise<Buffer> {
  const input = { signingKey: keys.sender.secret, encryptionKeys: recipients, date: FIXED_NOW, fastPath: false, compression };
  return collect(await signAndEncrypt({ ...input, plaintext: streamed ? reusingChunks(data, CHUNKS) : data }));
}

/** The paths; the native ones fail the test if the native writer declines. */
export const PATHS: readonly SignEncryptPath[] = [
  {
    name: 'native whole',
    data: WHOLE,
    async make(keys, recipients) {
      const out = await fastSignEncrypt({ data: WHOLE, signingKey: keys.sender.secret, encryptionKeys: recipients, date: FIXED_NOW });
      return Buffer.from(out ?? assert.fail('the native path declined'));
    },
  },
  {
    name: 'native streamed',
    data: STREAMED,
    async make(keys, recipients) {
      const input = { data: reusingChunks(STREAMED, CHUNKS), signingKey: keys.sender.secret, encryptionKeys: recipients, date: FIXED_NOW };
      return collect((await fastStreamSignEncrypt(input)) ?? assert.fail('the native path declined'));
    },
  },
  { name: 'openpgp.js whole', data: WHOLE, make: (keys, recipients) => viaEngineEntry(keys, recipients, WHOLE, false, 'none') },
  { name: 'openpgp.js streamed', data: STREAMED, make: (keys, recipients) => viaEngineEntry(keys, recipients, STREAMED, true, 'none') },
  { name: 'openpgp.js zlib streamed', data: STREAMED, make: (keys, recipients) => viaEngineEntry(keys, recipients, STREAMED, true, 'zlib') },
];

/** A named recipient list. */
export interface RecipientSet {
  readonly name: string;
  readonly recipients: readonly TestKey[];
}

/** One ECC recipient; three recipients: ECC (openpgp.js), RSA-3072, ECC (GnuPG). */
export function recipientSetsFor(keys: FastTestKeys): RecipientSet[] {
  return [
    { name: '1 recipient', recipients: [keys.receiver] },
    { name: '3 recipients', recipients: [keys.receiver, keys.rsa, keys.gpgSite] },
  ];
}

/** The primary-key fingerprints (uppercase hex) of `recipients`, in order. */
export function fingerprintsOf(recipients: readonly TestKey[]): string[] {
  return recipients.map((r) => r.public.getFingerprint().toUpperCase());
}

/** The framed, non-critical subpackets naming `recipients` (length 22, type 35, version 4, fingerprint). */
export function expectedSubpackets(recipients: readonly TestKey[]): Buffer {
  return Buffer.concat(recipients.map((r) => Buffer.concat([Buffer.from([22, 35, 4]), Buffer.from(r.public.getFingerprint(), 'hex')])));
}

/** Our inbound reader on `binary`: decrypts with `recipient`'s key and checks against `signer` at `date`. */
export async function readerCheck(binary: Uint8Array, recipient: TestKey, signer: TestKey, date = FIXED_NOW): Promise<{ data: Buffer; check: SignatureCheck }> {
  const encrypted = await readEncrypted(armorBytes('MESSAGE', binary));
  const decrypted = await decryptMessage(encrypted, [recipient.secret], date, 64 * 1024 * 1024);
  return { data: Buffer.from(decrypted.plaintext), check: await verifyDecrypted(decrypted, [signer.public], date) };
}
