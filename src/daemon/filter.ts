/**
 * muse-milter's filter: the milter definition and the per-connection handler. It decides the
 * direction at MAIL, starts key lookups at RCPT (so DNS overlaps the data transfer), and at end of
 * message hands the collected message to the outbound or inbound path. One summary line per message.
 */
import {
  CONTINUE,
  defineMilter,
  deleteHeader,
  reply,
  type EndOfMessageResult,
  type MilterContext,
  type MilterDefinition,
  type MilterHandler,
  type Modification,
  type Verdict,
} from '../../milter/src/index.ts';
import { messageLine } from '../log/index.ts';
import type { Direction } from './direction.ts';
import { failureVerdict } from './failure-actions.ts';
import { processInbound } from './inbound-message.ts';
import { ownFieldsRemoval } from './own-fields.ts';
import type { DomainKeys } from './key-service.ts';
import { groupOf } from './message-plan.ts';
import { encryptedToSiteKey, misdirectionWarning } from './misdirected.ts';
import { BodyFeed } from './body-feed.ts';
import {
  encryptsWhileReceiving,
  hasProtectedRecipient,
  planOutbound,
  processOutbound,
  protectOriginal,
  recipientDomain,
  type MessageOutcome,
  type OutboundMessage,
  type OutboundStart,
} from './outbound-message.ts';
import { decideRecipient, type RecipientDecision } from './recipient-policy.ts';
import { bareAddress, digestBody, messageIdValues } from './copy-identity.ts';
import { MARKER_HEADER, verifyMarker, type MarkerCheck } from './reinjection-marker.ts';
import type { Runtime } from './runtime.ts';
import { observed, observesOnly } from './testing-mode.ts';
import { senderNetwork } from '../net/cidr.ts';
import { readBack } from '../stream/collection-pacer.ts';

/** Per-message state, from MAIL to the end of the message. */
interface MessageState {
  runtime: Runtime;
  direction: Direction;
  directionReason: string;
  started: number;
  /** Lookups by recipient domain, started at RCPT. */
  lookups: Map<string, Promise<DomainKeys>>;
  /** Decisions already known (lookups that finished), by domain. */
  decided: Map<string, RecipientDecision>;
  /** The `defer` strategy: the group of the first accepted recipient. */
  group: 'encrypted' | 'clear' | undefined;
  /** Recipients refused at RCPT, for the summary line of a message that ends before its data. */
  refused: Array<{ domain: string; decision: Extract<RecipientDecision, { kind: 'refuse' }> }>;
  /** Encryption started at the end of the headers, fed with the body as it arrives. */
  early: { feed: BodyFeed; start: OutboundStart } | undefined;
  /** The message came in on the re-injection listener, the one place a re-injection marker is accepted. */
  atReinjection: boolean;
  /** The message grew past limits.maxMessageSize while its body arrived: nothing more of it is kept. */
  oversize: boolean;
  /** The ESMTP parameters of each RCPT (a re-injected copy keeps them), by recipient as given. */
  recipientParameters: Map<string, readonly string[]>;
}

/** Bytes of a message as the size limit counts them: header fields (name, colon, value, CRLF) and body. */
function messageSize(message: MilterContext['message']): number {
  return message.bodySize + message.headers.reduce((sum, h) => sum + h.name.length + h.value.length + 3, 0);
}

async function* noBody(): AsyncGenerator<Buffer> {}

/** The re-injection marker fields of a message (a genuine copy has exactly one). */
function markerFields<T extends { name: string }>(headers: readonly T[]): T[] {
  return headers.filter((h) => h.name.toLowerCase() === MARKER_HEADER.toLowerCase());
}

/** Deletes every marker field; the last first, so each index still names the field it meant. */
function deleteMarkers(count: number): ReturnType<typeof deleteHeader>[] {
  return Array.from({ length: count }, (_, i) => deleteHeader(MARKER_HEADER, count - i));
}

/**
 * Checks the marker of a message: valid only on the re-injection listener, only alone, and only for exactly this
 * message (sender, recipients, Message-ID fields, body) within its lifetime.
 */
async function checkMarker(runtime: Runtime, state: MessageState, message: MilterContext['message'], markers: ReadonlyArray<{ value: string }>, body: () => AsyncIterable<Buffer>): Promise<MarkerCheck> {
  if (!state.atReinjection) return { valid: false, reason: `marker outside the re-injection listener (${state.directionReason})` };
  const [marker, ...more] = markers;
  if (marker === undefined || more.length > 0) return { valid: false, reason: `${markers.length} marker fields` };
  const identity = {
    sender: bareAddress(message.sender ?? '<>'),
    recipients: message.recipients.map(bareAddress),
    messageIds: messageIdValues(message.headers),
    bodyDigest: await digestBody(body()),
  };
  return verifyMarker(runtime.markerSecret, marker.value, identity, Math.floor(runtime.now().getTime() / 1000));
}

