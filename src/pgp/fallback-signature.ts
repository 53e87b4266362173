/**
 * The site signature of the openpgp.js sign+encrypt path, naming the message's intended
 * recipients (./intended-recipient.ts). openpgp.js 6 cannot be asked for that subpacket: its
 * signature packet writes a fixed set of hashed subpackets and keeps unknown ones only when
 * reading. So the signature is made here, by openpgp.js's own packet class with the subpackets
 * appended to its hashed area, over the message's literal data packet, exactly as openpgp.js
 * signs when encrypting; `encrypt` then takes it as an existing signature and writes the
 * one-pass signature, literal data and signature around it as for its own, streamed input
 * included (the hash is taken as openpgp.js writes the literal data).
 */
import {
  createMessage,
  enums,
  PacketList,
  sign,
  Signature,
  SignaturePacket,
  type AnySecretKeyPacket,
  type Config,
  type LiteralDataPacket,
  type Message,
  type MaybeStream,
  type PrivateKey,
  type PublicKey,
  type SignOptions,
} from 'openpgp';
import { intendedRecipientSubpackets } from './intended-recipient.ts';

/** The hashed area's length field: two octets in v4 signatures, four in v6 (RFC 9580 §5.2.3). */
const V6_SIGNATURE = 6;
const HASHED_LENGTH_BYTES = { v4: 2, v6: 4 } as const;

/** The undeclared (but stable since openpgp.js 5) members of its signature packet used here. */
interface SignaturePacketInternals {
  writeHashedSubPackets(this: SignaturePacket): Uint8Array;
  sign(this: SignaturePacket, key: AnySecretKeyPacket, data: LiteralDataPacket, date: Date, detached: boolean, config: Config): Promise<void>;
}

const internals = SignaturePacket.prototype as unknown as SignaturePacketInternals;

/** openpgp.js's signature packet with more subpackets at the end of its hashed area. */
class ExtendedSignaturePacket extends SignaturePacket {
  readonly #extra: Buffer;

  constructor(extra: Buffer) {
    super();
    this.#extra = extra;
  }

  /** Called by `sign` to make the hashed area: openpgp.js's, then ours, under one new length. */
  writeHashedSubPackets(): Uint8Array {
    const own = internals.writeHashedSubPackets.call(this);
    const lengthBytes = this.version === V6_SIGNATURE ? HASHED_LENGTH_BYTES.v6 : HASHED_LENGTH_BYTES.v4;
    const subpackets = Buffer.concat([own.subarray(lengthBytes), this.#extra]);
    if (subpackets.length >= 2 ** (8 * lengthBytes)) throw new RangeError(`hashed subpackets too long: ${subpackets.length} octets`);
    const length = Buffer.alloc(lengthBytes);
    length.writeUIntBE(subpackets.length, 0, lengthBytes);
    return Buffer.concat([length, subpackets]);
  }

  /** Signs the literal data packet `data` (its content is hashed when it is written, for a stream). */
  async signLiteral(key: AnySecretKeyPacket, data: LiteralDataPacket, date: Date, config: Config): Promise<void> {
    await internals.sign.call(this, key, data, date, false, config);
    // Should openpgp.js ever stop making the hashed area through the method above, the signature
    // would silently lack the recipients: refuse instead (the message then tempfails).
    const signed = this.signatureData ?? new Uint8Array(0);
    if (!Buffer.from(signed.subarray(signed.length - this.#extra.length)).equals(this.#extra)) {
      throw new Error('openpgp.js did not write the intended recipient subpackets');
    }
  }
}

/** Inputs of {@link recipientBoundSignature}. */
export interface FallbackSignatureInput {
  /** A message holding one binary literal data packet, whole or streamed: the one to be encrypted. */
  readonly message: Message<MaybeStream<Uint8Array>>;
  readonly signingKey: PrivateKey;
  readonly encryptionKeys: readonly PublicKey[];
  readonly date: Date;
  readonly config: Config;
}

/**
 * The signature to pass to openpgp.js's `encrypt` (as `signature`, with no `signingKeys`) so that
 * it signs `message` as it would itself, plus one intended recipient subpacket per encryption key.
 * Key errors reject as openpgp.js's own would.
 */
export async function recipientBoundSignature(input: FallbackSignatureInput): Promise<Signature> {
  return signatureWithHashedSubpackets(input, intendedRecipientSubpackets(input.encryptionKeys));
}

/**
 * The signature openpgp.js would make over `input.message` for these keys, with the framed
 * subpackets `extra` appended to its hashed area (exported for tests that need other subpackets).
 */
export async function signatureWithHashedSubpackets(input: FallbackSignatureInput, extra: Buffer): Promise<Signature> {
  const literal = input.message.packets.findPacket(enums.packet.literalData) as LiteralDataPacket | undefined;
  if (literal === undefined) throw new Error('no literal data packet to sign');
  const signing = await input.signingKey.getSigningKey(undefined, input.date, undefined, input.config);
  const packet = new ExtendedSignaturePacket(extra);
  packet.signatureType = enums.signature.binary;
  packet.publicKeyAlgorithm = signing.keyPacket.algorithm;
  packet.hashAlgorithm = await hashOpenpgpjsWouldUse(input);
  await packet.signLiteral(signing.keyPacket as AnySecretKeyPacket, literal, input.date, input.config);
  const packets = new PacketList<SignaturePacket>();
  packets.push(packet);
  return new Signature(packets);
}

/**
 * The hash openpgp.js would sign with for these recipients. Its choice (recipients' preferences,
 * the configured hash, the curve's minimum for ECC signers) is not exported, and copying it would
 * let the two drift apart, so openpgp.js signs an empty document with the same keys and options
 * and the hash is read off that signature: one more signature operation, on the fallback path only.
 */
async function hashOpenpgpjsWouldUse(input: FallbackSignatureInput): Promise<enums.hash> {
  const options: SignOptions & { recipientKeys: PublicKey[] } = {
    message: await createMessage({ binary: new Uint8Array(0), format: 'binary' }),
    signingKeys: input.signingKey,
    recipientKeys: [...input.encryptionKeys],
    date: input.date,
    config: input.config,
  };
  const probe = await sign({ ...options, message: options.message as Message<Uint8Array>, detached: true, format: 'object' });
  const hash = (probe as unknown as Signature).packets[0]?.hashAlgorithm;
  if (hash === undefined || hash === null) throw new Error('openpgp.js chose no signature hash');
  return hash;
}
