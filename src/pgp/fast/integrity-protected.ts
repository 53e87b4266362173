/**
 * The symmetrically encrypted integrity protected data packet, version 1 (RFC 4880 §5.13): a
 * random block plus two repeated check octets, the packets, and the modification detection code
 * (§5.14, SHA-1 over everything before it including its own two header octets), all encrypted in
 * CFB mode with a zero IV and no resynchronisation, which is plain full-block CFB.
 */
import { createCipheriv, createHash, randomBytes, type Cipher } from 'node:crypto';
import { enums } from 'openpgp';
import { AES_BLOCK_BYTES, type SymmetricAlgorithm } from './algorithms.ts';
import { byteLength } from './literal-data.ts';
import { packetHeader } from './packet-framing.ts';

const SEIPD_VERSION = 1;
/** The MDC packet's header: new-format tag 19, length 20 (a SHA-1 digest). */
const MDC_HEADER = Buffer.from([0xc0 | enums.packet.modificationDetectionCode, 20]);
const MDC_BYTES = MDC_HEADER.length + 20;
const PREFIX_BYTES = AES_BLOCK_BYTES + 2;
const ZERO_IV = Buffer.alloc(AES_BLOCK_BYTES);

/**
 * The body of one SEIPD v1 packet, made incrementally: {@link start}, then {@link update} for each
 * piece of the inner packets in order, then {@link finish}. Concatenated, their results are the
 * packet body. The CFB mode is a stream mode, so each result is as long as its input.
 */
export class IntegrityProtectedEncryptor {
  readonly #encrypt: Cipher;
  readonly #mdc = createHash('sha1');

  constructor(cipher: SymmetricAlgorithm, sessionKey: Buffer) {
    this.#encrypt = createCipheriv(cipher.cfb, sessionKey, ZERO_IV);
  }

  /** The version octet and the encrypted random prefix: the first octets of the body. */
  start(): Buffer {
    const prefix = randomBytes(PREFIX_BYTES);
    // The last two octets repeat the two before them, so a wrong key shows at once (§5.7, §5.13).
    prefix.copy(prefix, AES_BLOCK_BYTES, AES_BLOCK_BYTES - 2, AES_BLOCK_BYTES);
    return Buffer.concat([Buffer.from([SEIPD_VERSION]), this.update(prefix)]);
  }

  /** Encrypts the next piece of the inner packets. */
  update(piece: Uint8Array): Buffer {
    this.#mdc.update(piece);
    return this.#encrypt.update(piece);
  }

  /** The encrypted MDC packet: the last octets of the body. */
  finish(): Buffer {
    const header = this.update(MDC_HEADER);
    return Buffer.concat([header, this.#encrypt.update(this.#mdc.digest()), this.#encrypt.final()]);
  }
}

/** Encrypts the packets `inner` (in order) into one SEIPD v1 packet with a definite length. */
export function integrityProtectedPacket(cipher: SymmetricAlgorithm, sessionKey: Buffer, inner: readonly Uint8Array[]): Buffer {
  const bodyLength = 1 + PREFIX_BYTES + byteLength(inner) + MDC_BYTES;
  const header = packetHeader(enums.packet.symEncryptedIntegrityProtectedData, bodyLength);
  const out = Buffer.allocUnsafe(header.length + bodyLength);
  const encryptor = new IntegrityProtectedEncryptor(cipher, sessionKey);
  let offset = header.copy(out);
  offset += encryptor.start().copy(out, offset);
  for (const piece of inner) offset += encryptor.update(piece).copy(out, offset);
  offset += encryptor.finish().copy(out, offset);
  if (offset !== out.length) throw new Error('SEIPD length mismatch');
  return out;
}
