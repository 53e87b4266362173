/**
 * Property and fuzz tests of the codec and the session with fast-check.
 *
 * (a) Random valid commands survive encode → frame decoder (cut at random points) → decode unchanged.
 * (b) Hostile bytes — random, mis-framed, and valid conversations with bit flips, truncations, changed
 *     length fields, inserted and deleted bytes — through FrameDecoder, decodeCommand and a session whose
 *     handler uses every step: each layer only ever throws MilterProtocolError with one of its own codes,
 *     and every reply the session yields is a well-formed response.
 * (c) Random sequences of valid commands in random order through a session: the same, and no
 *     modification ever appears outside end of message or beyond what was negotiated.
 *
 * Frame counts are guaranteed by construction: (a) 4,000 runs of 20 commands = 80,000 frames; (c) 1,500
 * runs of 20 segments, each sending at least one command frame = 30,000 frames or more (typically about
 * five times that). (b) adds 6,000 hostile streams on top.
 * On a failure fast-check prints the seed and the shrunk counterexample.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  ACCEPT,
  Action,
  addHeader,
  addRecipient,
  changeFrom,
  changeHeader,
  CONNECTION_FAIL,
  CONTINUE,
  decodeCommand,
  decodeResponse,
  defineMilter,
  deleteHeader,
  deleteRecipient,
  DISCARD,
  encodeCommand,
  encodeResponse,
  FrameDecoder,
  insertHeader,
  MilterProtocolError,
  MilterSession,
  POSTFIX_OFFER,
  Protocol,
  quarantine,
  REJECT,
  replaceBody,
  reply,
  SKIP,
  STEPS,
  TEMPFAIL,
  type Command,
  type Frame,
  type MilterDefinition,
  type MilterHandler,
  type MilterOptions,
  type Modification,
  type ProtocolErrorCode,
  type Response,
  type Verdict,
} from '../../milter/src/index.ts';

/** The server's default frame limit. */
const MAX_FRAME_SIZE = 1024 * 1024 + 1;

// ---------------------------------------------------------------------------------------------------------------
// Arbitraries: valid commands

/** fc.record, but always with Object.prototype: decoded values are plain objects and deepStrictEqual compares prototypes. */
function plainRecord<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;
}

/** A string that can travel as a C string: any byte but NUL, as a binary (latin1) string. */
const wireString = (maxLength = 24): fc.Arbitrary<string> =>
  fc.string({ unit: fc.integer({ min: 1, max: 255 }).map((code) => String.fromCharCode(code)), maxLength });
const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const chunk = (maxLength: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((bytes) => Buffer.from(bytes));

const postfixOptnegArb = fc.constant<Command>({ kind: 'optneg', ...POSTFIX_OFFER });
const optnegArb: fc.Arbitrary<Command> = fc.oneof(
  postfixOptnegArb,
  plainRecord({ kind: fc.constant('optneg' as const), version: uint32, actions: uint32, protocol: uint32 }),
);
const macroArb = (forCommand: fc.Arbitrary<string>): fc.Arbitrary<Command> =>
  plainRecord({ kind: fc.constant('macro' as const), forCommand, macros: fc.array(fc.tuple(wireString(14), wireString(14)), { maxLength: 4 }) });
const connectArb: fc.Arbitrary<Command> = fc.oneof(
  plainRecord({
    kind: fc.constant('connect' as const),
    hostname: wireString(),
    family: fc.constantFrom('inet' as const, 'inet6' as const, 'unix' as const),
    port: fc.integer({ min: 0, max: 0xffff }),
    address: wireString(),
  }),
  plainRecord({ kind: fc.constant('connect' as const), hostname: wireString(), family: fc.constant('unknown' as const), port: fc.constant(0), address: fc.constant('') }),
);
const heloArb: fc.Arbitrary<Command> = plainRecord({ kind: fc.constant('helo' as const), name: wireString() });
const mailArb: fc.Arbitrary<Command> = plainRecord({ kind: fc.constant('mail' as const), sender: wireString(), parameters: fc.array(wireString(12), { maxLength: 3 }) });
const rcptArb: fc.Arbitrary<Command> = plainRecord({ kind: fc.constant('rcpt' as const), recipient: wireString(), parameters: fc.array(wireString(12), { maxLength: 3 }) });
const headerArb: fc.Arbitrary<Command> = plainRecord({ kind: fc.constant('header' as const), name: wireString(16), value: wireString(40) });
const bodyArb: fc.Arbitrary<Command> = plainRecord({ kind: fc.constant('body' as const), chunk: chunk(400) });
const eomArb: fc.Arbitrary<Command> = plainRecord({ kind: fc.constant('eom' as const), chunk: fc.oneof(fc.constant(Buffer.alloc(0)), chunk(200)) });
const unknownArb: fc.Arbitrary<Command> = plainRecord({ kind: fc.constant('unknown' as const), command: wireString() });
const bare = (kind: 'data' | 'eoh' | 'abort' | 'quit' | 'quitNewConnection'): fc.Arbitrary<Command> => fc.constant({ kind } as Command);

/** Any one valid command, with any field values. */
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  optnegArb,
  macroArb(fc.integer({ min: 0, max: 255 }).map((code) => String.fromCharCode(code))),
  connectArb,
  heloArb,
  mailArb,
  rcptArb,
  bare('data'),
  headerArb,
  bare('eoh'),
  bodyArb,
  eomArb,
  bare('abort'),
  bare('quit'),
  bare('quitNewConnection'),
  unknownArb,
);

