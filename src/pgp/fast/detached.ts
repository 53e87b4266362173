/**
 * Detached binary-mode signatures (RFC 3156 §5) over node:crypto, identical in form to what
 * openpgp.js writes for the same key; null for a key of any shape the native path does not sign
 * with, so the caller falls back to openpgp.js.
 */
import type { enums, PrivateKey } from 'openpgp';
import { signatureHash } from './algorithm-choice.ts';
import { signingParty } from './key-selection.ts';
import { byteLength, MAX_NATIVE_DATA_BYTES, piecesOf, type MessageData } from './literal-data.ts';
import { openpgpTime } from './packet-framing.ts';
import { signaturePacket } from './signature.ts';

/** Inputs of {@link fastSignDetached}. */
export interface FastDetachedInput {
  readonly data: MessageData;
  readonly signingKey: PrivateKey;
  readonly date: Date;
  /** Leave out the random salt notation, making the signature reproducible (tests only). */
  readonly deterministicSignatures?: boolean;
}

/** A binary signature packet and the hash it was made with (for `micalg`). */
export interface FastDetachedSignature {
  readonly signature: Uint8Array;
  readonly hash: enums.hash;
}

/** Signs `data` natively, or returns null when the key or date is of a shape not handled here. */
export async function fastSignDetached(input: FastDetachedInput): Promise<FastDetachedSignature | null> {
  const pieces = piecesOf(input.data);
  const created = openpgpTime(input.date);
  if (created === null || byteLength(pieces) > MAX_NATIVE_DATA_BYTES) return null;
  const signer = await signingParty(input.signingKey, input.date);
  // With no recipients, openpgp.js takes the hash preferences of the signer's own key.
  const hash = signer === null ? null : signatureHash([signer.selection]);
  if (signer === null || hash === null) return null;
  const signature = signaturePacket(pieces, { signer: signer.material, hash, created, salted: !(input.deterministicSignatures ?? false), intendedRecipients: [] });
  return { signature, hash: hash.id };
}
