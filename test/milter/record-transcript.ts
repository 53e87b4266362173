/**
 * Records real Postfix→milter conversations, byte for byte, for the replay test
 * (`test/milter/postfix-transcript.test.ts`). Run by hand, as root, when the fixture is to be made again
 * (another Postfix version, another message):
 *
 *   node --import tsx test/milter/record-transcript.ts [OUTPUT.json]
 *
 * (default output: test/fixtures/milter/postfix-3.7-transcript.json). It starts an SMTP sink, a Postfix
 * instance, the example milters as programs, and a {@link MilterTap} in front of each milter: a TCP proxy
 * that cuts both directions into milter frames, forwards them unchanged and keeps them in order. Then it
 * sends one message per milter over SMTP (and one by local submission), waits for Postfix to close each
 * milter connection, and writes every frame hex-encoded, with the Postfix version and settings used.
 *
 * The tap is also used by the Postfix tests to put a fault into one conversation.
 *
 * Ports (127.0.0.1, this tool only): 12690 sink, 12691–12693 Postfix smtpd (stamp, reject-recipient,
 * observer), 12694 stamp milter, 12695 reject-recipient milter, 12696 observer milter, 12697–12699 taps.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { isMain } from '../../examples/run-example.ts';
import { CONTINUE, defineMilter, FrameDecoder, MilterServer, type MilterDefinition } from '../../milter/src/index.ts';
import { HarnessError } from '../support/errors.ts';
import { PostfixInstance } from '../support/postfix.ts';
import { runCommand, waitFor } from '../support/processes.ts';
import { sendMail, type SendMailResult } from '../support/smtp-client.ts';
import { SmtpSink } from '../support/smtp-sink.ts';
import { startExampleMilter, type ExampleMilter } from './conformance/example-milters.ts';

/** Which side sent a frame. */
export type FrameSource = 'mta' | 'milter';

/** One whole frame (length, command byte, data) as it crossed the tap. */
export interface TappedFrame {
  readonly from: FrameSource;
  readonly bytes: Buffer;
}

/** One milter connection seen by the tap. */
export interface TappedConversation {
  /** Frames of both directions in the order the tap received them. */
  readonly frames: TappedFrame[];
  /** Settles when both sockets of the conversation are closed. */
  readonly closed: Promise<void>;
}

/**
 * Decides what the tap forwards for a frame: the frame's bytes unchanged, or other bytes (a fault).
 * `conversation` counts the tap's connections from 0.
 */
export type FrameRewriter = (frame: TappedFrame, conversation: number) => Buffer;

/** Options of {@link MilterTap.start}. */
export interface MilterTapOptions {
  /** Port on 127.0.0.1 the MTA connects to. */
  readonly port: number;
  /** Port on 127.0.0.1 of the real milter. */
  readonly targetPort: number;
  /** Changes frames on their way (default: none). */
  readonly rewrite?: FrameRewriter;
}

/** Generous frame limit: Postfix sends at most 65,535 body bytes per frame, and so do our replies. */
const TAP_MAX_FRAME = 1024 * 1024 + 1;

/**
 * A TCP proxy between an MTA and a milter that keeps every frame. It forwards whole frames, so a frame's
 * bytes are never changed (unless a {@link FrameRewriter} says so) but TCP segments may be cut differently.
 */
export class MilterTap {
  private readonly tapped: TappedConversation[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    /** The address to give the MTA, in Postfix's syntax. */
    readonly address: string,
    private readonly options: MilterTapOptions,
  ) {
    server.on('connection', (socket) => this.splice(socket));
  }

