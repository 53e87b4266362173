/**
 * The load generator: the MTA side of the milter protocol, spoken by the milter library's client exactly as
 * Postfix speaks it (its option offer, macros and command order), over N concurrent connections.
 *
 * Each connection is one SMTP session: CONNECT and HELO once, then messages back to back (MAIL … end of
 * message, then ABORT, as Postfix's smtpd resets every transaction), and a fresh connection every
 * `messagesPerConnection` messages. The latency of a message is what the milter adds to the SMTP
 * transaction: from MAIL until the final reply to end of message, body transfer included.
 *
 * Three ways to load: for a duration (closed loop, every connection sends its next message as soon as the
 * previous one is answered; results of a warm-up period are dropped), for a count of messages (closed loop),
 * or paced (open loop: messages start at a fixed rate on whichever connection is idle). Any of them can also be
 * ended from outside (an abort signal), as the hostile-load phase ends its hostile streams.
 */
import { MAX_BODY_CHUNK, MilterClient, type EndOfMessageReply, type Transaction } from '../milter/src/index.ts';
import type { BenchMessage } from './messages.ts';
import { percentile, round, type RunCounts } from './stats.ts';

/** Judges one end-of-message reply: undefined when it is what the milter should answer, else why not. */
export type ReplyCheck = (reply: EndOfMessageReply) => string | undefined;

/** What to send, where, and for how long. */
export interface LoadOptions {
  /** Milter address in Postfix's syntax: `unix:/path` or `inet:127.0.0.1:PORT`. */
  readonly address: string;
  readonly connections: number;
  /** Message number `index` (0, 1, 2, …); called once per message sent. */
  readonly message: (index: number) => BenchMessage;
  /** Stop after this many messages (warm-up excluded). */
  readonly count?: number;
  /** Or: keep sending for this long, milliseconds (after the warm-up). */
  readonly durationMs?: number;
  /** Milliseconds of load whose results are dropped, so caches and the JIT are warm. Default 0. */
  readonly warmupMs?: number;
  /** Open loop: messages per second, started at fixed intervals. Needs `durationMs`. */
  readonly rate?: number;
  /** Messages per connection before it is closed and reopened. Default 10. */
  readonly messagesPerConnection?: number;
  /** Checks every reply; a message it objects to counts as an error. */
  readonly check?: ReplyCheck;
  /** Milliseconds the client waits for each reply. Default 120 s (large messages). */
  readonly replyTimeoutMs?: number;
  /**
   * Count a message started inside the measured window whose reply comes after the window ends (otherwise it is
   * dropped): a paced load must not lose its slowest messages from its percentiles.
   */
  readonly lateReplies?: boolean;
  /** Ends the load when aborted (no new message starts; those under way finish). */
  readonly signal?: AbortSignal;
  /**
   * Open every connection (CONNECT, HELO) before the first message, and call this once they all are. With
   * `messagesPerConnection: Infinity` the load then holds exactly `connections` milter connections throughout.
   */
  readonly onConnected?: () => void;
  /** Called once the last message is answered, before any connection is closed. */
  readonly onFinished?: () => void;
}

/** Latency figures, milliseconds. */
export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** What a load run measured (errors: replies the check refused, or connections that failed). */
export interface LoadResult extends RunCounts {
  readonly latencyMs: LatencySummary;
  /** Paced runs: how late messages started against their schedule, p99 in milliseconds (0 otherwise). */
  readonly scheduleLagP99Ms: number;
  /** Final replies by kind (`continue`, `accept`, …; a reply code by its codes, `reply 451 4.3.4`). */
  readonly verdicts: Readonly<Record<string, number>>;
}

/** One finished message. */
interface Sample {
  readonly start: number;
  readonly end: number;
  readonly bytes: number;
  readonly lag: number;
  readonly error: string | undefined;
  readonly verdict: string;
}

/** A connection that carries messages one after another, reopened every few messages. */
class Session {
  private client: MilterClient | undefined;
  private sent = 0;

  constructor(
    private readonly address: string,
    private readonly perConnection: number,
    private readonly replyTimeout: number,
  ) {}

