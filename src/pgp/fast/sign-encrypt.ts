/**
 * Sign-then-encrypt over node:crypto primitives, writing the message the openpgp.js path writes:
 * one v3 PKESK per recipient, then SEIPD v1 holding a one-pass signature, the binary literal data
 * and the v4 signature, uncompressed. It covers the keys this project deals in (Ed25519 legacy
 * site keys; Curve25519 legacy ECDH or RSA recipients; v4) and answers null for anything else,
 * so the caller falls back to openpgp.js, which stays the reference.
 */
import { randomBytes } from 'node:crypto';
import type { PrivateKey, PublicKey, SessionKey } from 'openpgp';
import { sessionCipher, signatureHash } from './algorithm-choice.ts';
import { symmetricByName, type SymmetricAlgorithm } from './algorithms.ts';
import { recipientParty, signingParty, type Party } from './key-selection.ts';
import type { RecipientMaterial } from './key-material.ts';
import { integrityProtectedPacket } from './integrity-protected.ts';
import { byteLength, literalDataHeader, MAX_NATIVE_DATA_BYTES, piecesOf, type MessageData } from './literal-data.ts';
import { openpgpTime } from './packet-framing.ts';
import { sessionKeyPacket } from './session-key-packet.ts';
import { onePassSignaturePacket, signaturePacket } from './signature.ts';

/** Inputs of {@link fastSignEncrypt}. */
export interface FastSignEncryptInput {
  /** The literal data, whole or in pieces. */
  readonly data: MessageData;
  readonly signingKey: PrivateKey;
  readonly encryptionKeys: readonly PublicKey[];
  /** Signature and literal-data time. */
  readonly date: Date;
  /** A fixed session key (tests only); a fresh random one otherwise. */
  readonly sessionKey?: SessionKey;
  /** Leave out the random salt notation, making the signature reproducible (tests only). */
  readonly deterministicSignatures?: boolean;
}

/**
 * Signs and encrypts `data` natively. Returns the binary OpenPGP message, or null when a key,
 * the date, the size or the requested session key is of a shape this path does not write.
 * Throws only on a failure inside node:crypto.
 */
export async function fastSignEncrypt(input: FastSignEncryptInput): Promise<Uint8Array | null> {
  const pieces = piecesOf(input.data);
  const dataLength = byteLength(pieces);
  const created = openpgpTime(input.date);
  if (created === null || dataLength > MAX_NATIVE_DATA_BYTES || input.encryptionKeys.length === 0) return null;
  const signer = await signingParty(input.signingKey, input.date);
  if (signer === null) return null;
  const recipients: Party<RecipientMaterial>[] = [];
  for (const key of input.encryptionKeys) {
    const recipient = await recipientParty(key, input.date);
    if (recipient === null) return null;
    recipients.push(recipient);
  }
  const selections = recipients.map((r) => r.selection);
  const hash = signatureHash(selections);
  const cipher = input.sessionKey === undefined ? sessionCipher(selections) : requestedCipher(input.sessionKey);
  if (hash === null || cipher === null) return null;
  const sessionKey = input.sessionKey === undefined ? randomBytes(cipher.keyBytes) : Buffer.from(input.sessionKey.data);

  const params = { signer: signer.material, hash, created, salted: !(input.deterministicSignatures ?? false) };
  const encrypted = integrityProtectedPacket(cipher, sessionKey, [
    onePassSignaturePacket(params),
    literalDataHeader(dataLength, created),
    ...pieces,
    signaturePacket(pieces, params),
  ]);
  return Buffer.concat([...recipients.map((r) => sessionKeyPacket(r.material, cipher, sessionKey)), encrypted]);
}

/** The cipher of a caller's session key, if the native path writes it (AES, no AEAD, right size). */
function requestedCipher(sessionKey: SessionKey): SymmetricAlgorithm | null {
  const cipher = symmetricByName(sessionKey.algorithm);
  const usable = cipher !== null && sessionKey.aeadAlgorithm === undefined && sessionKey.data.length === cipher.keyBytes;
  return usable ? cipher : null;
}
