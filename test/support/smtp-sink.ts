/**
 * An in-process SMTP server for tests: the last hop of every real MTA under test. It announces PIPELINING,
 * 8BITMIME and SMTPUTF8 (so Postfix relays 8-bit and UTF-8 mail unconverted), un-dot-stuffs, and keeps each
 * accepted message's exact bytes and envelope, optionally also on disk as `N.eml` + `N.json`. It can be told
 * to refuse given recipients or the message content with a 4xx/5xx reply, for fault tests.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { HarnessError } from './errors.ts';
import { waitFor } from './processes.ts';
import { LineSplitter, lineText } from './smtp-lines.ts';

/** One message as the sink received it. */
export interface SinkMessage {
  /** Sequence number from 1, continuing after the `N.eml` files already in the store directory. */
  readonly index: number;
  /** The EHLO/HELO argument of the connection. */
  readonly ehlo: string;
  /** The reverse path, without angle brackets ('' for the null sender). */
  readonly mailFrom: string;
  /** Everything after the reverse path on the MAIL command (`BODY=8BITMIME SMTPUTF8`), trimmed. */
  readonly mailParams: string;
  /** Forward paths without angle brackets, in RCPT order (only the accepted ones). */
  readonly rcptTo: readonly string[];
  /** Everything after each forward path on its RCPT command (`NOTIFY=SUCCESS ORCPT=rfc822;x@y`), trimmed. */
  readonly rcptParams: readonly string[];
  /** The message content exactly, after un-dot-stuffing, including its final CRLF. */
  readonly data: Buffer;
}

/** Options of {@link SmtpSink.start}. */
export interface SmtpSinkOptions {
  /** Listen address; default 127.0.0.1. */
  readonly host?: string;
  /** Listen port; default 0 (ephemeral, read {@link SmtpSink.port}). */
  readonly port?: number;
  /** Name in the greeting and the EHLO reply; default `sink.test`. */
  readonly hostname?: string;
  /** If set, each accepted message is also written there as `N.eml` (bytes) and `N.json` (envelope). */
  readonly storeDir?: string;
  /** Also announce DSN (RFC 3461), so the client passes NOTIFY, ORCPT, ENVID and RET on; default false. */
  readonly dsn?: boolean;
}

/** A scripted refusal: `reply` is sent instead of the normal one, `remaining` more times. */
interface Fault {
  readonly reply: string;
  remaining: number;
}

/** Per-connection SMTP state. */
interface Session {
  ehlo: string;
  mailFrom: string | undefined;
  mailParams: string;
  rcptTo: string[];
  rcptParams: string[];
  /** Un-stuffed content lines while in DATA, else undefined. */
  data: Buffer[] | undefined;
}

const FAULT_REPLY = /^[45]\d\d(?: [^\r\n]*)?$/;
const MAIL_FROM = /^MAIL FROM:\s*(?:<([^>]*)>|(\S+))\s*(.*)$/i;
const RCPT_TO = /^RCPT TO:\s*(?:<([^>]*)>|(\S+))\s*(.*)$/i;

/** Checks a scripted reply: one line, 4xx or 5xx. */
function checkFaultReply(reply: string): void {
  if (!FAULT_REPLY.test(reply)) {
    throw new HarnessError('INVALID_ARGUMENT', `fault reply must be one 4xx/5xx line, got ${JSON.stringify(reply)}`);
  }
}

/** Takes one use of a fault, if any is left. */
function useFault(fault: Fault | undefined): string | undefined {
  if (fault === undefined || fault.remaining <= 0) return undefined;
  fault.remaining--;
  return fault.reply;
}

/** Highest `N` of the `N.eml` files in `dir` (0 when none). */
function lastStoredIndex(dir: string): number {
  let last = 0;
  for (const name of readdirSync(dir)) {
    const match = /^(\d+)\.eml$/.exec(name);
    if (match?.[1] !== undefined) last = Math.max(last, Number(match[1]));
  }
  return last;
}

