/**
 * Addresses and domains, the one place where they are read: header fields (From, To, Cc...) through an RFC 5322
 * grammar, envelope addresses as the MTA hands them over, and every domain normalised the same way (IDNA
 * A-labels, lower case, no trailing dot) for configuration, policy, local domains, key lookups, pins and logs.
 *
 * Header addresses are parsed by `email-addresses`, a parser generated from the RFC 5322 grammar (quoted strings,
 * comments, groups, obsolete routes and spacing), never by a pattern: a display name such as
 * `"<x@attacker.test>" <ceo@victim.test>` names victim.test, and only a grammar knows that.
 */
import { domainToASCII } from 'node:url';
import emailAddresses from 'email-addresses';
import { unfold, type HeaderEncoding } from '../mime/header-fields.ts';

/** Longest domain name in presentation form without the trailing dot (RFC 1035 §2.3.4: 255 octets on the wire). */
export const MAX_DOMAIN_LENGTH = 253;

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Normalises a mail domain: Unicode labels to A-labels (IDNA, through Node's WHATWG URL implementation), lower
 * case, without a trailing dot, and checks that it is a host name of at least two labels. A domain that cannot
 * be converted is `null`, never passed on in some other spelling: two spellings of one domain must never meet
 * two different policies.
 */
export function normaliseDomain(input: string): string | null {
  const trimmed = input.trim().replace(/\.$/, '');
  if (trimmed === '') return null;
  // domainToASCII lower-cases and converts U-labels; it answers '' for anything it cannot convert.
  const ascii = /^[\x21-\x7e]*$/.test(trimmed) ? trimmed.toLowerCase() : domainToASCII(trimmed);
  if (ascii === '' || ascii.length > MAX_DOMAIN_LENGTH) return null;
  const labels = ascii.split('.');
  return labels.length >= 2 && labels.every((label) => LABEL.test(label)) ? ascii : null;
}

/**
 * An envelope address as the MTA hands it over (a binary string, one character per byte, as the milter library
 * decodes every string; angle brackets possibly kept), with its bytes read as UTF-8 (RFC 6531 SMTPUTF8 mail).
 * Bytes that are not UTF-8 become U+FFFD, which IDNA never converts, so such a domain fails
 * {@link normaliseDomain}. Kept as one character per byte they would be read as Latin-1, and `b\xfccher.test`
 * would become bücher.test: a spelling the MTA routes elsewhere, meeting that domain's policy.
 */
export function envelopeAddress(raw: string): string {
  const bare = raw.trim().replace(/^<(.*)>$/s, '$1');
  return new TextDecoder('utf-8').decode(Buffer.from(bare, 'latin1'));
}

/**
 * The normalised domain of an envelope address; a bare local part (`<postmaster>`) belongs to `localDomain`.
 * `null` when the domain cannot be normalised (see {@link normaliseDomain}).
 */
export function envelopeDomain(raw: string, localDomain: string): string | null {
  const address = envelopeAddress(raw);
  const at = address.lastIndexOf('@');
  return normaliseDomain(at < 0 ? localDomain : address.slice(at + 1));
}

/**
 * The domain of `user@domain` (or `<user@domain>`), or the argument itself when it has no `@`; normalised or null.
 * The input is text (a command-line argument, a domain {@link envelopeAddress} already decoded), never bytes: read
 * as bytes again, a name IDNA cannot convert could turn into another domain that it can (U+0378 into `x`).
 */
export function domainOfAddressOrDomain(input: string): string | null {
  const bare = input.trim().replace(/^<(.*)>$/s, '$1');
  const at = bare.lastIndexOf('@');
  return normaliseDomain(at >= 0 ? bare.slice(at + 1) : bare);
}

/** One mailbox of a header field. */
export interface Mailbox {
  /** `local@domain` as the grammar reads it (comments and quoting of the domain removed). */
  readonly address: string;
  /** The domain as written (may be a Unicode name or an address literal). */
  readonly rawDomain: string;
  /** The normalised domain, or null when it is not a usable mail domain (an address literal, a bad label). */
  readonly domain: string | null;
  /** Whether the mailbox stood inside a group (`Team: a@x.test, b@x.test;`). */
  readonly inGroup: boolean;
}

/** Header values longer than this are not parsed: no legitimate address list comes near it. */
export const MAX_ADDRESS_FIELD_LENGTH = 64 * 1024;

/**
 * The mailboxes of an address-list field value (From, To, Cc, Reply-To...), groups flattened; `null` when the
 * value does not follow the grammar (or exceeds {@link MAX_ADDRESS_FIELD_LENGTH}).
 * @param value the raw field value (as after the colon; folding allowed)
 * @param encoding how the header string maps to bytes; UTF-8 header values (RFC 6532) are decoded before parsing
 */
export function mailboxesOf(value: string, encoding: HeaderEncoding): Mailbox[] | null {
  if (value.length > MAX_ADDRESS_FIELD_LENGTH) return null;
  const text = encoding === 'latin1' ? utf8OrSelf(value) : value;
  // The grammar's folding whitespace is CRLF then a blank; the MTA may hand over a bare LF, so unfold first.
  const unfolded = unfold(text);
  let parsed: ReturnType<typeof emailAddresses>;
  try {
    parsed = emailAddresses({ input: unfolded, rfc6532: true, startAt: 'address-list', strict: false, atInDisplayName: false, commaInDisplayName: false });
  } catch {
    return null;
  }
  if (parsed === null) return null;
  const out: Mailbox[] = [];
  for (const entry of parsed.addresses) {
    const mailboxes = entry.type === 'group' ? entry.addresses : [entry];
    for (const m of mailboxes) out.push({ address: m.address, rawDomain: m.domain, domain: normaliseDomain(m.domain), inGroup: entry.type === 'group' });
  }
  return out;
}

/** Reads a binary string's bytes as UTF-8 when they are valid UTF-8; otherwise gives it back unchanged. */
function utf8OrSelf(binary: string): string {
  if (!/[\x80-\xff]/.test(binary)) return binary;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(binary, 'latin1'));
  } catch {
    return binary;
  }
}

