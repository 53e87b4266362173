/** Site names: from a recipient address or a domain to the normalised domain and the owner name of its records. */
import { domainToASCII } from 'node:url';
import { KeyError } from './errors.ts';

/** The label under which a site publishes its key records (docs/dns-records.md §1). */
export const SITE_KEY_LABEL = '_muse';

/**
 * Normalises a domain: IDNA to A-labels, lower case, no trailing dot; checks it is a host name (letters, digits,
 * hyphens; at least two labels) short enough to carry the `_muse.` prefix.
 * @throws KeyError `KEY_BAD_DOMAIN`
 */
export function normaliseDomain(input: string): string {
  const trimmed = input.trim().replace(/\.$/, '');
  const ascii = /^[\x21-\x7e]*$/.test(trimmed) ? trimmed.toLowerCase() : domainToASCII(trimmed);
  const labels = ascii.split('.');
  const valid =
    labels.length >= 2 &&
    labels.every((label) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) &&
    ascii.length + SITE_KEY_LABEL.length + 1 <= 253;
  if (!valid) throw new KeyError('KEY_BAD_DOMAIN', `not a usable mail domain: "${input}"`);
  return ascii;
}

/** Takes the domain of `user@domain` (or `<user@domain>`), or the argument itself when it has no `@`; normalised. */
export function domainOfAddressOrDomain(input: string): string {
  const bare = input.trim().replace(/^<(.*)>$/, '$1');
  const at = bare.lastIndexOf('@');
  return normaliseDomain(at >= 0 ? bare.slice(at + 1) : bare);
}

/** The owner name of a site's key records: `_muse.<domain>`, without trailing dot. */
export function siteKeyOwner(domain: string): string {
  return `${SITE_KEY_LABEL}.${normaliseDomain(domain)}`;
}
