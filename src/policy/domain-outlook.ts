/**
 * What the milter does with a message to a domain, from the site-key lookup and the pin evaluation alone
 * (docs/dns-records.md §8). A pure function: the daemon layers administrator overrides on top of it.
 */
import type { SitePolicy } from '../keys/index.ts';
import type { Pin, PinState } from '../pins/index.ts';

/**
 * - `encrypt`: sign and encrypt to `encryptTo`.
 * - `sign-only`: send in clear text, signed with our site key.
 * - `tempfail-downgrade`: defer (4xx): keys expected by pin or by the site's `enforce` policy are missing or changed.
 * - `tempfail-dns`: defer (4xx): DNS did not answer, so nothing is known.
 */
export type DomainAction = 'encrypt' | 'sign-only' | 'tempfail-downgrade' | 'tempfail-dns';

/** Everything the decision reads: a `SiteKeyLookup` and a `PinEvaluation` fit as they are. */
export interface DomainOutlookInput {
  readonly lookup: {
    readonly status: 'found' | 'none' | 'temporary-failure';
    /** The site's policy from its TXT records, null without them. */
    readonly policy: SitePolicy | null;
    readonly error?: { readonly message: string };
  };
  readonly pin: {
    readonly state: PinState;
    /** The pin in force before the lookup. */
    readonly pin: Pick<Pin, 'policy'> | null;
    /** Keys a message may be encrypted to. */
    readonly encryptTo: readonly string[];
    readonly detail: string;
  };
}

/** The decision and why. */
export interface DomainOutlook {
  readonly action: DomainAction;
  /** Fingerprints to encrypt to; empty unless `action` is `encrypt`. */
  readonly encryptTo: readonly string[];
  /** The policy the decision applied: the pinned one for pin violations, else the published one (default opportunistic). */
  readonly policy: SitePolicy;
  /** One sentence for logs, headers and the CLI. */
  readonly reason: string;
}

/** Decides what to do with a message to one domain. */
export function domainOutlook(input: DomainOutlookInput): DomainOutlook {
  const { lookup, pin } = input;
  const published = lookup.policy ?? 'opportunistic';
  if (lookup.status === 'temporary-failure') {
    return decide('tempfail-dns', published, `DNS lookup failed: ${lookup.error?.message ?? 'no answer'}`);
  }
  if ((pin.state === 'downgrade' || pin.state === 'suspicious-change') && pin.pin) {
    const pinned = pin.pin.policy;
    return pinned === 'testing'
      ? decide('sign-only', pinned, `${pin.state} reported only, the pinned policy is testing: ${pin.detail}`)
      : decide('tempfail-downgrade', pinned, `${pin.state}: ${pin.detail}`);
  }
  if (pin.encryptTo.length > 0) {
    return { action: 'encrypt', encryptTo: pin.encryptTo, policy: published, reason: `${pin.encryptTo.length} usable key(s); ${pin.detail}` };
  }
  if (published === 'enforce') {
    return decide('tempfail-downgrade', published, 'the site requires encryption (p=enforce) but publishes no usable key');
  }
  return decide('sign-only', published, lookup.status === 'none' ? 'no usable site key published' : pin.detail);
}

function decide(action: Exclude<DomainAction, 'encrypt'>, policy: SitePolicy, reason: string): DomainOutlook {
  return { action, encryptTo: [], policy, reason };
}
