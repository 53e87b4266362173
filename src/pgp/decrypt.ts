/**
 * Decryption and verification of an incoming PGP/MIME payload. Decryption and verification are
 * separate steps because the key to verify with depends on the sender domain, which may only be
 * known from the protected headers inside the decrypted entity. The whole plaintext is held in
 * memory: with `allowUnauthenticatedStream` off, nothing is released before the MDC check.
 *
 * What a sender can make decryption cost is bounded (docs/pgp-mime.md, "Limits"): compressed data
 * expands only up to a cap, a message with too many session key packets is refused untried, and only
 * a few packets addressed to one of our keys (or to nobody in particular) get a private-key operation.
 */
import {
  decryptSessionKeys,
  enums,
  Message,
  PacketList,
  readMessage,
  verify,
  type AnyPacket,
  type KeyID,
  type PrivateKey,
  type PublicKey,
  type SessionKey,
} from 'openpgp';
import { dearmor } from './armor.ts';
import { pgpConfig } from './config.ts';
import { EncryptedMessageShape } from './encrypted-message.ts';
import { errorMessage, PgpError, type PgpLimit } from './errors.ts';
import { checkSignatures, type SignatureCheck } from './signature-check.ts';

/** An encrypted message read from its armor, not yet decrypted. */
export interface EncryptedMessage {
  readonly message: Message<Uint8Array>;
  /** Key IDs of the recipients (hex, uppercase); `0000000000000000` is an anonymous recipient. */
  readonly recipientKeyIds: string[];
  /** Bytes of the binary (dearmored) message: what decompression is measured against. */
  readonly byteLength: number;
}

/** A decrypted message: the literal data and the packets needed to verify its signatures. */
export interface DecryptedMessage {
  readonly plaintext: Uint8Array;
  readonly message: Message<Uint8Array>;
}

/** Bounds on the session key packets of one message. */
export interface SessionKeyBounds {
  /** Public-key session key packets a message may carry; with more, none is tried. */
  readonly maxSessionKeyPackets: number;
  /** Packets for one of our keys, or anonymous, tried with a private key; the first that opens wins. */
  readonly maxSessionKeyAttempts: number;
}

/** The defaults of {@link SessionKeyBounds}. */
export const DEFAULT_SESSION_KEY_BOUNDS: SessionKeyBounds = Object.freeze({ maxSessionKeyPackets: 1000, maxSessionKeyAttempts: 8 });

const WILDCARD_KEY_ID = '0000000000000000';

/**
 * Dearmors and parses an encrypted message. Throws `ARMOR_INVALID`, `MESSAGE_INVALID`, or `LIMIT_EXCEEDED` when it
 * carries more session key packets than `maxSessionKeyPackets`: those are counted from the packet headers alone
 * before openpgp.js parses any (which costs far more per packet), so such a flood is refused at the cost of one
 * pass over its octets.
 */
export async function readEncrypted(armored: Uint8Array, maxSessionKeyPackets = DEFAULT_SESSION_KEY_BOUNDS.maxSessionKeyPackets): Promise<EncryptedMessage> {
  const binary = dearmor('MESSAGE', armored);
  const shape = new EncryptedMessageShape();
  shape.update(binary);
  if (shape.keyPackets > maxSessionKeyPackets) {
    throw limitError('session-key-packets', maxSessionKeyPackets, `more than ${maxSessionKeyPackets} session key packets`);
  }
  try {
    const message = await readMessage({ binaryMessage: new Uint8Array(binary.buffer, binary.byteOffset, binary.byteLength), config: pgpConfig() });
    return { message, recipientKeyIds: message.getEncryptionKeyIDs().map((id) => id.toHex().toUpperCase()), byteLength: binary.byteLength };
  } catch (error) {
    throw new PgpError('MESSAGE_INVALID', `unreadable OpenPGP message: ${errorMessage(error)}`, { cause: error });
  }
}

/** The key IDs (hex, uppercase) of every key and subkey among `keys`. */
function keyIdsOf(keys: readonly PrivateKey[]): Set<string> {
  return new Set(keys.flatMap((key) => key.getKeyIDs().map((id) => id.toHex().toUpperCase())));
}

/** Whether one of `keys` can open the message (or a recipient is anonymous, so it may). */
export function isAddressedTo(encrypted: EncryptedMessage, keys: readonly PrivateKey[]): boolean {
  const ours = keyIdsOf(keys);
  return encrypted.recipientKeyIds.some((hex) => hex === WILDCARD_KEY_ID || ours.has(hex));
}

