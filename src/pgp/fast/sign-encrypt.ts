/**
 * Sign-then-encrypt over node:crypto primitives, writing the message the openpgp.js path writes:
 * one v3 PKESK per recipient, then SEIPD v1 holding a one-pass signature, the binary literal data
 * and the v4 signature, uncompressed. It covers the keys this project deals in (Ed25519 legacy
 * site keys; Curve25519 legacy ECDH or RSA recipients; v4) and answers null for anything else,
 * so the caller falls back to openpgp.js, which stays the reference. This is the whole-buffer
 * writer, with definite lengths; streaming-sign-encrypt.ts writes the same packets from a stream.
 */
import { integrityProtectedPacket } from './integrity-protected.ts';
import { byteLength, literalDataHeader, MAX_NATIVE_DATA_BYTES, piecesOf, type MessageData } from './literal-data.ts';
import { planSignEncrypt, type SignEncryptOptions } from './message-plan.ts';
import { onePassSignaturePacket, signaturePacket } from './signature.ts';

/** Inputs of {@link fastSignEncrypt}. */
export interface FastSignEncryptInput extends SignEncryptOptions {
  /** The literal data, whole or in pieces. */
  readonly data: MessageData;
}

/**
 * Signs and encrypts `data` natively. Returns the binary OpenPGP message, or null when a key,
 * the date, the size or the requested session key is of a shape this path does not write.
 * Throws only on a failure inside node:crypto.
 */
export async function fastSignEncrypt(input: FastSignEncryptInput): Promise<Uint8Array | null> {
  const pieces = piecesOf(input.data);
  const dataLength = byteLength(pieces);
  if (dataLength > MAX_NATIVE_DATA_BYTES) return null;
  const plan = await planSignEncrypt(input);
  if (plan === null) return null;
  const encrypted = integrityProtectedPacket(plan.cipher, plan.sessionKey, [
    onePassSignaturePacket(plan.signature),
    literalDataHeader(dataLength, plan.signature.created),
    ...pieces,
    signaturePacket(pieces, plan.signature),
  ]);
  return Buffer.concat([plan.sessionKeyPackets, encrypted]);
}
