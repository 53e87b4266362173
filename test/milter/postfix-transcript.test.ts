/**
 * Replays real Postfix 3.7 milter conversations, recorded by `test/milter/record-transcript.ts` into
 * `test/fixtures/milter/postfix-3.7-transcript.json`, against this library from both sides:
 *
 * - filter side: every frame Postfix sent goes through our frame decoder and command decoder into a
 *   `MilterSession` running the same milter, and our replies must equal the recorded replies byte for byte;
 * - MTA side: `MtaConversation`, fed the recorded replies, must send what Postfix sent: the same OPTNEG
 *   bytes (also through a real `MilterClient` socket), the same commands byte for byte in the same order,
 *   and macro frames for the same commands with the same macro names (values may differ: one value per
 *   name is given to `sendMessage`).
 *
 * It also pins down what Postfix sends when (macro lists per command, header and body form), as documentation
 * checked against the recording.
 *
 * Ports: one ephemeral 127.0.0.1 port (a fake filter that captures MilterClient's OPTNEG). Nothing else is started.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { describe, test } from 'node:test';
import { rejectRecipientMilter } from '../../examples/reject-recipient-milter.ts';
import { stampMilter } from '../../examples/stamp-milter.ts';
import {
  decodeCommand,
  decodeResponse,
  encodeCommand,
  encodeResponse,
  FrameDecoder,
  MilterClient,
  MilterSession,
  MtaConversation,
  POSTFIX_OFFER,
  type Command,
  type Frame,
  type MacroValues,
  type MilterDefinition,
  type MtaTransport,
  type Response,
  type Transaction,
} from '../../milter/src/index.ts';
import { frameBytes, observerMilter, readTranscript, REFUSED_RECIPIENT, type TranscriptConversation } from './record-transcript.ts';

const transcript = readTranscript();

/** Port of the fake filter that captures what MilterClient sends. */

/** The milter that answered in each recorded conversation. */
const DEFINITIONS: Record<string, () => MilterDefinition> = {
  'stamp-milter': stampMilter,
  'reject-recipient-milter': () => rejectRecipientMilter([REFUSED_RECIPIENT]),
  observer: observerMilter,
  'observer-local-submission': observerMilter,
};

/** Conversations through smtpd; the local submission goes through the cleanup server instead. */
const SMTPD_CONVERSATIONS = ['stamp-milter', 'reject-recipient-milter', 'observer'];

/**
 * Postfix 3.7.11's OPTNEG with `milter_protocol = 6`: length 13, 'O', version 6, actions 0x1ff (all,
 * SETSYMLIST included), protocol 0x1fffff (every step and no-reply flag, SKIP, RCPT_REJ, HDR_LEADSPC; no
 * MDS_256K/MDS_1M).
 */
const POSTFIX_OPTNEG_HEX = '0000000d4f00000006000001ff001fffff';

function conversation(name: string): TranscriptConversation {
  const found = transcript.conversations.find((candidate) => candidate.name === name);
  assert.ok(found !== undefined, `the fixture has no conversation ${name}`);
  return found;
}

/** One whole frame through our frame decoder: exactly one frame, nothing left over. */
function decodeFrame(bytes: Buffer): Frame {
  const decoder = new FrameDecoder({ maxFrameSize: 1024 * 1024 + 1 });
  const frames = decoder.push(bytes);
  assert.equal(frames.length, 1, `expected one frame in ${bytes.subarray(0, 16).toString('hex')}…`);
  assert.equal(decoder.buffered, 0);
  return frames[0] as Frame;
}

function mtaFrames(recorded: TranscriptConversation): Buffer[] {
  return recorded.frames.filter((frame) => frame.from === 'mta').map(frameBytes);
}

function mtaCommands(recorded: TranscriptConversation): Command[] {
  return mtaFrames(recorded).map((bytes) => decodeCommand(decodeFrame(bytes)));
}

function milterReplies(recorded: TranscriptConversation): Response[] {
  return recorded.frames.filter((frame) => frame.from === 'milter').map((frame) => decodeResponse(decodeFrame(frameBytes(frame))));
}

