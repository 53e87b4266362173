/**
 * Checks OpenPGP signatures against a sender domain's published keys and reduces the outcome to
 * one of four states the engine turns into a verdict.
 */
import type { KeyID, PublicKey } from 'openpgp';
import { errorMessage } from './errors.ts';

/** The outcome of checking the signatures on one message. */
export type SignatureCheck =
  /** A signature by one of the keys verified; `fingerprint` is that key's primary fingerprint. */
  | {
      readonly status: 'valid';
      readonly fingerprint: string;
      readonly keyId: string;
      /** Intended Recipient Fingerprints from the signature's hashed area (uppercase hex), or null when it has none. */
      readonly intendedRecipients?: readonly string[] | null;
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
      return { status: 'valid', fingerprint, keyId: hex };
    } catch (error) {
      return { status: 'invalid', fingerprint, keyId: hex, detail: errorMessage(error) };
    }
  }
  return { status: 'unknown-signer', keyId: first.toHex().toUpperCase() };
}
