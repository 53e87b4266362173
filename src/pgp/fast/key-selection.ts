/**
 * Which (sub)key of a key openpgp.js would use at a given time, and the preferences of its primary
 * self-signature: asked of openpgp.js itself, so expiry, revocation and binding signatures are
 * judged exactly as on the fallback path. Answers are remembered per key object for as long as
 * they cannot change (see validity-window.ts); outside that window openpgp.js is asked every time.
 */
import type { AnyKeyPacket, Key, PrivateKey, PublicKey } from 'openpgp';
import { pgpConfig } from '../config.ts';
import { recipientMaterial, signerMaterial, type RecipientMaterial, type SignerMaterial } from './key-material.ts';
import { normalizeTime, validityWindow, type ValidityWindow } from './validity-window.ts';

/** A key's usable (sub)key for one role and its primary self-signature's preferences. */
export interface KeySelection {
  readonly keyPacket: AnyKeyPacket;
  readonly preferredSymmetric: readonly number[];
  readonly preferredHash: readonly number[];
  /** The key announces SEIPD v2 support (features flag 0x08); openpgp.js would then use AEAD. */
  readonly seipdV2: boolean;
}

interface Remembered {
  readonly window: ValidityWindow;
  readonly selection: KeySelection | null;
}

/** RFC 9580 §5.2.3.32: features flag for SEIPD v2 (openpgp.js's `enums.features.seipdv2`, not in its types). */
const SEIPD_V2_FEATURE = 0x08;
/** The configuration every selection is made with: the one the fallback path uses. */
const CONFIG = pgpConfig();
const encryptionSelections = new WeakMap<Key, Remembered>();
const signingSelections = new WeakMap<Key, Remembered>();
const windows = new WeakMap<Key, ValidityWindow>();

/** A selected (sub)key with its native key material. */
export interface Party<Material> {
  readonly selection: KeySelection;
  readonly material: Material;
}

/**
 * The encryption (sub)key openpgp.js would encrypt to at `date` and its material, or null if
 * openpgp.js would refuse the key or the native path does not support the (sub)key.
 */
export async function recipientParty(key: PublicKey, date: Date): Promise<Party<RecipientMaterial> | null> {
  const selection = await remembered(encryptionSelections, key, date, () => key.getEncryptionKey(undefined, date, undefined, CONFIG));
  const material = selection === null ? null : recipientMaterial(selection.keyPacket);
  return selection === null || material === null ? null : { selection, material };
}

/** The signing (sub)key openpgp.js would sign with at `date` and its material, or null (as above). */
export async function signingParty(key: PrivateKey, date: Date): Promise<Party<SignerMaterial> | null> {
  const selection = await remembered(signingSelections, key, date, () => key.getSigningKey(undefined, date, undefined, CONFIG));
  const material = selection === null ? null : signerMaterial(selection.keyPacket);
  return selection === null || material === null ? null : { selection, material };
}

async function remembered(
  cache: WeakMap<Key, Remembered>,
  key: Key,
  date: Date,
  pick: () => Promise<{ keyPacket: AnyKeyPacket }>,
): Promise<KeySelection | null> {
  const time = normalizeTime(date);
  const hit = cache.get(key);
  if (hit !== undefined && time >= hit.window.from && time < hit.window.until) return hit.selection;
  const selection = await select(key, date, pick);
  let window = windows.get(key);
  if (window === undefined) {
    window = validityWindow(key);
    windows.set(key, window);
  }
  if (time >= window.from && time < window.until) cache.set(key, { window, selection });
  return selection;
}

async function select(key: Key, date: Date, pick: () => Promise<{ keyPacket: AnyKeyPacket }>): Promise<KeySelection | null> {
  try {
    const { keyPacket } = await pick();
    const { selfCertification } = await key.getPrimaryUser(date, undefined, CONFIG);
    const features = selfCertification.features?.[0] ?? 0;
    return {
      keyPacket,
      preferredSymmetric: selfCertification.preferredSymmetricAlgorithms ?? [],
      preferredHash: selfCertification.preferredHashAlgorithms ?? [],
      seipdV2: (features & SEIPD_V2_FEATURE) !== 0,
    };
  } catch {
    // openpgp.js refuses the key at this time (expired, revoked, no usable subkey, ...): the
    // fallback path runs openpgp.js, which then reports that refusal as the error.
    return null;
  }
}