class MuseHandler implements MilterHandler {
  private state: MessageState | undefined;

  constructor(private readonly current: () => Runtime) {}

  mailFrom(ctx: MilterContext): Verdict {
    this.finish();
    const runtime = this.current();
    const client = ctx.client;
    const daemonName = ctx.macro('{daemon_name}');
    const atReinjection = daemonName !== undefined && daemonName === runtime.config.mixedRecipients.reinject.daemonName;
    // Mail on the re-injection listener is either a copy with a valid marker, which passes, or anything else, which
    // must not pass unprocessed: it is outbound whatever the direction rules would say of its client.
    const decision = atReinjection
      ? { direction: 'outbound' as const, reason: `re-injection listener ${daemonName}` }
      : runtime.direction.classify({
          clientAddress: client !== undefined && (client.family === 'inet' || client.family === 'inet6') ? client.address : undefined,
          daemonName,
          authenticatedAs: ctx.macro('{auth_authen}'),
        });
    this.state = {
      runtime,
      direction: decision.direction,
      directionReason: decision.reason,
      started: performance.now(),
      lookups: new Map(),
      decided: new Map(),
      group: undefined,
      refused: [],
      early: undefined,
      atReinjection,
      oversize: false,
      recipientParameters: new Map(),
    };
    runtime.metrics?.messagesInFlight.inc();
    return CONTINUE;
  }

  async rcptTo(_ctx: MilterContext, recipient: string, parameters: readonly string[]): Promise<Verdict> {
    const state = this.state;
    if (state === undefined || state.direction !== 'outbound') return CONTINUE;
    state.recipientParameters.set(recipient, parameters);
    const { runtime } = state;
    const domain = recipientDomain(recipient, runtime.config.site.domain);
    if (runtime.policy.isLocal(domain) || runtime.policy.policyFor(domain) === 'never') {
      return this.checkGroup(state, domain, decideRecipient(domain, undefined, runtime.policy));
    }
    let lookup = state.lookups.get(domain);
    if (lookup === undefined) {
      lookup = runtime.keys.domainKeys(domain);
      state.lookups.set(domain, lookup);
      lookup.then(
        (keys) => state.decided.set(domain, decideRecipient(domain, keys.facts, runtime.policy)),
        () => undefined,
      );
    }
    if (runtime.config.mixedRecipients.strategy === 'defer') {
      // Relays that cannot split: settle each recipient now and defer those of another group.
      const keys = await lookup;
      return this.checkGroup(state, domain, decideRecipient(domain, keys.facts, runtime.policy));
    }
    // An answer from the cache settles within this turn of the event loop: wait that long (never for the
    // network), so a recipient refused from the cache is refused alone, at RCPT.
    await Promise.race([lookup.then(() => undefined, () => undefined), new Promise<void>((resolve) => setImmediate(resolve))]);
    const known = state.decided.get(domain);
    if (known?.kind !== 'refuse' || observesOnly(runtime)) return CONTINUE;
    state.refused.push({ domain, decision: known });
    return reply(known.reply.code, known.reply.enhanced, known.reply.text);
  }

  /**
   * Once RCPT is over and the headers are in, an outbound message whose every recipient gets the one encrypted
   * version is encrypted while its body arrives, instead of after it was stored: the body is read once, never
   * written to disk, and end of message finds the work nearly done. Anything else (other plans, lookups still
   * under way) waits for end of message as before.
   */
  async endOfHeaders(ctx: MilterContext): Promise<Verdict> {
    const state = this.state;
    if (state === undefined || state.direction !== 'outbound') return CONTINUE;
    const { runtime } = state;
    const headers = ctx.message.headers;
    // A copy coming back must reach end of message as it is, with its body, for the marker check.
    if (state.atReinjection && markerFields(headers).length > 0) return CONTINUE;
    // Only with every answer in (the usual case, from the cache): waiting here for DNS would stop reading the
    // body with no progress replies to the MTA, which only end of message can send.
    if (state.decided.size < state.lookups.size) return CONTINUE;
    const outbound = await planOutbound(runtime, { recipients: ctx.message.recipients, lookups: state.lookups });
    if (!encryptsWhileReceiving(runtime, outbound) || this.state !== state) return CONTINUE;
    const feed = new BodyFeed();
    const message = this.outboundMessage(ctx, state, () => feed);
    const original = protectOriginal(runtime, message, outbound);
    // Once the engine is done, whether it read the body or not (mail already encrypted, a failure), the rest of
    // the body is dropped rather than waited for. Observed at once, so an abort leaves no rejection unhandled.
    original.then(
      () => feed.readerDone(),
      () => feed.readerDone(),
    );
    state.early = { feed, start: { outbound, original } };
    ctx.message.collectBody = false;
    return CONTINUE;
  }

