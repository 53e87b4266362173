/**
 * The per-message summary line: exactly one `info` line for every message the milter handles, with the same
 * fields in the same order, so operators can grep, count and alert on it.
 */
import type { MilterLogger } from '../../milter/src/index.ts';

/** The text of every summary line. */
export const MESSAGE_LINE_TEXT = 'message processed';

/** What one summary line says about one message. */
export interface MessageSummary {
  /** The MTA's queue id (`{i}`), when the MTA sent it. */
  readonly queueId: string | undefined;
  readonly direction: 'inbound' | 'outbound';
  /** Domain of the envelope sender; undefined for the null sender `<>`. */
  readonly senderDomain: string | undefined;
  /** Distinct recipient domains, in envelope order. */
  readonly recipientDomains: readonly string[];
  /** What was done (for example `encrypted`, `decrypted`, `clear`, `tempfail`). */
  readonly action: string;
  /** Why, in a few words (for example `policy required`, `no key published`). */
  readonly reason: string;
  /**
   * Fingerprints of the other sites' keys involved: outbound, the keys the message was encrypted to; inbound, the
   * key whose signature was checked. (Our own signing key is the same for every message: see the start-up line.)
   */
  readonly keys: readonly string[];
  /** Whether the keys' DNS answers were DNSSEC-validated; undefined when no key lookup was made. */
  readonly dnssec: boolean | undefined;
  /** Milliseconds from the start of the message to the verdict. */
  readonly durationMs: number;
}

/**
 * Writes the summary line for one message. Pass the connection's logger (`ctx.log`) so the line also carries the
 * connection id.
 */
export function messageLine(log: MilterLogger, summary: MessageSummary): void {
  log.info(MESSAGE_LINE_TEXT, {
    queueId: summary.queueId,
    direction: summary.direction,
    senderDomain: summary.senderDomain,
    recipientDomains: [...summary.recipientDomains],
    action: summary.action,
    reason: summary.reason,
    keys: [...summary.keys],
    dnssec: summary.dnssec,
    durationMs: Math.round(summary.durationMs),
  });
}
