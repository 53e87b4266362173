/**
 * Turns the per-domain decisions for one message's recipients into a plan: which recipients get the
 * encrypted version (one OpenPGP message encrypted to every key at once), which get clear text, and
 * whether the message must be refused. At most two versions exist, so at most one copy is re-injected:
 * either that copy is accepted and the original goes on, or the whole message is refused temporarily —
 * never a half-delivered message.
 */
import type { RecipientDecision } from './recipient-policy.ts';

/** One recipient with its domain's decision. */
export interface PlannedRecipient {
  /** As the MTA gave it at RCPT (angle brackets included). */
  recipient: string;
  domain: string;
  decision: RecipientDecision;
}

/** A group of recipients that receive the same bytes. */
export interface RecipientGroup {
  kind: 'encrypted' | 'clear';
  recipients: PlannedRecipient[];
  /** For `encrypted`: every fingerprint to encrypt to (deduplicated, in first-seen order). */
  fingerprints: string[];
  /** For `clear`: whether to sign it (true if any remote recipient's decision asks for it). */
  signed: boolean;
}

/** The plan for a message. */
export type MessagePlan =
  | { kind: 'refuse'; temporary: boolean; reply: { code: number; enhanced: string; text: string }; reasons: string[] }
  | { kind: 'deliver'; groups: RecipientGroup[] };

/** Builds the plan. A refusal of any recipient refuses the message (temporarily wins over permanently). */
export function planMessage(recipients: readonly PlannedRecipient[]): MessagePlan {
  const refusals = recipients.filter((r) => r.decision.kind === 'refuse');
  if (refusals.length > 0) {
    const temporary = refusals.find((r) => r.decision.kind === 'refuse' && r.decision.temporary) ?? refusals[0];
    const decision = (temporary as PlannedRecipient).decision as Extract<RecipientDecision, { kind: 'refuse' }>;
    return {
      kind: 'refuse',
      temporary: decision.temporary,
      reply: decision.reply,
      reasons: refusals.map((r) => `${r.domain}: ${r.decision.reason}`),
    };
  }
  const encrypted: RecipientGroup = { kind: 'encrypted', recipients: [], fingerprints: [], signed: true };
  const clear: RecipientGroup = { kind: 'clear', recipients: [], fingerprints: [], signed: false };
  for (const r of recipients) {
    if (r.decision.kind === 'encrypt') {
      encrypted.recipients.push(r);
      for (const fp of r.decision.fingerprints) if (!encrypted.fingerprints.includes(fp)) encrypted.fingerprints.push(fp);
    } else {
      clear.recipients.push(r);
      if (r.decision.kind === 'clear' && r.decision.signed) clear.signed = true;
    }
  }
  return { kind: 'deliver', groups: [encrypted, clear].filter((g) => g.recipients.length > 0) };
}

/** The group a decision puts a recipient in, for the `defer` strategy's per-RCPT check. */
export function groupOf(decision: RecipientDecision): 'encrypted' | 'clear' | 'refused' {
  if (decision.kind === 'encrypt') return 'encrypted';
  if (decision.kind === 'refuse') return 'refused';
  return 'clear';
}
