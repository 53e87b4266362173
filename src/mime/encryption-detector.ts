/**
 * Recognises mail that is already encrypted, so it is not wrapped a second time: PGP/MIME
 * (RFC 3156 §4), S/MIME enveloped data (RFC 8551 §3.3) and a plain-text body that is one inline
 * OpenPGP message.
 *
 * A label is only a claim: the header fields say which check to run, and the content decides.
 * Mail passes only when its body really is ciphertext (an OpenPGP packet sequence of session keys
 * and one encrypted-data packet, or CMS enveloped data), so a message labelled encrypted but
 * holding plain text, a signed-only or compressed OpenPGP message, or signed S/MIME is protected
 * like any other. Inline detection is strict (the whole text body must be the armored block) so
 * that a message merely quoting or attaching an armored block is still protected.
 */
import { isEncryptedArmor } from '../pgp/encrypted-message.ts';
import { isEnvelopedCms } from './cms-enveloped.ts';
import { contentTypeOf, multipartBoundary, transferEncodingOf, type ContentType } from './content-fields.ts';
import { parseEntity } from './entity.ts';
import type { HeaderField } from './header-fields.ts';
import { splitMultipart, type ByteRange } from './multipart.ts';
import { pgpMimeLayer } from './pgp-mime-read.ts';
import { decodeBase64 } from './transfer-encoding.ts';

/** The kind of existing encryption found. */
export type ExistingEncryption = 'pgp-mime' | 'smime' | 'pgp-inline';

const BEGIN = '-----BEGIN PGP MESSAGE-----';
/** Bytes of body needed to decide whether inline detection is worth reading the whole body. */
export const INLINE_PROBE_BYTES = 1024;
/**
 * Most bytes of multipart preamble or epilogue an encrypted PGP/MIME message may carry. Readers do
 * not show them, but they travel in clear: enough for the customary one-line note of mail agents
 * ("This is an OpenPGP/MIME encrypted message"), too little to hide a message there.
 */
export const MAX_PGP_MIME_FRAME_TEXT = 256;

/**
 * The encryption the top-level header fields claim, which the body must then bear out
 * ({@link isEncrypted}); `null` when the message cannot be encrypted mail at all.
 */
export function claimedEncryption(fields: readonly HeaderField[]): ExistingEncryption | null {
  const type = contentTypeOf(fields);
  if (pgpMimeLayer(type) === 'encrypted') return 'pgp-mime';
  // RFC 8551 §3.2.2 makes smime-type optional, and a label proves nothing: the content decides.
  if (type.mediaType === 'application/pkcs7-mime' || type.mediaType === 'application/x-pkcs7-mime') return 'smime';
  const encoding = transferEncodingOf(fields);
  if (type.mediaType === 'text/plain' && (encoding === '7bit' || encoding === '8bit')) return 'pgp-inline';
  return null;
}

/** Whether the start of a body (at least {@link INLINE_PROBE_BYTES} or all of it) opens an armored message. */
export function opensInlinePgp(prefix: Buffer): boolean {
  return prefix.toString('latin1').trimStart().startsWith(BEGIN);
}

/**
 * Whether the whole (CRLF-canonical) body bears out what {@link claimedEncryption} returned for
 * the same fields. Reads the body once; decodes nothing it does not have to.
 */
export function isEncrypted(claim: ExistingEncryption, fields: readonly HeaderField[], body: Buffer): boolean {
  switch (claim) {
    case 'pgp-mime':
      return isEncryptedPgpMime(contentTypeOf(fields), body);
    case 'smime':
      return transferEncodingOf(fields) === 'base64' && isEnvelopedCms(decodeBase64(body));
    case 'pgp-inline':
      return isEncryptedArmor(body);
  }
}

/**
 * RFC 3156 §4: exactly two parts, the first `application/pgp-encrypted` saying `Version: 1`, the
 * second `application/octet-stream` holding one armored encrypted message and nothing else; the
 * multipart closed, with at most a short note around it.
 */
function isEncryptedPgpMime(type: ContentType, body: Buffer): boolean {
  const boundary = multipartBoundary(type);
  if (boundary === undefined) return false;
  const layout = splitMultipart(body, boundary);
  if (layout === null || layout.epilogue === null || layout.parts.length !== 2) return false;
  if (spanLength(layout.preamble) > MAX_PGP_MIME_FRAME_TEXT || spanLength(layout.epilogue) > MAX_PGP_MIME_FRAME_TEXT) return false;
  const [control, data] = layout.parts.map((range) => identityPart(body.subarray(range.start, range.end)));
  if (control?.type !== 'application/pgp-encrypted' || control.body.toString('latin1').trim() !== 'Version: 1') return false;
  return data?.type === 'application/octet-stream' && isEncryptedArmor(data.body);
}

function spanLength(range: ByteRange): number {
  return range.end - range.start;
}

/** A body part's media type and body, when its body is sent as is (7bit or 8bit); else `null`. */
function identityPart(part: Buffer): { type: string; body: Buffer } | null {
  const parsed = parseEntity(part, 'latin1');
  const encoding = transferEncodingOf(parsed.fields);
  if (encoding !== '7bit' && encoding !== '8bit') return null;
  return { type: contentTypeOf(parsed.fields).mediaType, body: part.subarray(parsed.bodyOffset) };
}
