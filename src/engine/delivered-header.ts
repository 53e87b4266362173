/**
 * The header an opened inbound message is delivered with, by verdict (docs/security.md, "What is delivered"):
 *
 * - Authenticated (`pass`, `policy`): the fields a reader takes as statements about the message (From, To,
 *   Subject, Date...) are exactly the signed ones. Each such outer field is replaced by the signed value or removed
 *   when the signed header does not have it: a Reply-To added in transit must not be shown as if signed.
 * - Not authenticated (`none`): the outer, transport header stays what the reader sees (the From that SPF, DKIM and
 *   DMARC checked); the decrypted header fields nobody vouched for travel only as `Muse-Unverified-<Name>`.
 *
 * Either way, when the body is replaced by the decrypted or unwrapped entity, its Content-* fields replace the outer
 * ones (the RFC 9788 `hp` parameter removed), since they describe the body now delivered. Only these names are
 * taken from inside, so a sender cannot smuggle trace or authentication fields into the delivered header.
 */
import { isContentField, sameHeaderName, type HeaderField } from '../mime/header-fields.ts';
import { DEFAULT_PROTECTED_FIELDS, stripHeaderProtection } from '../mime/inner-entity.ts';
import { UNVERIFIED_PREFIX } from './authentication-results.ts';
import { distinctNames, syncFieldEdits, type HeaderEdit } from './header-edits.ts';

/**
 * Fields a reader takes as facts about the message: the fields senders protect by default, and Bcc. The header a
 * verdict vouches for is judged on these.
 */
export const USER_FACING_FIELDS: readonly string[] = Object.freeze([...DEFAULT_PROTECTED_FIELDS, 'Bcc']);

/** Whether a field name is one of {@link USER_FACING_FIELDS}. */
export function isUserFacing(name: string): boolean {
  return USER_FACING_FIELDS.some((f) => sameHeaderName(f, name));
}

/** The values of the fields called `name` in `fields`; a Content-Type loses its trailing `hp` parameter. */
function valuesOf(fields: readonly HeaderField[], name: string): string[] {
  return fields.filter((f) => sameHeaderName(f.name, name)).map((f) => (sameHeaderName(name, 'Content-Type') ? stripHeaderProtection(f.value).value : f.value));
}

/** Edits giving `outer` the Content-* fields of the entity `inner` whose body is delivered instead. */
export function contentFieldEdits(outer: readonly HeaderField[], inner: readonly HeaderField[]): HeaderEdit[] {
  return distinctNames([...inner, ...outer], isContentField).flatMap((name) => syncFieldEdits(outer, name, valuesOf(inner, name)));
}

/**
 * Edits making every user-facing field of `outer` carry exactly the values of the `signed` header: replaced,
 * removed when not signed, added when signed but missing outside.
 */
export function signedHeaderEdits(outer: readonly HeaderField[], signed: readonly HeaderField[]): HeaderEdit[] {
  return distinctNames([...signed, ...outer], isUserFacing).flatMap((name) => syncFieldEdits(outer, name, valuesOf(signed, name)));
}

/** Additions carrying the user-facing fields of an unauthenticated decrypted header as `Muse-Unverified-<Name>`. */
export function unverifiedFieldAdditions(inner: readonly HeaderField[]): HeaderEdit[] {
  return inner.filter((f) => isUserFacing(f.name)).map((f) => ({ op: 'add' as const, name: UNVERIFIED_PREFIX + f.name.trim(), value: f.value }));
}
