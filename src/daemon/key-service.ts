/**
 * Everything the daemon asks about other sites' keys: one lookup gives the DNS answer, the pin
 * evaluation (and its update, persisted), and the outlook, from which the recipient policy decides.
 */
import type { PublicKey } from 'openpgp';
import { DnsError, type DnsErrorCode } from '../dns/index.ts';
import { KeyError, type SiteKeyFinder, type SiteKeyLookup } from '../keys/index.ts';
import { evaluatePin, withCertifications, type PinEvaluation, type PinKeeper } from '../pins/index.ts';
import { pinnedKeys } from '../pins/certification.ts';
import { domainOutlook, type DomainOutlook } from '../policy/domain-outlook.ts';
import type { SenderKeys } from '../engine/index.ts';
import type { DomainFacts } from './recipient-policy.ts';

/** The result of looking a domain up, with everything a message plan and a log line need. */
export interface DomainKeys {
  domain: string;
  lookup: SiteKeyLookup;
  pin: PinEvaluation;
  outlook: DomainOutlook;
  facts: DomainFacts;
  /** Usable keys by fingerprint, for building the encryption recipient list. */
  keys: ReadonlyMap<string, PublicKey>;
  /** Milliseconds the lookup took (cache hits are fast). */
  elapsedMs: number;
}

/** Observers for metrics; all optional. */
export interface KeyServiceHooks {
  lookupDone?(domain: string, seconds: number, cached: boolean): void;
  pinStoreFailed?(domain: string, error: Error): void;
}

/**
 * The lookup of a name that cannot be a mail domain with records of its own (`localhost`, an address literal such
 * as `[192.0.2.1]`): it cannot publish a site key, so it is a domain without keys, and the recipient policy decides
 * as for any such domain. Treating it as an error would defer its mail for ever (cron mail to root@localhost).
 */
function keylessName(domain: string, reason: string): SiteKeyLookup {
  return { domain, owner: '', status: 'none', keys: [], rejected: [], policy: null, maxAge: 0, dnssec: false, dnssecReason: reason, sources: [] };
}

/** Looks a name up; a name that cannot be a mail domain comes back as {@link keylessName}. */
async function findOrKeyless(finder: SiteKeyFinder, domain: string, now: Date): Promise<SiteKeyLookup> {
  try {
    return await finder.findSiteKeys(domain, now);
  } catch (error) {
    if (!(error instanceof KeyError) || error.code !== 'KEY_BAD_DOMAIN') throw error;
    // A name with non-ASCII characters that IDNA cannot convert is a mail domain we cannot look up, not a
    // keyless one: it is deferred like any failed lookup (never sent in clear to what might be a protected site).
    if (/[^\x00-\x7f]/.test(domain)) return { ...keylessName(domain, error.message), status: 'temporary-failure', error: { code: 'DOMAIN_NOT_CONVERTIBLE', message: error.message } };
    return keylessName(domain, error.message);
  }
}

/** Looks up domains' keys and keeps the pins up to date. */
export class KeyService {
  constructor(
    private readonly finder: SiteKeyFinder,
    /** The pin store (one process) or a worker's relayed copy of the primary's; undefined when pinning is off. */
    private readonly pins: PinKeeper | undefined,
    private readonly now: () => Date = () => new Date(),
    private readonly hooks: KeyServiceHooks = {},
  ) {}

  /** Looks a domain up. Never throws for DNS trouble: that is a `temporary-failure` lookup. */
  async domainKeys(domain: string): Promise<DomainKeys> {
    const started = performance.now();
    const now = this.now();
    const found = await findOrKeyless(this.finder, domain, now);
    const stored = this.pins?.get(found.domain);
    // Keys a pinned key certified count as the site's own word, even without DNSSEC (pins/certification.ts).
    const lookup = await withCertifications(stored, found, now);
    const pin = this.pins === undefined ? evaluatePin(undefined, { ...lookup, policy: null }, now) : evaluatePin(stored, lookup, now);
    if (this.pins !== undefined && pin.update.kind !== 'keep') {
      // The pin holds in this process at once; the message waits until it is durable. A pin write that fails must
      // not lose the message: the pin is advisory state, the mail goes on.
      await this.pins.learn(lookup, pin.update, now).catch((error: Error) => this.hooks.pinStoreFailed?.(lookup.domain, error));
    }
    const outlook = domainOutlook({ lookup, pin });
    const keys = new Map(lookup.keys.map((k) => [k.fingerprint, k.key as PublicKey]));
    const elapsedMs = performance.now() - started;
    this.hooks.lookupDone?.(lookup.domain, elapsedMs / 1000, lookup.sources.length > 0 && lookup.sources.every((s) => s.cache?.state === 'hit'));
    return {
      domain: lookup.domain,
      lookup,
      pin,
      outlook,
      facts: { outlook, dnssec: lookup.dnssec, pinned: pin.pin !== null, published: lookup.status === 'found' || lookup.policy !== null },
      keys,
      elapsedMs,
    };
  }

  /**
   * The keys to verify a sending site's signature with (inbound): the keys the site publishes now, of which, while
   * we hold a pin for the site, only those the pin vouches for (as for encryption: docs/dns-records.md §7); the
   * others come back as `unvouched`, so a signature by one of them fails. `null` when the site publishes no key
   * (the engine then reports `none`). Inbound lookups never write pins: which domain is looked up is the sender's
   * choice.
   * @throws DnsError when DNS failed: the engine then reports `temperror`, not a site without keys
   */
  async senderKeys(domain: string): Promise<SenderKeys | null> {
    const started = performance.now();
    const now = this.now();
    const found = await findOrKeyless(this.finder, domain, now);
    const stored = this.pins?.get(found.domain);
    const lookup = await withCertifications(stored, found, now);
    // Counted like recipient lookups: the DNS metrics cover every query the daemon makes, inbound ones included.
    this.hooks.lookupDone?.(lookup.domain, (performance.now() - started) / 1000, lookup.sources.length > 0 && lookup.sources.every((s) => s.cache?.state === 'hit'));
    if (lookup.status === 'temporary-failure') {
      const code = (lookup.error?.code ?? 'DNS_TIMEOUT') as DnsErrorCode;
      throw new DnsError(code, `key lookup for ${lookup.domain} failed: ${lookup.error?.message ?? 'no answer'}`);
    }
    const pin = stored !== undefined && Date.parse(stored.expiresAt) > now.getTime() ? stored : undefined;
    // docs/security.md §5: without DNSSEC, pinned keys stay pinned even when no longer published, so a forged "no
    // record" cannot turn a signature check into "this domain publishes no key" (none: decrypted and shown).
    const stillPinned = pin !== undefined && !lookup.dnssec ? await pinnedKeys(pin, lookup.keys, now) : [];
    if (lookup.status !== 'found') return stillPinned.length === 0 ? null : { keys: stillPinned, unvouched: [], dnssec: false };
    const vouched = new Set(this.pins === undefined ? lookup.keys.map((k) => k.fingerprint) : evaluatePin(stored, lookup, now).encryptTo);
    const published = new Set(lookup.keys.map((k) => k.fingerprint));
    const keys = [
      ...lookup.keys.filter((k) => vouched.has(k.fingerprint)).map((k) => k.key as PublicKey),
      ...stillPinned.filter((k) => !published.has(k.getFingerprint().toUpperCase())),
    ];
    const unvouched = lookup.keys.filter((k) => !vouched.has(k.fingerprint)).map((k) => k.key as PublicKey);
    return { keys, unvouched, dnssec: lookup.dnssec };
  }
}
