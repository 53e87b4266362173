/**
 * Builders for the two RFC 3156 containers this project writes: multipart/encrypted (§4, with the
 * signed-and-encrypted payload of §6.2) and multipart/signed (§5). Every line ends in CRLF and the
 * wrapped bytes are placed between fixed framing without being touched.
 */

const CRLF = '\r\n';

/** Fixed parts of a multipart/encrypted body; the armored OpenPGP message goes between them. */
export interface EncryptedEnvelope {
  /** Preamble, the `application/pgp-encrypted` part and the headers of the payload part. */
  readonly head: Buffer;
  /** The close delimiter; the line break ending the armor belongs to it (RFC 2046 §5.1.1). */
  readonly tail: Buffer;
}

/** Content-Type value (leading space, folded) of a multipart/encrypted message. */
export function encryptedContentType(boundary: string): string {
  return ` multipart/encrypted; protocol="application/pgp-encrypted";${CRLF} boundary="${boundary}"`;
}

/** The framing of a multipart/encrypted body around the armored message. */
export function encryptedEnvelope(boundary: string): EncryptedEnvelope {
  const head = [
    'This is an encrypted message in PGP/MIME format (RFC 3156).',
    `--${boundary}`,
    'Content-Type: application/pgp-encrypted',
    'Content-Description: PGP/MIME version identification',
    '',
    'Version: 1',
    '',
    `--${boundary}`,
    'Content-Type: application/octet-stream; name="encrypted.asc"',
    'Content-Description: OpenPGP encrypted message',
    'Content-Disposition: inline; filename="encrypted.asc"',
    '',
    '',
  ].join(CRLF);
  return { head: Buffer.from(head, 'latin1'), tail: Buffer.from(`--${boundary}--${CRLF}`, 'latin1') };
}

/** Content-Type value (leading space, folded) of a multipart/signed message. */
export function signedContentType(boundary: string, micalg: string): string {
  return ` multipart/signed; micalg=${micalg};${CRLF} protocol="application/pgp-signature";${CRLF} boundary="${boundary}"`;
}

/**
 * The multipart/signed body as a list of pieces (so the signed entity is not copied): the signed
 * entity is the first part byte for byte, and the armored signature (ending in CRLF) the second.
 */
export function signedBody(boundary: string, signedEntity: Buffer, armoredSignature: Buffer): Buffer[] {
  const head = ['This is a signed message in PGP/MIME format (RFC 3156).', `--${boundary}`, ''].join(CRLF);
  const middle = [
    '',
    `--${boundary}`,
    'Content-Type: application/pgp-signature; name="signature.asc"',
    'Content-Description: OpenPGP digital signature',
    'Content-Disposition: attachment; filename="signature.asc"',
    '',
    '',
  ].join(CRLF);
  return [
    Buffer.from(head, 'latin1'),
    signedEntity,
    Buffer.from(middle, 'latin1'),
    armoredSignature,
    Buffer.from(`--${boundary}--${CRLF}`, 'latin1'),
  ];
}