/** One message in protocol order, sometimes cut short by an abort. */
const messageArb: fc.Arbitrary<Command[]> = fc
  .tuple(
    fc.option(macroArb(fc.constant('M')), { nil: undefined }),
    mailArb,
    fc.array(rcptArb, { minLength: 1, maxLength: 3 }),
    fc.array(headerArb, { maxLength: 4 }),
    fc.array(bodyArb, { maxLength: 3 }),
    fc.option(macroArb(fc.constant('E')), { nil: undefined }),
    eomArb,
    fc.option(fc.nat(), { nil: undefined }),
  )
  .map(([mailMacros, mail, rcpts, headers, bodies, eomMacros, eom, abortAt]) => {
    const steps = [
      ...(mailMacros === undefined ? [] : [mailMacros]),
      mail,
      ...rcpts,
      { kind: 'data' } as Command,
      ...headers,
      { kind: 'eoh' } as Command,
      ...bodies,
      ...(eomMacros === undefined ? [] : [eomMacros]),
      eom,
    ];
    return abortAt === undefined ? steps : [...steps.slice(0, abortAt % steps.length), { kind: 'abort' } as Command];
  });

/** One SMTP session in protocol order: connect, HELO, messages, then QUIT, QUIT_NC or nothing. */
const smtpSessionArb: fc.Arbitrary<Command[]> = fc
  .tuple(
    fc.option(macroArb(fc.constant('C')), { nil: undefined }),
    connectArb,
    heloArb,
    fc.array(messageArb, { minLength: 1, maxLength: 2 }),
    fc.constantFrom<Command[]>([], [{ kind: 'quit' }], [{ kind: 'quitNewConnection' }]),
  )
  .map(([macros, connect, helo, messages, ending]) => [...(macros === undefined ? [] : [macros]), connect, helo, ...messages.flat(), ...ending]);

// ---------------------------------------------------------------------------------------------------------------
// A filter that uses every step, driven by a script of choices

/** Verdicts a handler may return, the odd and the invalid included; most picks continue (see `nextVerdict`). */
const SPECIAL_VERDICTS: ReadonlyArray<Verdict | 'throw'> = [
  ACCEPT,
  REJECT,
  TEMPFAIL,
  DISCARD,
  SKIP,
  CONNECTION_FAIL,
  reply(550, '5.7.1', 'refused'),
  reply(451, '4.3.0', 'line one', 'line two'),
  { kind: 'no-such-verdict' } as unknown as Verdict,
  'throw',
];

/** End-of-message changes, valid ones and ones the session must refuse. */
const MODIFICATION_SETS: ReadonlyArray<Modification[] | 'throw'> = [
  [],
  [addHeader('X-Fuzz', ' 1'), insertHeader(0, 'X-Top', ' 0'), changeHeader('Subject', 1, ' x'), deleteHeader('Received', 2)],
  [replaceBody(Buffer.alloc(70_000, 0x41))],
  [replaceBody(Buffer.alloc(0))],
  [addRecipient('<n@x.test>'), addRecipient('<p@x.test>', 'NOTIFY=NEVER'), deleteRecipient('<c@d.test>'), changeFrom('<s@x.test>', 'SIZE=1'), quarantine('fuzz')],
  [changeFrom('<s@x.test>')],
  [addHeader('Bad Name', ' x')],
  [replaceBody(Buffer.from('a')), replaceBody(Buffer.from('b'))],
  'throw',
];

