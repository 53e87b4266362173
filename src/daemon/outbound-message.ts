/**
 * End of message for outbound mail: decide per recipient domain, then encrypt once to every keyed
 * recipient, sign (or leave) the clear-text version for the rest, and — when both versions are
 * needed — keep the encrypted one on the original transaction and re-inject the clear one as a copy.
 * The original is acknowledged only after the copy was accepted; otherwise the whole message is
 * refused temporarily, so nothing is lost and nothing is delivered twice. A copy once accepted is recorded in the
 * re-injection ledger, so a retry of the same message does not queue it again.
 */
import type { PublicKey } from 'openpgp';
import { CONTINUE, deleteRecipient, replaceBody, reply, type EndOfMessageResult, type Modification } from '../../milter/src/index.ts';
import { carriesOurResult, protectOutbound, type HeaderField, type OutboundResult } from '../engine/index.ts';
import { envelopeAddress, envelopeDomain } from '../mail/address.ts';
import { failureVerdict } from './failure-actions.ts';
import { editsToModifications } from './header-edits.ts';
import type { DomainKeys } from './key-service.ts';
import { planMessage, type MessagePlan, type PlannedRecipient, type RecipientGroup } from './message-plan.ts';
import { disposingChunks } from './output-body.ts';
import { decideRecipient } from './recipient-policy.ts';
import { bareAddress, digestBody, messageIdValues } from './copy-identity.ts';
import { ledgerKey, type LedgerEntry } from './reinjection-ledger.ts';
import { submitCopy } from './reinjection.ts';
import { engineLimits, type Runtime } from './runtime.ts';
import { observesOnly } from './testing-mode.ts';

/** What the outbound path needs from the message. */
export interface OutboundMessage {
  queueId: string | undefined;
  sender: string;
  recipients: readonly string[];
  /** The MAIL FROM ESMTP parameters, as the MTA reported them. */
  senderParameters: readonly string[];
  /** The RCPT TO ESMTP parameters, by recipient as given at RCPT. */
  recipientParameters: ReadonlyMap<string, readonly string[]>;
  headers: readonly HeaderField[];
  /** Reads the original body from the start; callable more than once. */
  body: () => AsyncIterable<Buffer>;
  /** Lookups started at RCPT time, by domain. */
  lookups: ReadonlyMap<string, Promise<DomainKeys>>;
  signal: AbortSignal;
}

/** The verdict and what the summary line says about it. */
export interface MessageOutcome {
  result: EndOfMessageResult;
  action: string;
  reason: string;
  keys: string[];
  dnssec: boolean | undefined;
}

/**
 * The domain of an envelope recipient, normalised as every domain is (src/mail/address.ts); a bare local part
 * (`<postmaster>`) belongs to our site. A domain that cannot be converted to A-labels (bytes that are not UTF-8
 * included: they are U+FFFD by then) is kept, decoded, in lower case: no configuration entry can match it, it is
 * never decoded again into some other name, and its key lookup fails as a DNS failure would (see
 * key-service.ts), so it is deferred rather than sent in clear; reply texts do not name it (recipient-policy.ts).
 */
