/**
 * Raw key material taken out of openpgp.js key packets and turned into node:crypto KeyObjects,
 * once per packet: the result is kept in a WeakMap on the packet object, so nothing is parsed or
 * imported per message. A packet of any other shape yields null and the message goes to openpgp.js.
 */
import { createPublicKey, createPrivateKey, sign, verify, type KeyObject } from 'node:crypto';
import { enums, type AnyKeyPacket } from 'openpgp';
import { hashAlgorithm, symmetricAlgorithm, type HashAlgorithm, type SymmetricAlgorithm } from './algorithms.ts';

/** A recipient's ECDH key on Curve25519 in the legacy encoding (RFC 6637, RFC 4880bis). */
export interface EcdhRecipient {
  readonly kind: 'ecdh-x25519';
  readonly keyId: Buffer;
  readonly publicKey: KeyObject;
  readonly kdfHash: HashAlgorithm;
  readonly kdfCipher: SymmetricAlgorithm;
  /** The RFC 6637 §8 KDF parameter block: curve OID, algorithm, KDF parameters, "Anonymous Sender    ", fingerprint. */
  readonly kdfParameters: Buffer;
}

/** A recipient's RSA key (session key encrypted with PKCS#1 v1.5, RFC 4880 §5.1). */
export interface RsaRecipient {
  readonly kind: 'rsa';
  readonly keyId: Buffer;
  readonly algorithm: enums.publicKey.rsaEncryptSign | enums.publicKey.rsaEncrypt;
  readonly publicKey: KeyObject;
}

/** An encryption key the native path can encrypt a session key to. */
export type RecipientMaterial = EcdhRecipient | RsaRecipient;

/** A signing key: legacy EdDSA on Ed25519 (algorithm 22). */
export interface SignerMaterial {
  readonly keyId: Buffer;
  /** v4 fingerprint, for the issuer fingerprint subpacket. */
  readonly fingerprint: Buffer;
  readonly privateKey: KeyObject;
}

/** Curve OIDs in their packet form (RFC 6637 §11, RFC 4880bis §9.2). */
const CURVE25519_LEGACY_OID = Buffer.from('2b060104019755010501', 'hex');
const ED25519_LEGACY_OID = Buffer.from('2b06010401da470f01', 'hex');
/** Legacy encodings prefix the 32-octet native point with 0x40. */
const NATIVE_POINT_PREFIX = 0x40;
const POINT_BYTES = 32;
/** RFC 6637 §8: the fixed 20 octets in the KDF parameters. */
const ANONYMOUS_SENDER = Buffer.from('Anonymous Sender    ', 'latin1');
/** Version 1 of the KDF parameter field (RFC 6637 §9), 3 octets follow. */
const KDF_PARAMS_HEADER = Buffer.from([3, 1]);
/** The OpenPGP key version the native path writes for (PKESK v3, signature v4). */
const KEY_VERSION = 4;

const recipients = new WeakMap<AnyKeyPacket, RecipientMaterial | null>();
const signers = new WeakMap<AnyKeyPacket, SignerMaterial | null>();

/** The encryption material of a (sub)key packet, or null when the native path does not support it. */
export function recipientMaterial(packet: AnyKeyPacket): RecipientMaterial | null {
  return cached(recipients, packet, readRecipient);
}

/**
 * The signing material of a decrypted secret (sub)key packet, or null when not supported. A
 * packet still locked is not remembered: it may be decrypted later.
 */
export function signerMaterial(packet: AnyKeyPacket): SignerMaterial | null {
  return packet.isDecrypted() === true ? cached(signers, packet, readSigner) : null;
}

function cached<T>(cache: WeakMap<AnyKeyPacket, T | null>, packet: AnyKeyPacket, read: (packet: AnyKeyPacket) => T | null): T | null {
  let material = cache.get(packet);
  if (material === undefined) {
    try {
      material = read(packet);
    } catch {
      // node:crypto refused the key material (say, a point or modulus it cannot import):
      // openpgp.js, the reference, then handles this key and reports any real problem.
      material = null;
    }
    cache.set(packet, material);
  }
  return material;
}