const EVERY_ACTION: MilterOptions['actions'] = ['addHeaders', 'changeHeaders', 'changeBody', 'addRecipients', 'addRecipientsWithArgs', 'deleteRecipients', 'changeFrom', 'quarantine'];

/** Reads choices in turn, wrapping around. */
class Script {
  private next = 0;
  constructor(private readonly choices: readonly number[]) {}
  take(): number {
    const choice = this.choices[this.next % this.choices.length] ?? 0;
    this.next++;
    return choice;
  }
}

/** Continue four times in five; otherwise one of the special verdicts (or a throw). */
async function nextVerdict(script: Script): Promise<Verdict> {
  const choice = script.take();
  await Promise.resolve();
  if (choice % 5 !== 0) return CONTINUE;
  const special = SPECIAL_VERDICTS[Math.floor(choice / 5) % SPECIAL_VERDICTS.length] ?? CONTINUE;
  if (special === 'throw') throw new Error('handler failure');
  return special;
}

function everyStepHandler(script: Script): MilterHandler {
  return {
    connect: () => nextVerdict(script),
    helo: () => nextVerdict(script),
    mailFrom: () => nextVerdict(script),
    rcptTo: () => nextVerdict(script),
    data: () => nextVerdict(script),
    header: () => nextVerdict(script),
    endOfHeaders: () => nextVerdict(script),
    body: () => nextVerdict(script),
    unknown: () => nextVerdict(script),
    async endOfMessage(ctx) {
      const choice = script.take();
      // Read the collected body back sometimes, so spilled spools are exercised too.
      if (choice % 3 === 0) await ctx.message.body?.toBuffer();
      const modifications = MODIFICATION_SETS[choice % MODIFICATION_SETS.length] ?? [];
      if (modifications === 'throw') throw new Error('end of message failure');
      return { verdict: await nextVerdict(script), modifications };
    },
    abort: () => {
      if (script.take() % 7 === 0) throw new Error('abort failure');
    },
    close: () => {
      if (script.take() % 7 === 0) throw new Error('close failure');
    },
  };
}

type Flavour = 'full' | 'no-reply' | 'lenient';
const FLAVOURS: readonly Flavour[] = ['full', 'no-reply', 'lenient'];

/** Three declarations: every action and reply; every step without reply; no actions and no leading space. */
function fuzzMilter(flavour: Flavour, script: Script): MilterDefinition {
  const createHandler = (): MilterHandler => everyStepHandler(script);
  const common = { createHandler, collectBody: true, macros: { Mail: ['i'], EndOfMessage: ['i', '{msg_id}'] } };
  switch (flavour) {
    case 'full':
      return defineMilter({ name: 'fuzz-full', actions: EVERY_ACTION, ...common });
    case 'no-reply':
      return defineMilter({ name: 'fuzz-no-reply', actions: EVERY_ACTION, noReply: STEPS, onError: reply(451, '4.7.1', 'filter error'), ...common });
    case 'lenient':
      return defineMilter({ name: 'fuzz-lenient', headerLeadingSpace: false, rejectedRecipients: true, onError: REJECT, ...common });
  }
}

const scriptArb = fc.array(fc.integer({ min: 0, max: 999 }), { minLength: 1, maxLength: 64 });
/** Half the time a handler that always continues, so hostile input reaches the later steps rather than stopping at a verdict. */
const calmOrScriptedArb = fc.oneof(fc.constant([1]), scriptArb);

// ---------------------------------------------------------------------------------------------------------------
// Checks

const FRAME_ERRORS: ReadonlySet<ProtocolErrorCode> = new Set(['frame-empty', 'frame-too-large', 'truncated-frame']);
const COMMAND_ERRORS: ReadonlySet<ProtocolErrorCode> = new Set(['unknown-command', 'malformed-command']);
const SESSION_ERRORS: ReadonlySet<ProtocolErrorCode> = new Set(['out-of-phase', 'negotiation-failed']);

/** Rethrows anything but a MilterProtocolError with one of `codes`, so fast-check reports it. */
function expectProtocolError(error: unknown, codes: ReadonlySet<ProtocolErrorCode>): void {
  if (!(error instanceof MilterProtocolError) || !codes.has(error.code)) throw error;
}

