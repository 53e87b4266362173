/**
 * The span of time over which openpgp.js's answers about a key cannot change, so the native path
 * may ask openpgp.js once and reuse the answer. openpgp.js judges a key at a time `t` only by
 * comparing `t` with creation times (of key packets and signatures) and with expiration times
 * (of signatures and of keys). Once `t` is at or after every creation time and before every
 * expiration time, each of those comparisons has one fixed outcome, and so has every answer.
 * Keys are treated as immutable once used (openpgp.js's `update()` would invalidate this).
 */
import type { Key, SignaturePacket } from 'openpgp';

/** `[from, until)` in milliseconds since the epoch; `until` may be Infinity. */
export interface ValidityWindow {
  readonly from: number;
  readonly until: number;
}

/**
 * Signatures the key holds, including the primary-key binding signatures embedded in signing
 * subkeys' bindings; `directSignatures` is not in openpgp.js's type declarations.
 */
function signaturesOf(key: Key): SignaturePacket[] {
  const direct = (key as { directSignatures?: SignaturePacket[] }).directSignatures ?? [];
  const held = [
    ...key.revocationSignatures,
    ...direct,
    ...key.users.flatMap((u) => [...u.selfCertifications, ...u.otherCertifications, ...u.revocationSignatures]),
    ...key.subkeys.flatMap((s) => [...s.bindingSignatures, ...s.revocationSignatures]),
  ];
  return [...held, ...held.flatMap((s) => (s.embeddedSignature === null ? [] : [s.embeddedSignature]))];
}

/**
 * The window of `key`. Key expiry is bounded conservatively from the earliest key creation time,
 * so the window can only be shorter than the true one, never longer.
 */
export function validityWindow(key: Key): ValidityWindow {
  const keyCreated = [key.keyPacket, ...key.subkeys.map((s) => s.keyPacket)].map((p) => p.created.getTime());
  const earliestKey = Math.min(...keyCreated);
  let from = Math.max(...keyCreated);
  let until = Infinity;
  for (const signature of signaturesOf(key)) {
    if (signature.created === null) continue;
    from = Math.max(from, signature.created.getTime());
    until = Math.min(until, +signature.getExpirationTime());
    if (signature.keyExpirationTime !== null && signature.keyExpirationTime > 0) {
      until = Math.min(until, earliestKey + signature.keyExpirationTime * 1000);
    }
  }
  return { from, until };
}

/** openpgp.js compares times in whole seconds (its `normalizeDate`). */
export function normalizeTime(date: Date): number {
  return Math.floor(date.getTime() / 1000) * 1000;
}
