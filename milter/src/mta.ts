/**
 * The MTA side of the protocol, as Postfix speaks it: the same command order, the same default macros
 * and option offer, honouring whatever the filter negotiated (steps left out, replies left out, leading
 * space, macro lists). It runs over any {@link MtaTransport}: a socket (the client) or an in-process
 * session (the test kit).
 */
import type { Command, ConnectFamily } from './codec/commands.ts';
import type { MacroRequest, Response } from './codec/responses.ts';
import { ALL_ACTIONS, MacroStage, MAX_BODY_CHUNK, Protocol, PROTOCOL_VERSION } from './constants.ts';
import { MilterProtocolError } from './errors.ts';
import { NO_REPLY_FLAG, NO_STEP_FLAG, type Step } from './negotiation.ts';

/** Carries commands to a filter and its replies back. */
export interface MtaTransport {
  send(command: Command): void;
  /** The next reply; rejects when the filter closes or the time runs out. */
  receive(): Promise<Response>;
}

/**
 * The protocol flags Postfix 3.7 offers with `milter_protocol = 6`: every step and no-reply flag,
 * SKIP, RCPT_REJ and leading-space headers (the size flags it does not offer).
 */
export const POSTFIX_PROTOCOL_OFFER = 0x1fffff;

/**
 * Postfix's default macro lists per stage (`postconf -d milter_*_macros`). The header step gets the
 * end-of-headers list and each body chunk the end-of-message list, as in Postfix.
 */
export const POSTFIX_DEFAULT_MACROS: Record<keyof typeof MacroStage, readonly string[]> = {
  Connect: ['j', '{daemon_name}', '{daemon_addr}', 'v', '_'],
  Helo: ['{tls_version}', '{cipher}', '{cipher_bits}', '{cert_subject}', '{cert_issuer}'],
  Mail: ['i', '{auth_type}', '{auth_authen}', '{auth_author}', '{mail_addr}', '{mail_host}', '{mail_mailer}'],
  Rcpt: ['i', '{rcpt_addr}', '{rcpt_host}', '{rcpt_mailer}'],
  Data: ['i'],
  EndOfMessage: ['i'],
  EndOfHeaders: ['i'],
};

/** What the MTA offers in OPTNEG. */
export interface MtaOffer {
  version: number;
  actions: number;
  protocol: number;
}

/** Postfix's offer with `milter_protocol = 6`. */
export const POSTFIX_OFFER: MtaOffer = { version: PROTOCOL_VERSION, actions: ALL_ACTIONS, protocol: POSTFIX_PROTOCOL_OFFER };

/** Macro values the MTA knows, by name; each stage sends those its list names. */
export type MacroValues = Record<string, string>;

/** The outcome of one step: the filter's reply (continue when the step was left out or unanswered). */
export interface StepReply {
  reply: Response;
  /** True when the negotiation left the step out and nothing was sent. */
  skipped: boolean;
}

/** The outcome of end of message. */
export interface EndOfMessageReply {
  /** Modification replies in the order received. */
  modifications: Response[];
  /** The final reply (accept, continue, reject, tempfail, discard, reply code, connection fail). */
  verdict: Response;
  /** Progress replies received while the filter worked. */
  progress: number;
}

/** A whole message for {@link MtaConversation.sendMessage}. */
export interface Transaction {
  client?: { hostname: string; family: ConnectFamily; port: number; address: string };
  helo?: string;
  sender: string;
  senderParameters?: string[];
  recipients: string[];
  /**
   * Headers as name and raw value (leading space included, as in the message). A folded value's CRLF line
   * breaks are sent as bare LF, as Postfix sends them.
   */
  headers: Array<{ name: string; value: string }>;
  body: Buffer;
  /** Macro values to send at each stage (names filtered by the stage's list). */
  macros?: MacroValues;
}

/** Every reply of a transaction, step by step. */
export interface TransactionReplies {
  steps: Array<{ step: Step | 'eom'; reply: Response; skipped: boolean }>;
  /** End of message, when the transaction got that far. */
  endOfMessage: EndOfMessageReply | undefined;
  /** The step whose reply ended the transaction early, if any. */
  stoppedAt: Step | undefined;
}

const CONTINUE: Response = { kind: 'continue' };
/**
 * Steps whose macros Postfix sends even when the filter negotiated the step away (its milter8_event()
 * sends the macros before it looks at the skip flag), so later steps still see them. Header, end of
 * headers and body chunks it leaves out whole.
 */
const ENVELOPE_STEPS: ReadonlySet<Step> = new Set(['connect', 'helo', 'mail', 'rcpt', 'data']);
const FINAL_KINDS = new Set(['accept', 'continue', 'discard', 'reject', 'tempfail', 'replyCode', 'connectionFail']);

/** Where a step's macros come from: the stage's list, sent in a macro frame for this command code. */
interface MacroSlot {
  stage: keyof typeof MacroStage;
  forCommand: string;
}