/**
 * Decrypts with the site keys, decompressing at most `maxDecompressedBytes`. Throws `LIMIT_EXCEEDED` when a
 * bound is reached (the decompression cap; more session key packets than allowed; the allowed attempts spent
 * with packets for us left untried) and `DECRYPT_FAILED` on any other failure, integrity included.
 *
 * openpgp.js would try every session key packet with every matching key, so the packets are picked here: first
 * those naming one of our keys, then anonymous ones, and each is tried on its own until one yields a session key.
 */
export async function decryptMessage(
  encrypted: EncryptedMessage,
  keys: readonly PrivateKey[],
  date: Date,
  maxDecompressedBytes: number,
  bounds: SessionKeyBounds = DEFAULT_SESSION_KEY_BOUNDS,
): Promise<DecryptedMessage> {
  const config = pgpConfig({ maxDecompressedBytes });
  const sessionKeys = await openSessionKey(encrypted, keys, date, bounds);
  try {
    const message = (await encrypted.message.decrypt(undefined, undefined, sessionKeys, date, config)) as Message<Uint8Array>;
    const plaintext = message.getLiteralData();
    if (!(plaintext instanceof Uint8Array)) throw new Error('no literal data');
    return { plaintext, message };
  } catch (error) {
    if (isDecompressionLimit(error)) {
      throw limitError('decompressed-bytes', maxDecompressedBytes, `decompressed data exceeds ${maxDecompressedBytes} bytes`, error);
    }
    throw new PgpError('DECRYPT_FAILED', `decryption failed: ${errorMessage(error)}`, { cause: error });
  }
}

/**
 * The session key of the first packet (within the bounds) one of `keys` opens. Throws `LIMIT_EXCEEDED` or
 * `DECRYPT_FAILED` as {@link decryptMessage} does.
 */
export async function openSessionKey(encrypted: EncryptedMessage, keys: readonly PrivateKey[], date: Date, bounds: SessionKeyBounds): Promise<SessionKey[]> {
  const packets = encrypted.message.packets.filterByTag(enums.packet.publicKeyEncryptedSessionKey);
  if (packets.length > bounds.maxSessionKeyPackets) {
    throw limitError('session-key-packets', bounds.maxSessionKeyPackets, `${packets.length} session key packets, more than ${bounds.maxSessionKeyPackets}`);
  }
  const ours = keyIdsOf(keys);
  const named: AnyPacket[] = [];
  const anonymous: AnyPacket[] = [];
  for (const packet of packets) {
    const id = recipientOf(packet);
    if (id === WILDCARD_KEY_ID) anonymous.push(packet);
    else if (ours.has(id)) named.push(packet);
  }
  const candidates = [...named, ...anonymous];
  const tried = candidates.slice(0, bounds.maxSessionKeyAttempts);
  let lastError: unknown = new Error('no session key packet for our keys');
  for (const packet of tried) {
    const single = new PacketList<AnyPacket>();
    single.push(packet);
    try {
      const found = await decryptSessionKeys({ message: new Message(single), decryptionKeys: [...keys], date, config: pgpConfig() });
      // SEIPDv2 keys come without an algorithm (the data packet names it); decrypt() takes them as they are.
      return found as SessionKey[];
    } catch (error) {
      lastError = error;
    }
  }
  if (tried.length < candidates.length) {
    throw limitError('session-key-attempts', bounds.maxSessionKeyAttempts, `no session key in the first ${tried.length} of ${candidates.length} packets for our keys`, lastError);
  }
  throw new PgpError('DECRYPT_FAILED', `decryption failed: ${errorMessage(lastError)}`, { cause: lastError });
}

/** The recipient key ID of a session key packet (hex, uppercase). */
function recipientOf(packet: AnyPacket): string {
  return (packet as unknown as { publicKeyID: KeyID }).publicKeyID.toHex().toUpperCase();
}

/**
 * Whether openpgp.js stopped decompressing at `maxDecompressedMessageSize`. It says so only in its message
 * (one wording for its own check, another for bzip2's); test/pgp checks that the wording still matches.
 */
function isDecompressionLimit(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (/Maximum decompressed (?:message )?size exceeded/.test(e.message)) return true;
  }
  return false;
}

/** A `LIMIT_EXCEEDED` error for bound `name`. */
export function limitError(name: PgpLimit, max: number, message: string, cause?: unknown): PgpError {
  return new PgpError('LIMIT_EXCEEDED', message, { cause, limit: { name, max } });
}

/** Checks the signatures inside a decrypted message against `keys`. Never throws. */
export async function verifyDecrypted(decrypted: DecryptedMessage, keys: readonly PublicKey[], date: Date): Promise<SignatureCheck> {
  return checkSignatures(decrypted.message.getSigningKeyIDs(), keys, async (key) => {
    const result = await verify({ message: decrypted.message, verificationKeys: key, format: 'binary', date, config: pgpConfig() });
    return result.signatures;
  });
}
