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
 * taken from inside, and no value taken carries a bare CR, so a sender cannot smuggle trace or authentication
 * fields into the delivered header.
 */
import { isContentField, type HeaderField } from '../mime/header-fields.ts';
import { DEFAULT_PROTECTED_FIELDS, stripHeaderProtection } from '../mime/inner-entity.ts';
import { UNVERIFIED_PREFIX } from './authentication-results.ts';
import { groupFields, nameKey, syncGroupEdits, type HeaderEdit } from './header-edits.ts';

/**
 * Fields a reader takes as facts about the message: the fields senders protect by default, and Bcc. The header a
 * verdict vouches for is judged on these.
 */
export const USER_FACING_FIELDS: readonly string[] = Object.freeze([...DEFAULT_PROTECTED_FIELDS, 'Bcc']);

const USER_FACING_KEYS: ReadonlySet<string> = new Set(USER_FACING_FIELDS.map(nameKey));

/** Whether a field name is one of {@link USER_FACING_FIELDS}. */
export function isUserFacing(name: string): boolean {
  return USER_FACING_KEYS.has(nameKey(name));
}

/**
 * A value from inside as it may be written into the delivered header. Inside, lines end at LF, so a CR not followed
 * by LF is a byte of the value; many readers end a line there too, and would read what follows as a field of its
 * own (a second From, an Authentication-Results under our authserv-id). A NUL ends a string on the milter wire, so
 * the MTA could not be given the value at all and the message would wait for ever. Both become a blank. Folding
 * (CRLF or LF, then a blank) is kept.
 */
function deliverable(value: string): string {
  return value.replace(/\r(?!\n)|\0/g, ' ');
}

/** The values of one group of fields; a Content-Type loses its trailing `hp` parameter. */
function valuesOf(key: string, fields: readonly HeaderField[]): string[] {
  return fields.map((f) => deliverable(key === 'content-type' ? stripHeaderProtection(f.value).value : f.value));
}

/**
 * Edits making the fields of `outer` whose names pass `selected` carry exactly the values `source` has for them
 * (none when `source` has none). Both headers are grouped by name once, so this is linear in their sizes.
 */
function syncSelected(outer: readonly HeaderField[], source: readonly HeaderField[], selected: (name: string) => boolean): HeaderEdit[] {
  const outside = groupFields(outer);
  const inside = groupFields(source);
  const edits: HeaderEdit[] = [];
  // Names in the order the source has them, then those only outside: the order the edits always had.
  const keys = new Set([...inside.keys(), ...outside.keys()]);
  for (const key of keys) {
    const name = (inside.get(key) ?? outside.get(key))?.name as string;
    if (!selected(name)) continue;
    for (const edit of syncGroupEdits(outside.get(key)?.fields ?? [], name, valuesOf(key, inside.get(key)?.fields ?? []))) edits.push(edit);
  }
  return edits;
}

/** Edits giving `outer` the Content-* fields of the entity `inner` whose body is delivered instead. */
export function contentFieldEdits(outer: readonly HeaderField[], inner: readonly HeaderField[]): HeaderEdit[] {
  return syncSelected(outer, inner, isContentField);
}

/**
 * Edits making every user-facing field of `outer` carry exactly the values of the `signed` header: replaced,
 * removed when not signed, added when signed but missing outside.
 */
export function signedHeaderEdits(outer: readonly HeaderField[], signed: readonly HeaderField[]): HeaderEdit[] {
  return syncSelected(outer, signed, isUserFacing);
}

/** Additions carrying the user-facing fields of an unauthenticated decrypted header as `Muse-Unverified-<Name>`. */
export function unverifiedFieldAdditions(inner: readonly HeaderField[]): HeaderEdit[] {
  return inner.filter((f) => isUserFacing(f.name)).map((f) => ({ op: 'add' as const, name: UNVERIFIED_PREFIX + f.name.trim(), value: deliverable(f.value) }));
}