/** Drives a filter through SMTP sessions the way Postfix does. */
export class MtaConversation {
  private negotiatedProtocol = 0;
  private negotiatedActions = 0;
  private macroLists: Record<keyof typeof MacroStage, readonly string[]> = { ...POSTFIX_DEFAULT_MACROS };
  /** The filter's negotiation reply. */
  negotiation: Extract<Response, { kind: 'optneg' }> | undefined;

  constructor(
    private readonly transport: MtaTransport,
    private readonly offer: MtaOffer = POSTFIX_OFFER,
  ) {}

  /** Sends OPTNEG and records what the filter took. */
  async negotiate(): Promise<Extract<Response, { kind: 'optneg' }>> {
    this.transport.send({ kind: 'optneg', ...this.offer });
    const reply = await this.transport.receive();
    if (reply.kind !== 'optneg') throw new MilterProtocolError('negotiation-failed', `expected an OPTNEG reply, got '${reply.kind}'`);
    if (reply.version > this.offer.version || reply.version < 2) {
      throw new MilterProtocolError('negotiation-failed', `filter answered with protocol version ${reply.version}`);
    }
    if ((reply.actions & ~this.offer.actions) !== 0) throw new MilterProtocolError('negotiation-failed', 'filter wants actions that were not offered');
    if ((reply.protocol & ~this.offer.protocol) !== 0) throw new MilterProtocolError('negotiation-failed', 'filter set protocol flags that were not offered');
    this.negotiation = reply;
    this.negotiatedActions = reply.actions;
    this.negotiatedProtocol = reply.protocol;
    this.applyMacroRequests(reply.macroRequests);
    return reply;
  }

  /** Action flags the filter was granted. */
  get actions(): number {
    return this.negotiatedActions;
  }

  /** Protocol flags agreed. */
  get protocol(): number {
    return this.negotiatedProtocol;
  }

  connect(client: NonNullable<Transaction['client']>, macros: MacroValues = {}): Promise<StepReply> {
    return this.step('connect', { stage: 'Connect', forCommand: 'C' }, macros, { kind: 'connect', ...client });
  }

  helo(name: string, macros: MacroValues = {}): Promise<StepReply> {
    return this.step('helo', { stage: 'Helo', forCommand: 'H' }, macros, { kind: 'helo', name });
  }

  mailFrom(sender: string, parameters: string[] = [], macros: MacroValues = {}): Promise<StepReply> {
    return this.step('mail', { stage: 'Mail', forCommand: 'M' }, macros, { kind: 'mail', sender, parameters });
  }

  rcptTo(recipient: string, parameters: string[] = [], macros: MacroValues = {}): Promise<StepReply> {
    return this.step('rcpt', { stage: 'Rcpt', forCommand: 'R' }, macros, { kind: 'rcpt', recipient, parameters });
  }

  data(macros: MacroValues = {}): Promise<StepReply> {
    return this.step('data', { stage: 'Data', forCommand: 'T' }, macros, { kind: 'data' });
  }

  /**
   * Sends one header, with the end-of-headers macros as Postfix does. Folded lines are joined by a bare LF;
   * without negotiated leading space, one space after the colon is dropped (not a tab), as Postfix does.
   */
  header(name: string, value: string, macros: MacroValues = {}): Promise<StepReply> {
    const unfolded = value.replaceAll('\r\n', '\n');
    const wire = (this.negotiatedProtocol & Protocol.HeaderLeadingSpace) === 0 && unfolded.startsWith(' ') ? unfolded.slice(1) : unfolded;
    return this.step('header', { stage: 'EndOfHeaders', forCommand: 'L' }, macros, { kind: 'header', name, value: wire });
  }

  endOfHeaders(macros: MacroValues = {}): Promise<StepReply> {
    return this.step('eoh', { stage: 'EndOfHeaders', forCommand: 'N' }, macros, { kind: 'eoh' });
  }

  /** Sends one body chunk (at most 65,535 bytes, as Postfix sends them), with the end-of-message macros. */
  body(chunk: Buffer, macros: MacroValues = {}): Promise<StepReply> {
    if (chunk.length > MAX_BODY_CHUNK) throw new RangeError(`body chunk of ${chunk.length} bytes exceeds ${MAX_BODY_CHUNK}`);
    return this.step('body', { stage: 'EndOfMessage', forCommand: 'B' }, macros, { kind: 'body', chunk });
  }

  /**
   * Ends the message and collects modifications and progress until the final reply.
   * @param options.onProgress called at each progress reply, with the count so far (tests wait for it)
   */
  async endOfMessage(macros: MacroValues = {}, options: { onProgress?: (count: number) => void } = {}): Promise<EndOfMessageReply> {
    this.sendMacros({ stage: 'EndOfMessage', forCommand: 'E' }, macros);
    this.transport.send({ kind: 'eom', chunk: Buffer.alloc(0) });
    const modifications: Response[] = [];
    let progress = 0;
    for (;;) {
      const reply = await this.transport.receive();
      if (reply.kind === 'progress') options.onProgress?.(++progress);
      else if (FINAL_KINDS.has(reply.kind)) return { modifications, verdict: reply, progress };
      else modifications.push(reply);
    }
  }

