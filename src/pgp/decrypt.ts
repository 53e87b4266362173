/**
 * Decryption and verification of an incoming PGP/MIME payload. Decryption and verification are
 * separate steps because the key to verify with depends on the sender domain, which may only be
 * known from the protected headers inside the decrypted entity. The whole plaintext is held in
 * memory: with `allowUnauthenticatedStream` off, nothing is released before the MDC check.
 */
import { readMessage, verify, type Message, type PrivateKey, type PublicKey } from 'openpgp';
import { dearmor } from './armor.ts';
import { pgpConfig } from './config.ts';
import { errorMessage, PgpError } from './errors.ts';
import { checkSignatures, type SignatureCheck } from './signature-check.ts';

/** An encrypted message read from its armor, not yet decrypted. */
export interface EncryptedMessage {
  readonly message: Message<Uint8Array>;
  /** Key IDs of the recipients (hex, uppercase); `0000000000000000` is an anonymous recipient. */
  readonly recipientKeyIds: string[];
}

/** A decrypted message: the literal data and the packets needed to verify its signatures. */
export interface DecryptedMessage {
  readonly plaintext: Uint8Array;
  readonly message: Message<Uint8Array>;
}

const WILDCARD_KEY_ID = '0000000000000000';

/** Dearmors and parses an encrypted message. Throws `ARMOR_INVALID` or `MESSAGE_INVALID`. */
export async function readEncrypted(armored: Uint8Array): Promise<EncryptedMessage> {
  const binary = dearmor('MESSAGE', armored);
  try {
    const message = await readMessage({ binaryMessage: new Uint8Array(binary.buffer, binary.byteOffset, binary.byteLength), config: pgpConfig() });
    return { message, recipientKeyIds: message.getEncryptionKeyIDs().map((id) => id.toHex().toUpperCase()) };
  } catch (error) {
    throw new PgpError('MESSAGE_INVALID', `unreadable OpenPGP message: ${errorMessage(error)}`, { cause: error });
  }
}

/** Whether one of `keys` can open the message (or a recipient is anonymous, so it may). */
export function isAddressedTo(encrypted: EncryptedMessage, keys: readonly PrivateKey[]): boolean {
  return encrypted.recipientKeyIds.some(
    (hex) => hex === WILDCARD_KEY_ID || keys.some((key) => key.getKeyIDs().some((id) => id.toHex().toUpperCase() === hex)),
  );
}

/** Decrypts with the site keys. Throws `DECRYPT_FAILED` on any failure, integrity included. */
export async function decryptMessage(
  encrypted: EncryptedMessage,
  keys: readonly PrivateKey[],
  date: Date,
  maxBytes: number,
): Promise<DecryptedMessage> {
  try {
    const config = pgpConfig({ maxDecompressedBytes: maxBytes });
    const message = (await encrypted.message.decrypt([...keys], undefined, undefined, date, config)) as Message<Uint8Array>;
    const plaintext = message.getLiteralData();
    if (!(plaintext instanceof Uint8Array)) throw new Error('no literal data');
    return { plaintext, message };
  } catch (error) {
    throw new PgpError('DECRYPT_FAILED', `decryption failed: ${errorMessage(error)}`, { cause: error });
  }
}

/** Checks the signatures inside a decrypted message against `keys`. Never throws. */
export async function verifyDecrypted(decrypted: DecryptedMessage, keys: readonly PublicKey[], date: Date): Promise<SignatureCheck> {
  return checkSignatures(decrypted.message.getSigningKeyIDs(), keys, async (key) => {
    const result = await verify({ message: decrypted.message, verificationKeys: key, format: 'binary', date, config: pgpConfig() });
    return result.signatures;
  });
}
