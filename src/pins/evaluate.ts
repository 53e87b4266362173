/**
 * Pin evaluation (docs/dns-records.md §7): a pure comparison of a new lookup with what a site announced earlier,
 * so that a record that vanished, or a key that changed without being announced, is noticed within the pinning
 * lifetime instead of silently sending clear text or encrypting to a stranger's key.
 *
 * Without DNSSEC every answer may be forged, so while a pin is in force an unauthenticated answer can only keep
 * or strengthen it: it never removes the pin (`ma=0` is ignored), never moves its expiry earlier, never lowers
 * the policy, and brings in a new key only when a pinned key certified it (pins/certification.ts). A
 * DNSSEC-validated answer speaks for the site and may change the pin as the site asks.
 */
import { strongerPolicy, type SitePolicy } from '../keys/index.ts';

/** What a sender remembers about a site. Times are ISO 8601 strings, as stored. */
export interface Pin {
  readonly domain: string;
  /** Fingerprints of the pinned keys, sorted. */
  readonly fingerprints: readonly string[];
  readonly policy: SitePolicy;
  /** The lifetime the site last asked for, seconds. */
  readonly maxAge: number;
  /** When keys of this site were first pinned. */
  readonly firstSeen: string;
  /** When the pin was last set or refreshed. */
  readonly lastSeen: string;
  /** When the pin stops holding. */
  readonly expiresAt: string;
  /** Whether the answer that last set the pin was DNSSEC-authenticated. */
  readonly dnssec: boolean;
  /**
   * Binary public keys (base64) of pinned keys, by fingerprint: what checks a certification by a pinned key once
   * the site no longer publishes it. A pin read from a version 1 store lacks them until the key is seen again.
   */
  readonly publicKeys: Readonly<Record<string, string>>;
}

/** The part of a site-key lookup the evaluation reads (a `SiteKeyLookup` has it all). */
export interface PinInput {
  readonly domain: string;
  readonly status: 'found' | 'none' | 'temporary-failure';
  /** Usable keys; `bytes` (the binary public key) is what a new pin stores. */
  readonly keys: readonly { readonly fingerprint: string; readonly bytes?: Uint8Array }[];
  /** Null when the site has no valid TXT record: then nothing about the pin changes. */
  readonly policy: SitePolicy | null;
  readonly maxAge: number;
  readonly dnssec: boolean;
  /**
   * Keys found that a pinned key certified: certified key's fingerprint → the certifying pinned key's fingerprint
   * (`certifiedByPin`); a pinned key certified by another pinned key appears too (its successor). Absent: none.
   */
  readonly certifiedBy?: Readonly<Record<string, string>>;
}

/**
 * - `no-pin`: no pin in force (never pinned, or expired).
 * - `ok`: every key found is pinned.
 * - `key-rotation`: new keys found, accepted because the answer is DNSSEC-validated or a pinned key certified them.
 * - `new-key-announced`: pinned keys are still published, next to new ones nothing vouches for.
 * - `downgrade`: pinned, and no usable key is published any more.
 * - `suspicious-change`: pinned, and none of the keys found is pinned or vouched for.
 * - `not-evaluated`: DNS failed, nothing to compare.
 */
export type PinState = 'no-pin' | 'ok' | 'key-rotation' | 'new-key-announced' | 'downgrade' | 'suspicious-change' | 'not-evaluated';

/** What to do with the stored pin. */
export type PinUpdate = { readonly kind: 'keep' } | { readonly kind: 'set'; readonly pin: Pin } | { readonly kind: 'delete' };

/** The outcome of comparing a lookup with the pin. */
export interface PinEvaluation {
  readonly state: PinState;
  /** The pin in force before this lookup; null when there was none or it had expired. */
  readonly pin: Pin | null;
  /** Fingerprints a message may be encrypted to now: with a pin, only pinned or vouched keys; without, all keys found. */
  readonly encryptTo: readonly string[];
  readonly update: PinUpdate;
  /** One sentence for logs and the CLI. */
  readonly detail: string;
}

