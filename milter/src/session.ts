/**
 * The sans-IO protocol session of one milter connection: it takes decoded commands and yields the
 * replies, enforcing the phase rules and the negotiation. Sockets and timers live in the server; this
 * module only decides.
 *
 * Rules kept here:
 * - OPTNEG first; macros, abort and no-reply steps get no reply; QUIT ends; QUIT_NC ends the SMTP
 *   session but keeps the milter connection for the next one.
 * - Steps come in protocol order within a message; a step out of order is a protocol error.
 * - Modifications only at end of message, and only those negotiated; a handler's mistake becomes the
 *   definition's `onError` verdict (tempfail by default), never a half-applied change.
 */
import type { Command } from './codec/commands.ts';
import { printable } from './codec/commands.ts';
import type { Response } from './codec/responses.ts';
import { Protocol } from './constants.ts';
import { BodySpool } from './body-spool.ts';
import { MilterProtocolError, MilterUsageError } from './errors.ts';
import { debugEnabled, silentLogger, withContext, type MilterLogger } from './logger.ts';
import type { ConnectInfo, EndOfMessageResult, MessageState, MilterContext, MilterDefinition, MilterHandler } from './milter.ts';
import { checkModifications, modificationResponses } from './modifications.ts';
import { negotiate, NO_REPLY_FLAG, STEPS, type Negotiated, type Step } from './negotiation.ts';
import { describeVerdict, TEMPFAIL, type Verdict } from './verdicts.ts';

/** Options of {@link MilterSession}. */
export interface SessionOptions {
  /** Id of the milter connection, for logs. */
  connectionId: string;
  logger?: MilterLogger;
  /** Memory kept per body before spilling to disk, when the definition collects bodies (default 1 MiB). */
  maxBufferedBody?: number;
  /** Directory for spilled bodies (default: the system temporary directory). */
  spoolDirectory?: string;
}

/** Order of the steps within a message; a command may not go back to an earlier rank. */
const RANK: Record<Step | 'eom', number> = {
  connect: 0,
  helo: 1,
  mail: 2,
  rcpt: 3,
  data: 4,
  header: 5,
  eoh: 6,
  body: 7,
  eom: 8,
  unknown: -1,
};

/** The abort reason of every per-message signal. */
const MESSAGE_ENDED = new Error('message ended');

/** Where a fresh SMTP session starts: nothing seen yet. */
const FRESH = -1;
/** Where a new message may start: after HELO (another HELO may still come, e.g. after STARTTLS). */
const BETWEEN_MESSAGES = RANK.helo;

/** Macro stages searched for a value, most recent first. */
const MACRO_ORDER = ['E', 'N', 'T', 'R', 'M', 'H', 'C'];
/** Macro stages that belong to one message and are dropped when it ends. */
const MESSAGE_MACROS = ['M', 'R', 'T', 'N', 'E', 'L', 'B'];

function emptyMessage(collectBody: boolean): MessageState {
  return { sender: undefined, senderParameters: [], recipients: [], headers: [], bodySize: 0, body: undefined, collectBody, bodyError: undefined };
}

/**
 * Verdicts after which the MTA is done with the message. At RCPT a refusal concerns one recipient, and at
 * an unknown SMTP command only that command; accept and discard end the message at any step.
 */
function endsMessage(verdict: Verdict, step: Step | 'eom'): boolean {
  if (verdict.kind === 'continue' || verdict.kind === 'skip') return false;
  if ((step === 'rcpt' || step === 'unknown') && verdict.kind !== 'accept' && verdict.kind !== 'discard') return false;
  return true;
}

/** The protocol state of one milter connection. */
export class MilterSession {
  private negotiated: Negotiated | undefined;
  private handler: MilterHandler | undefined;
  private wantedSteps = new Set<Step>();
  private rank = FRESH;
  private client: ConnectInfo | undefined;
  private helo: string | undefined;
  private message: MessageState;
  private readonly macroStages = new Map<string, Map<string, string>>();
  private messageAbort = new AbortController();
  private readonly baseLog: MilterLogger;
  private ended = false;
  /** Whether the current handler has seen any step of an SMTP session (so it has something to close). */
  private sessionActive = false;

  constructor(
    private readonly definition: MilterDefinition,
    private readonly options: SessionOptions,
  ) {
    this.baseLog = withContext(options.logger ?? silentLogger, { milter: definition.name, conn: options.connectionId });
    this.message = emptyMessage(definition.collectBody);
  }

