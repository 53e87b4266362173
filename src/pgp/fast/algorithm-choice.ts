/**
 * The algorithms of a message, chosen by the rules openpgp.js applies (its `getPreferredHashAlgo`
 * and `getPreferredCipherSuite`) so that the native path writes what the fallback path would.
 * Where those rules lead somewhere the native path does not go, the answer is null.
 */
import { enums } from 'openpgp';
import { pgpConfig } from '../config.ts';
import { hashAlgorithm, symmetricAlgorithm, type HashAlgorithm, type SymmetricAlgorithm } from './algorithms.ts';
import type { KeySelection } from './key-selection.ts';

const CONFIG = pgpConfig();

/**
 * The signature hash for an Ed25519 (legacy) signer: the configured hash when every target key
 * lists it (SHA-256 counts as always supported), as long as it is at least SHA-256, which EdDSA
 * requires. Otherwise openpgp.js searches for the strongest common hash: null, left to it.
 * @param targets the recipients' keys, or the signer's own key for a detached signature
 */
export function signatureHash(targets: readonly KeySelection[]): HashAlgorithm | null {
  const preferred = CONFIG.preferredHashAlgorithm;
  const supported = preferred === enums.hash.sha256 || targets.every((t) => t.preferredHash.includes(preferred));
  return supported ? hashAlgorithm(preferred) : null;
}

/**
 * The session cipher: the configured one if every recipient lists it, else AES-128 (every
 * implementation must support it). Null when every recipient announces SEIPD v2, for which
 * openpgp.js would write an AEAD packet instead.
 */
export function sessionCipher(recipients: readonly KeySelection[]): SymmetricAlgorithm | null {
  if (recipients.length === 0 || recipients.every((r) => r.seipdV2)) return null;
  const preferred = CONFIG.preferredSymmetricAlgorithm;
  return symmetricAlgorithm(recipients.every((r) => r.preferredSymmetric.includes(preferred)) ? preferred : enums.symmetric.aes128);
}
