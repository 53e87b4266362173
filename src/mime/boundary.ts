/**
 * MIME boundaries for the multiparts this project writes: random by default, injectable for
 * deterministic tests, and always checked against RFC 2046 §5.1.1 syntax.
 */
import { randomBytes } from 'node:crypto';

/** Produces a boundary string; called once per multipart built. */
export type BoundaryGenerator = () => string;

/**
 * The default generator: a fixed prefix and 144 random bits. The `=_` prefix cannot start an
 * OpenPGP armor line or a quoted-printable/base64 line of content, so it never collides with
 * encoded data.
 */
export const randomBoundary: BoundaryGenerator = () => '=_muse_' + randomBytes(18).toString('base64url');

/** RFC 2046 §5.1.1: 1–70 `bchars`, not ending in a space. */
const BOUNDARY_SYNTAX = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

/** Whether `boundary` is a syntactically valid MIME boundary. */
export function isValidBoundary(boundary: string): boolean {
  return BOUNDARY_SYNTAX.test(boundary);
}
