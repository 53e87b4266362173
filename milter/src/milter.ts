/**
 * The filter author's API: a definition that says what the filter needs, and a handler object with one
 * async method per protocol event, created afresh for every SMTP connection.
 */
import type { MacroStageName } from './constants.ts';
import type { ConnectFamily } from './codec/commands.ts';
import { MilterUsageError } from './errors.ts';
import type { MilterLogger } from './logger.ts';
import type { Modification } from './modifications.ts';
import type { Negotiated, ActionName, Step } from './negotiation.ts';
import type { BodySpool } from './body-spool.ts';
import { TEMPFAIL, type Verdict } from './verdicts.ts';

/** The SMTP client as the MTA reported it. */
export interface ConnectInfo {
  hostname: string;
  family: ConnectFamily;
  port: number;
  address: string;
}

/** One header as received: name and value as on the wire (binary string, see the codec). */
export interface ReceivedHeader {
  name: string;
  value: string;
}

/** What the session has seen of the current message. */
export interface MessageState {
  /** Envelope sender as given at MAIL (angle brackets included), when the mail step was seen. */
  sender: string | undefined;
  senderParameters: string[];
  /** Envelope recipients accepted so far, as given at RCPT. */
  recipients: string[];
  /** Header fields in order, when the header step was seen. */
  headers: ReceivedHeader[];
  /** Body bytes received. */
  bodySize: number;
  /** The collected body, when the definition asked for `collectBody`. */
  body: BodySpool | undefined;
  /**
   * Whether body chunks are kept in {@link body}; starts as the definition's `collectBody` for every message.
   * A handler that consumes the chunks itself, in its body step, may set it to false (before the body starts:
   * chunks already kept stay kept) so that the body is not also stored.
   */
  collectBody: boolean;
  /**
   * Why the body could not be kept (a full disk, a file size limit), once that happened: {@link body} is then
   * dropped and no more chunks are kept. Such a message is answered with `onError` at end of message without
   * calling the handler's `endOfMessage`; its `abort` is called instead, so it can clean up and say why.
   */
  bodyError: Error | undefined;
}

/** What a handler sees besides the event itself. */
export interface MilterContext {
  /** An id for this milter connection, for logs. */
  readonly connectionId: string;
  /** A logger whose lines carry the connection id (and the queue id once known). */
  readonly log: MilterLogger;
  /** The negotiated version, actions and protocol flags. */
  readonly negotiated: Negotiated;
  /** The SMTP client, once the connect step was seen. */
  readonly client: ConnectInfo | undefined;
  /** The last HELO/EHLO name. */
  readonly helo: string | undefined;
  /** The current message. */
  readonly message: MessageState;
  /** A macro's current value (the most recent stage that defined it wins). */
  macro(name: string): string | undefined;
  /** All macros currently defined, most recent stage last. */
  macros(): Map<string, string>;
  /** An AbortSignal that fires when the MTA aborts the message or the connection closes. */
  readonly signal: AbortSignal;
}

/** A handler's answer at end of message: a verdict and the modifications to apply first. */
export interface EndOfMessageResult {
  verdict: Verdict;
  modifications?: Modification[];
}

type Awaitable<T> = T | Promise<T>;

/**
 * Per-connection event handler. Every method is optional; a step without a method is negotiated away
 * where the MTA allows it. Handlers return values and never write to the MTA themselves.
 */
export interface MilterHandler {
  connect?(ctx: MilterContext, client: ConnectInfo): Awaitable<Verdict>;
  helo?(ctx: MilterContext, name: string): Awaitable<Verdict>;
  mailFrom?(ctx: MilterContext, sender: string, parameters: string[]): Awaitable<Verdict>;
  rcptTo?(ctx: MilterContext, recipient: string, parameters: string[]): Awaitable<Verdict>;
  data?(ctx: MilterContext): Awaitable<Verdict>;
  header?(ctx: MilterContext, name: string, value: string): Awaitable<Verdict>;
  endOfHeaders?(ctx: MilterContext): Awaitable<Verdict>;
  body?(ctx: MilterContext, chunk: Buffer): Awaitable<Verdict>;
  endOfMessage?(ctx: MilterContext): Awaitable<EndOfMessageResult>;
  /** The message was abandoned (SMFIC_ABORT); per-message state should be dropped. */
  abort?(ctx: MilterContext): Awaitable<void>;
  unknown?(ctx: MilterContext, command: string): Awaitable<Verdict>;
  /** The SMTP session is over (QUIT, QUIT_NC or the connection closed). */
  close?(ctx: MilterContext): Awaitable<void>;
}

/** What a filter declares about itself. */
export interface MilterOptions {
  /** A name for logs. */
  name: string;
  /** Creates the handler for one SMTP connection. */
  createHandler(): MilterHandler;
  /** Modifications the filter may return; anything else at end of message is an error. */
  actions?: readonly ActionName[];
  /** Steps to receive even without a handler method (so `ctx.message` records them). */
  observe?: readonly Step[];
  /** Steps whose reply is left out; such a method's verdict must be `continue`. */
  noReply?: readonly Step[];
  /** Receive header values byte-exact with their leading whitespace (default true). */
  headerLeadingSpace?: boolean;
  /** Also receive recipients that the MTA rejected. */
  rejectedRecipients?: boolean;
  /** Macros wanted per stage. */
  macros?: Partial<Record<MacroStageName, readonly string[]>>;
  /** Collect the body into a spool for `ctx.message.body` (memory up to a limit, then a temp file). */
  collectBody?: boolean;
  /** Verdict when a handler throws or returns something invalid (default tempfail: mail is kept). */
  onError?: Verdict;
}

/** A checked, frozen filter definition. */
export interface MilterDefinition {
  readonly name: string;
  readonly createHandler: () => MilterHandler;
  readonly actions: readonly ActionName[];
  readonly observe: readonly Step[];
  readonly noReply: readonly Step[];
  readonly headerLeadingSpace: boolean;
  readonly rejectedRecipients: boolean;
  readonly macros: Partial<Record<MacroStageName, readonly string[]>>;
  readonly collectBody: boolean;
  readonly onError: Verdict;
}

const OPTION_KEYS = new Set([
  'name',
  'createHandler',
  'actions',
  'observe',
  'noReply',
  'headerLeadingSpace',
  'rejectedRecipients',
  'macros',
  'collectBody',
  'onError',
]);

/** Validates a filter's declaration; unknown keys are rejected so a typo cannot silently change behaviour. */
export function defineMilter(options: MilterOptions): MilterDefinition {
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new MilterUsageError('invalid-option', `unknown milter option '${key}'`);
  }
  if (typeof options.createHandler !== 'function') throw new MilterUsageError('invalid-option', 'createHandler must be a function');
  const onError = options.onError ?? TEMPFAIL;
  if (onError.kind === 'continue' || onError.kind === 'skip') {
    throw new MilterUsageError('invalid-option', `onError must be a final verdict, not ${onError.kind}`);
  }
  return Object.freeze({
    name: options.name,
    createHandler: options.createHandler,
    actions: Object.freeze([...(options.actions ?? [])]),
    observe: Object.freeze([...(options.observe ?? [])]),
    noReply: Object.freeze([...(options.noReply ?? [])]),
    headerLeadingSpace: options.headerLeadingSpace ?? true,
    rejectedRecipients: options.rejectedRecipients ?? false,
    macros: Object.freeze({ ...(options.macros ?? {}) }),
    collectBody: options.collectBody ?? false,
    onError,
  });
}
