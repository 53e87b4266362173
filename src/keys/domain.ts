/**
 * Site names: from a recipient address or a domain to the normalised domain and the owner name of its records.
 * Normalisation itself is src/mail/address.ts's, the one every caller shares; this adds what the key records need.
 */
import { domainOfAddressOrDomain as addressDomain, normaliseDomain as normalise } from '../mail/address.ts';
import { KeyError } from './errors.ts';

/** The label under which a site publishes its key records (docs/dns-records.md §1). */
export const SITE_KEY_LABEL = '_muse';

/**
 * Normalises a domain (IDNA to A-labels, lower case, no trailing dot; a host name of at least two labels) and checks
 * it is short enough to carry the `_muse.` prefix.
 * @throws KeyError `KEY_BAD_DOMAIN`
 */
export function normaliseDomain(input: string): string {
  const domain = normalise(input);
  if (domain === null || domain.length + SITE_KEY_LABEL.length + 1 > 253) throw new KeyError('KEY_BAD_DOMAIN', `not a usable mail domain: "${input}"`);
  return domain;
}

/**
 * Takes the domain of `user@domain` (or `<user@domain>`), or the argument itself when it has no `@`; normalised.
 * @throws KeyError `KEY_BAD_DOMAIN`
 */
export function domainOfAddressOrDomain(input: string): string {
  const domain = addressDomain(input);
  if (domain === null) throw new KeyError('KEY_BAD_DOMAIN', `not a usable mail domain: "${input}"`);
  return normaliseDomain(domain);
}

/** The owner name of a site's key records: `_muse.<domain>`, without trailing dot. */
export function siteKeyOwner(domain: string): string {
  return `${SITE_KEY_LABEL}.${normaliseDomain(domain)}`;
}