  async body(ctx: MilterContext, chunk: Buffer): Promise<Verdict> {
    const state = this.state;
    if (state === undefined) return CONTINUE;
    if (!state.oversize && messageSize(ctx.message) > state.runtime.config.limits.maxMessageSize) {
      // Past the limit the message will get the oversize action at its end whatever follows, so the rest of it is
      // neither stored nor encrypted: a sender cannot fill the spool's disk with one endless message. (The library
      // still counts the bytes, so the end-of-message check sees the true size.)
      state.oversize = true;
      ctx.message.collectBody = false;
      const spool = ctx.message.body;
      ctx.message.body = undefined;
      this.stopEarly(state);
      await spool?.dispose();
      return CONTINUE;
    }
    await state.early?.feed.push(chunk);
    return CONTINUE;
  }

  async endOfMessage(ctx: MilterContext): Promise<EndOfMessageResult> {
    const state = this.state;
    if (state === undefined) return { verdict: CONTINUE };
    // From here on the message is this step's alone: a connection lost meanwhile (close) must not summarise it too.
    this.state = undefined;
    // Taken now: the summary line names it even when the MTA closes the connection meanwhile, which clears the
    // connection's macros.
    const queueId = ctx.macro('i');
    const early = state.early;
    early?.feed.end();
    const { runtime } = state;
    const headers = ctx.message.headers;
    const recipients = ctx.message.recipients;
    // Paced: a large body is read from the spool more than once (collection-pacer.ts).
    const body = (): AsyncIterable<Buffer> => (ctx.message.body === undefined ? noBody() : readBack(ctx.message.body));
    let outcome: MessageOutcome;
    const strip: Modification[] = [];
    try {
      const markers = markerFields(headers);
      const check = markers.length === 0 ? undefined : await checkMarker(runtime, state, ctx.message, markers, body);
      if (check?.valid === true) {
        outcome = { result: { verdict: CONTINUE, modifications: deleteMarkers(markers.length) }, action: 'reinjected', reason: `copy of ${check.queueId}`, keys: [], dnssec: undefined };
      } else {
        // A marker that is not valid here is removed, so it cannot travel on and mislead anyone, and the message
        // is processed as if it had none.
        if (check !== undefined) {
          strip.push(...deleteMarkers(markers.length));
          runtime.log.notice('re-injection marker removed', { queueId: ctx.macro('i'), reason: check.reason });
        }
        const size = messageSize(ctx.message);
        if (state.oversize || size > runtime.config.limits.maxMessageSize) {
          const protectedRecipient = state.direction === 'outbound' && (await hasProtectedRecipient(runtime, state.lookups));
          const outcomeOf = failureVerdict('oversize', runtime.config.actions.oversize, protectedRecipient);
          const accepted = outcomeOf.applied === 'accept';
          const modifications = accepted && state.direction === 'inbound' ? ownFieldsRemoval(runtime, headers, 'inbound') : [];
          outcome = { result: { verdict: outcomeOf.verdict, modifications }, action: accepted ? 'unchanged' : outcomeOf.applied, reason: `message of ${size} bytes exceeds limits.maxMessageSize`, keys: [], dnssec: undefined };
        } else if (
          state.direction === 'outbound' &&
          early === undefined &&
          !state.atReinjection &&
          (await encryptedToSiteKey(headers, body(), runtime.decryptionKeys, runtime.config.limits.maxMessageSize))
        ) {
          outcome = await this.misdirected(ctx, state, body);
        } else if (state.direction === 'outbound') {
          outcome = await processOutbound(runtime, this.outboundMessage(ctx, state, body), early?.start);
          state.early = undefined;
        } else {
          outcome = await processInbound(runtime, { headers, body, bodyFile: spillFile(ctx), signal: ctx.signal, sender: senderOf(ctx), bodyBytes: ctx.message.bodySize, log: ctx.log });
        }
      }
    } catch (error) {
      const outcomeOf = failureVerdict('internalError', runtime.config.actions.internalError, true);
      const modifications = outcomeOf.applied === 'accept' && state.direction === 'inbound' ? ownFieldsRemoval(runtime, headers, 'inbound') : [];
      outcome = { result: { verdict: outcomeOf.verdict, modifications }, action: outcomeOf.applied, reason: `internal error: ${(error as Error).message}`, keys: [], dnssec: undefined };
      ctx.log.error('message processing failed', { error: (error as Error).message, stack: (error as Error).stack });
    }
    // Outbound mail (a re-injected copy included) may be delivered here too: our verdict fields go from it as well.
    if (state.direction === 'outbound') strip.push(...ownFieldsRemoval(runtime, headers, 'outbound'));
    if (observesOnly(runtime)) outcome = observed(outcome);
    const keeps = outcome.result.verdict.kind === 'continue' || outcome.result.verdict.kind === 'accept';
    const result: EndOfMessageResult = keeps && strip.length > 0 && !observesOnly(runtime) ? { ...outcome.result, modifications: [...strip, ...(outcome.result.modifications ?? [])] } : outcome.result;
    this.summary(ctx, state, outcome, recipients.map((r) => recipientDomain(r, runtime.config.site.domain)), queueId);
    this.finish(state);
    return result;
  }

