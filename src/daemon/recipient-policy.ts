/**
 * The decision for one recipient domain: the domain's own DNS outlook (published policy, keys, pins;
 * see src/policy/domain-outlook.ts) with the administrator's settings laid over it.
 *
 * Precedence, strongest first:
 * 1. a local domain (one we receive mail for) is never encrypted to;
 * 2. the administrator's `never` sends clear text (signed if configured), pins included;
 * 3. a pin violation (record removed or key changed while pinned) is refused temporarily: a pinned
 *    domain never gets clear text by accident;
 * 4. usable keys mean encryption (when DNSSEC is required, only keys DNSSEC vouched for);
 * 5. no key: `required` (set by the administrator, or `enforce` published by the domain) is refused
 *    with the `noKeyRequired` action; otherwise signed clear text;
 * 6. DNS failure: the `dnsError` action, but never clear text to a required or pinned domain.
 *
 * Clear text is signed (multipart/signed) by `signCleartext`: `always`, `never`, or `muse-sites` (the default),
 * only for domains known to take part in MUSE (they publish a `_muse` record, or we hold a pin for them). Mail to
 * every other site leaves exactly as it arrived: a signature only a MUSE site can check would change its shape for
 * nothing (some list servers and gateways mangle or refuse multipart/signed).
 */
import type { DomainOutlook } from '../policy/domain-outlook.ts';

/** The administrator's setting for a domain; `dns` follows what the domain publishes. */
export type AdminPolicy = 'dns' | 'never' | 'opportunistic' | 'required';

/** What to do when something fails: refuse temporarily, refuse, or deliver as received (clear text). */
export type FailureAction = 'tempfail' | 'reject' | 'accept';

/** When clear-text mail is signed: never, only to MUSE sites, or always. */
export type SignCleartext = 'never' | 'muse-sites' | 'always';

/** The settings this decision reads. */
export interface RecipientPolicySettings {
  /** Policy for a domain, most specific entry first; undefined means `default`. */
  policyFor(domain: string): AdminPolicy;
  isLocal(domain: string): boolean;
  requireDnssec: boolean;
  signCleartext: SignCleartext;
  actions: { dnsError: FailureAction; noKeyRequired: Exclude<FailureAction, 'accept'> };
}

/** What the DNS layer found for the domain, as far as this decision needs it. */
export interface DomainFacts {
  outlook: DomainOutlook;
  /** Whether the keys in `outlook.encryptTo` were vouched for by DNSSEC. */
  dnssec: boolean;
  /** Whether a pin exists for the domain (a pinned domain never gets clear text on a DNS failure). */
  pinned: boolean;
  /** Whether the domain publishes a `_muse` record (any policy, usable key or not). */
  published: boolean;
}

/** The outcome for one domain. */
export type RecipientDecision =
  | { kind: 'local'; reason: string }
  | { kind: 'encrypt'; fingerprints: readonly string[]; dnssec: boolean; reason: string }
  | { kind: 'clear'; signed: boolean; reason: string }
  | { kind: 'refuse'; temporary: boolean; reply: { code: number; enhanced: string; text: string }; reason: string };

function refuse(action: 'tempfail' | 'reject', enhanced: string, text: string, reason: string): RecipientDecision {
  return action === 'tempfail'
    ? { kind: 'refuse', temporary: true, reply: { code: 451, enhanced: `4.${enhanced}`, text }, reason }
    : { kind: 'refuse', temporary: false, reply: { code: 550, enhanced: `5.${enhanced}`, text }, reason };
}

/**
 * The domain as an SMTP reply names it. Replies are ASCII (RFC 5321 §2.4), and the milter protocol carries one byte
 * per character: a domain IDNA could not convert (kept in Unicode, see outbound-message.ts) would come out as
 * other characters, possibly another domain's name (U+0378 as `x`). Normalised domains are A-labels, ASCII.
 */
function replyName(domain: string): string {
  return /^[\x21-\x7e]+$/.test(domain) ? domain : 'the recipient domain';
}

/**
 * Whether clear text to a domain is signed. Without facts (the administrator's `never` skips the lookup) nothing
 * says the domain is a MUSE site, so only `always` signs.
 */
function signs(settings: RecipientPolicySettings, facts: DomainFacts | undefined): boolean {
  if (settings.signCleartext === 'always') return true;
  if (settings.signCleartext === 'never' || facts === undefined) return false;
  return facts.published || facts.pinned;
}

/** Decides for one recipient domain. Pure: same input, same answer. */
export function decideRecipient(domain: string, facts: DomainFacts | undefined, settings: RecipientPolicySettings): RecipientDecision {
  if (settings.isLocal(domain)) return { kind: 'local', reason: 'local domain' };
  const shown = replyName(domain);
  const admin = settings.policyFor(domain);
  if (admin === 'never') return { kind: 'clear', signed: signs(settings, facts), reason: 'policy never' };
  if (facts === undefined) throw new Error(`no DNS facts for ${domain}`);
  const { outlook } = facts;
  const required = admin === 'required' || (admin === 'dns' && outlook.policy === 'enforce');

  switch (outlook.action) {
    case 'tempfail-downgrade':
      if (outlook.reason.startsWith('the site requires encryption') && admin === 'opportunistic') {
        // The administrator lowered a published `enforce` on purpose; pins still apply (handled above by the outlook).
        return { kind: 'clear', signed: signs(settings, facts), reason: 'no usable key; policy opportunistic (published enforce overridden)' };
      }
      return refuse('tempfail', '7.1', `Encryption to ${shown} is required but not possible now`, outlook.reason);
    case 'tempfail-dns': {
      const action = required || facts.pinned ? (settings.actions.dnsError === 'reject' ? 'reject' : 'tempfail') : settings.actions.dnsError;
      if (action === 'accept') return { kind: 'clear', signed: signs(settings, facts), reason: `${outlook.reason}; delivered in clear (dnsError accept)` };
      return refuse(action, '4.3', `Key lookup for ${shown} failed`, outlook.reason);
    }
    case 'encrypt':
      if (settings.requireDnssec && !facts.dnssec) {
        if (required) return refuse(settings.actions.noKeyRequired, '7.1', `No DNSSEC-validated key for ${shown}`, 'keys not validated by DNSSEC');
        return { kind: 'clear', signed: signs(settings, facts), reason: 'keys not validated by DNSSEC (requireDnssec)' };
      }
      return { kind: 'encrypt', fingerprints: outlook.encryptTo, dnssec: facts.dnssec, reason: outlook.reason };
    case 'sign-only':
      if (required) return refuse(settings.actions.noKeyRequired, '7.1', `Encryption to ${shown} is required and no key was found`, outlook.reason);
      return { kind: 'clear', signed: signs(settings, facts), reason: outlook.reason };
  }
}