/**
 * The recorded replies grouped by the MTA frame they answer: Postfix waits for each reply before its next
 * command (none of the recorded milters negotiated no-reply steps), so replies follow their command.
 */
function recordedReplyGroups(recorded: TranscriptConversation): string[][] {
  const groups: string[][] = [];
  for (const frame of recorded.frames) {
    if (frame.from === 'mta') groups.push([]);
    else groups.at(-1)?.push(frame.hex);
  }
  return groups;
}

/** Our replies to the recorded MTA frames, grouped the same way, from a fresh session of `definition`. */
async function replayedReplyGroups(definition: MilterDefinition, recorded: TranscriptConversation): Promise<string[][]> {
  const session = new MilterSession(definition, { connectionId: 'replay' });
  const groups: string[][] = [];
  try {
    for (const command of mtaCommands(recorded)) {
      const replies: string[] = [];
      for await (const reply of session.handle(command)) replies.push(encodeResponse(reply).toString('hex'));
      groups.push(replies);
    }
  } finally {
    await session.dispose();
  }
  return groups;
}

/**
 * A transport that answers with Postfix's recorded milter replies, in order, and keeps the bytes our
 * client sends. Waiting for a reply that Postfix did not get fails the test instead of hanging.
 */
class RecordedRepliesTransport implements MtaTransport {
  readonly sent: Buffer[] = [];
  /** Macro frames sent so far. */
  macroFrames = 0;

  constructor(private readonly replies: Response[]) {}

  get unused(): number {
    return this.replies.length;
  }

  send(command: Command): void {
    if (command.kind === 'macro') this.macroFrames++;
    this.sent.push(encodeCommand(command));
  }

  receive(): Promise<Response> {
    const reply = this.replies.shift();
    return reply === undefined ? Promise.reject(new Error('the client waits for a reply that Postfix did not wait for')) : Promise.resolve(reply);
  }
}

/**
 * Macro values for `sendMessage` that are, at each macro frame our client builds, the values of Postfix's
 * macro frame at the same position: Postfix knows a value only from some step on (the queue id from DATA)
 * and each recipient has its own, so with these values every macro frame can be compared byte for byte. A
 * macro frame that Postfix did not send gets no values.
 */
function postfixMacroValues(commands: readonly Command[], transport: RecordedRepliesTransport): MacroValues {
  const frames = commands.flatMap((command) => (command.kind === 'macro' ? [new Map(command.macros)] : []));
  return new Proxy<MacroValues>(
    {},
    {
      get: (_, name) => (typeof name === 'string' ? frames[transport.macroFrames]?.get(name) : undefined),
    },
  );
}

/**
 * The message behind a recorded conversation, as `sendMessage` takes it. Steps the filter negotiated away
 * are not in the recording; their envelope comes from Postfix's macros, which it sends regardless.
 */
function transactionOf(commands: readonly Command[], macros: MacroValues): Transaction {
  const seen: MacroValues = {};
  const macroRecipients: string[] = [];
  const transaction: Transaction = { sender: '', recipients: [], headers: [], body: Buffer.alloc(0), macros };
  const bodies: Buffer[] = [];
  for (const command of commands) {
    switch (command.kind) {
      case 'macro':
        for (const [name, value] of command.macros) seen[name] = value;
        if (command.forCommand === 'M') transaction.sender ||= `<${seen['{mail_addr}'] ?? ''}>`;
        if (command.forCommand === 'R') macroRecipients.push(`<${seen['{rcpt_addr}'] ?? ''}>`);
        break;
      case 'connect':
        transaction.client = { hostname: command.hostname, family: command.family, port: command.port, address: command.address };
        break;
      case 'helo':
        transaction.helo = command.name;
        break;
      case 'mail':
        transaction.sender = command.sender;
        transaction.senderParameters = command.parameters;
        break;
      case 'rcpt':
        transaction.recipients.push(command.recipient);
        break;
      case 'header':
        transaction.headers.push({ name: command.name, value: command.value });
        break;
      case 'body':
        bodies.push(command.chunk);
        break;
      default:
        break;
    }
  }
  if (transaction.recipients.length === 0) transaction.recipients = macroRecipients;
  transaction.body = Buffer.concat(bodies);
  return transaction;
}

