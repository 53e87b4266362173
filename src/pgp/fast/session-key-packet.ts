/**
 * Version 3 public-key encrypted session key packets (RFC 4880 §5.1): for Curve25519 ECDH keys
 * in the legacy encoding (RFC 6637 §8, RFC 4880bis) and for RSA keys (PKCS#1 v1.5, which
 * node:crypto still allows for public-key encryption).
 */
import { constants, createCipheriv, createHash, createPublicKey, diffieHellman, generateKeyPairSync, publicEncrypt } from 'node:crypto';
import { enums } from 'openpgp';
import type { SymmetricAlgorithm } from './algorithms.ts';
import type { EcdhRecipient, RecipientMaterial, RsaRecipient } from './key-material.ts';
import { mpi, packet } from './packet-framing.ts';

const PKESK_VERSION = 3;
/** RFC 3394 §2.2.3.1 default initial value. */
const KEY_WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
/** RFC 6637 §7: the KDF's 32-bit counter, always 1 as one hash output is enough. */
const KDF_COUNTER = Buffer.from([0, 0, 0, 1]);
/** The Curve25519 base point, u = 9 (RFC 7748 §4.1), as a public key to multiply by. */
const X25519_BASE_POINT = createPublicKey({
  key: { kty: 'OKP', crv: 'X25519', x: Buffer.concat([Buffer.from([9]), Buffer.alloc(31)]).toString('base64url') },
  format: 'jwk',
});
/** The legacy encoding of a Curve25519 point: 0x40, then the native 32 octets. */
const NATIVE_POINT_PREFIX = Buffer.from([0x40]);

/** The packet that gives `recipient` the session key. */
export function sessionKeyPacket(recipient: RecipientMaterial, cipher: SymmetricAlgorithm, sessionKey: Buffer): Buffer {
  const encoded = encodeSessionKey(cipher, sessionKey);
  const fields = recipient.kind === 'rsa' ? rsaFields(recipient, encoded) : ecdhFields(recipient, encoded);
  return packet(enums.packet.publicKeyEncryptedSessionKey, Buffer.concat([Buffer.from([PKESK_VERSION]), recipient.keyId, fields]));
}

/** RFC 4880 §5.1: cipher number, key, then the key's octets summed modulo 65536. */
function encodeSessionKey(cipher: SymmetricAlgorithm, sessionKey: Buffer): Buffer {
  let sum = 0;
  for (const octet of sessionKey) sum = (sum + octet) & 0xffff;
  return Buffer.concat([Buffer.from([cipher.id]), sessionKey, Buffer.from([sum >> 8, sum & 0xff])]);
}

function rsaFields(recipient: RsaRecipient, encoded: Buffer): Buffer {
  const encrypted = publicEncrypt({ key: recipient.publicKey, padding: constants.RSA_PKCS1_PADDING }, encoded);
  return Buffer.concat([Buffer.from([recipient.algorithm]), mpi(encrypted)]);
}

/**
 * A fresh ephemeral X25519 key, the shared point, the KDF (RFC 6637 §7) over it and the
 * recipient's parameter block, and the padded session key wrapped with the derived key.
 */
function ecdhFields(recipient: EcdhRecipient, encoded: Buffer): Buffer {
  const ephemeral = generateKeyPairSync('x25519').privateKey;
  // The ephemeral public point is the key times the base point. Computing it so is cheaper than
  // having node:crypto encode the public key (OpenSSL's encoder costs more than the multiplication),
  // and exporting a freshly generated key as JWK can deadlock Node 20 when a garbage collection
  // runs during the export.
  const ephemeralPoint = diffieHellman({ privateKey: ephemeral, publicKey: X25519_BASE_POINT });
  const shared = diffieHellman({ privateKey: ephemeral, publicKey: recipient.publicKey });
  const kdf = createHash(recipient.kdfHash.node).update(KDF_COUNTER).update(shared).update(recipient.kdfParameters);
  const kek = kdf.digest().subarray(0, recipient.kdfCipher.keyBytes);
  const wrap = createCipheriv(recipient.kdfCipher.wrap, kek, KEY_WRAP_IV);
  const wrapped = Buffer.concat([wrap.update(pkcs5Pad(encoded)), wrap.final()]);
  return Buffer.concat([
    Buffer.from([enums.publicKey.ecdh]),
    mpi(Buffer.concat([NATIVE_POINT_PREFIX, ephemeralPoint])),
    Buffer.from([wrapped.length]),
    wrapped,
  ]);
}

/** RFC 6637 §8: padded to a multiple of 8 octets, each pad octet holding the pad length (1..8). */
function pkcs5Pad(data: Buffer): Buffer {
  const pad = 8 - (data.length % 8);
  return Buffer.concat([data, Buffer.alloc(pad, pad)]);
}
