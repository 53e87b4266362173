/** Generating a site key: what GnuPG 2.2 and deployed MUAs read (LIBRARIES.md §4). */
import { generateKey, type PrivateKey } from 'openpgp';
import { normaliseDomain } from './domain.ts';

/**
 * Generates a site key for `domain`: OpenPGP v4, Ed25519 primary key (certify, sign) with a Curve25519 ECDH
 * encryption subkey ("legacy" algorithms 22 and 18, which GnuPG 2.2 reads; the RFC 9580 algorithms 25/27 and v6
 * keys it does not), no expiry, no passphrase (the milter uses it unattended; the file mode protects it), and no
 * AEAD feature flag, so senders use SEIPDv1, which GnuPG 2.2 decrypts.
 * The user ID names the site's postmaster; the DNS owner name, not the user ID, binds the key to the site.
 */
export async function generateSiteKey(domain: string, now: Date = new Date()): Promise<PrivateKey> {
  const site = normaliseDomain(domain);
  const { privateKey } = await generateKey({
    type: 'ecc',
    curve: 'ed25519Legacy',
    userIDs: [{ name: `MUSE site key ${site}`, email: `postmaster@${site}` }],
    keyExpirationTime: 0,
    date: now,
    format: 'object',
    config: { v6Keys: false, aeadProtect: false },
  });
  return privateKey;
}
