/**
 * Pin evaluation (docs/dns-records.md §7): a pure comparison of a new lookup with what a site announced earlier,
 * so that a record that vanished, or a key that changed without being announced, is noticed within the pinning
 * lifetime instead of silently sending clear text or encrypting to a stranger's key.
 */
import type { SitePolicy } from '../keys/index.ts';

/** What a sender remembers about a site. Times are ISO 8601 strings, as stored. */
export interface Pin {
  readonly domain: string;
  /** Fingerprints of the keys the site published, sorted. */
  readonly fingerprints: readonly string[];
  readonly policy: SitePolicy;
  /** The lifetime the site asked for, seconds. */
  readonly maxAge: number;
  /** When keys of this site were first pinned. */
  readonly firstSeen: string;
  /** When the pin was last set or refreshed. */
  readonly lastSeen: string;
  /** When the pin stops holding. */
  readonly expiresAt: string;
  /** Whether the answer that last set the pin was DNSSEC-authenticated. */
  readonly dnssec: boolean;
}

/** The part of a site-key lookup the evaluation reads (a `SiteKeyLookup` has it all). */
export interface PinInput {
  readonly domain: string;
  readonly status: 'found' | 'none' | 'temporary-failure';
  readonly keys: readonly { readonly fingerprint: string }[];
  /** Null when the site has no valid TXT record: then nothing about the pin changes. */
  readonly policy: SitePolicy | null;
  readonly maxAge: number;
  readonly dnssec: boolean;
}

/**
 * - `no-pin`: no pin in force (never pinned, or expired).
 * - `ok`: every key found is pinned.
 * - `new-key-announced`: pinned keys are still published, next to new ones (a rotation in progress).
 * - `downgrade`: pinned, and no usable key is published any more.
 * - `suspicious-change`: pinned, and none of the keys found is pinned.
 * - `not-evaluated`: DNS failed, nothing to compare.
 */
export type PinState = 'no-pin' | 'ok' | 'new-key-announced' | 'downgrade' | 'suspicious-change' | 'not-evaluated';

/** What to do with the stored pin. */
export type PinUpdate = { readonly kind: 'keep' } | { readonly kind: 'set'; readonly pin: Pin } | { readonly kind: 'delete' };

/** The outcome of comparing a lookup with the pin. */
export interface PinEvaluation {
  readonly state: PinState;
  /** The pin in force before this lookup; null when there was none or it had expired. */
  readonly pin: Pin | null;
  /** Fingerprints a message may be encrypted to now: with a pin, only pinned keys; without, all keys found. */
  readonly encryptTo: readonly string[];
  readonly update: PinUpdate;
  /** One sentence for logs and the CLI. */
  readonly detail: string;
}

/**
 * Compares a lookup with the stored pin at time `now`.
 *
 * Only a valid TXT record (policy not null) sets or refreshes a pin; `ma=0` removes it. To keep the store quiet,
 * an unchanged pin is rewritten only when less than half of its lifetime remains.
 */
export function evaluatePin(stored: Pin | undefined, lookup: PinInput, now: Date): PinEvaluation {
  const pin = stored && Date.parse(stored.expiresAt) > now.getTime() ? stored : null;
  const expiredPin = stored !== undefined && pin === null;
  const current = [...new Set(lookup.keys.map((k) => k.fingerprint))].sort();
  const noChange: PinUpdate = expiredPin ? { kind: 'delete' } : { kind: 'keep' };

  if (lookup.status === 'temporary-failure') {
    return { state: 'not-evaluated', pin, encryptTo: [], update: { kind: 'keep' }, detail: 'DNS failed: nothing to compare' };
  }
  if (!pin) {
    const note = expiredPin ? `the pin expired at ${stored.expiresAt}` : 'no pin';
    return {
      state: 'no-pin',
      pin,
      encryptTo: current,
      update: current.length > 0 ? (renewal(undefined, lookup, current, now) ?? noChange) : noChange,
      detail: current.length > 0 ? `${note}; keys trusted on first use` : note,
    };
  }
  const until = `pinned until ${pin.expiresAt}`;
  if (current.length === 0) {
    return {
      state: 'downgrade',
      pin,
      encryptTo: [],
      update: { kind: 'keep' },
      detail: `no usable key published, yet ${pin.fingerprints.length} key(s) ${until}`,
    };
  }
  const pinned = new Set(pin.fingerprints);
  const overlap = current.filter((fp) => pinned.has(fp));
  if (overlap.length === 0) {
    return {
      state: 'suspicious-change',
      pin,
      encryptTo: [],
      update: { kind: 'keep' },
      detail: `published key(s) ${current.join(', ')} differ from the key(s) ${until}, and no pinned key is still published`,
    };
  }
  const update = renewal(pin, lookup, current, now) ?? { kind: 'keep' };
  if (overlap.length === current.length) {
    return { state: 'ok', pin, encryptTo: current, update, detail: `published key(s) match the pin (${until})` };
  }
  return {
    state: 'new-key-announced',
    pin,
    encryptTo: overlap,
    update,
    detail: `new key(s) ${current.filter((fp) => !pinned.has(fp)).join(', ')} published next to the pinned one(s); encrypting to pinned keys only until the pin is renewed`,
  };
}

/**
 * The pin update a matching lookup asks for, or undefined for none: a new pin when the TXT record gives a lifetime,
 * removal on `ma=0`, and for an unchanged pin a refresh only past half its lifetime.
 */
function renewal(pin: Pin | undefined, lookup: PinInput, current: readonly string[], now: Date): PinUpdate | undefined {
  if (lookup.policy === null) return undefined;
  if (lookup.maxAge === 0) return pin ? { kind: 'delete' } : undefined;
  const next: Pin = {
    domain: lookup.domain,
    fingerprints: current,
    policy: lookup.policy,
    maxAge: lookup.maxAge,
    firstSeen: pin?.firstSeen ?? now.toISOString(),
    lastSeen: now.toISOString(),
    expiresAt: new Date(now.getTime() + lookup.maxAge * 1000).toISOString(),
    dnssec: lookup.dnssec,
  };
  const unchanged =
    pin !== undefined &&
    pin.policy === next.policy &&
    pin.maxAge === next.maxAge &&
    pin.dnssec === next.dnssec &&
    pin.fingerprints.join() === next.fingerprints.join() &&
    Date.parse(pin.expiresAt) - now.getTime() > (pin.maxAge * 1000) / 2;
  return unchanged ? undefined : { kind: 'set', pin: next };
}
