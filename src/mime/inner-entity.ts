/**
 * The cryptographic payload's header section (RFC 9788, Header Protection for Cryptographically
 * Protected Email), built from the original header list without re-serialising any field:
 * the original Content-* fields keep their raw values, the protected fields are copied as they
 * were, Content-Type gets the `hp` parameter appended, and for encrypted messages one `HP-Outer`
 * field records each protected field as it appears on the outer message.
 */
import { DEFAULT_CONTENT_TYPE_VALUE } from './content-fields.ts';
import { isContentField, sameHeaderName, type HeaderField } from './header-fields.ts';

/** RFC 9788 §2.1.1 `hp` values: `cipher` when encrypted, `clear` when only signed. */
export type HeaderProtectionMode = 'cipher' | 'clear';

/**
 * Header fields protected by default: the fields a reader takes as statements about the message (RFC 9788 §5.1's
 * user-facing fields, the threading fields, and the common informational ones mail clients show or act on). The
 * receiving side shows exactly the signed values of these and drops unsigned ones (src/engine/delivered-header.ts),
 * so whatever a sender wants delivered must be signed. Bcc is not among them: it must not reach the other recipients.
 */
export const DEFAULT_PROTECTED_FIELDS: readonly string[] = Object.freeze([
  'From',
  'Sender',
  'Reply-To',
  'To',
  'Cc',
  'Subject',
  'Date',
  'Message-ID',
  'In-Reply-To',
  'References',
  'Comments',
  'Keywords',
  'Mail-Followup-To',
  'Mail-Reply-To',
  'Disposition-Notification-To',
  'Return-Receipt-To',
  'Organization',
  'Importance',
  'Priority',
  'X-Priority',
]);

/** What goes into the inner header section. */
export interface InnerHeaderInput {
  /** The original top-level fields (Content-* possibly already adjusted for 7-bit transport). */
  readonly original: readonly HeaderField[];
  /** Names of the fields to protect; empty when header protection is off. */
  readonly protectedNames: readonly string[];
  /** The `hp` parameter to add, or `null` for no header protection. */
  readonly hp: HeaderProtectionMode | null;
  /** The outer message's fields after the header edits; recorded as HP-Outer when `hp` is cipher. */
  readonly outer: readonly HeaderField[];
}

/** The inner header fields, in the original order, with the RFC 9788 additions. */
export function buildInnerFields(input: InnerHeaderInput): HeaderField[] {
  const isProtected = (name: string): boolean => input.protectedNames.some((p) => sameHeaderName(p, name));
  const selected = input.original.filter((f) => isContentField(f.name) || (input.hp !== null && isProtected(f.name)));
  const fields = selected.some((f) => sameHeaderName(f.name, 'Content-Type'))
    ? selected
    : [{ name: 'Content-Type', value: ' ' + DEFAULT_CONTENT_TYPE_VALUE }, ...selected];
  if (input.hp === null) return fields;
  const hp = input.hp;
  let marked = false;
  const result = fields.map((f) => {
    if (marked || !sameHeaderName(f.name, 'Content-Type')) return f;
    marked = true;
    return { name: f.name, value: f.value + hpSuffix(hp) };
  });
  if (hp === 'cipher') {
    for (const f of input.outer) if (isProtected(f.name)) result.push({ name: 'HP-Outer', value: ' ' + f.name + ':' + f.value });
  }
  return result;
}

/** The exact text appended to the Content-Type value (folded onto its own line). */
function hpSuffix(hp: HeaderProtectionMode): string {
  return `;\r\n hp="${hp}"`;
}

/** A trailing `hp` parameter as appended by {@link buildInnerFields} or another RFC 9788 sender. */
const TRAILING_HP = /;[ \t\r\n]*hp[ \t]*=[ \t]*(?:"(cipher|clear)"|(cipher|clear))[ \t\r\n]*$/i;

/** Splits a Content-Type value into the value without its trailing `hp` parameter and the mode. */
export function stripHeaderProtection(value: string): { value: string; hp: HeaderProtectionMode | null } {
  const match = TRAILING_HP.exec(value);
  if (match === null) return { value, hp: null };
  const hp = (match[1] ?? match[2] ?? '').toLowerCase() as HeaderProtectionMode;
  return { value: value.slice(0, match.index), hp };
}
