/**
 * A transparent SMTP tap between two MTAs: it forwards every byte unchanged in both directions and, on the
 * side, follows the dialogue to record each transaction the client attempted: envelope, the exact message
 * content (un-dot-stuffed, as the server received it) and the server's reply to it. The e2e suite puts it on
 * the wire from site A to site B to check that what travels between the sites is ciphertext, and how often a
 * message was tried. It can also hold back the end of the next message's content (the line with the single
 * dot) until released, which keeps the server waiting just before its end of message.
 *
 * It follows the dialogue the way both ends do: replies are matched to commands in order (PIPELINING keeps
 * that order), content starts only after the server's 354 (a client waits for it, so the 354 has passed the
 * tap first), and ends at the line holding a single dot. BDAT (CHUNKING) is not followed: a client that uses
 * it is noted in {@link SmtpTap.problems} instead of being misread.
 */
import net from 'node:net';
import { HarnessError } from '../support/errors.ts';
import { waitFor } from '../support/processes.ts';
import { LineSplitter, lineText } from '../support/smtp-lines.ts';

/** One transaction whose content went through the tap. */
export interface TappedMessage {
  /** Reverse path without angle brackets. */
  readonly mailFrom: string;
  /** Forward paths the server accepted, without angle brackets, in RCPT order. */
  readonly rcptTo: readonly string[];
  /** The content as the server received it: un-dot-stuffed, final CRLF included. */
  readonly data: Buffer;
  /** The server's reply to the content (code and first line's text), or undefined while it is awaited. */
  reply: { readonly code: number; readonly text: string } | undefined;
}

/** Options of {@link SmtpTap.start}. */
export interface SmtpTapOptions {
  /** Port to listen on, 127.0.0.1. */
  readonly port: number;
  /** The server's port on 127.0.0.1. */
  readonly upstreamPort: number;
}

/** What a connection's dialogue reports to the tap. */
interface DialogueEvents {
  /** Content reached its terminating dot; returns the record the reply will be written into. */
  content(mailFrom: string, rcptTo: readonly string[], data: Buffer): TappedMessage;
  /** Something the tap cannot follow. */
  problem(text: string): void;
}

/** What a pending reply answers. */
type Pending = { kind: 'greeting' } | { kind: 'command'; verb: string; argument: string } | { kind: 'content'; message: TappedMessage };

const REPLY_LINE = /^(\d{3})([ -])(.*)$/;
const PATH = /^(?:FROM|TO):\s*<([^>]*)>/i;

/** Follows one connection's dialogue. */
class Dialogue {
  private readonly pending: Pending[] = [{ kind: 'greeting' }];
  private mailFrom = '';
  private rcptTo: string[] = [];
  /** Content lines while the client sends the content, else undefined. */
  private content: Buffer[] | undefined;
  private replyText: string[] = [];

  constructor(private readonly events: DialogueEvents) {}

  /** A complete line the client sent; returns true when it ends a message's content. */
  clientLine(line: Buffer): boolean {
    if (this.content !== undefined) {
      if (line.length <= 3 && lineText(line) === '.') {
        const message = this.events.content(this.mailFrom, this.rcptTo, Buffer.concat(this.content));
        this.content = undefined;
        this.pending.push({ kind: 'content', message });
        return true;
      }
      this.content.push(line[0] === 0x2e ? line.subarray(1) : line);
      return false;
    }
    const text = lineText(line);
    const space = text.indexOf(' ');
    const verb = (space < 0 ? text : text.slice(0, space)).toUpperCase();
    if (verb === 'BDAT') this.events.problem(`client used BDAT, which the tap does not follow: ${text}`);
    this.pending.push({ kind: 'command', verb, argument: space < 0 ? '' : text.slice(space + 1) });
    return false;
  }

  /** A complete line the server sent. */
  serverLine(line: Buffer): void {
    const match = REPLY_LINE.exec(lineText(line));
    if (match === null) return;
    this.replyText.push(match[3] ?? '');
    if (match[2] === '-') return;
    const code = Number(match[1]);
    const text = this.replyText[0] ?? '';
    this.replyText = [];
    const answered = this.pending.shift();
    if (answered?.kind === 'content') answered.message.reply = { code, text };
    if (answered?.kind !== 'command') return;
    const ok = code >= 200 && code < 300;
    switch (answered.verb) {
      case 'MAIL':
        this.mailFrom = ok ? (PATH.exec(answered.argument)?.[1] ?? '') : '';
        this.rcptTo = [];
        break;
      case 'RCPT': {
        const path = PATH.exec(answered.argument)?.[1];
        if (ok && path !== undefined) this.rcptTo.push(path);
        break;
      }
      case 'DATA':
        if (code === 354) this.content = [];
        break;
      case 'RSET':
      case 'EHLO':
      case 'HELO':
        this.mailFrom = '';
        this.rcptTo = [];
        break;
    }
  }
}

