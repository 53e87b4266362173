/**
 * Sign-then-encrypt of a MIME entity into one OpenPGP message (RFC 3156 §6.2): a one-pass
 * signature by the site key and a binary literal packet inside SEIPDv1, encrypted to every
 * recipient key; the signature names every recipient key in its hashed area (RFC 9580
 * §5.2.3.36, ./intended-recipient.ts). Plaintext given as a stream is encrypted as a stream. Uncompressed plaintext,
 * whole or streamed, goes through the native path (./fast/) when its keys allow; openpgp.js, the
 * reference, does everything else (streams through its Web streams).
 */
import { createMessage, encrypt, type PrivateKey, type PublicKey, type SessionKey } from 'openpgp';
import { pgpConfig, type Compression } from './config.ts';
import { errorMessage, PgpError } from './errors.ts';
import { recipientBoundSignature } from './fallback-signature.ts';
import { fastSignEncrypt } from './fast/sign-encrypt.ts';
import { fastStreamSignEncrypt } from './fast/streaming-sign-encrypt.ts';
import { iterableToWebStream } from './web-stream.ts';

/** Inputs of {@link signAndEncrypt}. */
export interface SignAndEncryptInput {
  /** The CRLF-canonical inner entity, whole or streamed. */
  readonly plaintext: Uint8Array | AsyncIterable<Uint8Array>;
  readonly signingKey: PrivateKey;
  readonly encryptionKeys: readonly PublicKey[];
  /** Signature and literal-packet time. */
  readonly date: Date;
  /** A fixed session key (tests only; a fresh random key is generated otherwise). */
  readonly sessionKey?: SessionKey;
  readonly deterministicSignatures?: boolean;
  readonly compression?: Compression;
  /** Try the native node:crypto path first (default true); openpgp.js covers what it does not. */
  readonly fastPath?: boolean;
}

/**
 * Signs and encrypts; yields the binary OpenPGP message (as one chunk for whole input, streamed
 * for streamed input). Key and option errors reject the returned promise as `ENCRYPT_FAILED`; a
 * failure of a plaintext stream rejects the iteration of the output instead.
 */
export async function signAndEncrypt(input: SignAndEncryptInput): Promise<AsyncIterable<Uint8Array>> {
  try {
    if ((input.fastPath ?? true) && (input.compression ?? 'none') === 'none') {
      const { plaintext } = input;
      if (plaintext instanceof Uint8Array) {
        const fast = await fastSignEncrypt({ ...input, data: plaintext });
        if (fast !== null) return single(fast);
      } else {
        // Declining happens before any plaintext is read, so openpgp.js still gets the whole stream.
        const fast = await fastStreamSignEncrypt({ ...input, data: plaintext });
        if (fast !== null) return fast;
      }
    }
    // Binary literal data: a text literal would turn CRLF into LF (and back only approximately).
    const data = input.plaintext instanceof Uint8Array ? input.plaintext : iterableToWebStream(copied(input.plaintext));
    const message = await createMessage({ binary: data, date: input.date, format: 'binary' });
    const config = pgpConfig({ deterministicSignatures: input.deterministicSignatures ?? false, compression: input.compression ?? 'none' });
    // Signed here rather than through `signingKeys`, as openpgp.js cannot name the recipients.
    const signature = await recipientBoundSignature({ message, signingKey: input.signingKey, encryptionKeys: input.encryptionKeys, date: input.date, config });
    const encrypted = await encrypt({
      message,
      encryptionKeys: [...input.encryptionKeys],
      signature,
      format: 'binary',
      date: input.date,
      ...(input.sessionKey === undefined ? {} : { sessionKey: input.sessionKey }),
      config,
    });
    return encrypted instanceof Uint8Array ? single(encrypted) : encrypted;
  } catch (error) {
    throw new PgpError('ENCRYPT_FAILED', `sign and encrypt failed: ${errorMessage(error)}`, { cause: error });
  }
}

/**
 * The chunks as copies. openpgp.js hashes a tee of the literal data for the signature and reads
 * it later than the data itself, so a producer reusing its chunk buffer (as the native path
 * allows) would have the signature made over overwritten bytes: "Signed digest did not match".
 */
async function* copied(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) yield Uint8Array.prototype.slice.call(chunk);
}

async function* single(chunk: Uint8Array): AsyncGenerator<Uint8Array> {
  yield chunk;
}
