/**
 * A test kit for filter authors: drive a filter through whole SMTP transactions without sockets, the way
 * Postfix would, and inspect the replies, the modifications and the message as the MTA would deliver it.
 * Commands and replies still go through the encoder and decoder, so the bytes are exercised too.
 */
import { decodeCommand, encodeCommand, type Command } from './codec/commands.ts';
import { decodeResponse, encodeResponse, type Response } from './codec/responses.ts';
import type { Frame } from './codec/frame-decoder.ts';
import type { MilterLogger } from './logger.ts';
import type { MilterDefinition } from './milter.ts';
import { MtaConversation, POSTFIX_OFFER, type MtaOffer, type MtaTransport, type Transaction, type TransactionReplies } from './mta.ts';
import { MilterSession } from './session.ts';

function asFrame(bytes: Buffer): Frame {
  return { code: String.fromCharCode(bytes[4] as number), data: bytes.subarray(5) };
}

/** Runs a session in-process; commands are handled in order, replies queued. */
class InProcessTransport implements MtaTransport {
  private readonly replies: Response[] = [];
  private waiters: Array<{ resolve: (reply: Response) => void; reject: (error: Error) => void }> = [];
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;

  constructor(readonly session: MilterSession) {}

  send(command: Command): void {
    const decoded = decodeCommand(asFrame(encodeCommand(command)));
    this.chain = this.chain.then(async () => {
      if (this.failure !== undefined) return;
      try {
        for await (const reply of this.session.handle(decoded)) this.deliver(decodeResponse(asFrame(encodeResponse(reply))));
      } catch (error) {
        this.failure = error as Error;
        for (const waiter of this.waiters.splice(0)) waiter.reject(this.failure);
      }
    });
  }

  receive(): Promise<Response> {
    const ready = this.replies.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Resolves when every command sent so far has been handled. */
  settled(): Promise<void> {
    return this.chain;
  }

  private deliver(reply: Response): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter.resolve(reply);
    else this.replies.push(reply);
  }
}

/** A message as the MTA holds it: envelope, headers and body. */
export interface DeliveredMessage {
  sender: string;
  recipients: string[];
  headers: Array<{ name: string; value: string }>;
  body: Buffer;
  quarantine: string | undefined;
}

/**
 * Applies modification replies to a message the way Postfix and Sendmail do: add appends, insert puts
 * the header at a 0-based position, change addresses the n-th header of that name (case-insensitive) and
 * deletes it when the value is empty, body chunks concatenate into the new body.
 */
export function applyModifications(message: DeliveredMessage, modifications: readonly Response[]): DeliveredMessage {
  const headers = message.headers.map((h) => ({ ...h }));
  let recipients = [...message.recipients];
  let sender = message.sender;
  let quarantine = message.quarantine;
  const bodyChunks: Buffer[] = [];
  let bodyReplaced = false;
  for (const m of modifications) {
    switch (m.kind) {
      case 'addHeader':
        headers.push({ name: m.name, value: m.value });
        break;
      case 'insertHeader':
        headers.splice(Math.min(m.index, headers.length), 0, { name: m.name, value: m.value });
        break;
      case 'changeHeader': {
        let seen = 0;
        const position = headers.findIndex((h) => h.name.toLowerCase() === m.name.toLowerCase() && ++seen === m.index);
        if (position >= 0) {
          if (m.value === '') headers.splice(position, 1);
          else headers[position] = { name: headers[position]?.name ?? m.name, value: m.value };
        } else if (m.value !== '') {
          // Both MTAs append a header that does not exist yet.
          headers.push({ name: m.name, value: m.value });
        }
        break;
      }
      case 'replaceBody':
        bodyReplaced = true;
        bodyChunks.push(m.chunk);
        break;
      case 'addRecipient':
      case 'addRecipientWithArgs':
        recipients.push(m.recipient);
        break;
      case 'deleteRecipient':
        recipients = recipients.filter((r) => r !== m.recipient);
        break;
      case 'changeFrom':
        sender = m.sender;
        break;
      case 'quarantine':
        quarantine = m.reason;
        break;
      default:
        throw new Error(`'${m.kind}' is not a modification`);
    }
  }
  return { sender, recipients, headers, body: bodyReplaced ? Buffer.concat(bodyChunks) : message.body, quarantine };
}

/** Options of {@link runTransaction}. */
export interface RunTransactionOptions {
  /** What the simulated MTA offers (default: Postfix with milter_protocol = 6). */
  offer?: MtaOffer;
  logger?: MilterLogger;
}

/** The outcome of {@link runTransaction}. */
export interface TransactionResult extends TransactionReplies {
  /** The filter's negotiation reply. */
  negotiation: Extract<Response, { kind: 'optneg' }>;
  /** Modification replies at end of message (empty if the transaction stopped earlier). */
  modifications: Response[];
  /** The final reply of the transaction. */
  verdict: Response;
  /** The message as the MTA would deliver it, when the filter let it through. */
  delivered: DeliveredMessage | undefined;
}

/**
 * Runs one whole transaction (negotiation, connect, HELO, MAIL, RCPTs, DATA, headers, body, end of
 * message, QUIT) against a filter definition with no sockets, and applies the modifications.
 */
export async function runTransaction(definition: MilterDefinition, transaction: Transaction, options: RunTransactionOptions = {}): Promise<TransactionResult> {
  const session = new MilterSession(definition, {
    connectionId: 'test',
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  const transport = new InProcessTransport(session);
  const mta = new MtaConversation(transport, options.offer ?? POSTFIX_OFFER);
  try {
    const negotiation = await mta.negotiate();
    const replies = await mta.sendMessage(transaction);
    mta.quit();
    await transport.settled();
    const eom = replies.endOfMessage;
    const last = replies.steps[replies.steps.length - 1];
    const verdict = eom?.verdict ?? last?.reply ?? { kind: 'continue' };
    const rcptReplies = replies.steps.filter((s) => s.step === 'rcpt');
    const delivered =
      eom !== undefined && (verdict.kind === 'accept' || verdict.kind === 'continue')
        ? applyModifications(
            {
              sender: transaction.sender,
              recipients: transaction.recipients.filter((_, i) => rcptReplies[i]?.reply.kind === 'continue'),
              headers: transaction.headers,
              body: transaction.body,
              quarantine: undefined,
            },
            eom.modifications,
          )
        : undefined;
    return { ...replies, negotiation, modifications: eom?.modifications ?? [], verdict, delivered };
  } finally {
    await session.dispose();
  }
}
