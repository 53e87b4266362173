/**
 * Verdicts: what a handler answers at each step. Values, not side effects: the session turns them into
 * replies after checking them against the step and the negotiation.
 */
import { MilterUsageError } from './errors.ts';

/** A handler's answer to one step. */
export type Verdict =
  | { kind: 'continue' }
  | { kind: 'accept' }
  | { kind: 'reject' }
  | { kind: 'tempfail' }
  | { kind: 'discard' }
  | { kind: 'skip' }
  | { kind: 'connectionFail' }
  | { kind: 'reply'; reply: string };

/** Go on with the next step. */
export const CONTINUE: Verdict = Object.freeze({ kind: 'continue' });
/** Accept: at connection level the whole connection, otherwise the message, with no further steps. */
export const ACCEPT: Verdict = Object.freeze({ kind: 'accept' });
/** Reject with the MTA's default 5xx reply (at RCPT: only this recipient). */
export const REJECT: Verdict = Object.freeze({ kind: 'reject' });
/** Reject temporarily with the MTA's default 4xx reply (at RCPT: only this recipient). */
export const TEMPFAIL: Verdict = Object.freeze({ kind: 'tempfail' });
/** Accept the message and silently drop it. */
export const DISCARD: Verdict = Object.freeze({ kind: 'discard' });
/** In the body step: skip the rest of the body (only if the MTA understands it, else continue). */
export const SKIP: Verdict = Object.freeze({ kind: 'skip' });
/** Fail the SMTP connection. */
export const CONNECTION_FAIL: Verdict = Object.freeze({ kind: 'connectionFail' });

/**
 * A specific SMTP reply, e.g. `reply(550, '5.7.1', 'Recipient refused')`. Code 4xx tempfails and 5xx
 * rejects. Several text lines make a multi-line reply, as libmilter's smfi_setmlreply does.
 */
export function reply(code: number, enhancedCode: string | undefined, ...lines: string[]): Verdict {
  if (!Number.isInteger(code) || code < 400 || code > 599) {
    throw new MilterUsageError('invalid-verdict', `reply code ${code} is not a 4xx or 5xx code`);
  }
  if (enhancedCode !== undefined && !new RegExp(`^${String(code)[0]}\\.\\d{1,3}\\.\\d{1,3}$`).test(enhancedCode)) {
    throw new MilterUsageError('invalid-verdict', `enhanced status ${enhancedCode} does not fit reply code ${code}`);
  }
  const texts = lines.length > 0 ? lines : [''];
  for (const line of texts) {
    // A CR or LF inside a line would let the text forge further SMTP replies.
    if (/[\r\n\0]/.test(line)) throw new MilterUsageError('invalid-verdict', 'reply text must not contain CR, LF or NUL');
  }
  if (texts.length > 32) throw new MilterUsageError('invalid-verdict', 'a reply has at most 32 lines');
  const prefix = enhancedCode === undefined ? '' : `${enhancedCode} `;
  const rendered = texts.map((line, i) => `${code}${i === texts.length - 1 ? ' ' : '-'}${prefix}${line}`.trimEnd());
  return { kind: 'reply', reply: rendered.join('\r\n') };
}

/** Renders a verdict as one logfmt-style word for log lines. */
export function describeVerdict(verdict: Verdict): string {
  return verdict.kind === 'reply' ? `reply="${verdict.reply.replace(/\r\n/g, ' | ')}"` : verdict.kind;
}