/** A connection whose client bytes wait in the tap. */
interface Held {
  readonly message: TappedMessage;
  release(): void;
}

/** The tap; create with {@link SmtpTap.start}, always {@link close} it. */
export class SmtpTap {
  private readonly tapped: TappedMessage[] = [];
  private readonly notes: string[] = [];
  private readonly sockets = new Set<net.Socket>();
  private holdArmed = false;
  private held: Held | undefined;

  private constructor(
    private readonly server: net.Server,
    /** The port it listens on. */
    readonly port: number,
    private readonly upstreamPort: number,
  ) {
    server.on('connection', (client) => this.relay(client));
  }

  /** Starts listening; rejects with `START_FAILED` if the port cannot be bound. */
  static async start(options: SmtpTapOptions): Promise<SmtpTap> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) =>
        reject(new HarnessError('START_FAILED', `SMTP tap cannot listen on 127.0.0.1:${options.port}: ${error.message}`, { cause: error })),
      );
      server.listen({ host: '127.0.0.1', port: options.port }, resolve);
    });
    return new SmtpTap(server, options.port, options.upstreamPort);
  }

  /** Every transaction whose content passed, in order, with the reply once it came. */
  get messages(): readonly TappedMessage[] {
    return this.tapped;
  }

  /** Things the tap could not follow (BDAT); a test asserts this is empty. */
  get problems(): readonly string[] {
    return this.notes;
  }

  /**
   * Holds back the end of the next message's content: the server gets everything but the final dot until
   * {@link releaseHeld}. Resolves with the message once it is held. Rejects with `TIMEOUT`.
   */
  holdNextContentEnd(timeoutMs: number): Promise<TappedMessage> {
    this.holdArmed = true;
    return waitFor(() => this.held?.message, { timeoutMs, what: `SMTP tap on port ${this.port}: a message's end held back` });
  }

  /** Sends the held end of content and everything the client sent after it; no-op when nothing is held. */
  releaseHeld(): void {
    const held = this.held;
    this.held = undefined;
    this.holdArmed = false;
    held?.release();
  }

  /** Drops every connection and stops listening. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: net.Socket): void {
    const upstream = net.connect({ host: '127.0.0.1', port: this.upstreamPort });
    const dialogue = new Dialogue({
      content: (mailFrom, rcptTo, data) => {
        const message: TappedMessage = { mailFrom, rcptTo: [...rcptTo], data, reply: undefined };
        this.tapped.push(message);
        return message;
      },
      problem: (text) => this.notes.push(text),
    });
    const fromClient = new LineSplitter();
    const fromServer = new LineSplitter();
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      // A reset on one side ends the other; the MTA on the far side sees a dropped connection, as without the tap.
      socket.on('error', () => undefined);
    }
    // Client lines wait here while an end of content is held; SMTP is line-based, so forwarding whole lines
    // changes no byte and no order.
    let waiting: Buffer[] | undefined;
    client.on('data', (chunk: Buffer) => {
      for (const line of fromClient.push(chunk)) {
        if (waiting !== undefined) {
          waiting.push(line);
          continue;
        }
        const endOfContent = dialogue.clientLine(line);
        if (endOfContent && this.holdArmed && this.held === undefined) {
          const message = this.tapped.at(-1) as TappedMessage;
          const queue: Buffer[] = [line];
          waiting = queue;
          this.held = {
            message,
            release: () => {
              waiting = undefined;
              for (const pending of queue.splice(0)) {
                if (pending !== line) dialogue.clientLine(pending);
                upstream.write(pending);
              }
            },
          };
          continue;
        }
        upstream.write(line);
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      // Followed before forwarding, so a 354 is known before the client can answer it with content.
      for (const line of fromServer.push(chunk)) dialogue.serverLine(line);
      client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }
}