/** What the From fields of a header say about its author. */
export type AuthorResult =
  /** Exactly one From field holding exactly one mailbox with a usable domain. */
  | { readonly kind: 'single'; readonly mailbox: Mailbox & { readonly domain: string } }
  | { readonly kind: 'no-from' }
  | { readonly kind: 'multiple-from-fields'; readonly count: number }
  | { readonly kind: 'unparseable-from' }
  | { readonly kind: 'multiple-mailboxes'; readonly count: number }
  | { readonly kind: 'bad-from-domain'; readonly rawDomain: string };

/**
 * The author of a message from its From field values: a verdict may name the author's domain only when there is
 * exactly one From field holding exactly one mailbox whose domain is a usable mail domain (RFC 5322 §3.6 allows
 * one From field; several mailboxes leave the reader to guess which one is meant).
 */
export function authorOf(fromValues: readonly string[], encoding: HeaderEncoding): AuthorResult {
  if (fromValues.length === 0) return { kind: 'no-from' };
  if (fromValues.length > 1) return { kind: 'multiple-from-fields', count: fromValues.length };
  const mailboxes = mailboxesOf(fromValues[0] as string, encoding);
  // RFC 5322 §3.6.2: From is a mailbox-list; a group (even of one) is not From syntax.
  if (mailboxes === null || mailboxes.length === 0 || mailboxes.some((m) => m.inGroup)) return { kind: 'unparseable-from' };
  if (mailboxes.length > 1) return { kind: 'multiple-mailboxes', count: mailboxes.length };
  const mailbox = mailboxes[0] as Mailbox;
  if (mailbox.domain === null) return { kind: 'bad-from-domain', rawDomain: mailbox.rawDomain };
  return { kind: 'single', mailbox: { ...mailbox, domain: mailbox.domain } };
}
