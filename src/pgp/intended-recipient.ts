/**
 * The Intended Recipient Fingerprint signature subpacket (RFC 9580 §5.2.3.36, type 35): inside a
 * signed and encrypted message, the signature names the primary keys the message was encrypted
 * to. A receiving site that finds its own key missing from the list knows that the signed content
 * was decrypted somewhere else and encrypted to it anew (surreptitious forwarding, replay), even
 * though the signature itself still verifies. Written on every sign+encrypt path, native and
 * openpgp.js alike; read back from the hashed area only.
 */
import type { Key, SignaturePacket } from 'openpgp';
import { encodeLength } from './fast/packet-framing.ts';

/** RFC 9580 §5.2.3.36: the subpacket type (openpgp.js 6 neither writes nor interprets it). */
export const INTENDED_RECIPIENT_SUBPACKET = 35;

/**
 * Not critical. A critical subpacket an implementation does not know makes the whole signature
 * invalid to it (RFC 9580 §5.2.3.7): openpgp.js 6 (our own inbound reader, and the library of
 * several mail clients) fails with "Unknown critical signature subpacket type 35", GnuPG 2.2
 * reports BADSIG ("unknown critical bit") and rnp 0.16 an unknown signature (recorded in
 * test/pgp/intended-recipient*.test.ts). Left non-critical, a reader that does not know the
 * subpacket still verifies the signature and one that does (Sequoia) enforces it; the receiving
 * site enforces the list itself.
 */
const CRITICAL = false;
/** RFC 4880 §5.2.3.1: the top bit of the type octet marks a subpacket critical. */
const CRITICAL_BIT = 0x80;

/** Fingerprint lengths by key version: SHA-1 for v4 (RFC 4880 §12.2), SHA-256 for v5 and v6. */
const FINGERPRINT_BYTES: ReadonlyMap<number, number> = new Map([
  [4, 20],
  [5, 32],
  [6, 32],
]);

/**
 * The subpacket body naming `key`: the version of its primary key, then the primary key's
 * fingerprint (never a subkey's, even though the message is encrypted to a subkey).
 */
export function intendedRecipientBody(key: Key): Buffer {
  const primary = key.keyPacket;
  return Buffer.concat([Buffer.from([primary.version]), primary.getFingerprintBytes() ?? new Uint8Array(0)]);
}

/** The hashed subpackets naming each of `keys`, in their order, framed (length, type, body). */
export function intendedRecipientSubpackets(keys: readonly Key[]): Buffer {
  const type = INTENDED_RECIPIENT_SUBPACKET | (CRITICAL ? CRITICAL_BIT : 0);
  return Buffer.concat(
    keys.map((key) => {
      const body = intendedRecipientBody(key);
      return Buffer.concat([encodeLength(body.length + 1), Buffer.from([type]), body]);
    }),
  );
}

/**
 * The intended recipients a signature names in its HASHED area: uppercase-hex primary-key
 * fingerprints in the signature's order, or null when it has no such subpacket. A subpacket whose
 * length does not fit its key version names no key anyone holds, so it is left out of the list;
 * the list is then empty rather than null, and a caller comparing it with its own keys finds no
 * match, which is the safe reading of a signature that was bound to recipients.
 *
 * openpgp.js parses the subpacket areas: a hashed subpacket of a type it does not interpret is
 * kept in `unknownSubpackets`; an unhashed one of a type other than the issuer and embedded
 * signature is kept in `unhashedSubpackets` only and never reaches `unknownSubpackets`, so anyone
 * who alters the (unprotected) unhashed area cannot add a recipient here.
 */
export function intendedRecipientsOf(signature: SignaturePacket): string[] | null {
  const found = signature.unknownSubpackets.filter((s) => s.type === INTENDED_RECIPIENT_SUBPACKET);
  if (found.length === 0) return null;
  return found.flatMap(({ body }) => {
    const version = body[0];
    const expected = version === undefined ? undefined : FINGERPRINT_BYTES.get(version);
    return expected !== undefined && body.length === expected + 1 ? [Buffer.from(body.subarray(1)).toString('hex').toUpperCase()] : [];
  });
}