const FINAL_VERDICTS = new Set(['continue', 'accept', 'reject', 'tempfail', 'discard', 'replyCode', 'connectionFail']);
/** The action each modification reply needs. */
const MODIFICATION_ACTION: Partial<Record<Response['kind'], number>> = {
  addHeader: Action.AddHeaders,
  insertHeader: Action.AddHeaders,
  changeHeader: Action.ChangeHeaders,
  replaceBody: Action.ChangeBody,
  addRecipient: Action.AddRecipient,
  addRecipientWithArgs: Action.AddRecipientWithArgs,
  deleteRecipient: Action.DeleteRecipient,
  changeFrom: Action.ChangeFrom,
  quarantine: Action.Quarantine,
};
/** The no-reply flag of each step command. */
const NO_REPLY_FLAG: Partial<Record<Command['kind'], number>> = {
  connect: Protocol.NoReplyConnect,
  helo: Protocol.NoReplyHelo,
  mail: Protocol.NoReplyMail,
  rcpt: Protocol.NoReplyRcpt,
  data: Protocol.NoReplyData,
  header: Protocol.NoReplyHeader,
  eoh: Protocol.NoReplyEndOfHeaders,
  body: Protocol.NoReplyBody,
  unknown: Protocol.NoReplyUnknown,
};

/** A reply must encode, come out of a frame decoder as one frame, and decode to itself. */
function assertWellFormed(response: Response): void {
  const wire = encodeResponse(response);
  assert.equal(wire.readUInt32BE(0), wire.length - 4);
  const frames = new FrameDecoder({ maxFrameSize: MAX_FRAME_SIZE }).push(wire);
  assert.equal(frames.length, 1);
  assert.deepStrictEqual(decodeResponse(frames[0] as Frame), response);
}

/** The replies a command may get: counts, kinds, and modifications only at end of message and only as negotiated. */
function assertRepliesFit(session: MilterSession, command: Command, replies: readonly Response[]): void {
  const negotiated = session.negotiation;
  switch (command.kind) {
    case 'optneg':
      assert.deepEqual(replies.map((r) => r.kind), ['optneg']);
      return;
    case 'macro':
    case 'abort':
    case 'quit':
    case 'quitNewConnection':
      assert.deepEqual(replies, []);
      return;
    case 'eom': {
      const last = replies.at(-1);
      assert.ok(last !== undefined && FINAL_VERDICTS.has(last.kind), `end of message must end with a final verdict, got ${last?.kind}`);
      const modifications = replies.slice(0, -1);
      for (const m of modifications) {
        const action = MODIFICATION_ACTION[m.kind];
        assert.ok(action !== undefined, `'${m.kind}' before the end-of-message verdict`);
        assert.ok(((negotiated?.actions ?? 0) & action) !== 0, `'${m.kind}' was not negotiated`);
      }
      if (modifications.length > 0) assert.ok(last.kind === 'continue' || last.kind === 'accept', `modifications with '${last.kind}'`);
      return;
    }
    default: {
      const noReply = ((negotiated?.protocol ?? 0) & (NO_REPLY_FLAG[command.kind] ?? 0)) !== 0;
      assert.equal(replies.length, noReply ? 0 : 1, `replies to '${command.kind}'`);
      const [only] = replies;
      if (only === undefined) return;
      const skipAllowed = command.kind === 'body' && ((negotiated?.protocol ?? 0) & Protocol.Skip) !== 0;
      assert.ok(FINAL_VERDICTS.has(only.kind) || (only.kind === 'skip' && skipAllowed), `'${only.kind}' in reply to '${command.kind}'`);
    }
  }
}

/** Handles one command, checking every reply as it comes (also those yielded before an error). */
async function handleChecked(session: MilterSession, command: Command): Promise<void> {
  const replies: Response[] = [];
  for await (const response of session.handle(command)) {
    assertWellFormed(response);
    if (command.kind !== 'eom') assert.equal(MODIFICATION_ACTION[response.kind], undefined, `'${response.kind}' outside end of message`);
    replies.push(response);
  }
  assertRepliesFit(session, command, replies);
}

/** Cuts `wire` at the given points (taken modulo its length). */
function cut(wire: Buffer, points: readonly number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (wire.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const point of at) {
    pieces.push(wire.subarray(start, point));
    start = point;
  }
  pieces.push(wire.subarray(start));
  return pieces;
}