function readRecipient(packet: AnyKeyPacket): RecipientMaterial | null {
  if (packet.version !== KEY_VERSION) return null;
  const params = packet.publicParams as Record<string, unknown>;
  const keyId = keyIdOf(packet);
  switch (packet.algorithm) {
    case enums.publicKey.ecdh:
      return readEcdh(packet, params, keyId);
    case enums.publicKey.rsaEncryptSign:
    case enums.publicKey.rsaEncrypt: {
      const n = bytesOf(params['n']);
      const e = bytesOf(params['e']);
      if (n === null || e === null) return null;
      const publicKey = createPublicKey({ key: { kty: 'RSA', n: base64url(n), e: base64url(e) }, format: 'jwk' });
      return { kind: 'rsa', keyId, algorithm: packet.algorithm, publicKey };
    }
    default:
      return null;
  }
}

function readEcdh(packet: AnyKeyPacket, params: Record<string, unknown>, keyId: Buffer): EcdhRecipient | null {
  const oid = oidOf(params['oid']);
  const q = nativePoint(params['Q']);
  const kdf = params['kdfParams'] as { hash?: unknown; cipher?: unknown } | undefined;
  const fingerprint = packet.getFingerprintBytes();
  if (oid === null || !CURVE25519_LEGACY_OID.equals(oid) || q === null || kdf === undefined || fingerprint === null) return null;
  const kdfHash = typeof kdf.hash === 'number' ? hashAlgorithm(kdf.hash) : null;
  const kdfCipher = typeof kdf.cipher === 'number' ? symmetricAlgorithm(kdf.cipher) : null;
  if (kdfHash === null || kdfCipher === null) return null;
  const kdfParameters = Buffer.concat([
    Buffer.from([oid.length]),
    oid,
    Buffer.from([enums.publicKey.ecdh]),
    KDF_PARAMS_HEADER,
    Buffer.from([kdfHash.id, kdfCipher.id]),
    ANONYMOUS_SENDER,
    fingerprint,
  ]);
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: base64url(q) }, format: 'jwk' });
  return { kind: 'ecdh-x25519', keyId, publicKey, kdfHash, kdfCipher, kdfParameters };
}

function readSigner(packet: AnyKeyPacket): SignerMaterial | null {
  if (packet.version !== KEY_VERSION || packet.algorithm !== enums.publicKey.eddsaLegacy) return null;
  const params = packet.publicParams as Record<string, unknown>;
  const oid = oidOf(params['oid']);
  const q = nativePoint(params['Q']);
  const privateParams = (packet as { privateParams?: unknown }).privateParams as Record<string, unknown> | null | undefined;
  const seed = bytesOf(privateParams?.['seed']);
  const fingerprint = packet.getFingerprintBytes();
  if (oid === null || !ED25519_LEGACY_OID.equals(oid) || q === null || fingerprint === null) return null;
  if (seed === null || seed.length !== POINT_BYTES) return null;
  const x = base64url(q);
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: base64url(seed), x }, format: 'jwk' });
  // The import does not check that the seed belongs to the published point; a mismatch would
  // produce signatures nobody can verify, so prove the pair once here.
  const probe = Buffer.from('muse-milter signing key check');
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
  if (!verify(null, probe, publicKey, sign(null, probe, privateKey))) return null;
  return { keyId: keyIdOf(packet), fingerprint: Buffer.from(fingerprint), privateKey };
}

function keyIdOf(packet: AnyKeyPacket): Buffer {
  return Buffer.from(packet.getKeyID().toHex(), 'hex');
}

function bytesOf(value: unknown): Uint8Array | null {
  return value instanceof Uint8Array ? value : null;
}

/** The OID bytes of an openpgp.js OID object (its `oid` field). */
function oidOf(value: unknown): Uint8Array | null {
  return typeof value === 'object' && value !== null ? bytesOf((value as { oid?: unknown }).oid) : null;
}

/** The 32-octet point of a legacy 0x40-prefixed encoding, or null for any other encoding. */
function nativePoint(value: unknown): Uint8Array | null {
  const q = bytesOf(value);
  return q !== null && q.length === POINT_BYTES + 1 && q[0] === NATIVE_POINT_PREFIX ? q.subarray(1) : null;
}

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}