  /**
   * Mail encrypted to this site's key that the direction rules called outbound: decrypted as inbound when every
   * recipient is local (what they were meant to read), deferred otherwise; never passed on as the encrypted blob.
   */
  private async misdirected(ctx: MilterContext, state: MessageState, body: () => AsyncIterable<Buffer>): Promise<MessageOutcome> {
    const { runtime } = state;
    runtime.log.warn(misdirectionWarning(state.directionReason, ctx.macro('{daemon_name}')), { queueId: ctx.macro('i') });
    const domains = ctx.message.recipients.map((r) => recipientDomain(r, runtime.config.site.domain));
    if (domains.length > 0 && domains.every((domain) => runtime.policy.isLocal(domain))) {
      const outcome = await processInbound(runtime, { headers: ctx.message.headers, body, bodyFile: spillFile(ctx), signal: ctx.signal, sender: senderOf(ctx), bodyBytes: ctx.message.bodySize, log: ctx.log });
      return { ...outcome, reason: `classified outbound (${state.directionReason}) but encrypted to the site key: processed as inbound; ${outcome.reason}` };
    }
    return {
      result: { verdict: reply(451, '4.7.0', 'Message encrypted to this site arrived as outbound mail; the milter direction settings need attention') },
      action: 'tempfail',
      reason: `classified outbound (${state.directionReason}) but encrypted to the site key, with recipients outside the local domains`,
      keys: [],
      dnssec: undefined,
    };
  }

  /** A message that ends before its end (all recipients refused, RSET, QUIT, lost connection) still gets its summary line. */
  abort(ctx: MilterContext): void {
    const state = this.state;
    if (state !== undefined) {
      const refusal = state.refused.find((r) => r.decision.temporary) ?? state.refused[0];
      // The library ends a message whose body it could not store (a full disk) with the definition's onError,
      // a tempfail: the MTA keeps the message and tries again.
      const lost = ctx.message.bodyError;
      this.summary(ctx, state, {
        result: { verdict: CONTINUE },
        action: lost !== undefined ? 'tempfail' : refusal === undefined ? 'abandoned' : refusal.decision.temporary ? 'tempfail' : 'reject',
        reason:
          lost !== undefined
            ? `cannot store the message body: ${lost.message}`
            : refusal === undefined
              ? ctx.message.headers.length > 0 || ctx.message.bodySize > 0
                ? 'the message ended before its end of message'
                : 'the message ended before its data'
              : `refused at RCPT: ${state.refused.map((r) => `${r.domain}: ${r.decision.reason}`).join('; ')}`,
        keys: [],
        dnssec: undefined,
      }, [...ctx.message.recipients.map((r) => recipientDomain(r, state.runtime.config.site.domain)), ...state.refused.map((r) => r.domain)]);
    }
    this.finish();
  }

  /** The SMTP session ended (QUIT, lost connection): a message still open gets its summary line as if aborted. */
  close(ctx: MilterContext): void {
    this.abort(ctx);
  }

