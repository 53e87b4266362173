/**
 * Key-transition statements: a site that rotates its key has the old (pinned) key certify the new one, with a
 * standard OpenPGP third-party certification (signature types 0x10-0x13, RFC 9580 §5.2.1) by the old primary key
 * over a user ID of the new key, carried in the new key's published bytes. A sender holding a pin then accepts
 * the new key without DNSSEC: only the holder of a pinned private key can make that statement.
 */
import { config as defaultConfig, enums, type PublicKey, type SignaturePacket, type User } from 'openpgp';
import { fingerprintOf, readPublicKeyBytes } from '../keys/index.ts';
import type { Pin } from './evaluate.ts';

/** A key found in DNS, as the check reads it. */
export interface FoundKey {
  readonly fingerprint: string;
  readonly key: PublicKey;
  readonly bytes: Uint8Array;
}

const CERTIFICATION_TYPES = new Set<number>([enums.signature.certGeneric, enums.signature.certPersona, enums.signature.certCasual, enums.signature.certPositive]);

/**
 * Which of `found` a pinned key certified, checked at `now`: new keys (a rotation) and pinned keys alike (a pinned
 * key certified by another pinned key is that key's successor, and retires it once the site stops publishing it).
 * The pinned keys' public key material comes from the pin, or from the answer for a pinned key it still
 * publishes (a pin from a version 1 store holds no key bytes). Nothing is parsed or verified unless a key found
 * carries a certification whose issuer is a pinned key.
 * @returns certified key's fingerprint → the fingerprint of the pinned key that certified it
 */
export async function certifiedByPin(pin: Pin, found: readonly FoundKey[], now: Date): Promise<Record<string, string>> {
  // A v4 key ID is the low 64 bits of the fingerprint.
  const pinnedIds = new Set(pin.fingerprints.map((fp) => fp.slice(-16)));
  const candidates = found.filter((k) =>
    k.key.users.some((user) => user.otherCertifications.some((c) => pinnedIds.has(c.issuerKeyID.toHex().toUpperCase()))),
  );
  if (candidates.length === 0) return {};
  const certifiers = await pinnedKeys(pin, found, now);
  const result: Record<string, string> = {};
  for (const candidate of candidates) {
    const others = certifiers.filter((k) => fingerprintOf(k) !== candidate.fingerprint);
    const by = await certifier(candidate.key, others, now);
    if (by !== undefined) result[candidate.fingerprint] = by;
  }
  return result;
}

/**
 * The pinned keys whose material is known (published now, or stored in the pin), parsed; one revoked at `now` is
 * left out (it certifies and signs nothing).
 */
export async function pinnedKeys(pin: Pin, found: readonly FoundKey[], now: Date): Promise<PublicKey[]> {
  const keys: PublicKey[] = [];
  for (const fingerprint of pin.fingerprints) {
    const stored = pin.publicKeys[fingerprint];
    const published = found.find((k) => k.fingerprint === fingerprint)?.key;
    let key: PublicKey | undefined = published;
    if (key === undefined && stored !== undefined) {
      key = await readPublicKeyBytes(Buffer.from(stored, 'base64')).catch(() => undefined);
    }
    // The stored bytes must be the key the pin names: anything else certifies nothing.
    if (key === undefined || fingerprintOf(key) !== fingerprint) continue;
    if (await key.isRevoked(undefined, undefined, now).catch(() => true)) continue;
    keys.push(key);
  }
  return keys;
}

/** The fingerprint of the first of `certifiers` whose primary key made a valid certification of a user ID of `key`. */
async function certifier(key: PublicKey, certifiers: readonly PublicKey[], now: Date): Promise<string | undefined> {
  for (const user of key.users) {
    if (user.userID === null) continue;
    for (const certificate of user.otherCertifications) {
      if (certificate.signatureType === null || !CERTIFICATION_TYPES.has(certificate.signatureType)) continue;
      for (const old of certifiers) {
        if (await validCertification(user, certificate, key, old, now)) return fingerprintOf(old);
      }
    }
  }
  return undefined;
}

/** Whether `certificate` is `old`'s primary key's valid, unrevoked certification of `user` of `key` at `now`. */
async function validCertification(user: User, certificate: SignaturePacket, key: PublicKey, old: PublicKey, now: Date): Promise<boolean> {
  // Made by the old primary key itself, not by a subkey: the issuer must name it.
  if (!certificate.issuerKeyID.equals(old.getKeyID())) return false;
  if (certificate.issuerFingerprint !== null && Buffer.from(certificate.issuerFingerprint).toString('hex').toUpperCase() !== fingerprintOf(old)) {
    return false;
  }
  try {
    const type = certificate.signatureType as enums.signature;
    await certificate.verify(old.keyPacket, type, { userID: user.userID, key: key.keyPacket }, now, undefined, defaultConfig);
    return !(await user.isRevoked(certificate, old.keyPacket, now, defaultConfig));
  } catch {
    return false;
  }
}

/**
 * `lookup` with the keys a pin in force certified (`certifiedBy`), ready for `evaluatePin`. Certifications are
 * checked only when they can matter: a pin in force (`stored`, unexpired at `now`) and an answer that is not
 * DNSSEC-validated (that one vouches for every key itself).
 */
export async function withCertifications<L extends { readonly keys: readonly FoundKey[]; readonly dnssec: boolean }>(
  stored: Pin | undefined,
  lookup: L,
  now: Date,
): Promise<L & { readonly certifiedBy?: Readonly<Record<string, string>> }> {
  if (stored === undefined || Date.parse(stored.expiresAt) <= now.getTime() || lookup.dnssec) return lookup;
  const certifiedBy = await certifiedByPin(stored, lookup.keys, now);
  return Object.keys(certifiedBy).length === 0 ? lookup : { ...lookup, certifiedBy };
}
