/**
 * Sign-then-encrypt of a plaintext stream of unknown length over node:crypto, writing the packets
 * of the whole-buffer writer (sign-encrypt.ts) as the plaintext arrives: the PKESKs, then SEIPD v1
 * holding the one-pass signature, the binary literal data and the signature. The literal data
 * and SEIPD packets take partial body lengths; the signature packet follows the data, so it is
 * made at the end from a hash kept up to date. Memory stays at a few parts whatever the size.
 */
import { enums } from 'openpgp';
import { IntegrityProtectedEncryptor } from './integrity-protected.ts';
import { literalFixedFields } from './literal-data.ts';
import { planSignEncrypt, type SignEncryptOptions, type SignEncryptPlan } from './message-plan.ts';
import { BufferingPartialWriter, ForwardingPartialWriter } from './partial-body.ts';
import { DataSignature, onePassSignaturePacket } from './signature.ts';

/**
 * Parts of the literal data and SEIPD packets are 2^16 octets (64 KiB): large enough that the
 * per-part work vanishes next to hashing and encryption, small enough that a part stays in the
 * CPU caches from hashing through encryption to armoring (larger parts measured no faster).
 */
export const STREAMED_PART_EXPONENT = 16;
const PART_BYTES = 2 ** STREAMED_PART_EXPONENT;

/** Inputs of {@link fastStreamSignEncrypt}. */
export interface FastStreamSignEncryptInput extends SignEncryptOptions {
  /** The literal data as a stream; a chunk may be reused by its producer once the next is asked for. */
  readonly data: AsyncIterable<Uint8Array>;
}

/**
 * Signs and encrypts a stream natively. Returns the binary OpenPGP message as a stream, or null
 * (before reading any plaintext) when a key, the date or the requested session key is of a shape
 * this path does not write. An error of the plaintext stream rejects the iteration of the output
 * as it is, before the last part of the message has been yielded, so a failed stream can never
 * pass for a complete message.
 */
export async function fastStreamSignEncrypt(input: FastStreamSignEncryptInput): Promise<AsyncIterable<Uint8Array> | null> {
  const plan = await planSignEncrypt(input);
  return plan === null ? null : messageStream(plan, input.data);
}

async function* messageStream(plan: SignEncryptPlan, data: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield plan.sessionKeyPackets;
  // The ciphertext is made fresh for every piece, so the SEIPD framing passes it on uncopied; the
  // literal data is copied once, as its producer may reuse its chunks.
  const ready: Buffer[] = [];
  const seipd = new ForwardingPartialWriter(enums.packet.symEncryptedIntegrityProtectedData, STREAMED_PART_EXPONENT, (piece) => ready.push(piece));
  const encryptor = new IntegrityProtectedEncryptor(plan.cipher, plan.sessionKey);
  const encrypt = (plain: Uint8Array): void => seipd.write(encryptor.update(plain));
  seipd.write(encryptor.start());
  encrypt(onePassSignaturePacket(plan.signature));
  const literal = new BufferingPartialWriter(enums.packet.literalData, STREAMED_PART_EXPONENT, encrypt);
  literal.write(literalFixedFields(plan.signature.created));
  const signature = new DataSignature(plan.signature);
  for await (const chunk of data) {
    // A huge chunk is taken a part at a time, so what waits to be yielded stays bounded.
    for (let at = 0; at < chunk.length; at += PART_BYTES) {
      const piece = at === 0 && chunk.length <= PART_BYTES ? chunk : chunk.subarray(at, at + PART_BYTES);
      signature.update(piece);
      literal.write(piece);
      yield* ready.splice(0);
    }
  }
  literal.end();
  encrypt(signature.packet());
  seipd.write(encryptor.finish());
  seipd.end();
  yield* ready.splice(0);
}
