/**
 * A minimal SMTP client for tests. Unlike swaks (which appends a CRLF to `--data`), it puts the caller's
 * bytes on the wire exactly: it only dot-stuffs, and adds a CRLF only when the content has no final line
 * end. Every reply wait is bounded.
 */
import net from 'node:net';
import { HarnessError } from './errors.ts';
import { LineSplitter, encodeDataSection, lineText } from './smtp-lines.ts';

/** One SMTP reply, possibly multi-line. */
export interface SmtpReply {
  /** The three-digit code. */
  readonly code: number;
  /** Text of each line after the code and separator. */
  readonly lines: readonly string[];
  /** The lines joined with '\n'. */
  readonly text: string;
}

/** Where to connect, and the bound on each wait. */
export interface SmtpConnectOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  readonly port: number;
  /** Bound on connecting and on each reply (default 30 s: Postfix may wait on a slow milter). */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const REPLY_LINE = /^(\d{3})([ -])(.*)$/;

/** A pending read of the next reply. */
interface Waiter {
  resolve(reply: SmtpReply): void;
  reject(error: Error): void;
}

/** One open SMTP connection; commands are sent one at a time unless {@link exchange} pipelines them. */
export class SmtpClientSession {
  private readonly splitter = new LineSplitter();
  private partial: string[] = [];
  private readonly ready: SmtpReply[] = [];
  private waiter: Waiter | undefined;
  private failure: HarnessError | undefined;
  private greetingReply: SmtpReply | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly peer: string,
    private readonly timeoutMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => {
      for (const line of this.splitter.push(chunk)) this.replyLine(lineText(line));
    });
    socket.on('error', (error) => this.fail(new HarnessError('SMTP_PROTOCOL', `${peer}: ${error.message}`, { cause: error })));
    socket.on('close', () => this.fail(new HarnessError('SMTP_PROTOCOL', `${peer} closed the connection`)));
  }

  /** Connects and reads the greeting. Rejects with `CONNECT_FAILED` or `TIMEOUT`. */
  static async connect(options: SmtpConnectOptions): Promise<SmtpClientSession> {
    const host = options.host ?? '127.0.0.1';
    const peer = `${host}:${options.port}`;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const socket = net.connect({ host, port: options.port });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new HarnessError('TIMEOUT', `connecting to ${peer}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(new HarnessError('CONNECT_FAILED', `connecting to ${peer}: ${error.message}`, { cause: error }));
      });
    });
    const session = new SmtpClientSession(socket, peer, timeoutMs);
    session.greetingReply = await session.nextReply();
    return session;
  }

  /** The server's greeting (220 normally). */
  get greeting(): SmtpReply {
    if (this.greetingReply === undefined) throw new HarnessError('SMTP_PROTOCOL', `${this.peer}: no greeting yet`);
    return this.greetingReply;
  }

  /**
   * Writes `raw` exactly as given (several pipelined commands, or anything malformed a test needs) and reads
   * `replyCount` replies.
   */
  async exchange(raw: string | Uint8Array, replyCount: number): Promise<SmtpReply[]> {
    this.socket.write(raw);
    const replies: SmtpReply[] = [];
    for (let i = 0; i < replyCount; i++) replies.push(await this.nextReply());
    return replies;
  }

  /** Sends one command line (CRLF added) and reads its reply. */
  async command(line: string): Promise<SmtpReply> {
    const [reply] = await this.exchange(`${line}\r\n`, 1);
    if (reply === undefined) throw new HarnessError('SMTP_PROTOCOL', `${this.peer}: no reply to ${line}`);
    return reply;
  }

  /**
   * After a 354, sends the content dot-stuffed with its terminator (see {@link encodeDataSection}) and
   * reads the final reply.
   */
  async content(data: Uint8Array | string): Promise<SmtpReply> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const [reply] = await this.exchange(encodeDataSection(bytes), 1);
    if (reply === undefined) throw new HarnessError('SMTP_PROTOCOL', `${this.peer}: no reply to the content`);
    return reply;
  }

  /** Sends QUIT and closes, whatever the server answers or if it already hung up. */
  async quit(): Promise<void> {
    try {
      await this.command('QUIT');
    } catch {
      // The transaction's outcome is already known; a server that hung up first is fine here.
    } finally {
      this.close();
    }
  }

  /** Drops the connection at once. */
  close(): void {
    this.socket.destroy();
  }

  private replyLine(text: string): void {
    const match = REPLY_LINE.exec(text);
    if (match === null) {
      this.fail(new HarnessError('SMTP_PROTOCOL', `${this.peer} sent a line that is not a reply: ${JSON.stringify(text)}`));
      this.socket.destroy();
      return;
    }
    this.partial.push(match[3] ?? '');
    if (match[2] === '-') return;
    const lines = this.partial;
    this.partial = [];
    this.ready.push({ code: Number(match[1]), lines, text: lines.join('\n') });
    this.wake();
  }

  private fail(error: HarnessError): void {
    this.failure ??= error;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    if (waiter === undefined) return;
    const reply = this.ready.shift();
    if (reply !== undefined) {
      this.waiter = undefined;
      waiter.resolve(reply);
    } else if (this.failure !== undefined) {
      this.waiter = undefined;
      waiter.reject(this.failure);
    }
  }

  private nextReply(): Promise<SmtpReply> {
    return new Promise<SmtpReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new HarnessError('TIMEOUT', `${this.peer}: no reply within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiter = {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.wake();
    });
  }
}

