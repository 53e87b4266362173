/**
 * Whether a site key can be encrypted to, by us (openpgp.js) and by GnuPG 2.2 on the other side
 * (docs/dns-records.md §5). Anything in doubt is refused: a sender then treats the site as keyless, which the pin
 * and the site's policy turn into a deferral when that is not expected.
 */
import { config as defaultConfig, type PublicKey, type Subkey } from 'openpgp';
import { fingerprintOf } from './openpgp-key.ts';

/** Smallest RSA modulus accepted, bits. */
export const MIN_RSA_BITS = 2048;

/** Public-key algorithms GnuPG 2.2 and openpgp.js both handle, by the role they play. */
const PRIMARY_ALGORITHMS = new Set<string>(['rsaEncryptSign', 'rsaSign', 'ecdsa', 'eddsaLegacy']);
const ENCRYPTION_ALGORITHMS = new Set<string>(['rsaEncryptSign', 'rsaEncrypt', 'ecdh']);
/** Curves GnuPG 2.2 supports that openpgp.js does not refuse by default (it refuses secp256k1). */
const CURVES = new Set<string>([
  'ed25519Legacy',
  'curve25519Legacy',
  'nistP256',
  'nistP384',
  'nistP521',
  'brainpoolP256r1',
  'brainpoolP384r1',
  'brainpoolP512r1',
]);

/** Why a parsed key is not usable. Stable values: they appear in logs, CLI output and tests. */
export type KeyRejectReason =
  | 'unsupported-key-version'
  | 'unsupported-algorithm'
  | 'weak-key'
  | 'revoked'
  | 'expired'
  | 'invalid'
  | 'no-encryption-key';

/** A key that passed every check at the time given. */
export interface ValidatedKey {
  /** 40 upper-case hex digits. */
  readonly fingerprint: string;
  /** The parsed key, for encryption and signature checks. */
  readonly key: PublicKey;
  /** Binary transferable public key, exactly as read. */
  readonly bytes: Uint8Array;
  readonly created: Date;
  /** Null when the key does not expire. */
  readonly expires: Date | null;
  /** Primary and encryption algorithms, e.g. `eddsaLegacy/ed25519Legacy + ecdh/curve25519Legacy`. */
  readonly algorithm: string;
  /** Key ID of the subkey a message would be encrypted to, 16 upper-case hex digits. */
  readonly encryptionKeyId: string;
  /** The key's user IDs, informational only: the DNS owner name binds the key to the site. */
  readonly userIds: readonly string[];
}

/** Outcome of {@link validateSiteKey}. */
export type KeyValidation =
  | { readonly ok: true; readonly key: ValidatedKey }
  | { readonly ok: false; readonly fingerprint: string; readonly reason: KeyRejectReason; readonly detail: string };

/** openpgp.js settings for the checks: its defaults, with our RSA floor. */
const CHECK_CONFIG = { ...defaultConfig, minRSABits: MIN_RSA_BITS };

/**
 * Checks a public key for use as a site encryption key at time `now`: OpenPGP v4; algorithms and curves both sides
 * support; RSA of at least {@link MIN_RSA_BITS} bits; not revoked, not expired, valid self-signatures; an
 * encryption-capable key usable now.
 * @param bytes the binary key as read, kept in the result
 */
export async function validateSiteKey(key: PublicKey, bytes: Uint8Array, now: Date): Promise<KeyValidation> {
  const fingerprint = fingerprintOf(key);
  const reject = (reason: KeyRejectReason, detail: string): KeyValidation => ({ ok: false, fingerprint, reason, detail });
  if (key.keyPacket.version !== 4) {
    return reject('unsupported-key-version', `OpenPGP v${key.keyPacket.version} key: GnuPG 2.2 reads only v4`);
  }
  const primaryProblem = algorithmProblem(key, PRIMARY_ALGORITHMS);
  if (primaryProblem) return reject(primaryProblem.reason, `primary key: ${primaryProblem.detail}`);
  if (await key.isRevoked(undefined, undefined, now)) return reject('revoked', 'the key is revoked');
  const expiration = await key.getExpirationTime(undefined, CHECK_CONFIG).catch(() => null);
  if (expiration instanceof Date && expiration.getTime() <= now.getTime()) {
    return reject('expired', `the key expired on ${expiration.toISOString()}`);
  }
  try {
    await key.verifyPrimaryKey(now, undefined, CHECK_CONFIG);
  } catch (error) {
    return reject('invalid', errorText(error));
  }
  let encryptionKey: PublicKey | Subkey;
  try {
    encryptionKey = await key.getEncryptionKey(undefined, now, undefined, CHECK_CONFIG);
  } catch (error) {
    return reject('no-encryption-key', errorText(error));
  }
  const encryptionProblem = algorithmProblem(encryptionKey, ENCRYPTION_ALGORITHMS);
  if (encryptionProblem) return reject(encryptionProblem.reason, `encryption key: ${encryptionProblem.detail}`);
  return {
    ok: true,
    key: {
      fingerprint,
      key,
      bytes,
      created: key.getCreationTime(),
      expires: expiration instanceof Date ? expiration : null,
      algorithm: `${describeAlgorithm(key)} + ${describeAlgorithm(encryptionKey)}`,
      encryptionKeyId: encryptionKey.getKeyID().toHex().toUpperCase(),
      userIds: key.getUserIDs(),
    },
  };
}

/** What is wrong with a (sub)key's version, algorithm, curve or size, if anything. */
function algorithmProblem(
  key: PublicKey | Subkey,
  allowed: ReadonlySet<string>,
): { reason: KeyRejectReason; detail: string } | undefined {
  if (key.keyPacket.version !== 4) {
    return { reason: 'unsupported-key-version', detail: `v${key.keyPacket.version} key packet` };
  }
  const info = key.getAlgorithmInfo();
  if (!allowed.has(info.algorithm)) {
    const number: number = key.keyPacket.algorithm;
    return { reason: 'unsupported-algorithm', detail: `algorithm ${info.algorithm} (${number}) is not usable here` };
  }
  if (info.curve !== undefined && !CURVES.has(info.curve)) {
    return { reason: 'unsupported-algorithm', detail: `curve ${info.curve} is not usable here` };
  }
  if (info.bits !== undefined && info.bits < MIN_RSA_BITS) {
    return { reason: 'weak-key', detail: `RSA ${info.bits} bits, less than ${MIN_RSA_BITS}` };
  }
  return undefined;
}

function describeAlgorithm(key: PublicKey | Subkey): string {
  const info = key.getAlgorithmInfo();
  return `${info.algorithm}/${info.curve ?? `${info.bits ?? '?'} bits`}`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