/** A frame as compared: its bytes in hex, or for a long frame its code, length and digest (a readable diff). */
function comparable(bytes: Buffer): string {
  if (bytes.length <= 256) return bytes.toString('hex');
  return `'${String.fromCharCode(bytes[4] as number)}' frame of ${bytes.length} bytes, sha256 ${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * Our frames without the abort that `sendMessage` sends after end of message: the cleanup server (local
 * submission) has no SMTP transaction to reset and sends none, while smtpd does.
 */
function withoutAbortAfterEndOfMessage(frames: readonly string[]): string[] {
  const endOfMessage = frames.indexOf(encodeCommand({ kind: 'eom', chunk: Buffer.alloc(0) }).toString('hex'));
  assert.ok(endOfMessage >= 0, 'no end of message sent');
  assert.equal(frames[endOfMessage + 1], encodeCommand({ kind: 'abort' }).toString('hex'));
  return [...frames.slice(0, endOfMessage + 1), ...frames.slice(endOfMessage + 2)];
}

/** The macro names of each macro frame, by the command they precede (every occurrence must agree). */
function macroNamesByCommand(recorded: TranscriptConversation): Record<string, string[]> {
  const table: Record<string, string[]> = {};
  for (const command of mtaCommands(recorded)) {
    if (command.kind !== 'macro') continue;
    const names = command.macros.map(([name]) => name);
    const seen = table[command.forCommand];
    if (seen === undefined) table[command.forCommand] = names;
    else assert.deepEqual(names, seen, `macro frames for '${command.forCommand}' differ within one conversation`);
  }
  return table;
}

/** The value of a macro in the conversation (the last frame that defines it). */
function macroValue(recorded: TranscriptConversation, name: string): string | undefined {
  let value: string | undefined;
  for (const command of mtaCommands(recorded)) {
    if (command.kind === 'macro') for (const [macro, v] of command.macros) if (macro === name) value = v;
  }
  return value;
}

/** The queue id in the recorded SMTP dialogue (`250 2.0.0 Ok: queued as ID`). */
function queueIdOf(recorded: TranscriptConversation): string {
  const id = recorded.submission.map((line) => / queued as ([0-9A-F]+)$/.exec(line)?.[1]).find((match) => match !== undefined);
  assert.ok(id !== undefined, `no queue id in ${JSON.stringify(recorded.submission)}`);
  return id;
}

describe('the fixture', () => {
  test('was recorded from Postfix 3.7 with milter_protocol 6 and holds the four conversations', () => {
    assert.match(transcript.postfixVersion, /^3\.7\.\d+$/);
    assert.ok(transcript.postconf.includes('milter_protocol = 6'));
    assert.ok(transcript.postconf.includes('milter_default_action = tempfail'));
    assert.deepEqual(
      transcript.conversations.map((recorded) => recorded.name),
      ['stamp-milter', 'reject-recipient-milter', 'observer', 'observer-local-submission'],
    );
    for (const recorded of transcript.conversations) {
      for (const frame of recorded.frames) assert.equal(String.fromCharCode(frameBytes(frame)[4] as number), frame.code);
    }
  });

  test('every frame Postfix sent passes our decoders, and so does every recorded reply', () => {
    for (const recorded of transcript.conversations) {
      assert.ok(mtaCommands(recorded).length > 0);
      assert.ok(milterReplies(recorded).length > 0);
    }
  });
});

describe("Postfix's option negotiation", () => {
  test('is the OPTNEG that MtaConversation sends with POSTFIX_OFFER', () => {
    const ours = encodeCommand({ kind: 'optneg', ...POSTFIX_OFFER });
    assert.equal(ours.toString('hex'), POSTFIX_OPTNEG_HEX);
    for (const recorded of transcript.conversations) {
      const first = recorded.frames[0];
      assert.equal(first?.from, 'mta');
      assert.equal(first.hex, POSTFIX_OPTNEG_HEX, recorded.name);
    }
  });

  test('is what MilterClient puts on a real socket', async (t) => {
    const captured: Buffer[] = [];
    const answer = frameBytes(conversation('observer').frames[1] ?? assert.fail('no negotiation reply'));
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        const before = Buffer.concat(captured).length;
        captured.push(chunk);
        // Answer once the whole OPTNEG (17 bytes) is in, with the observer's recorded reply.
        if (before < 17 && Buffer.concat(captured).length >= 17) socket.write(answer);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, resolve);
    });
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const bound = server.address();
    const capturePort = typeof bound === 'object' && bound !== null ? bound.port : 0;
    const client = await MilterClient.connect(`inet:127.0.0.1:${capturePort}`, { replyTimeout: 5_000, connectTimeout: 5_000 });
    await client.close();
    assert.equal(Buffer.concat(captured).subarray(0, 17).toString('hex'), POSTFIX_OPTNEG_HEX);
    assert.deepEqual(client.negotiation, decodeResponse(decodeFrame(answer)));
  });
});

describe('our filter side answers Postfix exactly as recorded', () => {
  for (const name of Object.keys(DEFINITIONS)) {
    test(`${name}: replaying Postfix's frames into a MilterSession gives the recorded replies byte for byte`, async () => {
      const recorded = conversation(name);
      const definition = (DEFINITIONS[name] ?? assert.fail(name))();
      assert.deepEqual(await replayedReplyGroups(definition, recorded), recordedReplyGroups(recorded));
    });
  }

  test('stamp-milter: the X-Stamp queue id is the `i` macro Postfix sent, the queue id of the SMTP reply', () => {
    const recorded = conversation('stamp-milter');
    const queueId = queueIdOf(recorded);
    assert.equal(macroValue(recorded, 'i'), queueId);
    const header = milterReplies(recorded).find((reply) => reply.kind === 'addHeader');
    assert.deepEqual(header, { kind: 'addHeader', name: 'X-Stamp', value: ` stamped queue-id=${queueId}` });
  });

  test('reject-recipient-milter: the refusal Postfix relayed is the SMFIR_REPLYCODE text', () => {
    const recorded = conversation('reject-recipient-milter');
    assert.ok(recorded.submission.includes(`RCPT TO:<${REFUSED_RECIPIENT}> -> 550 5.1.1 Recipient ${REFUSED_RECIPIENT} is not accepted here`));
    assert.deepEqual(milterReplies(recorded)[1], { kind: 'replyCode', reply: `550 5.1.1 Recipient ${REFUSED_RECIPIENT} is not accepted here` });
  });
});