/** The test SMTP server; create with {@link SmtpSink.start}. */
export class SmtpSink {
  private readonly received: SinkMessage[] = [];
  private readonly refused: SinkMessage[] = [];
  private readonly rcptFaults = new Map<string, Fault>();
  private dataFault: Fault | undefined;
  private readonly sockets = new Set<net.Socket>();
  private nextIndex: number;

  private constructor(
    private readonly server: net.Server,
    /** The address it listens on. */
    readonly host: string,
    /** The port it listens on. */
    readonly port: number,
    private readonly hostname: string,
    private readonly storeDir: string | undefined,
    private readonly dsn: boolean,
  ) {
    this.nextIndex = storeDir === undefined ? 1 : lastStoredIndex(storeDir) + 1;
    server.on('connection', (socket) => this.serve(socket));
  }

  /** Starts listening; rejects with `START_FAILED` if the port cannot be bound. */
  static async start(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
    const host = options.host ?? '127.0.0.1';
    if (options.storeDir !== undefined) mkdirSync(options.storeDir, { recursive: true });
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) => {
        const where = `${host}:${options.port ?? 0}`;
        reject(new HarnessError('START_FAILED', `SMTP sink cannot listen on ${where}: ${error.message}`, { cause: error }));
      });
      server.listen({ host, port: options.port ?? 0 }, resolve);
    });
    const address = server.address();
    if (address === null || typeof address === 'string') {
      throw new HarnessError('START_FAILED', 'SMTP sink has no TCP address');
    }
    return new SmtpSink(server, host, address.port, options.hostname ?? 'sink.test', options.storeDir, options.dsn ?? false);
  }

  /** Messages accepted so far by this sink (not counting files stored by an earlier one), in order. */
  get messages(): readonly SinkMessage[] {
    return this.received;
  }

  /** Messages whose content was refused by a {@link failData} fault, in order (`index` is 0: never stored). */
  get rejected(): readonly SinkMessage[] {
    return this.refused;
  }

  /** Waits until at least `count` messages were accepted, and returns them all. Rejects with `TIMEOUT`. */
  waitForCount(count: number, timeoutMs: number): Promise<readonly SinkMessage[]> {
    return waitFor(() => (this.received.length >= count ? [...this.received] : undefined), {
      timeoutMs,
      what: `${count} message(s) in the SMTP sink on port ${this.port} (have ${this.received.length})`,
    });
  }

  /**
   * Answers RCPT TO for `address` (compared case-insensitively) with `reply`, a single 4xx/5xx line such as
   * `550 5.1.1 No such user`, the next `times` times (default: always).
   */
  failRcpt(address: string, reply: string, times = Infinity): void {
    checkFaultReply(reply);
    this.rcptFaults.set(address.toLowerCase(), { reply, remaining: times });
  }

  /**
   * Answers the end of the message content with `reply` (4xx/5xx) the next `times` times (default: always);
   * such messages go to {@link rejected}, not {@link messages}.
   */
  failData(reply: string, times = Infinity): void {
    checkFaultReply(reply);
    this.dataFault = { reply, remaining: times };
  }

  /** Removes every scripted refusal. */
  clearFaults(): void {
    this.rcptFaults.clear();
    this.dataFault = undefined;
  }

  /** Drops every open connection and stops listening. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined); // A peer reset is not a test failure here.
    const session: Session = { ehlo: '', mailFrom: undefined, mailParams: '', rcptTo: [], rcptParams: [], data: undefined };
    const reply = (text: string): void => {
      if (!socket.destroyed) socket.write(`${text}\r\n`);
    };
    const splitter = new LineSplitter();
    reply(`220 ${this.hostname} ESMTP test sink`);
    socket.on('data', (chunk: Buffer) => {
      // Lines are handled strictly in order, so pipelined commands get their replies in order too.
      for (const line of splitter.push(chunk)) {
        if (session.data !== undefined) this.dataLine(session, line, reply);
        else this.command(session, lineText(line), reply, socket);
      }
    });
  }

  private command(session: Session, line: string, reply: (text: string) => void, socket: net.Socket): void {
    const verb = line.split(' ', 1)[0]?.toUpperCase() ?? '';
    const resetTransaction = (): void => {
      session.mailFrom = undefined;
      session.mailParams = '';
      session.rcptTo = [];
      session.rcptParams = [];
    };
    switch (verb) {
      case 'EHLO':
        resetTransaction();
        session.ehlo = line.slice(5).trim();
        reply(`250-${this.hostname}\r\n250-PIPELINING\r\n250-8BITMIME\r\n${this.dsn ? '250-DSN\r\n' : ''}250 SMTPUTF8`);
        return;
      case 'HELO':
        resetTransaction();
        session.ehlo = line.slice(5).trim();
        reply(`250 ${this.hostname}`);
        return;
      case 'MAIL': {
        const match = MAIL_FROM.exec(line);
        if (match === null) return reply('501 5.5.4 Syntax: MAIL FROM:<address>');
        if (session.mailFrom !== undefined) return reply('503 5.5.1 Error: nested MAIL command');
        session.mailFrom = match[1] ?? match[2] ?? '';
        session.mailParams = (match[3] ?? '').trim();
        return reply('250 2.1.0 Ok');
      }
      case 'RCPT': {
        const match = RCPT_TO.exec(line);
        if (match === null) return reply('501 5.5.4 Syntax: RCPT TO:<address>');
        if (session.mailFrom === undefined) return reply('503 5.5.1 Error: need MAIL command');
        const address = match[1] ?? match[2] ?? '';
        const refusal = useFault(this.rcptFaults.get(address.toLowerCase()));
        if (refusal !== undefined) return reply(refusal);
        session.rcptTo.push(address);
        session.rcptParams.push((match[3] ?? '').trim());
        return reply('250 2.1.5 Ok');
      }
      case 'DATA':
        if (session.rcptTo.length === 0) return reply('554 5.5.1 Error: no valid recipients');
        session.data = [];
        return reply('354 End data with <CR><LF>.<CR><LF>');
      case 'RSET':
        resetTransaction();
        return reply('250 2.0.0 Ok');
      case 'NOOP':
        return reply('250 2.0.0 Ok');
      case 'VRFY':
        return reply('252 2.0.0 Cannot verify');
      case 'QUIT':
        reply('221 2.0.0 Bye');
        socket.end();
        return;
      default:
        return reply('502 5.5.2 Error: command not recognized');
    }
  }

  private dataLine(session: Session, line: Buffer, reply: (text: string) => void): void {
    const content = session.data;
    if (content === undefined) return;
    // The terminator is a line holding only '.'; a bare-LF variant is accepted like Postfix does.
    if (line.length > 3 || lineText(line) !== '.') {
      content.push(line[0] === 0x2e ? line.subarray(1) : line);
      return;
    }
    session.data = undefined;
    const envelope = {
      ehlo: session.ehlo,
      mailFrom: session.mailFrom ?? '',
      mailParams: session.mailParams,
      rcptTo: session.rcptTo,
      rcptParams: session.rcptParams,
    };
    session.mailFrom = undefined;
    session.mailParams = '';
    session.rcptTo = [];
    session.rcptParams = [];
    const data = Buffer.concat(content);
    const refusal = useFault(this.dataFault);
    if (refusal !== undefined) {
      this.refused.push({ index: 0, ...envelope, data });
      return reply(refusal);
    }
    const message: SinkMessage = { index: this.nextIndex++, ...envelope, data };
    if (this.storeDir !== undefined) {
      // Written before the 250, so a test that saw the reply (or the count) finds the files.
      writeFileSync(join(this.storeDir, `${message.index}.eml`), data);
      const json = JSON.stringify({ index: message.index, ...envelope }, null, 2);
      writeFileSync(join(this.storeDir, `${message.index}.json`), `${json}\n`);
    }
    this.received.push(message);
    reply(`250 2.0.0 Ok: queued as ${message.index}`);
  }
}