  /**
   * Sends one message; resolves with its end-of-message reply and when the MTA began it (MAIL). Opening the
   * connection (and its SMTP session) before, and closing it after every few messages, are not part of the
   * message's time: the added latency is MAIL to the final reply, as an MTA's transaction sees it.
   */
  async send(transaction: Transaction): Promise<{ reply: EndOfMessageReply; began: number; ended: number }> {
    const client = await this.open(transaction);
    const began = performance.now();
    try {
      const reply = await sendTransaction(client, transaction);
      return { reply, began, ended: performance.now() };
    } finally {
      this.sent++;
      if (this.sent >= this.perConnection) await this.close();
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.sent = 0;
    await client?.close();
  }

  /** Opens the connection and its SMTP session now, with the client and HELO of `transaction`. */
  async connect(transaction: Transaction): Promise<void> {
    await this.open(transaction);
  }

  private async open(transaction: Transaction): Promise<MilterClient> {
    if (this.client !== undefined) return this.client;
    const client = await MilterClient.connect(this.address, { replyTimeout: this.replyTimeout });
    const macros = transaction.macros ?? {};
    if (transaction.client !== undefined) await expectContinue(client.connect(transaction.client, macros), 'connect');
    await expectContinue(client.helo(transaction.helo ?? 'client.bench.test', macros), 'helo');
    this.client = client;
    return client;
  }
}

async function expectContinue(step: Promise<{ reply: { kind: string } }>, name: string): Promise<void> {
  const { reply } = await step;
  if (reply.kind !== 'continue') throw new Error(`${name} answered ${reply.kind}`);
}

/** MAIL through end of message, then ABORT, as Postfix's smtpd sends them. */
async function sendTransaction(client: MilterClient, transaction: Transaction): Promise<EndOfMessageReply> {
  const macros = transaction.macros ?? {};
  try {
    await expectContinue(client.mailFrom(transaction.sender, transaction.senderParameters ?? [], macros), 'MAIL');
    for (const recipient of transaction.recipients) await expectContinue(client.rcptTo(recipient, [], macros), `RCPT ${recipient}`);
    await expectContinue(client.data(macros), 'DATA');
    for (const header of transaction.headers) await expectContinue(client.header(header.name, header.value, macros), 'header');
    await expectContinue(client.endOfHeaders(macros), 'end of headers');
    for (let offset = 0; offset < transaction.body.length; offset += MAX_BODY_CHUNK) {
      const { reply } = await client.body(transaction.body.subarray(offset, offset + MAX_BODY_CHUNK), macros);
      if (reply.kind === 'skip') break;
      if (reply.kind !== 'continue') throw new Error(`body answered ${reply.kind}`);
    }
    return await client.endOfMessage(macros);
  } finally {
    client.abort();
  }
}

function summarise(samples: readonly Sample[], elapsedMs: number): LoadResult {
  const ok = samples.filter((s) => s.error === undefined);
  const latencies = ok.map((s) => s.end - s.start).sort((a, b) => a - b);
  const lags = samples.map((s) => s.lag).sort((a, b) => a - b);
  const verdicts: Record<string, number> = {};
  for (const s of samples) verdicts[s.verdict] = (verdicts[s.verdict] ?? 0) + 1;
  const errors = samples.filter((s) => s.error !== undefined);
  const seconds = elapsedMs / 1000;
  return {
    messages: ok.length,
    errors: errors.length,
    errorSamples: [...new Set(errors.map((s) => s.error as string))].slice(0, 5),
    elapsedMs: round(elapsedMs, 1),
    messagesPerSecond: round(ok.length / seconds, 1),
    bytesPerSecond: Math.round(ok.reduce((sum, s) => sum + s.bytes, 0) / seconds),
    latencyMs: {
      p50: round(percentile(latencies, 50), 3),
      p90: round(percentile(latencies, 90), 3),
      p99: round(percentile(latencies, 99), 3),
      max: round(latencies.at(-1) ?? Number.NaN, 3),
      mean: round(latencies.reduce((a, b) => a + b, 0) / latencies.length, 3),
    },
    scheduleLagP99Ms: round(lags.length === 0 ? 0 : percentile(lags, 99), 3),
    verdicts,
  };
}

/** The label of a final reply in {@link LoadResult.verdicts}. */
export function verdictLabel(reply: EndOfMessageReply): string {
  const verdict = reply.verdict;
  if (verdict.kind !== 'replyCode') return verdict.kind;
  // An SMTP reply: its basic and enhanced status codes (RFC 5321, RFC 3463), without the text.
  const [code, status] = verdict.reply.split(/[ -]/, 2);
  return `reply ${code ?? ''} ${status ?? ''}`.trimEnd();
}

/** Runs one load and measures it. Every connection is closed when it returns. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  if (options.count === undefined && options.durationMs === undefined && options.signal === undefined) throw new Error('runLoad needs count, durationMs or signal');
  if (options.rate !== undefined && options.durationMs === undefined) throw new Error('a paced load needs durationMs');
  const sessions = Array.from(
    { length: options.connections },
    () => new Session(options.address, options.messagesPerConnection ?? 10, options.replyTimeoutMs ?? 120_000),
  );
  const closeAll = (): Promise<unknown> => Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
  if (options.onConnected !== undefined) {
    // Connections are opened before the clock starts: their set-up is no message's time, nor the schedule's.
    // Connection i is opened with message i's client: a load from several SMTP clients keeps them apart.
    try {
      await Promise.all(sessions.map((session, i) => session.connect(options.message(i).transaction)));
    } catch (error) {
      await closeAll();
      throw error;
    }
    options.onConnected();
  }
  const warmupMs = options.warmupMs ?? 0;
  const started = performance.now();
  const measureFrom = started + warmupMs;
  const stopAt = options.durationMs === undefined ? Number.POSITIVE_INFINITY : measureFrom + options.durationMs;
  const samples: Sample[] = [];
  let next = 0;
  let measured = 0;

  const one = async (session: Session, scheduled: number): Promise<void> => {
    const index = next++;
    const message = options.message(index);
    let start = performance.now();
    let end: number;
    let error: string | undefined;
    let verdict = 'none';
    try {
      const sent = await session.send(message.transaction);
      ({ began: start, ended: end } = sent);
      verdict = verdictLabel(sent.reply);
      error = options.check?.(sent.reply);
    } catch (failure) {
      end = performance.now();
      error = (failure as Error).message;
      await session.close().catch(() => undefined);
    }
    if (start >= measureFrom && (end <= stopAt || (options.lateReplies === true && start < stopAt))) {
      samples.push({ start, end, bytes: message.raw.length, lag: Math.max(0, start - scheduled), error, verdict });
    }
  };
  const wanted = (): boolean => {
    if (options.signal?.aborted === true) return false;
    const now = performance.now();
    if (now >= stopAt) return false;
    if (options.count !== undefined && now >= measureFrom) return measured++ < options.count;
    return true;
  };

  try {
    if (options.rate === undefined) {
      await Promise.all(
        sessions.map(async (session) => {
          while (wanted()) await one(session, performance.now());
        }),
      );
    } else {
      await paced(sessions, options.rate, stopAt, started, one, options.signal);
    }
  } finally {
    options.onFinished?.();
    await closeAll();
  }
  const last = samples.reduce((max, s) => Math.max(max, s.end), measureFrom);
  const window = options.durationMs ?? last - measureFrom;
  return summarise(samples, window);
}

/**
 * Open loop: message k starts at `started + k / rate` on an idle connection (or as soon as one is free). The idle
 * connection that has waited longest is taken, so the messages go round the connections: each connection's SMTP
 * client (the inbound load's peer servers) sends its part of the load, not the one connection freed last all of it.
 */
async function paced(
  sessions: readonly Session[],
  rate: number,
  stopAt: number,
  started: number,
  one: (session: Session, scheduled: number) => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const idle = [...sessions];
  const waiting: Array<(session: Session) => void> = [];
  const running = new Set<Promise<void>>();
  const release = (session: Session): void => {
    const taker = waiting.shift();
    if (taker !== undefined) taker(session);
    else idle.push(session);
  };
  for (let k = 0; ; k++) {
    const scheduled = started + (k * 1000) / rate;
    if (scheduled >= stopAt || signal?.aborted === true) break;
    const delay = scheduled - performance.now();
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const session = idle.shift() ?? (await new Promise<Session>((resolve) => waiting.push(resolve)));
    const job = one(session, scheduled).finally(() => {
      running.delete(job);
      release(session);
    });
    running.add(job);
  }
  await Promise.all(running);
}
