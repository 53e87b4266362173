/** Reading OpenPGP public keys out of record bytes and key files, with the bounds and checks DNS input needs. */
import { readKeys, type Key, type PublicKey } from 'openpgp';
import { KeyError } from './errors.ts';
import { MAX_KEY_BYTES } from './txt-record.ts';

/**
 * Reads exactly one binary transferable public key (RFC 9580 §10.1) from record bytes.
 * @throws KeyError `KEY_MALFORMED` for anything else: garbage, several keys, more than {@link MAX_KEY_BYTES}
 *   octets, or a secret key (which a site must never publish; it is not used, and the error says so)
 */
export async function readPublicKeyBytes(bytes: Uint8Array): Promise<PublicKey> {
  if (bytes.length > MAX_KEY_BYTES) {
    throw new KeyError('KEY_MALFORMED', `key of ${bytes.length} octets, more than ${MAX_KEY_BYTES}`);
  }
  let keys: Key[];
  try {
    keys = await readKeys({ binaryKeys: bytes });
  } catch (error) {
    throw new KeyError('KEY_MALFORMED', 'not an OpenPGP key', { cause: error });
  }
  const [key] = keys;
  if (!key || keys.length !== 1) throw new KeyError('KEY_MALFORMED', `${keys.length} keys where one is expected`);
  if (key.isPrivate()) {
    throw new KeyError('KEY_MALFORMED', `secret key material published for ${fingerprintOf(key)}: not used`);
  }
  return key as PublicKey;
}

/** A key's v4 fingerprint as 40 upper-case hex digits, the form used in output and in the pin store. */
export function fingerprintOf(key: Key): string {
  return key.getFingerprint().toUpperCase();
}
