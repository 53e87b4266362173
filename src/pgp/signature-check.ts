/**
 * Checks OpenPGP signatures against a sender domain's published keys and reduces the outcome to
 * one of four states the engine turns into a verdict.
 */
import type { KeyID, PublicKey, Signature } from 'openpgp';
import { errorMessage } from './errors.ts';
import { intendedRecipientsOf } from './intended-recipient.ts';

/** The outcome of checking the signatures on one message. */
export type SignatureCheck =
  /**
   * A signature by one of the keys verified; `fingerprint` is that key's primary fingerprint.
   * `intendedRecipients` are the primary-key fingerprints (uppercase hex) the verified signature
   * names in its hashed area as the keys the message was encrypted to (RFC 9580 §5.2.3.36), in
   * its order; null when it names none (then nothing binds it to an encryption).
   */
  | {
      readonly status: 'valid';
      readonly fingerprint: string;
      readonly keyId: string;
      readonly intendedRecipients: readonly string[] | null;
    }
  /** A signature by one of the keys exists but does not verify (data or signature altered). */
  | { readonly status: 'invalid'; readonly fingerprint: string; readonly keyId: string; readonly detail: string }
  /** Signed, but by none of the keys; `keyId` is the first signer's key ID. */
  | { readonly status: 'unknown-signer'; readonly keyId: string }
  /** No signature at all. */
  | { readonly status: 'unsigned' };

/** The part of an openpgp.js verification result used here. */
export interface VerificationOutcome {
  readonly keyID: KeyID;
  readonly verified: Promise<unknown>;
  readonly signature: Promise<Signature>;
}

/**
 * Finds the signature issued by one of `keys` among `signerIds` and runs `verifyWith` with that
 * key only. Never throws: a library error during verification is an `invalid` signature.
 */
export async function checkSignatures(
  signerIds: readonly KeyID[],
  keys: readonly PublicKey[],
  verifyWith: (key: PublicKey) => Promise<readonly VerificationOutcome[]>,
): Promise<SignatureCheck> {
  const first = signerIds[0];
  if (first === undefined) return { status: 'unsigned' };
  for (const keyId of signerIds) {
    const key = keys.find((k) => k.getKeys(keyId).length > 0);
    if (key === undefined) continue;
    const fingerprint = key.getFingerprint().toUpperCase();
    const hex = keyId.toHex().toUpperCase();
    try {
      const outcome = (await verifyWith(key)).find((r) => r.keyID.equals(keyId));
      if (outcome === undefined) return { status: 'invalid', fingerprint, keyId: hex, detail: 'signature not found' };
      await outcome.verified;
      // Read from the packet that just verified, so only subpackets its signature covers count.
      const packet = (await outcome.signature).packets[0];
      const intendedRecipients = packet === undefined ? null : intendedRecipientsOf(packet);
      return { status: 'valid', fingerprint, keyId: hex, intendedRecipients };
    } catch (error) {
      return { status: 'invalid', fingerprint, keyId: hex, detail: errorMessage(error) };
    }
  }
  return { status: 'unknown-signer', keyId: first.toHex().toUpperCase() };
}