  /** True once the MTA said QUIT: the connection should be closed. */
  get finished(): boolean {
    return this.ended;
  }

  /** True between the start of a message (MAIL) and its end (end of message, abort or a final verdict). */
  get inTransaction(): boolean {
    return this.rank > BETWEEN_MESSAGES;
  }

  /** The negotiation outcome, once OPTNEG was handled. */
  get negotiation(): Negotiated | undefined {
    return this.negotiated;
  }

  /**
   * Handles one command and yields its replies in order (none for macros, abort, quit and no-reply
   * steps). Throws {@link MilterProtocolError} when the command breaks the protocol; the caller then
   * closes the connection.
   */
  async *handle(command: Command): AsyncGenerator<Response> {
    if (this.ended) throw new MilterProtocolError('out-of-phase', `command '${command.kind}' after QUIT`);
    if (command.kind === 'optneg') {
      yield this.negotiate(command);
      return;
    }
    if (command.kind === 'quit') {
      this.ended = true;
      await this.closeSmtpSession();
      return;
    }
    const negotiated = this.negotiated;
    if (negotiated === undefined) {
      throw new MilterProtocolError('out-of-phase', `command '${command.kind}' before option negotiation`);
    }
    if (command.kind !== 'macro' && command.kind !== 'abort' && command.kind !== 'quitNewConnection') this.sessionActive = true;
    switch (command.kind) {
      case 'macro':
        this.defineMacros(command.forCommand, command.macros);
        return;
      case 'abort':
        await this.abortMessage();
        return;
      case 'quitNewConnection':
        await this.closeSmtpSession();
        this.rank = FRESH;
        return;
      case 'connect': {
        if (this.rank !== FRESH) throw this.outOfPhase('connect');
        this.rank = RANK.connect;
        this.client = { hostname: command.hostname, family: command.family, port: command.port, address: command.address };
        const client = this.client;
        yield* this.step('connect', (h, ctx) => h.connect?.(ctx, client));
        return;
      }
      case 'helo':
        this.enter('helo', this.rank <= BETWEEN_MESSAGES);
        this.helo = command.name;
        yield* this.step('helo', (h, ctx) => h.helo?.(ctx, command.name));
        return;
      case 'mail':
        this.enter('mail', this.rank <= BETWEEN_MESSAGES);
        this.message.sender = command.sender;
        this.message.senderParameters = command.parameters;
        yield* this.step('mail', (h, ctx) => h.mailFrom?.(ctx, command.sender, command.parameters));
        return;
      case 'rcpt': {
        this.enter('rcpt', this.messageStarted() && this.rank <= RANK.rcpt);
        const verdict = yield* this.step('rcpt', (h, ctx) => h.rcptTo?.(ctx, command.recipient, command.parameters));
        // The MTA drops a recipient the filter refuses; only the others stay in the envelope.
        if (verdict.kind === 'continue' || verdict.kind === 'accept') this.message.recipients.push(command.recipient);
        return;
      }
      case 'data':
        this.enter('data', this.messageStarted() && this.rank <= RANK.data);
        yield* this.step('data', (h, ctx) => h.data?.(ctx));
        return;
      case 'header':
        this.enter('header', this.messageStarted() && this.rank <= RANK.header);
        this.message.headers.push({ name: command.name, value: command.value });
        yield* this.step('header', (h, ctx) => h.header?.(ctx, command.name, command.value));
        return;
      case 'eoh':
        this.enter('eoh', this.messageStarted() && this.rank <= RANK.eoh);
        yield* this.step('eoh', (h, ctx) => h.endOfHeaders?.(ctx));
        return;
      case 'body':
        this.enter('body', this.messageStarted() && this.rank <= RANK.body);
        await this.collect(command.chunk);
        yield* this.step('body', (h, ctx) => h.body?.(ctx, command.chunk));
        return;
      case 'eom':
        this.enter('eom', this.messageStarted() && this.rank <= RANK.body);
        yield* this.endOfMessage(command.chunk);
        return;
      case 'unknown':
        if (this.rank === FRESH && this.client === undefined && !this.skipsConnect()) throw this.outOfPhase('unknown');
        yield* this.step('unknown', (h, ctx) => h.unknown?.(ctx, command.command));
        return;
    }
  }

  /** Releases everything: called when the connection closes, whatever state it is in. */
  async dispose(): Promise<void> {
    if (this.handler !== undefined) await this.closeSmtpSession(false);
    else await this.resetMessage();
  }

