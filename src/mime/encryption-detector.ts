/**
 * Recognises mail that is already encrypted, so it is not wrapped a second time: PGP/MIME
 * (RFC 3156 §4), S/MIME enveloped data (RFC 8551 §3.3) and a plain-text body that is one inline
 * OpenPGP message. Inline detection is strict (the whole text body must be the armored block)
 * so that a message merely quoting or attaching an armored block is still protected.
 */
import { contentTypeOf, transferEncodingOf } from './content-fields.ts';
import type { HeaderField } from './header-fields.ts';

/** The kind of existing encryption found. */
export type ExistingEncryption = 'pgp-mime' | 'smime' | 'pgp-inline';

const BEGIN = '-----BEGIN PGP MESSAGE-----';
const END = '-----END PGP MESSAGE-----';
/** Bytes of body needed to decide whether inline detection is worth reading the whole body. */
export const INLINE_PROBE_BYTES = 1024;

/** Existing encryption visible from the top-level header fields alone. */
export function encryptionFromHeaders(fields: readonly HeaderField[]): ExistingEncryption | null {
  const type = contentTypeOf(fields);
  if (type.mediaType === 'multipart/encrypted' || type.mediaType === 'application/pgp-encrypted') return 'pgp-mime';
  if (type.mediaType === 'application/pkcs7-mime' || type.mediaType === 'application/x-pkcs7-mime') {
    const smimeType = (type.params['smime-type'] ?? '').toLowerCase();
    // Without smime-type the blob is most often enveloped data (RFC 8551 §3.2.2 makes it optional).
    if (smimeType === '' || smimeType === 'enveloped-data' || smimeType === 'authenveloped-data') return 'smime';
  }
  return null;
}

/** Whether inline OpenPGP is possible for this entity: unencoded plain text at the top level. */
export function mayBeInlinePgp(fields: readonly HeaderField[]): boolean {
  const encoding = transferEncodingOf(fields);
  return contentTypeOf(fields).mediaType === 'text/plain' && (encoding === '7bit' || encoding === '8bit');
}

/** Whether the start of a body (at least {@link INLINE_PROBE_BYTES} or all of it) opens an armored message. */
export function opensInlinePgp(prefix: Buffer): boolean {
  return prefix.toString('latin1').trimStart().startsWith(BEGIN);
}

/** Whether the whole body is exactly one armored OpenPGP message, surrounded only by blanks. */
export function isInlinePgpMessage(body: Buffer): boolean {
  const text = body.toString('latin1').trim();
  return text.startsWith(BEGIN) && text.endsWith(END) && text.indexOf(BEGIN, 1) === -1;
}