/** A private spool directory per suite; it must be empty whenever no session is open. */
function spoolDirectory(): { path: () => string; assertEmpty: () => Promise<void> } {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'milter-fuzz-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  return { path: () => dir, assertEmpty: async () => assert.deepEqual(await readdir(dir), []) };
}

function openSession(flavour: Flavour, script: Script, spool: string): MilterSession {
  return new MilterSession(fuzzMilter(flavour, script), { connectionId: 'fuzz', maxBufferedBody: 1024, spoolDirectory: spool });
}

// ---------------------------------------------------------------------------------------------------------------

describe('fuzz: codec round trip', () => {
  const RUNS = 4000;
  const COMMANDS_PER_RUN = 20;

  test(`(a) 80,000 random valid commands: encode, cut at random points, decode is the identity`, () => {
    let frames = 0;
    fc.assert(
      fc.property(fc.array(commandArb, { minLength: COMMANDS_PER_RUN, maxLength: COMMANDS_PER_RUN }), fc.array(fc.nat(), { maxLength: 8 }), (commands, points) => {
        const decoder = new FrameDecoder({ maxFrameSize: MAX_FRAME_SIZE });
        const decoded: Command[] = [];
        for (const piece of cut(Buffer.concat(commands.map(encodeCommand)), points)) {
          for (const frame of decoder.push(piece)) decoded.push(decodeCommand(frame));
        }
        decoder.end();
        assert.deepStrictEqual(decoded, commands);
        frames += decoded.length;
      }),
      { numRuns: RUNS, includeErrorInReport: true },
    );
    assert.ok(frames >= RUNS * COMMANDS_PER_RUN, `${frames} frames`);
  });
});

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'setLength'; frame: number; value: number }
  | { kind: 'shiftLength'; frame: number; delta: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  plainRecord({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  plainRecord({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  plainRecord({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  plainRecord({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  plainRecord({ kind: fc.constant('setLength' as const), frame: fc.nat(), value: uint32 }),
  plainRecord({ kind: fc.constant('shiftLength' as const), frame: fc.nat(), delta: fc.integer({ min: -4, max: 4 }) }),
);

/** Applies length-field changes to the frames, then byte-level changes to the stream. */
function mutate(frames: readonly Buffer[], mutations: readonly Mutation[]): Buffer {
  const copies = frames.map((frame) => Buffer.from(frame));
  for (const m of mutations) {
    if (m.kind !== 'setLength' && m.kind !== 'shiftLength') continue;
    const frame = copies[m.frame % copies.length] as Buffer;
    const value = m.kind === 'setLength' ? m.value : Math.min(0xffffffff, Math.max(0, frame.readUInt32BE(0) + m.delta));
    frame.writeUInt32BE(value, 0);
  }
  let wire = Buffer.concat(copies);
  for (const m of mutations) {
    const at = 'at' in m ? m.at % (wire.length + 1) : 0;
    if (m.kind === 'flip' && wire.length > 0) {
      const index = m.at % wire.length;
      wire[index] = (wire[index] as number) ^ (1 << m.bit);
    } else if (m.kind === 'truncate') wire = wire.subarray(0, at);
    else if (m.kind === 'insert') wire = Buffer.concat([wire.subarray(0, at), m.bytes, wire.subarray(at)]);
    else if (m.kind === 'delete') wire = Buffer.concat([wire.subarray(0, at), wire.subarray(at + m.count)]);
  }
  return wire;
}

/** Frames with a sound length but any code byte and any data. */
const misframedArb: fc.Arbitrary<Buffer> = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 40 })), { maxLength: 12 })
  .map((frames) =>
    Buffer.concat(
      frames.map(([code, data]) => {
        const frame = Buffer.alloc(5 + data.length);
        frame.writeUInt32BE(1 + data.length, 0);
        frame[4] = code;
        frame.set(data, 5);
        return frame;
      }),
    ),
  );

/** A valid conversation (OPTNEG, mostly Postfix's, and one or two SMTP sessions), mutated. */
const mutatedConversationArb: fc.Arbitrary<Buffer> = fc
  .tuple(fc.oneof({ weight: 3, arbitrary: postfixOptnegArb }, optnegArb), fc.array(smtpSessionArb, { minLength: 1, maxLength: 2 }), fc.array(mutationArb, { minLength: 1, maxLength: 4 }))
  .map(([optneg, sessions, mutations]) => mutate([optneg, ...sessions.flat()].map(encodeCommand), mutations));

const hostileStreamArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  fc.tuple(fc.constant(encodeCommand({ kind: 'optneg', ...POSTFIX_OFFER })), misframedArb).map(([optneg, rest]) => Buffer.concat([optneg, rest])),
  { weight: 4, arbitrary: mutatedConversationArb },
);

describe('fuzz: hostile input', () => {
  const spool = spoolDirectory();
  const RUNS = 6000;

  test(`(b) 6,000 hostile streams: only MilterProtocolError with a known code, only well-formed replies`, async () => {
    let frames = 0;
    await fc.assert(
      fc.asyncProperty(hostileStreamArb, fc.array(fc.nat(), { maxLength: 6 }), fc.constantFrom(...FLAVOURS), calmOrScriptedArb, async (wire, points, flavour, choices) => {
        const decoder = new FrameDecoder({ maxFrameSize: MAX_FRAME_SIZE });
        const session = openSession(flavour, new Script(choices), spool.path());
        try {
          for (const piece of cut(wire, points)) {
            let decoded: Frame[];
            try {
              decoded = decoder.push(piece);
            } catch (error) {
              expectProtocolError(error, FRAME_ERRORS);
              return;
            }
            for (const frame of decoded) {
              frames++;
              let command: Command;
              try {
                command = decodeCommand(frame);
              } catch (error) {
                expectProtocolError(error, COMMAND_ERRORS);
                return;
              }
              try {
                await handleChecked(session, command);
              } catch (error) {
                expectProtocolError(error, SESSION_ERRORS);
                return;
              }
              if (session.finished) return;
            }
          }
          try {
            decoder.end();
          } catch (error) {
            expectProtocolError(error, FRAME_ERRORS);
          }
        } finally {
          await session.dispose();
        }
      }),
      { numRuns: RUNS, includeErrorInReport: true },
    );
    await spool.assertEmpty();
    // Not a bound on the random streams, only a guard that the property did reach the session.
    assert.ok(frames > RUNS, `${frames} frames decoded`);
  });
});

describe('fuzz: valid commands in random order', () => {
  const spool = spoolDirectory();
  const RUNS = 1500;
  const SEGMENTS = 20;

  /** Whole SMTP sessions and messages in protocol order, between single commands of any kind. */
  const segmentArb = fc.oneof({ weight: 2, arbitrary: smtpSessionArb }, { weight: 2, arbitrary: messageArb }, { weight: 3, arbitrary: commandArb.map((c) => [c]) });

  /** One milter connection of the simulated MTA: commands go over as frames, replies come back checked. */
  class Connection {
    private readonly decoder = new FrameDecoder({ maxFrameSize: MAX_FRAME_SIZE });
    readonly session: MilterSession;

    constructor(flavour: Flavour, script: Script) {
      this.session = openSession(flavour, script, spool.path());
    }

    /** Sends one command; false when the connection is over (a protocol error or QUIT). */
    async send(command: Command): Promise<boolean> {
      const frames = this.decoder.push(encodeCommand(command));
      assert.equal(frames.length, 1);
      try {
        await handleChecked(this.session, decodeCommand(frames[0] as Frame));
      } catch (error) {
        expectProtocolError(error, SESSION_ERRORS);
        return false;
      }
      return !this.session.finished;
    }
  }

  test(`(c) 1,500 sequences of 20 segments (30,000+ frames): replies fit, modifications only at end of message`, async () => {
    let frames = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(segmentArb, { minLength: SEGMENTS, maxLength: SEGMENTS }), fc.constantFrom(...FLAVOURS), scriptArb, async (segments, flavour, choices) => {
        const script = new Script(choices);
        const open = async (): Promise<Connection> => {
          const connection = new Connection(flavour, script);
          frames++;
          assert.ok(await connection.send({ kind: 'optneg', ...POSTFIX_OFFER }));
          return connection;
        };
        let connection = await open();
        try {
          for (const segment of segments) {
            for (const command of segment) {
              frames++;
              if (await connection.send(command)) continue;
              // The connection is over; like an MTA, open a new one and go on with the next segment.
              await connection.session.dispose();
              connection = await open();
              break;
            }
          }
        } finally {
          await connection.session.dispose();
        }
      }),
      { numRuns: RUNS, includeErrorInReport: true },
    );
    await spool.assertEmpty();
    assert.ok(frames >= RUNS * SEGMENTS, `${frames} frames`);
  });
});
