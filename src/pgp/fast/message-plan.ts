/**
 * Everything about a signed and encrypted message that does not depend on its content: which
 * keys sign and receive it, the signature hash, the session cipher and key, and the session key
 * packets. Decided once, up front, for the whole-buffer and the streamed writer alike; null when
 * any key, the date or a requested session key is of a shape the native path does not write.
 */
import { randomBytes } from 'node:crypto';
import type { PrivateKey, PublicKey, SessionKey } from 'openpgp';
import { sessionCipher, signatureHash } from './algorithm-choice.ts';
import { symmetricByName, type SymmetricAlgorithm } from './algorithms.ts';
import type { RecipientMaterial } from './key-material.ts';
import { recipientParty, signingParty, type Party } from './key-selection.ts';
import { openpgpTime } from './packet-framing.ts';
import { sessionKeyPacket } from './session-key-packet.ts';
import type { SignatureParameters } from './signature.ts';

/** The keys and options of a native sign+encrypt, whatever form its plaintext takes. */
export interface SignEncryptOptions {
  readonly signingKey: PrivateKey;
  readonly encryptionKeys: readonly PublicKey[];
  /** Signature and literal-data time. */
  readonly date: Date;
  /** A fixed session key (tests only); a fresh random one otherwise. */
  readonly sessionKey?: SessionKey;
  /** Leave out the random salt notation, making the signature reproducible (tests only). */
  readonly deterministicSignatures?: boolean;
}

/** What the message writers need besides the plaintext. */
export interface SignEncryptPlan {
  /** The signer, hash and time; the time (whole seconds) dates the literal data too. */
  readonly signature: SignatureParameters;
  readonly cipher: SymmetricAlgorithm;
  readonly sessionKey: Buffer;
  /** One v3 PKESK per recipient, in the order of the keys: the message's first packets. */
  readonly sessionKeyPackets: Buffer;
}

/**
 * Selects the keys and algorithms as openpgp.js would and encrypts the session key to every
 * recipient. Null when the native path does not write this message; throws only on a failure
 * inside node:crypto.
 */
export async function planSignEncrypt(options: SignEncryptOptions): Promise<SignEncryptPlan | null> {
  const created = openpgpTime(options.date);
  if (created === null || options.encryptionKeys.length === 0) return null;
  const signer = await signingParty(options.signingKey, options.date);
  if (signer === null) return null;
  const recipients: Party<RecipientMaterial>[] = [];
  for (const key of options.encryptionKeys) {
    const recipient = await recipientParty(key, options.date);
    if (recipient === null) return null;
    recipients.push(recipient);
  }
  const selections = recipients.map((r) => r.selection);
  const hash = signatureHash(selections);
  const cipher = options.sessionKey === undefined ? sessionCipher(selections) : requestedCipher(options.sessionKey);
  if (hash === null || cipher === null) return null;
  const sessionKey = options.sessionKey === undefined ? randomBytes(cipher.keyBytes) : Buffer.from(options.sessionKey.data);
  return {
    signature: {
      signer: signer.material,
      hash,
      created,
      salted: !(options.deterministicSignatures ?? false),
      // Named in the order the session key packets are written, one per key given.
      intendedRecipients: options.encryptionKeys,
    },
    cipher,
    sessionKey,
    sessionKeyPackets: Buffer.concat(recipients.map((r) => sessionKeyPacket(r.material, cipher, sessionKey))),
  };
}

/** The cipher of a caller's session key, if the native path writes it (AES, no AEAD, right size). */
function requestedCipher(sessionKey: SessionKey): SymmetricAlgorithm | null {
  const cipher = symmetricByName(sessionKey.algorithm);
  const usable = cipher !== null && sessionKey.aeadAlgorithm === undefined && sessionKey.data.length === cipher.keyBytes;
  return usable ? cipher : null;
}