  private negotiate(offer: Extract<Command, { kind: 'optneg' }>): Response {
    // A second OPTNEG is legal only where a new SMTP session may start (after QUIT_NC).
    if (this.negotiated !== undefined && this.rank !== FRESH) throw this.outOfPhase('optneg');
    const handler = this.definition.createHandler();
    const wanted = new Set<Step>(this.definition.observe);
    for (const step of STEPS) if (this.hasMethod(handler, step)) wanted.add(step);
    if (this.definition.collectBody) wanted.add('body');
    this.negotiated = negotiate(offer, {
      actions: this.definition.actions,
      steps: wanted,
      noReply: new Set(this.definition.noReply),
      headerLeadingSpace: this.definition.headerLeadingSpace,
      rejectedRecipients: this.definition.rejectedRecipients,
      macros: this.definition.macros,
    });
    this.handler = handler;
    this.wantedSteps = wanted;
    this.baseLog.debug('negotiated', {
      version: this.negotiated.version,
      actions: `0x${this.negotiated.actions.toString(16)}`,
      protocol: `0x${this.negotiated.protocol.toString(16)}`,
    });
    return this.negotiated.reply;
  }

  private hasMethod(handler: MilterHandler, step: Step): boolean {
    const method: Record<Step, keyof MilterHandler> = {
      connect: 'connect',
      helo: 'helo',
      mail: 'mailFrom',
      rcpt: 'rcptTo',
      data: 'data',
      header: 'header',
      eoh: 'endOfHeaders',
      body: 'body',
      unknown: 'unknown',
    };
    return typeof handler[method[step]] === 'function';
  }

  private skipsConnect(): boolean {
    return ((this.negotiated?.protocol ?? 0) & Protocol.NoConnect) !== 0;
  }

  /**
   * Whether a message is open, so that RCPT and the later steps are in phase. A message opens at MAIL;
   * only when MAIL was negotiated away does nothing mark its start, and then any message step may open it.
   */
  private messageStarted(): boolean {
    return this.rank >= RANK.mail || ((this.negotiated?.protocol ?? 0) & Protocol.NoMail) !== 0;
  }

  private enter(step: Step | 'eom', allowed: boolean): void {
    if (!allowed) throw this.outOfPhase(step);
    this.rank = RANK[step];
  }

  private outOfPhase(step: string): MilterProtocolError {
    const phases = Object.entries(RANK).filter(([name, rank]) => rank === this.rank && name !== 'unknown').map(([name]) => name);
    return new MilterProtocolError('out-of-phase', `'${step}' is out of phase after '${phases[0] ?? 'negotiation'}'`);
  }

  private defineMacros(forCommand: string, pairs: Array<[string, string]>): void {
    const stage = new Map(pairs);
    this.macroStages.set(forCommand, stage);
    if (stage.has('i') && debugEnabled(this.baseLog)) this.baseLog.debug('queue id', { queueId: stage.get('i'), stage: printable(forCommand) });
  }

  private context(): MilterContext {
    const negotiated = this.negotiated as Negotiated;
    const queueId = this.lookupMacro('i');
    const log = queueId === undefined ? this.baseLog : withContext(this.baseLog, { queueId });
    const lookup = (name: string): string | undefined => this.lookupMacro(name);
    const all = (): Map<string, string> => {
      const merged = new Map<string, string>();
      for (const code of [...MACRO_ORDER].reverse()) for (const [k, v] of this.macroStages.get(code) ?? []) merged.set(k, v);
      return merged;
    };
    return {
      connectionId: this.options.connectionId,
      log,
      negotiated,
      client: this.client,
      helo: this.helo,
      message: this.message,
      macro: lookup,
      macros: all,
      signal: this.messageAbort.signal,
    };
  }

  private lookupMacro(name: string): string | undefined {
    for (const code of MACRO_ORDER) {
      const value = this.macroStages.get(code)?.get(name);
      if (value !== undefined) return value;
    }
    return undefined;
  }