  abort(): void {
    this.transport.send({ kind: 'abort' });
  }

  quit(): void {
    this.transport.send({ kind: 'quit' });
  }

  quitNewConnection(): void {
    this.transport.send({ kind: 'quitNewConnection' });
  }

  /**
   * Runs a whole message (connect through end of message), stopping where the filter ends it. Like
   * Postfix's smtpd, a transaction that got as far as MAIL ends with an abort, also after end of message.
   */
  async sendMessage(transaction: Transaction): Promise<TransactionReplies> {
    const macros = transaction.macros ?? {};
    const steps: TransactionReplies['steps'] = [];
    const record = (step: Step | 'eom', result: StepReply): boolean => {
      steps.push({ step, ...result });
      return result.reply.kind !== 'continue';
    };
    const client = transaction.client ?? { hostname: 'localhost', family: 'inet' as const, port: 40000, address: '127.0.0.1' };
    if (record('connect', await this.connect(client, macros))) return { steps, endOfMessage: undefined, stoppedAt: 'connect' };
    if (record('helo', await this.helo(transaction.helo ?? 'client.test', macros))) return { steps, endOfMessage: undefined, stoppedAt: 'helo' };
    const replies = await this.envelopeAndContent(transaction, macros, steps, record);
    // smtpd resets every transaction that reached MAIL with SMFIC_ABORT (mail_reset()), whatever its outcome.
    this.abort();
    return replies;
  }

  /** MAIL through end of message. */
  private async envelopeAndContent(
    transaction: Transaction,
    macros: MacroValues,
    steps: TransactionReplies['steps'],
    record: (step: Step | 'eom', result: StepReply) => boolean,
  ): Promise<TransactionReplies> {
    if (record('mail', await this.mailFrom(transaction.sender, transaction.senderParameters ?? [], macros))) {
      return { steps, endOfMessage: undefined, stoppedAt: 'mail' };
    }
    let accepted = 0;
    for (const recipient of transaction.recipients) {
      const result = await this.rcptTo(recipient, [], macros);
      steps.push({ step: 'rcpt', ...result });
      if (result.reply.kind === 'continue') accepted++;
      else if (result.reply.kind === 'accept' || result.reply.kind === 'discard') return { steps, endOfMessage: undefined, stoppedAt: 'rcpt' };
    }
    // Like Postfix, no DATA when every recipient was refused.
    if (accepted === 0) return { steps, endOfMessage: undefined, stoppedAt: 'rcpt' };
    if (record('data', await this.data(macros))) return { steps, endOfMessage: undefined, stoppedAt: 'data' };
    for (const header of transaction.headers) {
      if (record('header', await this.header(header.name, header.value, macros))) return { steps, endOfMessage: undefined, stoppedAt: 'header' };
    }
    if (record('eoh', await this.endOfHeaders(macros))) return { steps, endOfMessage: undefined, stoppedAt: 'eoh' };
    for (let offset = 0; offset < transaction.body.length; offset += MAX_BODY_CHUNK) {
      const result = await this.body(transaction.body.subarray(offset, offset + MAX_BODY_CHUNK), macros);
      steps.push({ step: 'body', ...result });
      if (result.reply.kind === 'skip') break;
      if (result.reply.kind !== 'continue') return { steps, endOfMessage: undefined, stoppedAt: 'body' };
    }
    const endOfMessage = await this.endOfMessage(macros);
    return { steps, endOfMessage, stoppedAt: undefined };
  }

  private applyMacroRequests(requests: MacroRequest[]): void {
    for (const request of requests) {
      const stage = (Object.keys(MacroStage) as Array<keyof typeof MacroStage>).find((name) => MacroStage[name] === request.stage);
      // Postfix keeps its own list for a stage whose requested list is empty.
      if (stage !== undefined && request.names.length > 0) this.macroLists[stage] = request.names;
    }
  }

  /** Sends the stage's macros that have values, in list order; like Postfix, also when none has one. */
  private sendMacros(slot: MacroSlot, values: MacroValues): void {
    const pairs: Array<[string, string]> = [];
    for (const name of this.macroLists[slot.stage]) {
      const value = values[name];
      if (value !== undefined) pairs.push([name, value]);
    }
    this.transport.send({ kind: 'macro', forCommand: slot.forCommand, macros: pairs });
  }

  private async step(step: Step, slot: MacroSlot, macros: MacroValues, command: Command): Promise<StepReply> {
    const negotiatedAway = (this.negotiatedProtocol & NO_STEP_FLAG[step]) !== 0;
    if (!negotiatedAway || ENVELOPE_STEPS.has(step)) this.sendMacros(slot, macros);
    if (negotiatedAway) return { reply: CONTINUE, skipped: true };
    this.transport.send(command);
    if ((this.negotiatedProtocol & NO_REPLY_FLAG[step]) !== 0) return { reply: CONTINUE, skipped: false };
    return { reply: await this.transport.receive(), skipped: false };
  }
}
