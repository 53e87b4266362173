/**
 * Version 4 binary-document signatures (RFC 4880 §5.2, type 0x00) by a legacy EdDSA key, and the
 * one-pass signature packet announcing one (§5.4). The hashed subpackets and their order are those
 * the openpgp.js path writes (its own, then the intended recipients: ../intended-recipient.ts), so
 * that with the salt left out both produce identical packets.
 */
import { createHash, randomBytes, sign, type Hash } from 'node:crypto';
import { enums, type Key } from 'openpgp';
import { intendedRecipientSubpackets } from '../intended-recipient.ts';
import type { HashAlgorithm } from './algorithms.ts';
import type { SignerMaterial } from './key-material.ts';
import { encodeLength, mpi, packet, uint32 } from './packet-framing.ts';

const SIGNATURE_VERSION = 4;
const ONE_PASS_VERSION = 3;
/** The issuer fingerprint subpacket names the version of the key it is a fingerprint of. */
const ISSUER_KEY_VERSION = 4;
/** One-pass flag: no further one-pass signature follows, this one covers the data itself. */
const ONE_PASS_LAST = 1;
/** RFC 4880 §5.2.4: the trailer of a v4 signature hash, before the four-octet length. */
const V4_TRAILER = Buffer.from([SIGNATURE_VERSION, 0xff]);
/** RFC 4880 §5.2.3.1 subpacket types (openpgp.js's `enums.signatureSubpacket`, not in its types). */
const SUBPACKET = { creationTime: 2, issuerKeyId: 16, notation: 20, issuerFingerprint: 33 } as const;
/** RFC 4880 §5.2.3.1: the top bit of a subpacket type marks it critical. */
const CRITICAL = 0x80;
/** openpgp.js's salt notation: random bytes in the hashed area guard deterministic EdDSA against fault attacks. */
const SALT_NOTATION_NAME = Buffer.from('salt@notations.openpgpjs.org', 'utf8');
/** Notation flags (RFC 4880 §5.2.3.16): all zero, the value is binary, not human-readable. */
const NOTATION_FLAGS = Buffer.alloc(4);
/** A v4 signature states the length of its hashed area in two octets (some 2,800 recipients). */
const MAX_HASHED_AREA_BYTES = 0xffff;
/** Ed25519 signatures are R then S, 32 octets each; OpenPGP writes each as an MPI. */
const ED25519_HALF = 32;

/** What a signature says besides the signed data. */
export interface SignatureParameters {
  readonly signer: SignerMaterial;
  readonly hash: HashAlgorithm;
  /** Creation time, whole seconds since the epoch. */
  readonly created: number;
  /** Add a random salt notation (openpgp.js's default); false gives reproducible signatures. */
  readonly salted: boolean;
  /** The keys a signed+encrypted message is encrypted to, named in the hashed area; none for a detached signature. */
  readonly intendedRecipients: readonly Key[];
}

/** The one-pass signature packet that precedes the literal data. */
export function onePassSignaturePacket(params: SignatureParameters): Buffer {
  const body = Buffer.concat([
    Buffer.from([ONE_PASS_VERSION, enums.signature.binary, params.hash.id, enums.publicKey.eddsaLegacy]),
    params.signer.keyId,
    Buffer.from([ONE_PASS_LAST]),
  ]);
  return packet(enums.packet.onePassSignature, body);
}

/**
 * A signature over data that arrives piece by piece: the pieces go into the hash as they come,
 * and the packet is made once the last one is in.
 */
export class DataSignature {
  readonly #params: SignatureParameters;
  readonly #hash: Hash;

  constructor(params: SignatureParameters) {
    this.#params = params;
    this.#hash = createHash(params.hash.node);
  }

  /** Hashes the next piece of the literal data's content. */
  update(piece: Uint8Array): void {
    this.#hash.update(piece);
  }

  /** The signature packet over everything hashed so far; call once, after the last piece. */
  packet(): Buffer {
    const params = this.#params;
    const subpackets = hashedSubpackets(params);
    if (subpackets.length > MAX_HASHED_AREA_BYTES) throw new RangeError(`hashed subpackets too long: ${subpackets.length} octets`);
    const fields = [SIGNATURE_VERSION, enums.signature.binary, enums.publicKey.eddsaLegacy, params.hash.id];
    const signed = Buffer.concat([Buffer.from([...fields, subpackets.length >> 8, subpackets.length & 0xff]), subpackets]);
    const digest = this.#hash.update(signed).update(V4_TRAILER).update(uint32(signed.length)).digest();
    // Legacy EdDSA signs the digest, not the data (RFC 4880bis §5.2.4).
    const rs = sign(null, digest, params.signer.privateKey);
    const body = Buffer.concat([
      signed,
      Buffer.from([0, 0]), // no unhashed subpackets: the issuer is in the hashed area
      digest.subarray(0, 2),
      mpi(rs.subarray(0, ED25519_HALF)),
      mpi(rs.subarray(ED25519_HALF)),
    ]);
    return packet(enums.packet.signature, body);
  }
}

/** The signature packet over `data` (the literal data's content, in order). */
export function signaturePacket(data: readonly Uint8Array[], params: SignatureParameters): Buffer {
  const signature = new DataSignature(params);
  for (const piece of data) signature.update(piece);
  return signature.packet();
}

/**
 * Creation time (critical), issuer key ID, the optional salt notation, issuer fingerprint, then
 * one intended recipient fingerprint per recipient key.
 */
function hashedSubpackets(params: SignatureParameters): Buffer {
  const parts = [
    subpacket(SUBPACKET.creationTime | CRITICAL, uint32(params.created)),
    subpacket(SUBPACKET.issuerKeyId, params.signer.keyId),
  ];
  if (params.salted) {
    const salt = randomBytes(params.hash.saltBytes);
    const lengths = Buffer.from([SALT_NOTATION_NAME.length >> 8, SALT_NOTATION_NAME.length & 0xff, salt.length >> 8, salt.length & 0xff]);
    parts.push(subpacket(SUBPACKET.notation, Buffer.concat([NOTATION_FLAGS, lengths, SALT_NOTATION_NAME, salt])));
  }
  parts.push(subpacket(SUBPACKET.issuerFingerprint, Buffer.concat([Buffer.from([ISSUER_KEY_VERSION]), params.signer.fingerprint])));
  parts.push(intendedRecipientSubpackets(params.intendedRecipients));
  return Buffer.concat(parts);
}

function subpacket(type: number, body: Buffer): Buffer {
  return Buffer.concat([encodeLength(body.length + 1), Buffer.from([type]), body]);
}
