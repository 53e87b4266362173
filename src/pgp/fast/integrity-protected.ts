/**
 * The symmetrically encrypted integrity protected data packet, version 1 (RFC 4880 §5.13): a
 * random block plus two repeated check octets, the packets, and the modification detection code
 * (§5.14, SHA-1 over everything before it including its own two header octets), all encrypted in
 * CFB mode with a zero IV and no resynchronisation, which is plain full-block CFB.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
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

/** Encrypts the packets `inner` (in order) into one SEIPD v1 packet. */
export function integrityProtectedPacket(cipher: SymmetricAlgorithm, sessionKey: Buffer, inner: readonly Uint8Array[]): Buffer {
  const prefix = randomBytes(PREFIX_BYTES);
  // The last two octets repeat the two before them, so a wrong key shows at once (§5.7, §5.13).
  prefix.copy(prefix, AES_BLOCK_BYTES, AES_BLOCK_BYTES - 2, AES_BLOCK_BYTES);
  const bodyLength = 1 + PREFIX_BYTES + byteLength(inner) + MDC_BYTES;
  const header = packetHeader(enums.packet.symEncryptedIntegrityProtectedData, bodyLength);
  const out = Buffer.allocUnsafe(header.length + bodyLength);
  let offset = header.copy(out);
  out[offset++] = SEIPD_VERSION;
  const encrypt = createCipheriv(cipher.cfb, sessionKey, ZERO_IV);
  const mdc = createHash('sha1');
  const put = (piece: Uint8Array): void => {
    mdc.update(piece);
    offset += encrypt.update(piece).copy(out, offset);
  };
  put(prefix);
  for (const piece of inner) put(piece);
  put(MDC_HEADER);
  offset += encrypt.update(mdc.digest()).copy(out, offset);
  offset += encrypt.final().copy(out, offset);
  if (offset !== out.length) throw new Error('SEIPD length mismatch');
  return out;
}