/** Options of {@link sendMail}. */
export interface SendMailOptions extends SmtpConnectOptions {
  /** EHLO argument; default `client.test`. */
  readonly ehlo?: string;
  /** Reverse path, without brackets ('' for the null sender). */
  readonly from: string;
  /** Forward paths, without brackets. */
  readonly to: readonly string[];
  /** The message, sent byte for byte. */
  readonly data: Uint8Array | string;
  /** Appended to MAIL FROM after a space, e.g. `BODY=8BITMIME` or `SMTPUTF8`. */
  readonly mailParams?: string;
  /** Appended after a space to the RCPT TO of the recipient at the same index in {@link to}, e.g. `NOTIFY=NEVER`. */
  readonly rcptParams?: readonly string[];
}

/** A command and the reply it got; the content is shown as `(content)`. */
export interface SmtpStep {
  readonly command: string;
  readonly reply: SmtpReply;
}

/** Outcome of {@link sendMail}. */
export interface SendMailResult {
  /** Whether the content got a 2xx reply. */
  readonly accepted: boolean;
  /** The reply to the content, or the reply that stopped the transaction before it. */
  readonly final: SmtpReply;
  readonly greeting: SmtpReply;
  /** Every command after the greeting and its reply, in order (QUIT not included). */
  readonly steps: readonly SmtpStep[];
}

/**
 * Sends one message: EHLO, MAIL, each RCPT, and DATA if a recipient was accepted, then QUIT. 4xx/5xx replies
 * are returned, not thrown; rejects only on connection trouble (`CONNECT_FAILED`, `TIMEOUT`, `SMTP_PROTOCOL`).
 */
export async function sendMail(options: SendMailOptions): Promise<SendMailResult> {
  const session = await SmtpClientSession.connect(options);
  const steps: SmtpStep[] = [];
  const step = async (command: string): Promise<SmtpReply> => {
    const reply = await session.command(command);
    steps.push({ command, reply });
    return reply;
  };
  const ok = (reply: SmtpReply): boolean => reply.code >= 200 && reply.code < 300;
  const done = async (final: SmtpReply): Promise<SendMailResult> => {
    await session.quit();
    return { accepted: steps.at(-1)?.command === '(content)' && ok(final), final, greeting: session.greeting, steps };
  };
  try {
    if (session.greeting.code !== 220) return await done(session.greeting);
    const ehlo = await step(`EHLO ${options.ehlo ?? 'client.test'}`);
    if (!ok(ehlo)) return await done(ehlo);
    const params = options.mailParams === undefined || options.mailParams === '' ? '' : ` ${options.mailParams}`;
    const mail = await step(`MAIL FROM:<${options.from}>${params}`);
    if (!ok(mail)) return await done(mail);
    let last = mail;
    let anyRecipient = false;
    for (const [index, recipient] of options.to.entries()) {
      const rcptParams = options.rcptParams?.[index];
      last = await step(`RCPT TO:<${recipient}>${rcptParams === undefined || rcptParams === '' ? '' : ` ${rcptParams}`}`);
      anyRecipient ||= ok(last);
    }
    if (!anyRecipient) return await done(last);
    const data = await step('DATA');
    if (data.code !== 354) return await done(data);
    const final = await session.content(options.data);
    steps.push({ command: '(content)', reply: final });
    return await done(final);
  } finally {
    session.close();
  }
}