/**
 * Compares a lookup with the stored pin at time `now`.
 *
 * Only a valid TXT record (policy not null) sets or refreshes a pin. To keep the store quiet, an unchanged pin is
 * rewritten only when less than half of its lifetime remains.
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
      update: current.length > 0 ? (siteAnswer(undefined, lookup, current, now) ?? noChange) : noChange,
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
  const fresh = current.filter((fp) => !pinned.has(fp));
  // DNSSEC vouches for every key of the answer; otherwise only a pinned key's certification does.
  const vouched = fresh.filter((fp) => lookup.dnssec || lookup.certifiedBy?.[fp] !== undefined);
  const unvouched = fresh.filter((fp) => !vouched.includes(fp));
  if (overlap.length === 0 && vouched.length === 0) {
    return {
      state: 'suspicious-change',
      pin,
      encryptTo: [],
      update: { kind: 'keep' },
      detail: `published key(s) ${current.join(', ')} differ from the key(s) ${until}, and no pinned key is still published or certified them`,
    };
  }
  const encryptTo = [...overlap, ...vouched].sort();
  const update = (lookup.dnssec ? siteAnswer(pin, lookup, current, now) : strengthen(pin, lookup, vouched, now)) ?? { kind: 'keep' };
  if (fresh.length === 0) {
    return { state: 'ok', pin, encryptTo, update, detail: `published key(s) match the pin (${until})` };
  }
  if (vouched.length > 0) {
    const why = lookup.dnssec ? 'the answer is DNSSEC-validated' : `certified by pinned key(s) ${[...new Set(vouched.map((fp) => lookup.certifiedBy?.[fp]))].join(', ')}`;
    const ignored = unvouched.length > 0 ? `; unvouched key(s) ${unvouched.join(', ')} ignored` : '';
    return { state: 'key-rotation', pin, encryptTo, update, detail: `new key(s) ${vouched.join(', ')} accepted: ${why}${ignored}` };
  }
  return {
    state: 'new-key-announced',
    pin,
    encryptTo,
    update,
    detail: `new key(s) ${unvouched.join(', ')} published next to the pinned one(s), neither DNSSEC-validated nor certified by a pinned key; encrypting to pinned keys only`,
  };
}

/**
 * The update a DNSSEC-validated answer (or, without a pin, the first answer) asks for, or undefined for none: the
 * pin becomes exactly what the site publishes; `ma=0` removes it.
 */
function siteAnswer(pin: Pin | undefined, lookup: PinInput, current: readonly string[], now: Date): PinUpdate | undefined {
  if (lookup.policy === null) return undefined;
  if (lookup.maxAge === 0) return pin ? { kind: 'delete' } : undefined;
  return settle(pin, {
    domain: lookup.domain,
    fingerprints: current,
    policy: lookup.policy,
    maxAge: lookup.maxAge,
    firstSeen: pin?.firstSeen ?? now.toISOString(),
    lastSeen: now.toISOString(),
    expiresAt: new Date(now.getTime() + lookup.maxAge * 1000).toISOString(),
    dnssec: lookup.dnssec,
    publicKeys: keyBytes(current, pin, lookup),
  }, now);
}

/**
 * The update an unauthenticated answer may make to a pin in force: the pinned keys stay, and keys certified by a
 * pinned key join them; the policy only rises; the expiry only moves later (`ma=0` extends nothing). A pinned key
 * leaves the pin only when the site no longer publishes it and a key it certified is published in its place:
 * the key's own holder handed over to its successor.
 */
function strengthen(pin: Pin, lookup: PinInput, vouched: readonly string[], now: Date): PinUpdate | undefined {
  if (lookup.policy === null) return undefined;
  const published = new Set(lookup.keys.map((k) => k.fingerprint));
  const accepted = [...lookup.keys.map((k) => k.fingerprint).filter((fp) => pin.fingerprints.includes(fp)), ...vouched];
  const handedOver = new Set(accepted.map((fp) => lookup.certifiedBy?.[fp]));
  const kept = pin.fingerprints.filter((fp) => published.has(fp) || !handedOver.has(fp));
  const fingerprints = [...new Set([...kept, ...vouched])].sort();
  const extended = lookup.maxAge === 0 ? 0 : now.getTime() + lookup.maxAge * 1000;
  return settle(pin, {
    domain: lookup.domain,
    fingerprints,
    policy: strongerPolicy(pin.policy, lookup.policy),
    maxAge: lookup.maxAge === 0 ? pin.maxAge : lookup.maxAge,
    firstSeen: pin.firstSeen,
    lastSeen: now.toISOString(),
    expiresAt: new Date(Math.max(Date.parse(pin.expiresAt), extended)).toISOString(),
    dnssec: false,
    publicKeys: keyBytes(fingerprints, pin, lookup),
  }, now);
}

/** The public key bytes of `fingerprints`: the stored ones, else those of the answer. */
function keyBytes(fingerprints: readonly string[], pin: Pin | undefined, lookup: PinInput): Record<string, string> {
  const result: Record<string, string> = {};
  for (const fp of fingerprints) {
    const stored = pin?.publicKeys[fp];
    const found = lookup.keys.find((k) => k.fingerprint === fp)?.bytes;
    const bytes = stored ?? (found === undefined ? undefined : Buffer.from(found).toString('base64'));
    if (bytes !== undefined) result[fp] = bytes;
  }
  return result;
}

/** `set` to `next`, unless it says what `pin` says and more than half of the pin's lifetime remains. */
function settle(pin: Pin | undefined, next: Pin, now: Date): PinUpdate | undefined {
  const unchanged =
    pin !== undefined &&
    pin.policy === next.policy &&
    pin.maxAge === next.maxAge &&
    pin.dnssec === next.dnssec &&
    pin.fingerprints.join() === next.fingerprints.join() &&
    Object.keys(pin.publicKeys).sort().join() === Object.keys(next.publicKeys).sort().join() &&
    Date.parse(pin.expiresAt) - now.getTime() > (pin.maxAge * 1000) / 2;
  return unchanged ? undefined : { kind: 'set', pin: next };
}