  private checkGroup(state: MessageState, domain: string, decision: RecipientDecision): Verdict {
    const group = groupOf(decision);
    if (decision.kind === 'refuse') {
      if (observesOnly(state.runtime)) return CONTINUE;
      state.refused.push({ domain, decision });
      return reply(decision.reply.code, decision.reply.enhanced, decision.reply.text);
    }
    if (state.runtime.config.mixedRecipients.strategy !== 'defer' || group === 'refused') return CONTINUE;
    if (state.group === undefined) state.group = group;
    if (state.group === group) return CONTINUE;
    return reply(452, '4.5.3', 'Too many recipients for one message; send to this one in a separate transaction');
  }

  private summary(ctx: MilterContext, state: MessageState, outcome: MessageOutcome, domains: readonly string[], queueId = ctx.macro('i')): void {
    const { runtime } = state;
    const sender = ctx.message.sender === undefined ? '' : bareAddress(ctx.message.sender);
    messageLine(ctx.log, {
      queueId,
      direction: state.direction,
      senderDomain: sender.includes('@') ? sender.slice(sender.lastIndexOf('@') + 1).toLowerCase() : undefined,
      recipientDomains: [...new Set(domains)],
      action: outcome.action,
      reason: outcome.reason,
      keys: outcome.keys,
      dnssec: outcome.dnssec,
      durationMs: performance.now() - state.started,
    });
    runtime.metrics?.messages.inc({ direction: state.direction, action: outcome.action });
  }

  private outboundMessage(ctx: MilterContext, state: MessageState, body: () => AsyncIterable<Buffer>): OutboundMessage {
    return {
      queueId: ctx.macro('i'),
      sender: ctx.message.sender ?? '<>',
      recipients: ctx.message.recipients,
      senderParameters: ctx.message.senderParameters,
      recipientParameters: state.recipientParameters,
      headers: ctx.message.headers,
      body,
      lookups: state.lookups,
      signal: ctx.signal,
    };
  }

  /** Ends the message's state (the open one by default): stops what it started, and counts it out. */
  private finish(state = this.state): void {
    if (state === undefined) return;
    if (this.state === state) this.state = undefined;
    this.stopEarly(state);
    state.runtime.metrics?.messagesInFlight.dec();
  }

  /**
   * Stops encryption started at the end of the headers, if any, and removes what it wrote: the message ended some
   * other way than through its end of message (abort, lost connection), or grew past the size limit.
   */
  private stopEarly(state: MessageState): void {
    const early = state.early;
    if (early === undefined) return;
    state.early = undefined;
    early.feed.fail(new Error('the message ended before its end of message'));
    void early.start.original.then((result) => (result?.kind === 'protected' ? result.body.dispose() : undefined)).catch(() => undefined);
  }
}

/** The milter definition of muse-milter; `current` returns the runtime in force (it changes on reload). */
export function museMilter(current: () => Runtime): MilterDefinition {
  return defineMilter({
    name: 'muse-milter',
    actions: ['addHeaders', 'changeHeaders', 'changeBody', 'deleteRecipients'],
    observe: ['connect', 'header'],
    // Nothing is decided on these steps, so the MTA need not wait for an answer to CONNECT, each header, the end
    // of the headers and each body chunk: a round trip at MAIL, per recipient and at the end instead of a dozen or
    // more. (The MTA still cannot outrun the filter: the socket is read as fast as steps finish.) MAIL keeps its
    // reply: a failure there must end the whole message, and without a reply it would only refuse the first RCPT.
    // A failure at the end of the headers is answered at end of message, which ends the message as it should.
    noReply: ['connect', 'header', 'eoh', 'body'],
    collectBody: true,
    macros: {
      Connect: ['j', '{daemon_name}', '{client_addr}'],
      Mail: ['i', '{auth_authen}', '{auth_type}'],
      Rcpt: ['{rcpt_mailer}'],
      EndOfMessage: ['i'],
    },
    createHandler: () => new MuseHandler(current),
  });
}

/**
 * Whose account the cost of opening a message goes to (src/lanes/sender-costs.ts): the SMTP client's network (an
 * IPv4 address, an IPv6 /64), so that opening new connections, or moving within one's /64, does not start a sender
 * afresh. Clients the MTA gave no IP address for share one account.
 */
function senderOf(ctx: MilterContext): string {
  const client = ctx.client;
  const network = client !== undefined && (client.family === 'inet' || client.family === 'inet6') ? senderNetwork(client.address) : undefined;
  return network === undefined ? 'no client address' : `client ${network}`;
}

/** The message body's spill file, if it went to one (read by the opening thread without the event loop). */
function spillFile(ctx: MilterContext): () => Promise<string | undefined> {
  return () => ctx.message.body?.filePath() ?? Promise.resolve(undefined);
}