describe('our MTA side sends what Postfix sent', () => {
  for (const name of Object.keys(DEFINITIONS)) {
    test(`${name}: MtaConversation.sendMessage sends Postfix's frames byte for byte, macro frames included`, async () => {
      const recorded = conversation(name);
      const commands = mtaCommands(recorded);
      const transport = new RecordedRepliesTransport(milterReplies(recorded));
      const mta = new MtaConversation(transport);
      await mta.negotiate();
      await mta.sendMessage(transactionOf(commands, postfixMacroValues(commands, transport)));
      const smtpd = SMTPD_CONVERSATIONS.includes(name);
      // smtpd ends the SMTP session with a second abort (its HELO state is reset), then QUIT.
      if (smtpd) mta.abort();
      mta.quit();
      const sent = transport.sent.map(comparable);
      const ours = smtpd ? sent : withoutAbortAfterEndOfMessage(sent);
      assert.deepEqual(ours, mtaFrames(recorded).map(comparable));
      assert.equal(transport.unused, 0, 'every recorded reply was read');
    });
  }
});

describe('what Postfix 3.7 sends when (documented from the recording)', () => {
  /** Macro names per macro frame with the default lists, through smtpd. */
  const SMTPD_MACROS: Record<string, string[]> = {
    C: ['j', '{daemon_name}', '{daemon_addr}', 'v', '_'],
    // milter_helo_macros name only TLS macros; without TLS none has a value, but the frame is still sent.
    H: [],
    // smtpd has no queue file yet at MAIL and RCPT, so no `i` there.
    M: ['{mail_addr}', '{mail_host}', '{mail_mailer}'],
    R: ['{rcpt_addr}', '{rcpt_host}', '{rcpt_mailer}'],
    T: ['i'],
    // Each header and end of headers get milter_end_of_header_macros; each body chunk and end of message
    // get milter_end_of_data_macros.
    L: ['i'],
    N: ['i'],
    B: ['i'],
    E: ['i'],
  };

  test('smtpd: every step gets its macro frame, with the default lists', () => {
    assert.deepEqual(macroNamesByCommand(conversation('observer')), SMTPD_MACROS);
  });

  test('local submission (cleanup): the queue id is known from MAIL on, and the envelope macros are fewer', () => {
    assert.deepEqual(macroNamesByCommand(conversation('observer-local-submission')), {
      ...SMTPD_MACROS,
      M: ['i', '{mail_addr}'],
      R: ['i', '{rcpt_addr}'],
    });
    const commands = mtaCommands(conversation('observer-local-submission'));
    assert.deepEqual(commands.find((command) => command.kind === 'connect'), { kind: 'connect', hostname: 'localhost', family: 'inet', port: 0, address: '127.0.0.1' });
    assert.deepEqual(commands.find((command) => command.kind === 'helo'), { kind: 'helo', name: 'localhost' });
  });

  test('macro values: the MTA, the client, the next hop, and the queue id from DATA on', () => {
    const recorded = conversation('observer');
    const values = Object.fromEntries(
      ['j', '{daemon_name}', '{daemon_addr}', 'v', '_', '{mail_addr}', '{mail_host}', '{mail_mailer}', '{rcpt_addr}', '{rcpt_host}', '{rcpt_mailer}', 'i'].map(
        (name) => [name, macroValue(recorded, name)],
      ),
    );
    assert.deepEqual(values, {
      j: 'postfix.mta.test',
      '{daemon_name}': 'postfix.mta.test',
      '{daemon_addr}': '127.0.0.1',
      v: `Postfix ${transcript.postfixVersion}`,
      _: 'localhost [127.0.0.1]',
      '{mail_addr}': 'alice@sender.test',
      '{mail_host}': 'sender.test',
      '{mail_mailer}': 'smtp',
      '{rcpt_addr}': 'bob@example.test',
      // The next hop from transport_maps, not the recipient's domain.
      '{rcpt_host}': '[127.0.0.1]:12690',
      '{rcpt_mailer}': 'smtp',
      i: queueIdOf(recorded),
    });
  });

  test('macro frames come even for steps the filter negotiated away (envelope only), and an abort follows the message', () => {
    // The stamp milter takes only the body: Postfix still sends the envelope macros, not the header ones.
    const kinds = mtaCommands(conversation('stamp-milter')).map((command) => (command.kind === 'macro' ? `D${command.forCommand}` : command.kind));
    assert.deepEqual(kinds, ['optneg', 'DC', 'DH', 'DM', 'DR', 'DT', 'DB', 'body', 'DE', 'eom', 'abort', 'abort', 'quit']);
  });

  test('headers: leading space kept, folded lines joined by LF, its own Received header not shown', () => {
    const headers = mtaCommands(conversation('observer')).filter((command) => command.kind === 'header');
    assert.deepEqual(
      headers.map((command) => [command.name, command.value]),
      [
        ['From', ' Alice <alice@sender.test>'],
        ['To', ' Bob <bob@example.test>'],
        ['Subject', ' large'],
        ['Date', ' Mon, 01 Jan 2024 00:00:00 +0000'],
        ['Message-ID', ' <transcript@sender.test>'],
        ['X-Folded', ' first part\n\tsecond part'],
        ['X-Tight', 'no space'],
      ],
    );
  });

  test('body: CRLF line ends, chunks of exactly 65,535 bytes, the rest in one last chunk before end of message', () => {
    const chunks = mtaCommands(conversation('observer')).flatMap((command) => (command.kind === 'body' ? [command.chunk] : []));
    assert.deepEqual(chunks.map((chunk) => chunk.length), [65535, 4568]);
    const body = Buffer.concat(chunks).toString('latin1');
    assert.ok(body.startsWith('Hello Bob,\r\n.a line with a leading dot\r\n\r\nbye\r\n'));
    assert.equal(body.replaceAll('\r\n', '').includes('\n'), false);
  });
});