  /** Listens on 127.0.0.1:`port`; rejects with `START_FAILED` when the port cannot be bound. */
  static async start(options: MilterTapOptions): Promise<MilterTap> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) =>
        reject(new HarnessError('START_FAILED', `milter tap cannot listen on 127.0.0.1:${options.port}: ${error.message}`, { cause: error })),
      );
      server.listen({ host: '127.0.0.1', port: options.port }, resolve);
    });
    return new MilterTap(server, `inet:127.0.0.1:${options.port}`, options);
  }

  /** The conversations so far, in the order they were opened. */
  get conversations(): readonly TappedConversation[] {
    return this.tapped;
  }

  /**
   * Waits until a conversation for which `matches` holds has been seen and is over (both sockets closed),
   * and returns it. Rejects with `TIMEOUT`.
   */
  async waitForConversation(matches: (conversation: TappedConversation) => boolean, timeoutMs: number): Promise<TappedConversation> {
    const deadline = Date.now() + timeoutMs;
    const found = await waitFor(() => this.tapped.find(matches), { timeoutMs, what: `a matching milter connection through ${this.address}` });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new HarnessError('TIMEOUT', `the milter connection through ${this.address} was still open after ${timeoutMs} ms`)),
        Math.max(0, deadline - Date.now()),
      );
    });
    try {
      await Promise.race([found.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return found;
  }

  /** Drops every open connection and stops listening. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private splice(mta: net.Socket): void {
    const index = this.tapped.length;
    const frames: TappedFrame[] = [];
    const milter = net.connect({ host: '127.0.0.1', port: this.options.targetPort });
    for (const socket of [mta, milter]) {
      this.sockets.add(socket);
      socket.setNoDelay(true);
    }
    const whenClosed = (socket: net.Socket): Promise<void> =>
      new Promise((resolve) => {
        socket.once('close', () => {
          this.sockets.delete(socket);
          resolve();
        });
      });
    this.tapped.push({ frames, closed: Promise.all([whenClosed(mta), whenClosed(milter)]).then(() => undefined) });
    const pump = (from: FrameSource, source: net.Socket, sink: net.Socket): void => {
      const decoder = new FrameDecoder({ maxFrameSize: TAP_MAX_FRAME });
      const forward = (chunk: Buffer): void => {
        for (const frame of decoder.push(chunk)) {
          const length = Buffer.alloc(4);
          length.writeUInt32BE(frame.data.length + 1);
          const tappedFrame: TappedFrame = { from, bytes: Buffer.concat([length, Buffer.from(frame.code, 'latin1'), frame.data]) };
          frames.push(tappedFrame);
          if (!sink.destroyed) sink.write(this.options.rewrite?.(tappedFrame, index) ?? tappedFrame.bytes);
        }
      };
      source.on('data', (chunk: Buffer) => {
        try {
          forward(chunk);
        } catch {
          // Not milter framing at all: nothing sensible can be forwarded.
          mta.destroy();
          milter.destroy();
        }
      });
      // One side hanging up ends the conversation on the other side too, as a direct connection would,
      // after what was already forwarded (a last reply, say) has been written.
      source.on('close', () => sink.destroySoon());
      source.on('error', () => sink.destroy());
    };
    pump('mta', mta, milter);
    pump('milter', milter, mta);
  }
}

/** One frame in the fixture: who sent it, its command or reply code (for reading), and its bytes in hex. */
export interface TranscriptFrame {
  readonly from: FrameSource;
  readonly code: string;
  readonly hex: string;
}

/** One recorded milter connection. */
export interface TranscriptConversation {
  /** `stamp-milter`, `reject-recipient-milter`, `observer`, `observer-local-submission`. */
  readonly name: string;
  /** What ran behind the tap and how the message was submitted. */
  readonly description: string;
  /** The SMTP dialogue (or the sendmail command) that caused the conversation, as `command -> reply`. */
  readonly submission: readonly string[];
  readonly frames: readonly TranscriptFrame[];
}

/** The fixture file. */
export interface Transcript {
  /** How the frames are written. */
  readonly format: string;
  readonly recordedWith: string;
  readonly postfixVersion: string;
  /** `postconf -n` of the instance, with its instance-specific paths replaced by `<instance>`. */
  readonly postconf: readonly string[];
  /** The extra smtpd listeners appended to master.cf. */
  readonly masterCf: readonly string[];
  readonly conversations: readonly TranscriptConversation[];
}

/** The recipient the reject-recipient milter refuses, in the recording and in the tests. */
export const REFUSED_RECIPIENT = 'refused@example.test';

/** The default fixture path. */
export const DEFAULT_TRANSCRIPT_PATH = fileURLToPath(new URL('../fixtures/milter/postfix-3.7-transcript.json', import.meta.url));

/** Reads a transcript fixture. */
export function readTranscript(path: string = DEFAULT_TRANSCRIPT_PATH): Transcript {
  return JSON.parse(readFileSync(path, 'utf8')) as Transcript;
}

/** A fixture frame's bytes. */
export function frameBytes(frame: TranscriptFrame): Buffer {
  return Buffer.from(frame.hex, 'hex');
}

/**
 * A filter that takes part in every step Postfix can send in a plain SMTP transaction and changes nothing,
 * asking for no macros: its conversation shows Postfix's full command order and default macro lists.
 */
export function observerMilter(): MilterDefinition {
  return defineMilter({
    name: 'observer',
    observe: ['connect', 'helo', 'mail', 'rcpt', 'data', 'header', 'eoh', 'body'],
    createHandler: () => ({ endOfMessage: () => ({ verdict: CONTINUE }) }),
  });
}

const SINK_PORT = 12690;
const SMTPD_STAMP_PORT = 12691;
const SMTPD_REJECT_PORT = 12692;
const SMTPD_OBSERVER_PORT = 12693;
const STAMP_PORT = 12694;
const REJECT_PORT = 12695;
const OBSERVER_PORT = 12696;
const STAMP_TAP_PORT = 12697;
const REJECT_TAP_PORT = 12698;
const OBSERVER_TAP_PORT = 12699;
const WAIT_MS = 30_000;
/** SMFIC_BODYEOB, the command byte of end of message. */
const END_OF_MESSAGE = 0x45;

/** The milter settings of the recording instance (the harness adds its loopback-relay defaults). */
const RECORDING_SETTINGS: Record<string, string> = {
  transport_maps: `inline:{ example.test=smtp:[127.0.0.1]:${SINK_PORT} }`,
  smtpd_milters: `inet:127.0.0.1:${STAMP_TAP_PORT}`,
  non_smtpd_milters: `inet:127.0.0.1:${OBSERVER_TAP_PORT}`,
  milter_protocol: '6',
  milter_default_action: 'tempfail',
  milter_connect_timeout: '10s',
  milter_command_timeout: '30s',
  milter_content_timeout: '120s',
};
const RECORDING_MASTER_LINES = [
  `127.0.0.1:${SMTPD_REJECT_PORT} inet n - n - - smtpd`,
  `  -o smtpd_milters=inet:127.0.0.1:${REJECT_TAP_PORT}`,
  `127.0.0.1:${SMTPD_OBSERVER_PORT} inet n - n - - smtpd`,
  `  -o smtpd_milters=inet:127.0.0.1:${OBSERVER_TAP_PORT}`,
];

/** A small message with a folded header, a header without a space after the colon, and a dot line. */
function smallMessage(subject: string): Buffer {
  return Buffer.from(
    `From: Alice <alice@sender.test>\r\nTo: Bob <bob@example.test>\r\nSubject: ${subject}\r\n` +
      'Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <transcript@sender.test>\r\n' +
      'X-Folded: first part\r\n\tsecond part\r\nX-Tight:no space\r\n\r\n' +
      'Hello Bob,\r\n.a line with a leading dot\r\n\r\nbye\r\n',
  );
}

/** A message whose body is just over one body chunk (65,535 bytes), to show how Postfix cuts it. */
function largeMessage(): Buffer {
  const line = `${'0123456789'.repeat(7)}\r\n`;
  return Buffer.concat([smallMessage('large'), Buffer.from(line.repeat(Math.ceil(70_000 / line.length)))]);
}

/** The SMTP dialogue of a sendMail result, one `command -> reply` line per step, queue ids kept. */
function dialogue(result: SendMailResult): string[] {
  return result.steps.map((step) => `${step.command} -> ${step.reply.code} ${step.reply.lines.join(' / ')}`);
}

/** `postconf -n` lines with the instance directory replaced, so the fixture does not name a temp dir. */
async function postconfLines(postfix: PostfixInstance): Promise<string[]> {
  const result = await runCommand('/usr/sbin/postconf', ['-c', postfix.configDir, '-n'], { timeoutMs: 10_000 });
  if (result.code !== 0) throw new HarnessError('COMMAND_FAILED', `postconf -n failed: ${result.stderr}`);
  return result.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.replaceAll(postfix.dir, '<instance>'));
}

/** Converts tapped frames to fixture frames. */
function toTranscriptFrames(conversation: TappedConversation): TranscriptFrame[] {
  return conversation.frames.map((frame) => ({ from: frame.from, code: String.fromCharCode(frame.bytes[4] as number), hex: frame.bytes.toString('hex') }));
}

/** Runs the whole recording and returns the transcript; everything started is stopped again. */
export async function recordTranscript(): Promise<Transcript> {
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const sink = await SmtpSink.start({ port: SINK_PORT });
    cleanups.push(() => sink.close());
    const milters: ExampleMilter[] = [
      await startExampleMilter('stamp-milter', `inet:127.0.0.1:${STAMP_PORT}`),
      await startExampleMilter('reject-recipient-milter', `inet:127.0.0.1:${REJECT_PORT}`, { env: { REJECT_RECIPIENTS: REFUSED_RECIPIENT } }),
    ];
    for (const milter of milters) cleanups.push(() => milter.stop());
    const observer = await MilterServer.start(observerMilter(), { listen: `inet:127.0.0.1:${OBSERVER_PORT}` });
    cleanups.push(() => observer.close(5_000));
    const stampTap = await MilterTap.start({ port: STAMP_TAP_PORT, targetPort: STAMP_PORT });
    const rejectTap = await MilterTap.start({ port: REJECT_TAP_PORT, targetPort: REJECT_PORT });
    const observerTap = await MilterTap.start({ port: OBSERVER_TAP_PORT, targetPort: OBSERVER_PORT });
    for (const tap of [stampTap, rejectTap, observerTap]) cleanups.push(() => tap.close());
    const postfix = await PostfixInstance.start({ smtpPort: SMTPD_STAMP_PORT, settings: RECORDING_SETTINGS, masterLines: RECORDING_MASTER_LINES });
    cleanups.push(() => postfix.stop());

    const conversations: TranscriptConversation[] = [];
    const kept = new Set<TappedConversation>();
    /**
     * Keeps the next conversation of `tap` that reached end of message. Others are left out: the harness's
     * readiness probe of the SMTP port opens an SMTP session too, and Postfix opens a milter connection
     * for it that ends after the connect macros.
     */
    const record = async (name: string, description: string, tap: MilterTap, submission: string[]): Promise<void> => {
      const conversation = await tap.waitForConversation(
        (candidate) => !kept.has(candidate) && candidate.frames.some((frame) => frame.from === 'mta' && frame.bytes[4] === END_OF_MESSAGE),
        WAIT_MS,
      );
      kept.add(conversation);
      conversations.push({ name, description, submission, frames: toTranscriptFrames(conversation) });
    };

    const stamp = await sendMail({ port: SMTPD_STAMP_PORT, from: 'alice@sender.test', to: ['bob@example.test'], data: smallMessage('stamp'), ehlo: 'client.test' });
    await record('stamp-milter', 'examples/stamp-milter.ts as a program, message over SMTP', stampTap, dialogue(stamp));

    const reject = await sendMail({
      port: SMTPD_REJECT_PORT,
      from: 'alice@sender.test',
      to: [REFUSED_RECIPIENT, 'bob@example.test'],
      data: smallMessage('reject'),
      ehlo: 'client.test',
    });
    await record(
      'reject-recipient-milter',
      `examples/reject-recipient-milter.ts as a program with REJECT_RECIPIENTS=${REFUSED_RECIPIENT}, message over SMTP to two recipients`,
      rejectTap,
      dialogue(reject),
    );

    const large = await sendMail({ port: SMTPD_OBSERVER_PORT, from: 'alice@sender.test', to: ['bob@example.test'], data: largeMessage(), ehlo: 'client.test' });
    await record('observer', 'observerMilter() of this file (every step, no macro lists), message with a 70 KB body over SMTP', observerTap, dialogue(large));

    const local = await postfix.sendmailCommand(['-f', 'carol@sender.test', 'dave@example.test'], smallMessage('local').toString('latin1').replaceAll('\r\n', '\n'));
    if (local.code !== 0) throw new HarnessError('COMMAND_FAILED', `sendmail exited with ${local.code}: ${local.stderr}`);
    await record(
      'observer-local-submission',
      'observerMilter() as non_smtpd_milters, the small message by local submission',
      observerTap,
      ['sendmail -f carol@sender.test dave@example.test (LF line ends) -> exit 0'],
    );

    await sink.waitForCount(4, WAIT_MS);
    const version = await runCommand('/usr/sbin/postconf', ['-h', '-c', postfix.configDir, 'mail_version'], { timeoutMs: 10_000 });
    return {
      format:
        'each conversation lists every frame of one milter connection in the order the tap received it; ' +
        'hex = 4-byte big-endian length, command or reply byte, data; from = the side that sent it',
      recordedWith: 'node --import tsx test/milter/record-transcript.ts',
      postfixVersion: version.stdout.trim(),
      postconf: await postconfLines(postfix),
      masterCf: RECORDING_MASTER_LINES,
      conversations,
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
}

if (isMain(import.meta.url)) {
  const output = process.argv[2] ?? DEFAULT_TRANSCRIPT_PATH;
  const transcript = await recordTranscript();
  writeFileSync(output, `${JSON.stringify(transcript, null, 2)}\n`);
  process.stdout.write(`wrote ${transcript.conversations.length} conversations (Postfix ${transcript.postfixVersion}) to ${output}\n`);
}