  /** Runs one step's handler method and yields its reply; returns the verdict it settled on. */
  private async *step(
    step: Step,
    call: (handler: MilterHandler, ctx: MilterContext) => Verdict | Promise<Verdict> | undefined,
  ): AsyncGenerator<Response, Verdict> {
    const negotiated = this.negotiated as Negotiated;
    const noReply = (negotiated.protocol & NO_REPLY_FLAG[step]) !== 0;
    let verdict: Verdict = { kind: 'continue' };
    if (this.wantedSteps.has(step)) {
      try {
        verdict = (await call(this.handler as MilterHandler, this.context())) ?? { kind: 'continue' };
        verdict = this.checkVerdict(step, verdict, noReply);
      } catch (error) {
        verdict = this.handlerFailed(step, error);
        if (noReply) {
          // The MTA is not listening for a reply here; the error verdict is kept for the next step that has one.
          this.pendingError = verdict;
          return verdict;
        }
      }
    }
    if (noReply) return verdict;
    if (this.pendingError !== undefined && verdict.kind === 'continue') verdict = this.pendingError;
    this.pendingError = undefined;
    yield this.verdictResponse(verdict);
    // The message is over, not the SMTP session: a verdict at CONNECT, HELO or an unknown command outside a
    // message keeps the phase it was given in.
    if (endsMessage(verdict, step)) await this.resetMessage(Math.min(this.rank, BETWEEN_MESSAGES));
    return verdict;
  }

  /** A handler error in a step without reply, to be answered at the next step that has one. */
  private pendingError: Verdict | undefined;

  private checkVerdict(step: Step | 'eom', verdict: Verdict, noReply: boolean): Verdict {
    const kinds = ['continue', 'accept', 'reject', 'tempfail', 'discard', 'skip', 'connectionFail', 'reply'];
    if (typeof verdict !== 'object' || !kinds.includes(verdict.kind)) {
      throw new MilterUsageError('invalid-verdict', `handler returned ${JSON.stringify(verdict)} at ${step}`);
    }
    if (noReply && verdict.kind !== 'continue') {
      throw new MilterUsageError('invalid-verdict', `step ${step} was negotiated without reply, so only continue is possible (got ${verdict.kind})`);
    }
    if (verdict.kind === 'skip') {
      if (step !== 'body') throw new MilterUsageError('invalid-verdict', `skip is only possible in the body step, not ${step}`);
      // An MTA that does not understand SMFIR_SKIP gets continue, and the filter simply sees more chunks.
      if (((this.negotiated as Negotiated).protocol & Protocol.Skip) === 0) return { kind: 'continue' };
    }
    return verdict;
  }

  private handlerFailed(step: Step | 'eom', error: unknown): Verdict {
    const code = error instanceof MilterUsageError ? error.code : 'handler-error';
    this.context().log.error('filter failed', {
      step,
      code,
      error: error instanceof Error ? error.message : String(error),
      verdict: describeVerdict(this.definition.onError),
    });
    return this.definition.onError;
  }

  /** The verdict after modifications failed part-way: always a tempfail, the one reply that loses nothing. */
  private modificationsFailed(error: unknown): Verdict {
    const verdict: Verdict = TEMPFAIL;
    this.context().log.error('modifications failed while being sent', {
      code: 'modifications-failed',
      error: error instanceof Error ? error.message : String(error),
      verdict: describeVerdict(verdict),
    });
    return verdict;
  }

  private verdictResponse(verdict: Verdict): Response {
    return verdict.kind === 'reply' ? { kind: 'replyCode', reply: verdict.reply } : { kind: verdict.kind };
  }

  private async collect(chunk: Buffer): Promise<void> {
    this.message.bodySize += chunk.length;
    if (!this.message.collectBody || chunk.length === 0) return;
    this.message.body ??= new BodySpool({
      maxMemory: this.options.maxBufferedBody ?? 1024 * 1024,
      ...(this.options.spoolDirectory === undefined ? {} : { directory: this.options.spoolDirectory }),
    });
    await this.keepingBody((spool) => spool.write(chunk));
  }

  /** Runs a write to the body store; if it fails, the message cannot be read whole any more (see bodyError). */
  private async keepingBody(write: (spool: BodySpool) => Promise<void>): Promise<void> {
    const spool = this.message.body;
    if (spool === undefined) return;
    try {
      await write(spool);
    } catch (error) {
      // Keep nothing more of it, and answer it with onError at its end.
      this.message.body = undefined;
      this.message.collectBody = false;
      this.message.bodyError = error instanceof Error ? error : new Error(String(error));
      await spool.dispose().catch(() => undefined);
      this.context().log.error('cannot store the message body', { error: this.message.bodyError.message, verdict: describeVerdict(this.definition.onError) });
    }
  }