export function recipientDomain(recipient: string, siteDomain: string): string {
  const normalised = envelopeDomain(recipient, siteDomain);
  if (normalised !== null) return normalised;
  const address = envelopeAddress(recipient);
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/** Whether a domain must never receive clear text: required by the administrator or the site, or pinned. */
function mustNotGetClearText(runtime: Runtime, domain: string, keys: DomainKeys | undefined): boolean {
  const admin = runtime.policy.policyFor(domain);
  if (admin === 'never' || runtime.policy.isLocal(domain)) return false;
  if (admin === 'required') return true;
  return keys !== undefined && (keys.facts.pinned || (admin === 'dns' && keys.outlook.policy === 'enforce'));
}

/**
 * Whether some recipient of the message must never receive clear text, for a failure action that would deliver
 * the message as received. It waits for the lookups RCPT started (bounded by the DNS timeouts), so the answer
 * does not depend on whether DNS happened to answer before the end of the message.
 */
export async function hasProtectedRecipient(runtime: Runtime, lookups: ReadonlyMap<string, Promise<DomainKeys>>): Promise<boolean> {
  if ([...lookups.keys()].some((domain) => mustNotGetClearText(runtime, domain, undefined))) return true;
  for (const [domain, lookup] of lookups) {
    if (mustNotGetClearText(runtime, domain, await lookup.catch(() => undefined))) return true;
  }
  return false;
}

/** Decides every recipient; starts the lookups RCPT did not start. */
async function planRecipients(runtime: Runtime, message: Pick<OutboundMessage, 'recipients' | 'lookups'>): Promise<{ planned: PlannedRecipient[]; keys: Map<string, DomainKeys> }> {
  const domains = new Map<string, Promise<DomainKeys> | undefined>();
  for (const recipient of message.recipients) {
    const domain = recipientDomain(recipient, runtime.config.site.domain);
    if (domains.has(domain)) continue;
    const needsLookup = !runtime.policy.isLocal(domain) && runtime.policy.policyFor(domain) !== 'never';
    domains.set(domain, needsLookup ? (message.lookups.get(domain) ?? runtime.keys.domainKeys(domain)) : undefined);
  }
  const keys = new Map<string, DomainKeys>();
  for (const [domain, lookup] of domains) if (lookup !== undefined) keys.set(domain, await lookup);
  const planned = message.recipients.map((recipient) => {
    const domain = recipientDomain(recipient, runtime.config.site.domain);
    return { recipient, domain, decision: decideRecipient(domain, keys.get(domain)?.facts, runtime.policy) };
  });
  return { planned, keys };
}

function describeGroups(groups: readonly RecipientGroup[]): string {
  return groups.map((g) => `${g.kind}${g.kind === 'clear' ? (g.signed ? '+signed' : '') : ''}:${[...new Set(g.recipients.map((r) => r.domain))].join(',')}`).join(' ');
}

/** Protects one version of the message for a group. */
async function protect(runtime: Runtime, message: OutboundMessage, group: RecipientGroup, keys: Map<string, DomainKeys>): Promise<OutboundResult | undefined> {
  if (group.kind === 'clear' && !group.signed) return undefined;
  const recipientKeys: PublicKey[] = [];
  if (group.kind === 'encrypted') {
    for (const fingerprint of group.fingerprints) {
      for (const domainKeys of keys.values()) {
        const key = domainKeys.keys.get(fingerprint);
        if (key !== undefined) {
          recipientKeys.push(key);
          break;
        }
      }
    }
  }
  const started = performance.now();
  const result = await protectOutbound({
    headers: message.headers,
    body: message.body(),
    siteKey: runtime.signingKey,
    recipientKeys,
    headerProtection: runtime.config.policy.headerProtection,
    subjectPlaceholder: runtime.config.policy.subjectPlaceholder,
    headerEncoding: 'latin1',
    limits: engineLimits(runtime.config),
    spool: { dir: runtime.config.milter.spoolDirectory as string },
    now: runtime.now,
  });
  runtime.metrics?.cryptoSeconds.observe({ operation: group.kind === 'encrypted' ? 'sign+encrypt' : 'sign' }, (performance.now() - started) / 1000);
  return result;
}

/** The recipients decided and grouped: everything end of message acts on, known once RCPT is over. */
export interface OutboundPlan {
  readonly plan: MessagePlan;
  readonly keys: Map<string, DomainKeys>;
  /** Some recipient must never receive clear text (for failure actions that would deliver as received). */
  readonly protectedMessage: boolean;
  /** Fingerprints of the keys the message is encrypted to. */
  readonly fingerprints: string[];
  readonly dnssec: boolean | undefined;
}

/** Decides every recipient and groups them; waits for the lookups RCPT started (and starts any it did not). */
export async function planOutbound(runtime: Runtime, message: Pick<OutboundMessage, 'recipients' | 'lookups'>): Promise<OutboundPlan> {
  const { planned, keys } = await planRecipients(runtime, message);
  const encryptedDomains = planned.filter((p) => p.decision.kind === 'encrypt');
  return {
    plan: planMessage(planned),
    keys,
    protectedMessage: planned.some((p) => mustNotGetClearText(runtime, p.domain, keys.get(p.domain))),
    fingerprints: [...new Set(encryptedDomains.flatMap((p) => (p.decision.kind === 'encrypt' ? [...p.decision.fingerprints] : [])))],
    dnssec: encryptedDomains.length === 0 ? undefined : encryptedDomains.every((p) => p.decision.kind === 'encrypt' && p.decision.dnssec),
  };
}

/**
 * Whether the message can be encrypted while its body still arrives: every recipient gets the one encrypted
 * version, so the body is read exactly once and never needed again (a failure is answered with a verdict, and
 * delivering as received needs nothing from us: the MTA holds the original).
 */
export function encryptsWhileReceiving(runtime: Runtime, outbound: OutboundPlan): boolean {
  const { plan } = outbound;
  return !observesOnly(runtime) && plan.kind !== 'refuse' && plan.groups.length === 1 && plan.groups[0]?.kind === 'encrypted';
}

/** Starts protecting the version of the message its original transaction keeps (the first group). */
export function protectOriginal(runtime: Runtime, message: OutboundMessage, outbound: OutboundPlan): Promise<OutboundResult | undefined> {
  if (outbound.plan.kind === 'refuse') return Promise.resolve(undefined);
  return protect(runtime, message, outbound.plan.groups[0] as RecipientGroup, outbound.keys);
}

/** What end of message finds already under way: the plan, and the original version's protection, if started. */
export interface OutboundStart {
  readonly outbound: OutboundPlan;
  readonly original: Promise<OutboundResult | undefined>;
}

/** What the re-injection ledger knows of a message's copy, and how to record it once queued. */
interface LedgerView {
  /** The entry of a copy already queued for this message (by an earlier try of it). */
  readonly queued: LedgerEntry | undefined;
  /** Records the copy as queued; never throws. */
  record(reply: string): Promise<void>;
}

/**
 * Looks the copy up in the ledger. A message without a Message-ID field is not looked up or recorded: the envelope
 * and body alone could match a different message sent again on purpose (a daily report), whose copy must not be
 * dropped. A ledger that cannot be read or written costs at most a second copy on a retry: a duplicate is the lesser
 * evil next to a lost or endlessly deferred message, so neither failure holds the message up.
 */
async function ledgerOf(runtime: Runtime, message: OutboundMessage, copyRecipients: readonly string[]): Promise<LedgerView> {
  const messageIds = messageIdValues(message.headers);
  if (messageIds.length === 0) return { queued: undefined, record: async () => undefined };
  const identity = {
    sender: bareAddress(message.sender),
    recipients: copyRecipients.map(bareAddress),
    messageIds,
    bodyDigest: await digestBody(message.body()),
  };
  const key = ledgerKey(identity);
  const fields = { queueId: message.queueId, ledger: runtime.ledger.directory };
  let queued: LedgerEntry | undefined;
  try {
    queued = await runtime.ledger.find(key, runtime.now());
  } catch (error) {
    runtime.log.warn('re-injection ledger entry unreadable; the copy is sent (again, if it was queued before)', { ...fields, error: (error as Error).message });
  }
  return {
    queued,
    record: async (reply) => {
      try {
        await runtime.ledger.record(key, { original: message.queueId ?? 'unknown', reply }, runtime.now());
      } catch (error) {
        // The copy is queued: refusing the original now would have the MTA retry it and queue the copy again.
        runtime.log.error('cannot record the queued copy in the re-injection ledger; a retry of this message would send the copy again', { ...fields, error: (error as Error).message });
      }
    },
  };
}

/**
 * Logs a warning when a message this site decrypted on its way in (it carries our `x-muse` result) leaves again in
 * clear to another site: a forward (an alias, a list, a user's redirect) expanded where the milter did not see it.
 * examples/postfix/forwarding.cf sends such mail through the milter a second time, after the expansion, so the
 * forward is protected like any outbound message; this warning says where that is missing.
 */
function warnOfClearForward(runtime: Runtime, message: OutboundMessage, groups: readonly RecipientGroup[]): void {
  if (!carriesOurResult(message.headers, runtime.config.inbound.authservId)) return;
  const clear = groups.flatMap((g) => (g.kind === 'clear' ? g.recipients : [])).filter((r) => r.decision.kind !== 'local');
  if (clear.length === 0) return;
  runtime.log.warn('a message this site decrypted leaves again in clear (a forward)', { queueId: message.queueId, domains: [...new Set(clear.map((r) => r.domain))] });
}

/** Processes one outbound message at end of message, continuing what {@link OutboundStart} began, if given. */
export async function processOutbound(runtime: Runtime, message: OutboundMessage, started?: OutboundStart): Promise<MessageOutcome> {
  const outbound = started?.outbound ?? (await planOutbound(runtime, message));
  const { plan, keys, protectedMessage, fingerprints, dnssec } = outbound;

  if (plan.kind === 'refuse') {
    const verdict = reply(plan.reply.code, plan.reply.enhanced, plan.reply.text);
    return { result: { verdict }, action: plan.temporary ? 'tempfail' : 'reject', reason: plan.reasons.join('; '), keys: [], dnssec };
  }
  if (observesOnly(runtime)) {
    // Decided, not done: nothing is encrypted and no copy is re-injected (see testing-mode.ts).
    const action = plan.groups.length > 1 ? 'split' : plan.groups[0]?.kind === 'encrypted' ? 'encrypt' : 'deliver';
    return { result: { verdict: CONTINUE }, action, reason: describeGroups(plan.groups), keys: fingerprints, dnssec };
  }

  const [original, copy] = plan.groups as [RecipientGroup, RecipientGroup | undefined];
  warnOfClearForward(runtime, message, plan.groups);
  const originalResult = await (started?.original ?? protect(runtime, message, original, keys));
  const failed = (result: OutboundResult | undefined): MessageOutcome | undefined => {
    if (result === undefined || result.kind === 'protected' || result.kind === 'unchanged') return undefined;
    const kind = result.kind === 'limit-exceeded' ? 'oversize' : 'cryptoError';
    const outcome = failureVerdict(kind, runtime.config.actions[kind], protectedMessage);
    const why = result.kind === 'limit-exceeded' ? `limit ${result.limit} (${result.max})` : result.error.message;
    return { result: { verdict: outcome.verdict }, action: outcome.applied === 'accept' ? 'clear' : outcome.applied, reason: `${kind}: ${why}`, keys: [], dnssec };
  };
  const originalFailure = failed(originalResult);
  if (originalFailure !== undefined) return originalFailure;
  if (originalResult?.kind === 'unchanged') {
    // Mail the author already encrypted (PGP/MIME, inline PGP, S/MIME) goes to every recipient as it is.
    return { result: { verdict: CONTINUE }, action: 'unchanged', reason: `already encrypted (${originalResult.format})`, keys: [], dnssec: undefined };
  }

  const modifications: Modification[] = [];
  let action = original.kind === 'encrypted' ? 'encrypted' : original.signed ? 'signed' : 'clear';
  let reason = describeGroups(plan.groups);
  if (copy !== undefined) {
    const copyRecipients = copy.recipients.map((r) => r.recipient);
    const ledger = await ledgerOf(runtime, message, copyRecipients);
    if (ledger.queued !== undefined) {
      // A retry of a message whose copy is queued already: the copy is not sent again, and the original still
      // leaves those recipients to it.
      reason = `${reason}; copy already queued by ${ledger.queued.original}: ${ledger.queued.reply.replace(/\n/g, ' ')}`;
    } else {
      const copyResult = await protect(runtime, message, copy, keys);
      const copyFailure = failed(copyResult);
      if (copyFailure !== undefined) {
        if (originalResult?.kind === 'protected') await originalResult.body.dispose();
        return copyFailure;
      }
      try {
        const queued = await submitCopy(runtime, {
          queueId: message.queueId ?? 'unknown',
          sender: message.sender,
          recipients: copyRecipients,
          senderParameters: message.senderParameters,
          recipientParameters: copyRecipients.map((r) => message.recipientParameters.get(r) ?? []),
          headers: message.headers,
          edits: copyResult?.kind === 'protected' ? copyResult.headerEdits : [],
          body: copyResult?.kind === 'protected' ? copyResult.body : undefined,
          originalBody: message.body,
        });
        reason = `${reason}; copy ${queued.replace(/\n/g, ' ')}`;
        await ledger.record(queued);
      } catch (error) {
        if (originalResult?.kind === 'protected') await originalResult.body.dispose();
        return {
          result: { verdict: reply(451, '4.3.0', 'Could not queue the copy for the other recipients') },
          action: 'tempfail',
          reason: `re-injection failed: ${(error as Error).message}`,
          keys: [],
          dnssec,
        };
      } finally {
        if (copyResult?.kind === 'protected') await copyResult.body.dispose();
      }
    }
    for (const r of copy.recipients) modifications.push(deleteRecipient(r.recipient));
    action = 'split';
  }
  if (originalResult?.kind === 'protected') {
    modifications.push(...editsToModifications(originalResult.headerEdits), replaceBody(disposingChunks(originalResult.body, message.signal, runtime.bodyRate)));
  }
  return { result: { verdict: CONTINUE, modifications }, action, reason, keys: fingerprints, dnssec };
}
