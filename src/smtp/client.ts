/**
 * A small SMTP client for handing a message to the local MTA (the re-injection of split copies).
 * Every step is bounded in time; the message is streamed; anything but full acceptance is an error, so
 * a caller never believes a copy was queued when it was not.
 */
import { connect, type Socket } from 'node:net';
import { DotStuffer } from './dot-stuffing.ts';
import { extensionOf, formatEsmtpParameter, type EsmtpParameter } from './parameters.ts';

/** A failure with the SMTP reply that caused it (code 0 when there was no reply: network or timeout). */
export class SmtpError extends Error {
  override readonly name = 'SmtpError';
  constructor(
    readonly stage: string,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** What to send where. */
export interface Submission {
  host: string;
  port: number;
  heloName: string;
  /** Milliseconds allowed for each reply (the whole DATA transfer counts as one step). */
  timeout: number;
  /** Envelope sender without angle brackets ('' for the null sender), a binary string (one character per byte). */
  sender: string;
  /** Envelope recipients without angle brackets, binary strings. */
  recipients: readonly string[];
  /** ESMTP parameters for MAIL FROM (src/smtp/parameters.ts), besides the BODY this client chooses. */
  mailParameters?: readonly EsmtpParameter[];
  /** ESMTP parameters for each RCPT TO, in the order of {@link recipients}. */
  recipientParameters?: ReadonlyArray<readonly EsmtpParameter[]>;
  /** The message bytes (headers and body, CRLF line ends). */
  message: Buffer | AsyncIterable<Buffer>;
}

/** The MTA's final reply to the message, e.g. `250 2.0.0 Ok: queued as 4F2A1`. */
export interface SubmissionResult {
  reply: string;
}

/** Reads SMTP replies (possibly multi-line) off a socket. */
class ReplyReader {
  private buffer = '';
  private readonly ready: string[] = [];
  private waiter: ((reply: string | Error) => void) | undefined;
  private failure: Error | undefined;

  constructor(socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => this.feed(text));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('connection closed by the server')));
  }

  next(stage: string, timeout: number): Promise<{ code: number; text: string }> {
    return new Promise((resolve, reject) => {
      const settle = (reply: string | Error): void => {
        clearTimeout(timer);
        if (reply instanceof Error) reject(new SmtpError(stage, 0, `${stage}: ${reply.message}`));
        else resolve({ code: Number(reply.slice(0, 3)), text: reply });
      };
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new SmtpError(stage, 0, `${stage}: no reply within ${timeout} ms`));
      }, timeout);
      const ready = this.ready.shift();
      if (ready !== undefined) settle(ready);
      else if (this.failure !== undefined) settle(this.failure);
      else this.waiter = settle;
    });
  }

  private feed(text: string): void {
    this.buffer += text;
    let lines: string[] = [];
    for (let end = this.buffer.indexOf('\n'); end >= 0; end = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, end).replace(/\r$/, '');
      this.buffer = this.buffer.slice(end + 1);
      lines.push(line);
      // The last line of a reply has a space (or nothing) after the code; "250-" lines continue.
      if (line.length < 4 || line[3] !== '-') {
        this.deliver(lines.join('\n'));
        lines = [];
      }
    }
    if (lines.length > 0) this.buffer = `${lines.join('\n')}\n${this.buffer}`;
  }

  private deliver(reply: string): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter !== undefined) waiter(reply);
    else this.ready.push(reply);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(this.failure);
  }
}

/** Writes bytes; a string is a binary string (one character per byte), so UTF-8 addresses go out as received. */
function write(socket: Socket, data: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, (error) => (error ? reject(error) : resolve()));
  });
}

/** The EHLO keywords a server announced (upper case). */
function announcedExtensions(ehlo: string): Set<string> {
  const keywords = new Set<string>();
  for (const line of ehlo.split('\n').slice(1)) keywords.add((line.slice(4).split(' ')[0] ?? '').toUpperCase());
  return keywords;
}

/**
 * The parameters written after an address. A parameter whose extension the server did not announce fails the
 * submission: sending the copy without it would change what the sender asked for (a DSN, UTF-8 addresses).
 */
function parameterText(stage: string, command: 'mail' | 'rcpt', parameters: readonly EsmtpParameter[], announced: ReadonlySet<string>): string {
  let text = '';
  for (const parameter of parameters) {
    const extension = extensionOf(command, parameter);
    if (!announced.has(extension)) throw new SmtpError(stage, 0, `${stage}: the server does not announce ${extension}, needed for ${parameter.keyword}`);
    text += ` ${formatEsmtpParameter(parameter)}`;
  }
  return text;
}

/**
 * Submits one message. Resolves only when the server accepted every recipient and the message
 * itself; rejects with {@link SmtpError} otherwise (the server keeps nothing of a failed submission,
 * because the transaction is never completed).
 */
export async function submitMessage(submission: Submission): Promise<SubmissionResult> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ host: submission.host, port: submission.port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new SmtpError('connect', 0, `connect: no connection to ${submission.host}:${submission.port} within ${submission.timeout} ms`));
    }, submission.timeout);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (error) => {
      clearTimeout(timer);
      reject(new SmtpError('connect', 0, `connect: ${error.message}`));
    });
  });
  const replies = new ReplyReader(socket);
  const expect = async (stage: string, accepted: (code: number) => boolean): Promise<string> => {
    const reply = await replies.next(stage, submission.timeout);
    if (!accepted(reply.code)) throw new SmtpError(stage, reply.code, `${stage}: ${reply.text.replace(/\n/g, ' | ')}`);
    return reply.text;
  };
  try {
    await expect('greeting', (c) => c === 220);
    await write(socket, `EHLO ${submission.heloName}\r\n`);
    const ehlo = await expect('EHLO', (c) => c === 250);
    const announced = announcedExtensions(ehlo);
    const eightBit = announced.has('8BITMIME');
    const mailParameters = parameterText('MAIL FROM', 'mail', submission.mailParameters ?? [], announced);
    await write(socket, `MAIL FROM:<${submission.sender}>${eightBit ? ' BODY=8BITMIME' : ''}${mailParameters}\r\n`);
    await expect('MAIL FROM', (c) => c === 250);
    for (const [index, recipient] of submission.recipients.entries()) {
      const rcptParameters = parameterText(`RCPT TO ${recipient}`, 'rcpt', submission.recipientParameters?.[index] ?? [], announced);
      await write(socket, `RCPT TO:<${recipient}>${rcptParameters}\r\n`);
      await expect(`RCPT TO ${recipient}`, (c) => c === 250 || c === 251);
    }
    await write(socket, 'DATA\r\n');
    await expect('DATA', (c) => c === 354);
    const stuffer = new DotStuffer();
    const chunks: AsyncIterable<Buffer> | Iterable<Buffer> = Buffer.isBuffer(submission.message) ? [submission.message] : submission.message;
    for await (const chunk of chunks) await write(socket, stuffer.push(chunk));
    await write(socket, stuffer.end());
    const queued = await expect('end of data', (c) => c === 250);
    await write(socket, 'QUIT\r\n').catch(() => undefined);
    return { reply: queued };
  } finally {
    socket.destroy();
  }
}
