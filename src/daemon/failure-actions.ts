/**
 * Turns a configured failure action into a verdict. `accept` delivers the message as received — which
 * for outbound mail means clear text — so it is downgraded to `tempfail` whenever the message has a
 * recipient that must never get clear text (a required or pinned domain).
 */
import { CONTINUE, reply, type Verdict } from '../../milter/src/index.ts';
import type { FailureAction } from './recipient-policy.ts';

/** What went wrong, for the reply text and the log. */
export type FailureKind = 'dnsError' | 'cryptoError' | 'oversize' | 'internalError';

const TEXT: Record<FailureKind, { enhanced: string; text: string }> = {
  dnsError: { enhanced: '4.3', text: 'Key lookup failed' },
  cryptoError: { enhanced: '7.0', text: 'Message could not be protected' },
  oversize: { enhanced: '3.4', text: 'Message too large to protect' },
  internalError: { enhanced: '3.0', text: 'Internal error while protecting the message' },
};

/** The verdict and the action really applied. */
export interface FailureOutcome {
  verdict: Verdict;
  applied: FailureAction;
}

/** Applies a failure action. `protectedRecipients`: some recipient must never receive clear text. */
export function failureVerdict(kind: FailureKind, action: FailureAction, protectedRecipients: boolean): FailureOutcome {
  const applied: FailureAction = action === 'accept' && protectedRecipients ? 'tempfail' : action;
  const { enhanced, text } = TEXT[kind];
  switch (applied) {
    case 'accept':
      return { verdict: CONTINUE, applied };
    case 'tempfail':
      return { verdict: reply(451, `4.${enhanced}`, text), applied };
    case 'reject':
      return { verdict: reply(554, `5.${enhanced}`, text), applied };
  }
}
