/**
 * End of message for inbound mail: decrypt what was encrypted to our site key, verify the sending
 * site's signature against its DNS key, restore the original message and its protected headers, and
 * record the verdict in Authentication-Results. Mail that is not for us passes untouched; mail whose
 * encryption or signature is broken is never silently altered or dropped.
 */
import { addHeader, CONTINUE, deleteHeader, replaceBody, type MilterLogger, type Modification } from '../../milter/src/index.ts';
import type { HeaderField } from '../engine/index.ts';
import { failureVerdict } from './failure-actions.ts';
import { ownFieldsRemoval } from './own-fields.ts';
import { editsToModifications } from './header-edits.ts';
import type { MessageOutcome } from './outbound-message.ts';
import { disposingChunks } from './output-body.ts';
import type { Runtime } from './runtime.ts';

/** What the inbound path needs from the message. */
export interface InboundMessage {
  headers: readonly HeaderField[];
  body: () => AsyncIterable<Buffer>;
  signal: AbortSignal;
  /** The received body's spill file, when it went to one: the opening thread reads it from there. */
  bodyFile?: () => Promise<string | undefined>;
  /** Whose account the cost of opening it goes to (src/lanes/sender-costs.ts): the SMTP client, or the connection. */
  sender: string;
  /** The size of the received body. */
  bodyBytes: number;
  /** The connection's logger: a debug line says which reader opened the message (streamed or read whole) and in which lane. */
  log?: MilterLogger;
}

/** The name under which a DKIM-Signature that no longer matches the delivered message is kept. */
export const ORIGINAL_DKIM_FIELD = 'Muse-Original-DKIM-Signature';

/**
 * Renames every DKIM-Signature field to {@link ORIGINAL_DKIM_FIELD}, same value, in the same order (at the end of the
 * header). The sending site signed the encrypted message; once we deliver its decrypted content (or the signed header
 * in place of the transport one) that signature can only fail, and every verifier after us (a mailbox filter, a
 * forward's next hop) would report the sender's domain as broken. Its verdict was taken before us (OpenDKIM, ahead of
 * muse-milter in the milter chain, wrote its `dkim=` result), and the renamed field keeps the evidence.
 */
export function retireDkimSignatures(headers: readonly HeaderField[]): Modification[] {
  const values = headers.filter((h) => h.name.toLowerCase() === 'dkim-signature').map((h) => h.value);
  // The last first, so each index still names the field it meant.
  const deletions = values.map((_, i) => deleteHeader('DKIM-Signature', values.length - i));
  return [...deletions, ...values.map((value) => addHeader(ORIGINAL_DKIM_FIELD, value))];
}

/** Processes one inbound message at end of message. */
export async function processInbound(runtime: Runtime, message: InboundMessage): Promise<MessageOutcome> {
  const started = performance.now();
  // Opened on a thread of the lane the sender's account and the message's size call for (src/lanes): the event
  // loop keeps speaking the milter protocol meanwhile. Waiting for a decryption slot happens within end of
  // message, where the milter library keeps the MTA informed with progress replies.
  const { result } = await runtime.openingLanes.open({
    runtime,
    headers: message.headers,
    // Read again from the spool when a large message is opened as it streams and a shape needs the whole read.
    body: message.body,
    ...(message.bodyFile === undefined ? {} : { bodyFile: message.bodyFile }),
    sender: message.sender,
    bodyBytes: message.bodyBytes,
    log: message.log,
  });
  const forged = (): Modification[] => ownFieldsRemoval(runtime, message.headers, 'inbound');
  if (result.kind === 'annotated' && result.verdict.result === 'temperror') {
    // The sending site's key could not be looked up. Deferring lets the MTA retry once DNS answers, and the message
    // is then opened and verified; `accept` delivers it as received (still encrypted) with the temperror result.
    const outcome = failureVerdict('dnsError', runtime.config.actions.dnsError, false);
    if (outcome.applied !== 'accept') {
      return { result: { verdict: outcome.verdict }, action: outcome.applied, reason: `temperror (key-lookup-failed) from ${result.verdict.domain ?? 'unknown'}`, keys: [], dnssec: undefined };
    }
  }
  switch (result.kind) {
    case 'unchanged':
      return { result: { verdict: CONTINUE, modifications: editsToModifications(result.headerEdits) }, action: 'unchanged', reason: result.reason, keys: [], dnssec: undefined };
    case 'limit-exceeded': {
      // Accepting here keeps the message as it came (still encrypted): nothing is lost.
      const outcome = failureVerdict('oversize', runtime.config.actions.oversize, false);
      const accepted = outcome.applied === 'accept';
      return { result: { verdict: outcome.verdict, ...(accepted ? { modifications: forged() } : {}) }, action: accepted ? 'unchanged' : outcome.applied, reason: `limit ${result.limit} (${result.max})`, keys: [], dnssec: undefined };
    }
    case 'failed': {
      const outcome = failureVerdict('cryptoError', runtime.config.actions.cryptoError, false);
      const accepted = outcome.applied === 'accept';
      return { result: { verdict: outcome.verdict, ...(accepted ? { modifications: forged() } : {}) }, action: accepted ? 'unchanged' : outcome.applied, reason: result.error.message, keys: [], dnssec: undefined };
    }
    case 'annotated':
    case 'opened': {
      runtime.metrics?.cryptoSeconds.observe({ operation: result.kind === 'opened' ? 'decrypt+verify' : 'verify' }, (performance.now() - started) / 1000);
      const modifications: Modification[] = editsToModifications(result.headerEdits);
      const verdict = result.verdict;
      // A new body, or the signed header in place of the transport one: the sender's DKIM signature no longer holds.
      if (result.kind === 'opened' || verdict.result === 'pass' || verdict.result === 'policy') modifications.push(...retireDkimSignatures(message.headers));
      if (result.kind === 'opened') modifications.push(replaceBody(disposingChunks(result.body, message.signal, runtime.bodyRate)));
      return {
        result: { verdict: CONTINUE, modifications },
        action: result.kind === 'opened' ? (verdict.encrypted ? 'decrypted' : 'unwrapped') : 'annotated',
        reason: `${verdict.result} (${verdict.reason})${verdict.domain === null ? '' : ` from ${verdict.domain}`}`,
        keys: verdict.fingerprint === null ? [] : [verdict.fingerprint],
        dnssec: verdict.dnssec ?? undefined,
      };
    }
  }
}