  private async *endOfMessage(lastChunk: Buffer): AsyncGenerator<Response> {
    try {
      if (lastChunk.length > 0) {
        await this.collect(lastChunk);
        const verdict = await this.lastChunkVerdict(lastChunk);
        if (verdict.kind !== 'continue') {
          yield this.verdictResponse(verdict);
          return;
        }
      }
      // Whatever the store still buffers goes to its file now, so a write that fails shows before the handler runs.
      await this.keepingBody((spool) => spool.flush());
      if (this.message.bodyError !== undefined) {
        await this.abortHandler();
        yield this.verdictResponse(this.definition.onError);
        return;
      }
      let result: EndOfMessageResult;
      try {
        result = (await this.handler?.endOfMessage?.(this.context())) ?? { verdict: { kind: 'continue' } };
        if (typeof result !== 'object') throw new MilterUsageError('invalid-verdict', 'endOfMessage must return { verdict, modifications? }');
        const verdict = this.checkVerdict('eom', result.verdict, false);
        if (verdict.kind === 'skip') throw new MilterUsageError('invalid-verdict', 'skip is not an end-of-message verdict');
        checkModifications(result.modifications ?? [], (this.negotiated as Negotiated).actions);
        result = { verdict, modifications: result.modifications ?? [] };
      } catch (error) {
        result = { verdict: this.handlerFailed('eom', error), modifications: [] };
      }
      if (this.pendingError !== undefined && result.verdict.kind === 'continue') result = { verdict: this.pendingError, modifications: [] };
      this.pendingError = undefined;
      // Modifications make sense only for a message that is kept.
      const keeps = result.verdict.kind === 'continue' || result.verdict.kind === 'accept';
      if (keeps) {
        try {
          yield* modificationResponses(result.modifications ?? []);
        } catch (error) {
          // A new body that fails while it is being sent (its file or its source gone) leaves the MTA holding part
          // of it. Only a tempfail makes the MTA drop those changes with the message, whatever onError says.
          yield this.verdictResponse(this.modificationsFailed(error));
          return;
        }
      }
      yield this.verdictResponse(result.verdict);
    } finally {
      await this.resetMessage(BETWEEN_MESSAGES);
    }
  }

  /**
   * The body handler's verdict on a last chunk carried by end of message. It gets no reply of its own: a
   * final verdict answers the end of message, a handler error becomes onError as in any step, and skip
   * counts as continue because the body is over anyway (SMFIR_SKIP is no end-of-message reply).
   */
  private async lastChunkVerdict(chunk: Buffer): Promise<Verdict> {
    if (!this.wantedSteps.has('body') || this.handler?.body === undefined) return { kind: 'continue' };
    try {
      const verdict = this.checkVerdict('body', (await this.handler.body(this.context(), chunk)) ?? { kind: 'continue' }, false);
      return verdict.kind === 'skip' ? { kind: 'continue' } : verdict;
    } catch (error) {
      return this.handlerFailed('body', error);
    }
  }

  private async abortMessage(): Promise<void> {
    if (this.rank > BETWEEN_MESSAGES) await this.abortHandler();
    await this.resetMessage(Math.min(this.rank, BETWEEN_MESSAGES));
  }

  /** Tells the handler the message ends without its end of message. */
  private async abortHandler(): Promise<void> {
    if (this.handler?.abort === undefined) return;
    try {
      await this.handler.abort(this.context());
    } catch (error) {
      this.handlerFailed('mail', error);
    }
  }

  private async resetMessage(rank = BETWEEN_MESSAGES): Promise<void> {
    // One shared reason: building a DOMException for every message would cost more than the abort itself.
    this.messageAbort.abort(MESSAGE_ENDED);
    this.messageAbort = new AbortController();
    const body = this.message.body;
    this.message = emptyMessage(this.definition.collectBody);
    for (const code of MESSAGE_MACROS) this.macroStages.delete(code);
    this.pendingError = undefined;
    this.rank = rank;
    await body?.dispose();
  }

  /** Ends the SMTP session; `another` says whether a new one may follow on this connection. */
  private async closeSmtpSession(another = true): Promise<void> {
    const handler = this.handler;
    // A handler that never saw an SMTP session (a fresh one after QUIT_NC) has nothing to close.
    if (handler?.close !== undefined && this.negotiated !== undefined && this.sessionActive) {
      try {
        await handler.close(this.context());
      } catch (error) {
        this.handlerFailed('connect', error);
      }
    }
    await this.resetMessage(FRESH);
    this.sessionActive = false;
    this.macroStages.clear();
    this.client = undefined;
    this.helo = undefined;
    // The next SMTP session on this connection gets a fresh handler (per-connection state must not leak).
    this.handler = this.negotiated === undefined || this.ended || !another ? undefined : this.definition.createHandler();
  }
}
