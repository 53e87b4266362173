/**
 * Detached signatures over a MIME entity (RFC 3156 §5): a binary-mode (type 0x00) signature over
 * the CRLF-canonical bytes, armored with CRLF, plus the `micalg` name of its hash. The native
 * path (./fast/) signs when the key allows; openpgp.js, the reference, otherwise.
 */
import { createMessage, enums, readSignature, sign, verify, type PrivateKey, type PublicKey, type Signature } from 'openpgp';
import { armorBytes, dearmor } from './armor.ts';
import { pgpConfig } from './config.ts';
import { errorMessage, PgpError } from './errors.ts';
import { fastSignDetached } from './fast/detached.ts';
import { checkSignatures, type SignatureCheck } from './signature-check.ts';

/** A detached signature ready for the second part of a multipart/signed. */
export interface DetachedSignature {
  /** The armored signature, lines ending in CRLF. */
  readonly armored: Buffer;
  /** The RFC 3156 §5 `micalg` value, e.g. `pgp-sha512`. */
  readonly micalg: string;
}

/**
 * Signs `data` (already canonical) with `signingKey`. Throws `SIGN_FAILED`.
 * @param fastPath try the native node:crypto path first
 */
export async function signDetached(
  data: Uint8Array,
  signingKey: PrivateKey,
  date: Date,
  deterministicSignatures = false,
  fastPath = true,
): Promise<DetachedSignature> {
  try {
    const fast = fastPath ? await fastSignDetached({ data, signingKey, date, deterministicSignatures }) : null;
    if (fast !== null) return { armored: armorBytes('SIGNATURE', fast.signature), micalg: micalgName(fast.hash) };
    const message = await createMessage({ binary: data, date, format: 'binary' });
    const config = pgpConfig({ deterministicSignatures });
    const binary = await sign({ message, signingKeys: signingKey, detached: true, format: 'binary', date, config });
    const signature = await readSignature({ binarySignature: binary, config });
    const packet = signature.packets[0];
    if (packet === undefined || packet.hashAlgorithm === null) throw new Error('no signature packet');
    return { armored: armorBytes('SIGNATURE', binary), micalg: micalgName(packet.hashAlgorithm) };
  } catch (error) {
    throw new PgpError('SIGN_FAILED', `detached signing failed: ${errorMessage(error)}`, { cause: error });
  }
}

/** RFC 3156 §5 / RFC 4880 §9.4 textual hash names for `micalg`. */
function micalgName(hash: enums.hash): string {
  const name = enums.read(enums.hash, hash);
  return name === 'ripemd' ? 'pgp-ripemd160' : `pgp-${name.replace('_', '-')}`;
}

/** Reads an armored detached signature. Throws `ARMOR_INVALID` or `MESSAGE_INVALID`. */
export async function readDetachedSignature(armored: Uint8Array): Promise<Signature> {
  const binary = dearmor('SIGNATURE', armored);
  try {
    return await readSignature({ binarySignature: new Uint8Array(binary.buffer, binary.byteOffset, binary.byteLength), config: pgpConfig() });
  } catch (error) {
    throw new PgpError('MESSAGE_INVALID', `unreadable signature: ${errorMessage(error)}`, { cause: error });
  }
}

/** Checks a detached signature over `data` against `keys`. Never throws. */
export async function verifyDetached(data: Uint8Array, signature: Signature, keys: readonly PublicKey[], date: Date): Promise<SignatureCheck> {
  return checkSignatures(signature.getSigningKeyIDs(), keys, async (key) => {
    const message = await createMessage({ binary: data, format: 'binary' });
    const result = await verify({ message, signature, verificationKeys: key, format: 'binary', date, config: pgpConfig() });
    return result.signatures;
  });
}
