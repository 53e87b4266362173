/**
 * Recognises and takes apart incoming RFC 3156 containers: multipart/encrypted (§4) and
 * multipart/signed with an OpenPGP signature (§5). The signed part is returned as the exact bytes
 * the signature covers; transfer encodings of the OpenPGP parts are undone.
 */
import { contentTypeOf, multipartBoundary, transferEncodingOf, type ContentType } from './content-fields.ts';
import { parseEntity } from './entity.ts';
import { splitMultipart } from './multipart.ts';
import { decodeBase64, decodeQuotedPrintable } from './transfer-encoding.ts';

/** A PGP/MIME container found in a message body. */
export type PgpMimeContainer =
  | { readonly kind: 'encrypted'; readonly armoredMessage: Buffer }
  | { readonly kind: 'signed'; readonly signedPart: Buffer; readonly signature: Buffer }
  | { readonly kind: 'malformed'; readonly layer: 'encrypted' | 'signed'; readonly detail: string };

/** Which RFC 3156 container a Content-Type announces, if any. */
export function pgpMimeLayer(type: ContentType): 'encrypted' | 'signed' | null {
  const protocol = (type.params['protocol'] ?? '').trim().toLowerCase();
  if (type.mediaType === 'multipart/encrypted' && protocol === 'application/pgp-encrypted') return 'encrypted';
  if (type.mediaType === 'multipart/signed' && protocol === 'application/pgp-signature') return 'signed';
  return null;
}

/** Takes apart the container a body of Content-Type `type` holds; `null` when it is not PGP/MIME. */
export function readPgpMime(type: ContentType, body: Buffer): PgpMimeContainer | null {
  const layer = pgpMimeLayer(type);
  if (layer === null) return null;
  const boundary = multipartBoundary(type);
  if (boundary === undefined) return { kind: 'malformed', layer, detail: 'no boundary parameter' };
  const layout = splitMultipart(body, boundary);
  const [first, second] = layout?.parts ?? [];
  if (first === undefined || second === undefined) return { kind: 'malformed', layer, detail: 'fewer than two body parts' };
  // RFC 3156 §4 and §5: exactly two parts. A third one is covered by nothing, yet a reader may show it beside the
  // verdict about the first.
  if ((layout?.parts.length ?? 0) > 2) return { kind: 'malformed', layer, detail: 'more than two body parts' };
  const firstBytes = body.subarray(first.start, first.end);
  const secondBytes = body.subarray(second.start, second.end);
  if (layer === 'encrypted') {
    if (partType(firstBytes) !== 'application/pgp-encrypted') return { kind: 'malformed', layer, detail: 'first part is not application/pgp-encrypted' };
    return { kind: 'encrypted', armoredMessage: partContent(secondBytes) };
  }
  if (partType(secondBytes) !== 'application/pgp-signature') return { kind: 'malformed', layer, detail: 'second part is not application/pgp-signature' };
  return { kind: 'signed', signedPart: firstBytes, signature: partContent(secondBytes) };
}

function partType(part: Buffer): string {
  return contentTypeOf(parseEntity(part, 'latin1').fields).mediaType;
}

/** A part's body with its transfer encoding undone. */
function partContent(part: Buffer): Buffer {
  const parsed = parseEntity(part, 'latin1');
  const body = part.subarray(parsed.bodyOffset);
  const encoding = transferEncodingOf(parsed.fields);
  if (encoding === 'base64') return decodeBase64(body);
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(body);
  return body;
}
