/**
 * Testing mode (`policy.testing: true`), decided here for both directions: every message is judged exactly as in
 * production (keys looked up, pins learnt, inbound mail decrypted and verified) and the summary line says what
 * would have happened; nothing is changed and nothing is refused. Forged fields are not removed either: the
 * message leaves as it came. Nothing with an effect outside the message runs (no copy is re-injected).
 */
import { CONTINUE } from '../../milter/src/index.ts';
import type { MessageOutcome } from './outbound-message.ts';
import type { Runtime } from './runtime.ts';

/** Whether the runtime only observes (testing mode). */
export function observesOnly(runtime: Runtime): boolean {
  return runtime.config.policy.testing;
}

/** The outcome a testing-mode message gets instead of `outcome`: let through unchanged, logged as what it would be. */
export function observed(outcome: MessageOutcome): MessageOutcome {
  return { result: { verdict: CONTINUE }, action: 'testing', reason: `would ${outcome.action}: ${outcome.reason}`, keys: outcome.keys, dnssec: outcome.dnssec };
}
