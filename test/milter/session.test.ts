/**
 * The session rules of the milter protocol, checked on {@link MilterSession} directly (command in,
 * replies out) and through the test kit's {@link runTransaction} (a Postfix-like MTA in process): phases,
 * replies left out, QUIT_NC, abort, modification checks, handler errors, skip, macros, body collection,
 * and the verdict and definition helpers.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ACCEPT,
  addHeader,
  addRecipient,
  changeFrom,
  changeHeader,
  CONTINUE,
  defineMilter,
  deleteHeader,
  DISCARD,
  insertHeader,
  MilterProtocolError,
  MilterSession,
  MilterUsageError,
  POSTFIX_OFFER,
  Protocol,
  quarantine,
  REJECT,
  replaceBody,
  reply,
  runTransaction,
  SKIP,
  TEMPFAIL,
  type BodySpool,
  type Command,
  type LogFields,
  type MilterContext,
  type MilterDefinition,
  type MilterHandler,
  type MilterLogger,
  type MilterOptions,
  type Modification,
  type ProtocolErrorCode,
  type Response,
  type SessionOptions,
  type Transaction,
  type Verdict,
} from '../../milter/src/index.ts';
import { withFileSizeLimit } from '../support/file-size-limit.ts';

// ---------------------------------------------------------------------------------------------------------------
// Commands and helpers

const OPTNEG: Command = { kind: 'optneg', ...POSTFIX_OFFER };
const CONNECT: Command = { kind: 'connect', hostname: 'client.test', family: 'inet', port: 40000, address: '192.0.2.7' };
const HELO: Command = { kind: 'helo', name: 'client.test' };
const MAIL: Command = { kind: 'mail', sender: '<alice@a.test>', parameters: [] };
const DATA: Command = { kind: 'data' };
const EOH: Command = { kind: 'eoh' };
const EOM: Command = { kind: 'eom', chunk: Buffer.alloc(0) };
const ABORT: Command = { kind: 'abort' };
const QUIT: Command = { kind: 'quit' };
const QUIT_NC: Command = { kind: 'quitNewConnection' };
const rcpt = (recipient: string): Command => ({ kind: 'rcpt', recipient, parameters: [] });
const header = (name: string, value: string): Command => ({ kind: 'header', name, value });
const body = (chunk: Buffer | string): Command => ({ kind: 'body', chunk: Buffer.from(chunk) });
const macros = (forCommand: string, pairs: Record<string, string>): Command => ({ kind: 'macro', forCommand, macros: Object.entries(pairs) });

const CONTINUE_REPLY: Response = { kind: 'continue' };
const TEMPFAIL_REPLY: Response = { kind: 'tempfail' };

/** A whole message for the test kit. */
const MESSAGE: Transaction = {
  sender: '<alice@a.test>',
  recipients: ['<bob@b.test>'],
  headers: [
    { name: 'From', value: ' alice@a.test' },
    { name: 'Subject', value: ' hello' },
  ],
  body: Buffer.from('Hello\r\n'),
};

/** Collects the replies of one command. */
async function replies(session: MilterSession, command: Command): Promise<Response[]> {
  const out: Response[] = [];
  for await (const response of session.handle(command)) out.push(response);
  return out;
}

/** Sends commands in order and returns the replies of each. */
async function converse(session: MilterSession, commands: readonly Command[]): Promise<Response[][]> {
  const out: Response[][] = [];
  for (const command of commands) out.push(await replies(session, command));
  return out;
}

/** A session disposed when the test ends, whatever happened. */
function openSession(t: TestContext, definition: MilterDefinition, options: Partial<SessionOptions> = {}): MilterSession {
  const session = new MilterSession(definition, { connectionId: 'test', ...options });
  t.after(() => session.dispose());
  return session;
}

async function assertProtocolError(promise: Promise<unknown>, code: ProtocolErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof MilterProtocolError, `expected MilterProtocolError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  });
}

function assertUsageError(action: () => unknown, code: MilterUsageError['code'], message?: RegExp): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof MilterUsageError, `expected MilterUsageError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}

/** A handler with a method for every step, each recording its call and continuing; `overrides` replace some. */
function everyStep(events: string[], overrides: MilterHandler = {}): MilterHandler {
  const record = (name: string) => (): Verdict => {
    events.push(name);
    return CONTINUE;
  };
  return {
    connect: record('connect'),
    helo: record('helo'),
    mailFrom: record('mail'),
    rcptTo: record('rcpt'),
    data: record('data'),
    header: record('header'),
    endOfHeaders: record('eoh'),
    body: record('body'),
    unknown: record('unknown'),
    endOfMessage: () => {
      events.push('eom');
      return { verdict: CONTINUE };
    },
    abort: () => void events.push('abort'),
    close: () => void events.push('close'),
    ...overrides,
  };
}

function everyStepMilter(events: string[], overrides: MilterHandler = {}, options: Partial<MilterOptions> = {}): MilterDefinition {
  return defineMilter({ name: 'every-step', createHandler: () => everyStep(events, overrides), ...options });
}

/** A logger that keeps the fields of every error line. */
function errorLog(): { logger: MilterLogger; errors: LogFields[] } {
  const errors: LogFields[] = [];
  const ignore = (): void => {};
  return { logger: { debug: ignore, info: ignore, warn: ignore, error: (_message, fields) => errors.push(fields ?? {}) }, errors };
}

/** A filter that answers end of message with `result`, for the modification rules. */
function endOfMessageMilter(
  actions: MilterOptions['actions'],
  verdict: Verdict,
  modifications: Modification[],
  options: Partial<MilterOptions> = {},
): MilterDefinition {
  return defineMilter({
    name: 'eom',
    actions,
    createHandler: () => ({ endOfMessage: () => ({ verdict, modifications }) }),
    ...options,
  });
}

// ---------------------------------------------------------------------------------------------------------------

describe('phases', () => {
  const beforeNegotiation: Command[] = [
    macros('C', { j: 'mx.test' }),
    CONNECT,
    HELO,
    MAIL,
    rcpt('<bob@b.test>'),
    DATA,
    header('Subject', ' x'),
    EOH,
    body('x'),
    EOM,
    ABORT,
    QUIT_NC,
    { kind: 'unknown', command: 'HELP' },
  ];
  for (const command of beforeNegotiation) {
    test(`'${command.kind}' before OPTNEG is 'out-of-phase'`, async (t) => {
      const session = openSession(t, everyStepMilter([]));
      await assertProtocolError(replies(session, command), 'out-of-phase');
    });
  }

  test('macros, abort and quit produce no reply; after QUIT every command is out-of-phase', async (t) => {
    const events: string[] = [];
    const session = openSession(t, everyStepMilter(events));
    assert.equal((await replies(session, OPTNEG)).length, 1);
    assert.deepEqual(await replies(session, macros('C', { j: 'mx.test' })), []);
    assert.deepEqual(await replies(session, CONNECT), [CONTINUE_REPLY]);
    assert.deepEqual(await replies(session, MAIL), [CONTINUE_REPLY]);
    assert.deepEqual(await replies(session, ABORT), []);
    assert.equal(session.finished, false);
    assert.deepEqual(await replies(session, QUIT), []);
    assert.equal(session.finished, true);
    assert.deepEqual(events, ['connect', 'mail', 'abort', 'close']);
    await assertProtocolError(replies(session, HELO), 'out-of-phase');
    await assertProtocolError(replies(session, OPTNEG), 'out-of-phase');
  });

  test('a whole transaction with every step answers continue at each step', async (t) => {
    const events: string[] = [];
    const session = openSession(t, everyStepMilter(events));
    const commands = [OPTNEG, CONNECT, HELO, MAIL, rcpt('<bob@b.test>'), DATA, header('Subject', ' x'), EOH, body('x\r\n'), EOM];
    const answers = await converse(session, commands);
    assert.equal(answers[0]?.[0]?.kind, 'optneg');
    assert.deepEqual(answers.slice(1), commands.slice(1).map(() => [CONTINUE_REPLY]));
    assert.deepEqual(events, ['connect', 'helo', 'mail', 'rcpt', 'data', 'header', 'eoh', 'body', 'eom']);
  });

  const outOfOrder: Array<{ name: string; before: Command[]; command: Command }> = [
    { name: 'RCPT before MAIL after an abort', before: [CONNECT, HELO, MAIL, rcpt('<b@b.test>'), ABORT], command: rcpt('<c@b.test>') },
    { name: 'RCPT before any MAIL', before: [CONNECT, HELO], command: rcpt('<c@b.test>') },
    { name: 'HEADER after EOH', before: [CONNECT, HELO, MAIL, rcpt('<b@b.test>'), DATA, header('A', ' 1'), EOH], command: header('B', ' 2') },
    { name: 'BODY after EOM', before: [CONNECT, HELO, MAIL, rcpt('<b@b.test>'), DATA, EOH, body('x'), EOM], command: body('y') },
    { name: 'EOM after EOM', before: [CONNECT, HELO, MAIL, rcpt('<b@b.test>'), DATA, EOH, EOM], command: EOM },
    { name: 'DATA after EOH', before: [CONNECT, HELO, MAIL, rcpt('<b@b.test>'), DATA, EOH], command: DATA },
    { name: 'HELO inside a message', before: [CONNECT, HELO, MAIL], command: HELO },
    { name: 'MAIL inside a message', before: [CONNECT, HELO, MAIL, rcpt('<b@b.test>')], command: MAIL },
    { name: 'CONNECT twice', before: [CONNECT], command: CONNECT },
    { name: 'OPTNEG inside an SMTP session', before: [CONNECT, HELO], command: OPTNEG },
  ];
  for (const { name, before, command } of outOfOrder) {
    test(`${name} is 'out-of-phase'`, async (t) => {
      const session = openSession(t, everyStepMilter([]));
      await converse(session, [OPTNEG, ...before]);
      await assertProtocolError(replies(session, command), 'out-of-phase');
    });
  }

  test('a step may be left out by the negotiation: RCPT right after HELO is fine when MAIL was negotiated away', async (t) => {
    const recipients: string[] = [];
    const definition = defineMilter({
      name: 'rcpt-only',
      createHandler: () => ({ rcptTo: (_ctx, recipient) => (recipients.push(recipient), CONTINUE) }),
    });
    const session = openSession(t, definition);
    const [negotiation] = await replies(session, OPTNEG);
    assert.ok(negotiation?.kind === 'optneg' && (negotiation.protocol & Protocol.NoMail) !== 0);
    assert.deepEqual(await converse(session, [rcpt('<a@b.test>'), EOM, rcpt('<c@d.test>'), ABORT, rcpt('<e@f.test>')]), [
      [CONTINUE_REPLY],
      [CONTINUE_REPLY],
      [CONTINUE_REPLY],
      [],
      [CONTINUE_REPLY],
    ]);
    assert.deepEqual(recipients, ['<a@b.test>', '<c@d.test>', '<e@f.test>']);
  });

  test('a rejected UNKNOWN command inside a message does not end the message', async (t) => {
    const events: string[] = [];
    let envelope: { sender: string | undefined; recipients: string[] } | undefined;
    const session = openSession(
      t,
      everyStepMilter(events, {
        unknown: () => REJECT,
        endOfMessage: (ctx) => {
          envelope = { sender: ctx.message.sender, recipients: [...ctx.message.recipients] };
          return { verdict: CONTINUE };
        },
      }),
    );
    await converse(session, [OPTNEG, CONNECT, HELO, MAIL, rcpt('<b@b.test>')]);
    assert.deepEqual(await replies(session, { kind: 'unknown', command: 'XFOO' }), [{ kind: 'reject' }]);
    assert.deepEqual(await converse(session, [rcpt('<c@b.test>'), DATA, EOH, EOM]), [[CONTINUE_REPLY], [CONTINUE_REPLY], [CONTINUE_REPLY], [CONTINUE_REPLY]]);
    assert.deepEqual(events, ['connect', 'helo', 'mail', 'rcpt', 'rcpt', 'data', 'eoh']);
    assert.deepEqual(envelope, { sender: '<alice@a.test>', recipients: ['<b@b.test>', '<c@b.test>'] });
  });

  test('an UNKNOWN command before CONNECT is out-of-phase unless CONNECT was negotiated away', async (t) => {
    const strict = openSession(t, everyStepMilter([]));
    await replies(strict, OPTNEG);
    await assertProtocolError(replies(strict, { kind: 'unknown', command: 'XFOO' }), 'out-of-phase');

    const lenient = openSession(t, defineMilter({ name: 'unknown-only', createHandler: () => ({ unknown: () => reply(502, '5.5.2', 'no') }) }));
    await replies(lenient, OPTNEG);
    assert.deepEqual(await replies(lenient, { kind: 'unknown', command: 'XFOO' }), [{ kind: 'replyCode', reply: '502 5.5.2 no' }]);
  });
});

describe('steps without reply', () => {
  test('a step negotiated without reply yields no reply', async (t) => {
    const events: string[] = [];
    const session = openSession(t, everyStepMilter(events, {}, { noReply: ['connect', 'helo', 'mail', 'rcpt', 'data', 'header', 'eoh', 'body', 'unknown'] }));
    const [negotiation] = await replies(session, OPTNEG);
    // NR_CONN, NR_HELO, NR_MAIL, NR_RCPT, NR_DATA, NR_UNKN, NR_EOH, NR_BODY, NR_HDR
    assert.ok(negotiation?.kind === 'optneg');
    assert.equal(negotiation.protocol & 0xff080, 0xff080);
    const commands = [CONNECT, HELO, MAIL, rcpt('<b@b.test>'), DATA, header('A', ' 1'), EOH, body('x'), { kind: 'unknown', command: 'X' } as Command];
    assert.deepEqual(await converse(session, commands), commands.map(() => []));
    assert.deepEqual(await replies(session, EOM), [CONTINUE_REPLY]);
    assert.deepEqual(events, ['connect', 'helo', 'mail', 'rcpt', 'data', 'header', 'eoh', 'body', 'unknown', 'eom']);
  });

  test("a non-continue verdict on a no-reply step becomes onError (tempfail) at the next step with a reply", async (t) => {
    const { logger, errors } = errorLog();
    const session = openSession(t, everyStepMilter([], { helo: () => REJECT }, { noReply: ['helo'] }), { logger });
    await converse(session, [OPTNEG, CONNECT]);
    assert.deepEqual(await replies(session, HELO), []);
    assert.deepEqual(await replies(session, MAIL), [TEMPFAIL_REPLY]);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.code, 'invalid-verdict');
    // The error was answered once; the next message is unaffected.
    assert.deepEqual(await replies(session, MAIL), [CONTINUE_REPLY]);
  });

  test('the pending error takes a custom onError verdict', async (t) => {
    const onError = reply(421, '4.7.0', 'filter failure');
    const session = openSession(t, everyStepMilter([], { helo: () => { throw new Error('boom'); } }, { noReply: ['helo'], onError }));
    await converse(session, [OPTNEG, CONNECT]);
    assert.deepEqual(await replies(session, HELO), []);
    assert.deepEqual(await replies(session, MAIL), [{ kind: 'replyCode', reply: '421 4.7.0 filter failure' }]);
  });

  test('through the test kit: the pending error surfaces at end of message when nothing in between has a reply', async () => {
    const definition = defineMilter({ name: 'nr', noReply: ['helo'], createHandler: () => ({ helo: () => DISCARD }) });
    const result = await runTransaction(definition, MESSAGE);
    const helo = result.steps.find((s) => s.step === 'helo');
    assert.deepEqual(helo, { step: 'helo', reply: CONTINUE_REPLY, skipped: false });
    assert.ok(result.steps.filter((s) => s.step !== 'helo').every((s) => s.skipped));
    assert.deepEqual(result.verdict, TEMPFAIL_REPLY);
    assert.equal(result.delivered, undefined);
  });
});

describe('QUIT_NC', () => {
  test('ends the SMTP session, creates a new handler, clears macros, and the connection stays usable', async (t) => {
    const instances: Array<{ events: string[]; connectMacro: string | undefined; helo: string | undefined }> = [];
    const definition = defineMilter({
      name: 'quit-nc',
      actions: ['addHeaders'],
      createHandler: () => {
        const me = { events: [] as string[], connectMacro: undefined as string | undefined, helo: undefined as string | undefined };
        instances.push(me);
        return everyStep(me.events, {
          connect: (ctx) => {
            me.events.push('connect');
            me.connectMacro = ctx.macro('j');
            me.helo = ctx.helo;
            return CONTINUE;
          },
          endOfMessage: (ctx) => {
            me.events.push('eom');
            return { verdict: CONTINUE, modifications: [addHeader('X-Session', ` ${instances.length} ${ctx.client?.address}`)] };
          },
        });
      },
    });
    const session = openSession(t, definition);
    const transaction = [HELO, MAIL, rcpt('<b@b.test>'), DATA, header('A', ' 1'), EOH, body('x'), EOM];
    await replies(session, OPTNEG);
    assert.equal(instances.length, 1);
    await converse(session, [macros('C', { j: 'mx.test' }), CONNECT]);
    const first = await converse(session, transaction);
    assert.deepEqual(first.at(-1), [{ kind: 'addHeader', name: 'X-Session', value: ' 1 192.0.2.7' }, CONTINUE_REPLY]);

    assert.deepEqual(await replies(session, QUIT_NC), []);
    assert.equal(session.finished, false);
    assert.equal(instances.length, 2);
    assert.deepEqual(instances[0]?.events.at(-1), 'close');

    const secondClient: Command = { kind: 'connect', hostname: 'other.test', family: 'inet6', port: 2525, address: '2001:db8::9' };
    assert.deepEqual(await replies(session, secondClient), [CONTINUE_REPLY]);
    const second = await converse(session, transaction);
    assert.deepEqual(second.at(-1), [{ kind: 'addHeader', name: 'X-Session', value: ' 2 2001:db8::9' }, CONTINUE_REPLY]);
    assert.equal(instances[1]?.connectMacro, undefined);
    assert.equal(instances[1]?.helo, undefined);
    assert.equal(instances[0]?.connectMacro, 'mx.test');
    assert.deepEqual(instances[1]?.events, ['connect', 'helo', 'mail', 'rcpt', 'data', 'header', 'eoh', 'body', 'eom']);

    assert.deepEqual(await replies(session, QUIT), []);
    assert.equal(session.finished, true);
    assert.deepEqual(instances[1]?.events.at(-1), 'close');
    assert.equal(instances.length, 2);
    assert.deepEqual(instances[0]?.events.filter((e) => e === 'close'), ['close']);
  });

  test('a handler that never saw an SMTP session is not closed when the connection ends after QUIT_NC', async (t) => {
    const closes: number[] = [];
    let created = 0;
    const definition = defineMilter({
      name: 'quit-nc-close',
      createHandler: () => {
        const id = ++created;
        return { helo: () => CONTINUE, close: () => void closes.push(id) };
      },
    });
    const session = openSession(t, definition);
    await converse(session, [OPTNEG, CONNECT, HELO, QUIT_NC]);
    assert.deepEqual(closes, [1]);
    await session.dispose();
    assert.equal(created, 2);
    assert.deepEqual(closes, [1]);
  });

  test('after QUIT_NC the MTA may also negotiate again before the next CONNECT', async (t) => {
    const events: string[] = [];
    const session = openSession(t, everyStepMilter(events));
    await converse(session, [OPTNEG, CONNECT, HELO, QUIT_NC]);
    const [again] = await replies(session, { kind: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff & ~Protocol.Skip });
    assert.ok(again?.kind === 'optneg');
    assert.equal(again.protocol & Protocol.Skip, 0);
    assert.deepEqual(await converse(session, [CONNECT, HELO]), [[CONTINUE_REPLY], [CONTINUE_REPLY]]);
    assert.deepEqual(events, ['connect', 'helo', 'close', 'connect', 'helo']);
  });
});

describe('abort', () => {
  test('resets the message: handler.abort is called, ctx.signal fires, state is cleared, a new MAIL is accepted', async (t) => {
    const events: string[] = [];
    let rcptSignal: AbortSignal | undefined;
    let atAbort: { recipients: string[]; headers: number; bodySize: number } | undefined;
    let atSecondMail: { sender: string | undefined; recipients: string[]; headers: number; bodySize: number; body: BodySpool | undefined } | undefined;
    const definition = everyStepMilter(
      events,
      {
        rcptTo: (ctx) => {
          rcptSignal = ctx.signal;
          return CONTINUE;
        },
        abort: (ctx) => {
          events.push('abort');
          atAbort = { recipients: [...ctx.message.recipients], headers: ctx.message.headers.length, bodySize: ctx.message.bodySize };
        },
        mailFrom: (ctx) => {
          const m = ctx.message;
          atSecondMail = { sender: m.sender, recipients: [...m.recipients], headers: m.headers.length, bodySize: m.bodySize, body: m.body };
          return CONTINUE;
        },
      },
      { collectBody: true },
    );
    const session = openSession(t, definition);
    await converse(session, [OPTNEG, CONNECT, HELO, MAIL, rcpt('<b@b.test>'), DATA, header('A', ' 1'), EOH, body('abc')]);
    assert.equal(rcptSignal?.aborted, false);
    assert.deepEqual(await replies(session, ABORT), []);
    assert.deepEqual(atAbort, { recipients: ['<b@b.test>'], headers: 1, bodySize: 3 });
    assert.equal(rcptSignal?.aborted, true);
    assert.equal(session.inTransaction, false);

    const second: Command = { kind: 'mail', sender: '<carol@c.test>', parameters: ['SIZE=5'] };
    assert.deepEqual(await replies(session, second), [CONTINUE_REPLY]);
    assert.deepEqual(atSecondMail, { sender: '<carol@c.test>', recipients: [], headers: 0, bodySize: 0, body: undefined });
    assert.deepEqual(await converse(session, [rcpt('<d@d.test>'), DATA, EOH, EOM]), [[CONTINUE_REPLY], [CONTINUE_REPLY], [CONTINUE_REPLY], [CONTINUE_REPLY]]);
  });

  test('abort between messages does not call handler.abort', async (t) => {
    const events: string[] = [];
    const session = openSession(t, everyStepMilter(events));
    await converse(session, [OPTNEG, CONNECT, HELO, ABORT, MAIL]);
    assert.deepEqual(events, ['connect', 'helo', 'mail']);
  });
});

describe('modifications', () => {
  const notNegotiated: Array<{ name: string; actions: MilterOptions['actions']; modification: Modification }> = [
    { name: 'changeHeader with only addHeaders', actions: ['addHeaders'], modification: changeHeader('Subject', 1, ' x') },
    { name: 'deleteHeader with only addHeaders', actions: ['addHeaders'], modification: deleteHeader('Subject', 1) },
    { name: 'addHeader with only changeHeaders', actions: ['changeHeaders'], modification: addHeader('X-A', ' 1') },
    { name: 'quarantine', actions: ['addHeaders'], modification: quarantine('suspicious') },
    { name: 'changeFrom', actions: ['addHeaders'], modification: changeFrom('<x@y.test>') },
    { name: 'addRecipient with ESMTP arguments and only addRecipients', actions: ['addRecipients'], modification: addRecipient('<x@y.test>', 'NOTIFY=NEVER') },
    { name: 'replaceBody without changeBody', actions: ['addHeaders'], modification: replaceBody(Buffer.from('x')) },
  ];
  for (const { name, actions, modification } of notNegotiated) {
    test(`${name}: nothing is sent and the verdict is onError (tempfail)`, async () => {
      const { logger, errors } = errorLog();
      const result = await runTransaction(endOfMessageMilter(actions, ACCEPT, [addHeader('X-First', ' ok'), modification]), MESSAGE, { logger });
      assert.deepEqual(result.modifications, []);
      assert.deepEqual(result.verdict, TEMPFAIL_REPLY);
      assert.equal(result.delivered, undefined);
      assert.deepEqual(errors.map((e) => e.code), ['action-not-negotiated']);
    });
  }

  test('a modification not negotiated takes a custom onError verdict', async () => {
    const onError = reply(451, '4.3.0', 'try later');
    const result = await runTransaction(endOfMessageMilter(['addHeaders'], CONTINUE, [quarantine('x')], { onError }), MESSAGE);
    assert.deepEqual(result.modifications, []);
    assert.deepEqual(result.verdict, { kind: 'replyCode', reply: '451 4.3.0 try later' });
  });

  test('onError can be reject', async () => {
    const result = await runTransaction(endOfMessageMilter(['addHeaders'], CONTINUE, [changeFrom('<x@y.test>')], { onError: REJECT }), MESSAGE);
    assert.deepEqual(result.modifications, []);
    assert.deepEqual(result.verdict, { kind: 'reject' });
  });

  const invalid: Array<{ name: string; modifications: Modification[] }> = [
    { name: 'a header name with a space', modifications: [addHeader('Bad Name', ' x')] },
    { name: 'a header name with a colon', modifications: [addHeader('X:Y', ' x')] },
    { name: 'an empty header name', modifications: [addHeader('', ' x')] },
    { name: 'a NUL in a header value', modifications: [addHeader('X-A', ' a\0b')] },
    { name: 'a NUL in a changed header value', modifications: [changeHeader('Subject', 1, ' a\0b')] },
    { name: 'two replaceBody', modifications: [replaceBody(Buffer.from('a')), replaceBody(Buffer.from('b'))] },
    { name: 'a negative insert index', modifications: [insertHeader(-1, 'X-A', ' x')] },
    { name: 'a change index of 0', modifications: [changeHeader('Subject', 0, ' x')] },
    { name: 'an empty quarantine reason', modifications: [quarantine('')] },
    { name: 'a NUL in a recipient', modifications: [addRecipient('<a\0@b.test>')] },
  ];
  for (const { name, modifications } of invalid) {
    test(`${name}: nothing is sent and the verdict is onError`, async () => {
      const { logger, errors } = errorLog();
      const all: MilterOptions['actions'] = ['addHeaders', 'changeHeaders', 'changeBody', 'addRecipients', 'quarantine'];
      const result = await runTransaction(endOfMessageMilter(all, CONTINUE, [addHeader('X-First', ' ok'), ...modifications]), MESSAGE, { logger });
      assert.deepEqual(result.modifications, []);
      assert.deepEqual(result.verdict, TEMPFAIL_REPLY);
      assert.deepEqual(errors.map((e) => e.code), ['invalid-modification']);
    });
  }

  const dropping: Array<{ verdict: Verdict; expected: Response }> = [
    { verdict: REJECT, expected: { kind: 'reject' } },
    { verdict: TEMPFAIL, expected: TEMPFAIL_REPLY },
    { verdict: DISCARD, expected: { kind: 'discard' } },
    { verdict: reply(554, '5.7.1', 'no'), expected: { kind: 'replyCode', reply: '554 5.7.1 no' } },
  ];
  for (const { verdict, expected } of dropping) {
    test(`modifications are dropped when the end-of-message verdict is ${verdict.kind}`, async () => {
      const result = await runTransaction(endOfMessageMilter(['addHeaders', 'changeBody'], verdict, [addHeader('X-A', ' 1'), replaceBody(Buffer.from('x'))]), MESSAGE);
      assert.deepEqual(result.modifications, []);
      assert.deepEqual(result.verdict, expected);
      assert.equal(result.delivered, undefined);
    });
  }

  test('modifications are sent, in order, before an accept or continue verdict', async () => {
    for (const verdict of [ACCEPT, CONTINUE]) {
      const mods = [insertHeader(0, 'X-Top', ' 1'), addHeader('X-End', ' 2'), changeHeader('subject', 1, ' changed'), deleteHeader('From', 1)];
      const result = await runTransaction(endOfMessageMilter(['addHeaders', 'changeHeaders'], verdict, mods), MESSAGE);
      assert.deepEqual(result.modifications, [
        { kind: 'insertHeader', index: 0, name: 'X-Top', value: ' 1' },
        { kind: 'addHeader', name: 'X-End', value: ' 2' },
        { kind: 'changeHeader', index: 1, name: 'subject', value: ' changed' },
        { kind: 'changeHeader', index: 1, name: 'From', value: '' },
      ]);
      assert.deepEqual(result.verdict, { kind: verdict.kind });
      assert.deepEqual(result.delivered?.headers, [
        { name: 'X-Top', value: ' 1' },
        { name: 'Subject', value: ' changed' },
        { name: 'X-End', value: ' 2' },
      ]);
    }
  });

  test('replaceBody of 200,000 bytes is sent in chunks of 65535, 65535, 65535 and 3395 bytes', async () => {
    const replacement = Buffer.alloc(200_000);
    for (let i = 0; i < replacement.length; i++) replacement[i] = i % 251;
    const result = await runTransaction(endOfMessageMilter(['changeBody'], CONTINUE, [replaceBody(replacement)]), MESSAGE);
    assert.deepEqual(
      result.modifications.map((m) => (m.kind === 'replaceBody' ? m.chunk.length : m.kind)),
      [65535, 65535, 65535, 3395],
    );
    assert.ok(result.delivered?.body.equals(replacement));
  });

  test('replaceBody from an async iterable of uneven pieces is re-chunked at 65535 bytes', async () => {
    const pieces = [randomBytes(70_000), randomBytes(10), randomBytes(65_535)];
    async function* source(): AsyncGenerator<Uint8Array> {
      for (const piece of pieces) yield new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength);
    }
    const result = await runTransaction(endOfMessageMilter(['changeBody'], CONTINUE, [replaceBody(source())]), MESSAGE);
    assert.deepEqual(
      result.modifications.map((m) => (m.kind === 'replaceBody' ? m.chunk.length : m.kind)),
      [65535, 4465, 10, 65535],
    );
    assert.ok(result.delivered?.body.equals(Buffer.concat(pieces)));
  });

  test('an empty replacement body sends one empty chunk', async () => {
    const result = await runTransaction(endOfMessageMilter(['changeBody'], CONTINUE, [replaceBody(Buffer.alloc(0))]), MESSAGE);
    assert.deepEqual(result.modifications, [{ kind: 'replaceBody', chunk: Buffer.alloc(0) }]);
    assert.deepEqual(result.delivered?.body, Buffer.alloc(0));
  });
});

describe('handler errors', () => {
  test('a handler that throws in rcpt gets tempfail for that recipient only; the connection continues', async () => {
    const { logger, errors } = errorLog();
    const definition = defineMilter({
      name: 'throws',
      createHandler: () => ({
        rcptTo: (_ctx, recipient) => {
          if (recipient === '<bad@b.test>') throw new Error('lookup failed');
          return CONTINUE;
        },
      }),
    });
    const result = await runTransaction(definition, { ...MESSAGE, recipients: ['<bad@b.test>', '<good@b.test>'] }, { logger });
    assert.deepEqual(
      result.steps.filter((s) => s.step === 'rcpt').map((s) => s.reply),
      [TEMPFAIL_REPLY, CONTINUE_REPLY],
    );
    assert.deepEqual(result.verdict, CONTINUE_REPLY);
    assert.deepEqual(result.delivered?.recipients, ['<good@b.test>']);
    assert.deepEqual(errors.map((e) => [e.step, e.code, e.error]), [['rcpt', 'handler-error', 'lookup failed']]);
  });

  const badVerdicts: Array<{ name: string; verdict: unknown }> = [
    { name: 'an unknown verdict kind', verdict: { kind: 'maybe' } },
    { name: 'skip outside the body step', verdict: SKIP },
  ];
  for (const { name, verdict } of badVerdicts) {
    test(`a handler returning ${name} at MAIL gets onError`, async (t) => {
      const session = openSession(t, everyStepMilter([], { mailFrom: () => verdict as Verdict }));
      await converse(session, [OPTNEG, CONNECT, HELO]);
      assert.deepEqual(await replies(session, MAIL), [TEMPFAIL_REPLY]);
      assert.deepEqual(await replies(session, MAIL), [TEMPFAIL_REPLY], 'the message ended, so a new MAIL is in phase');
    });
  }

  test('an async handler that rejects is handled like one that throws', async (t) => {
    const session = openSession(t, everyStepMilter([], { data: async () => Promise.reject(new Error('late failure')) }));
    await converse(session, [OPTNEG, CONNECT, HELO, MAIL, rcpt('<b@b.test>')]);
    assert.deepEqual(await replies(session, DATA), [TEMPFAIL_REPLY]);
  });

  test('endOfMessage that throws gets onError and sends no modification', async (t) => {
    const session = openSession(t, everyStepMilter([], { endOfMessage: () => { throw new Error('sign failed'); } }, { actions: ['addHeaders'] }));
    await converse(session, [OPTNEG, CONNECT, HELO, MAIL, rcpt('<b@b.test>'), DATA, EOH]);
    assert.deepEqual(await replies(session, EOM), [TEMPFAIL_REPLY]);
  });

  test('a body handler that throws on the last chunk carried by EOM gets onError, not a crash', async (t) => {
    const definition = everyStepMilter([], { body: () => { throw new Error('scan failed'); } }, { onError: reply(451, '4.7.1', 'scan failed') });
    const session = openSession(t, definition);
    await converse(session, [OPTNEG, CONNECT, HELO, MAIL, rcpt('<b@b.test>'), DATA, EOH]);
    assert.deepEqual(await replies(session, { kind: 'eom', chunk: Buffer.from('last') }), [{ kind: 'replyCode', reply: '451 4.7.1 scan failed' }]);
    assert.deepEqual(await replies(session, MAIL), [CONTINUE_REPLY]);
  });
});

describe('skip', () => {
  const bigBody = Buffer.alloc(3 * 65535 - 10, 0x61);
  const skipper = (calls: number[]): MilterDefinition =>
    defineMilter({ name: 'skipper', createHandler: () => ({ body: (_ctx, chunk) => (calls.push(chunk.length), SKIP) }) });

  test("in the body step, when the MTA offers SKIP, the reply is 's' and the MTA sends no more chunks", async () => {
    const calls: number[] = [];
    const result = await runTransaction(skipper(calls), { ...MESSAGE, body: bigBody });
    assert.ok((result.negotiation.protocol & Protocol.Skip) !== 0);
    assert.deepEqual(result.steps.filter((s) => s.step === 'body').map((s) => s.reply), [{ kind: 'skip' }]);
    assert.deepEqual(calls, [65535]);
    assert.deepEqual(result.verdict, CONTINUE_REPLY);
  });

  test('in the body step, when the MTA does not offer SKIP, the reply is continue', async () => {
    const calls: number[] = [];
    const offer = { ...POSTFIX_OFFER, protocol: POSTFIX_OFFER.protocol & ~Protocol.Skip };
    const result = await runTransaction(skipper(calls), { ...MESSAGE, body: bigBody }, { offer });
    assert.equal(result.negotiation.protocol & Protocol.Skip, 0);
    assert.deepEqual(result.steps.filter((s) => s.step === 'body').map((s) => s.reply), [CONTINUE_REPLY, CONTINUE_REPLY, CONTINUE_REPLY]);
    assert.deepEqual(calls, [65535, 65535, 65525]);
  });

  test('skip for a last chunk carried by EOM is not an end-of-message reply: the EOM verdict follows', async (t) => {
    const session = openSession(t, everyStepMilter([], { body: () => SKIP }));
    await converse(session, [OPTNEG, CONNECT, HELO, MAIL, rcpt('<b@b.test>'), DATA, EOH]);
    assert.deepEqual(await replies(session, { kind: 'eom', chunk: Buffer.from('tail') }), [CONTINUE_REPLY]);
  });
});

describe('macros', () => {
  test("ctx.macro('i') is set by D for M, kept for the message, and cleared after it; connection macros stay", async (t) => {
    const seen: Array<[string, string | undefined, string | undefined]> = [];
    const look = (step: string, ctx: MilterContext): void => void seen.push([step, ctx.macro('i'), ctx.macro('j')]);
    const definition = everyStepMilter([], {
      mailFrom: (ctx) => (look('mail', ctx), CONTINUE),
      rcptTo: (ctx) => (look('rcpt', ctx), CONTINUE),
      endOfMessage: (ctx) => (look('eom', ctx), { verdict: CONTINUE }),
    });
    const session = openSession(t, definition);
    await converse(session, [OPTNEG, macros('C', { j: 'mx.test' }), CONNECT, HELO]);
    await converse(session, [macros('M', { i: 'ABC123', '{mail_addr}': 'alice@a.test' }), MAIL, rcpt('<b@b.test>'), DATA, EOH, EOM]);
    await converse(session, [MAIL, rcpt('<b@b.test>')]);
    assert.deepEqual(seen, [
      ['mail', 'ABC123', 'mx.test'],
      ['rcpt', 'ABC123', 'mx.test'],
      ['eom', 'ABC123', 'mx.test'],
      ['mail', undefined, 'mx.test'],
      ['rcpt', undefined, 'mx.test'],
    ]);
  });

  test('the most recent stage wins, and ctx.macros() lists them in stage order', async (t) => {
    let all: Map<string, string> | undefined;
    let queueId: string | undefined;
    const definition = everyStepMilter([], {
      endOfMessage: (ctx) => {
        all = ctx.macros();
        queueId = ctx.macro('i');
        return { verdict: CONTINUE };
      },
    });
    const session = openSession(t, definition);
    await converse(session, [OPTNEG, macros('C', { j: 'mx.test' }), CONNECT, HELO, macros('M', { i: 'EARLY' }), MAIL]);
    await converse(session, [macros('R', { '{rcpt_addr}': 'b@b.test' }), rcpt('<b@b.test>'), DATA, EOH, macros('E', { i: 'LATE' }), EOM]);
    assert.equal(queueId, 'LATE');
    assert.deepEqual([...(all ?? [])], [
      ['j', 'mx.test'],
      ['i', 'LATE'],
      ['{rcpt_addr}', 'b@b.test'],
    ]);
  });
});

describe('collectBody', () => {
  test('ctx.message.body holds the exact bytes across chunks, the last one carried by EOM included', async (t) => {
    const chunks = [Buffer.from('abc'), Buffer.from([0x00, 0xff, 0x0d, 0x0a]), Buffer.from('\r\n.\r\n')];
    const last = Buffer.from('tail without CRLF');
    let collected: { bytes: Buffer; size: number; spilled: boolean; bodySize: number } | undefined;
    const definition = defineMilter({
      name: 'collect',
      collectBody: true,
      createHandler: () => ({
        async endOfMessage(ctx) {
          const spool = ctx.message.body as BodySpool;
          collected = { bytes: await spool.toBuffer(), size: spool.size, spilled: spool.spilled, bodySize: ctx.message.bodySize };
          return { verdict: CONTINUE };
        },
      }),
    });
    const session = openSession(t, definition);
    await converse(session, [OPTNEG, MAIL, rcpt('<b@b.test>'), ...chunks.map((c) => body(c))]);
    assert.deepEqual(await replies(session, { kind: 'eom', chunk: last }), [CONTINUE_REPLY]);
    const expected = Buffer.concat([...chunks, last]);
    assert.deepEqual(collected, { bytes: expected, size: expected.length, spilled: false, bodySize: expected.length });
  });

  async function spoolDirectory(t: TestContext): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'milter-session-test-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  function spillingMilter(seen: Array<{ spilled: boolean; bytes: Buffer; files: string[] }>, dir: string): MilterDefinition {
    return defineMilter({
      name: 'spill',
      collectBody: true,
      createHandler: () => ({
        async endOfMessage(ctx) {
          const spool = ctx.message.body as BodySpool;
          seen.push({ spilled: spool.spilled, bytes: await spool.toBuffer(), files: await readdir(dir) });
          return { verdict: CONTINUE };
        },
      }),
    });
  }

  test('a body that cannot be stored (file size limit: EFBIG) ends with onError, abort instead of endOfMessage, nothing left', async (t) => {
    const dir = await spoolDirectory(t);
    const events: string[] = [];
    const errors: LogFields[] = [];
    const logger: MilterLogger = { debug() {}, info() {}, warn() {}, error: (message, fields) => void errors.push({ message, ...fields }) };
    const definition = defineMilter({
      name: 'lost',
      collectBody: true,
      onError: reply(451, '4.3.0', 'Cannot store the message'),
      createHandler: () => ({
        endOfMessage: () => {
          events.push('endOfMessage');
          return { verdict: CONTINUE };
        },
        abort: (ctx) => void events.push(`abort: ${ctx.message.bodyError?.message.split(':')[0] ?? 'no error'}, body ${ctx.message.body === undefined ? 'dropped' : 'kept'}, ${ctx.message.bodySize} bytes`),
      }),
    });
    const session = openSession(t, definition, { maxBufferedBody: 1000, spoolDirectory: dir, logger });
    const chunk = randomBytes(60_000);
    const answered = await withFileSizeLimit(100_000, async () => {
      await converse(session, [OPTNEG, MAIL, rcpt('<b@b.test>'), body(chunk), body(chunk), body(chunk)]);
      return replies(session, { kind: 'eom', chunk: Buffer.from('end') });
    });
    assert.deepEqual(answered, [{ kind: 'replyCode', reply: '451 4.3.0 Cannot store the message' }]);
    assert.deepEqual(events, ['abort: EFBIG, body dropped, 180003 bytes']);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.message, 'cannot store the message body');
    assert.match(String(errors[0]?.error), /^EFBIG/);
    assert.deepEqual(await readdir(dir), []);
    // The next message on the same connection is stored and handled as usual.
    await converse(session, [MAIL, rcpt('<b@b.test>'), body('small'), EOM]);
    assert.deepEqual(events.slice(1), ['endOfMessage']);
  });

  test('above maxBufferedBody the body spills to disk with identical bytes, and the file is deleted after the message', async (t) => {
    const dir = await spoolDirectory(t);
    const seen: Array<{ spilled: boolean; bytes: Buffer; files: string[] }> = [];
    const session = openSession(t, spillingMilter(seen, dir), { maxBufferedBody: 1000, spoolDirectory: dir });
    const chunks = [randomBytes(700), randomBytes(700), randomBytes(700)];
    const last = randomBytes(50);
    await converse(session, [OPTNEG, MAIL, rcpt('<b@b.test>'), ...chunks.map((c) => body(c)), { kind: 'eom', chunk: last }]);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.spilled, true);
    assert.ok(seen[0]?.bytes.equals(Buffer.concat([...chunks, last])));
    assert.equal(seen[0]?.files.length, 1);
    assert.match(seen[0]?.files[0] ?? '', /^milter-body-/);
    assert.deepEqual(await readdir(dir), []);

    // A second message under the limit stays in memory.
    await converse(session, [MAIL, rcpt('<b@b.test>'), body('small'), EOM]);
    assert.deepEqual(seen[1], { spilled: false, bytes: Buffer.from('small'), files: [] });
  });

  test('a spilled body is deleted when the message is aborted, and when the connection closes mid-message', async (t) => {
    const dir = await spoolDirectory(t);
    const session = openSession(t, spillingMilter([], dir), { maxBufferedBody: 100, spoolDirectory: dir });
    await converse(session, [OPTNEG, MAIL, rcpt('<b@b.test>'), body(randomBytes(300))]);
    assert.equal((await readdir(dir)).length, 1);
    await replies(session, ABORT);
    assert.deepEqual(await readdir(dir), []);

    await converse(session, [MAIL, rcpt('<b@b.test>'), body(randomBytes(300))]);
    assert.equal((await readdir(dir)).length, 1);
    await session.dispose();
    assert.deepEqual(await readdir(dir), []);
  });
});

describe('reply()', () => {
  test('formats a single line', () => {
    assert.deepEqual(reply(550, '5.7.1', 'text'), { kind: 'reply', reply: '550 5.7.1 text' });
  });

  test('formats several lines as a multi-line reply', () => {
    assert.deepEqual(reply(550, '5.7.1', 'a', 'b'), { kind: 'reply', reply: '550-5.7.1 a\r\n550 5.7.1 b' });
    assert.deepEqual(reply(451, '4.3.0', 'one', 'two', 'three'), { kind: 'reply', reply: '451-4.3.0 one\r\n451-4.3.0 two\r\n451 4.3.0 three' });
  });

  test('works without an enhanced code and without text', () => {
    assert.deepEqual(reply(451, undefined, 'later'), { kind: 'reply', reply: '451 later' });
    assert.deepEqual(reply(550, '5.7.1'), { kind: 'reply', reply: '550 5.7.1' });
  });

  for (const code of [250, 399, 600, 450.5, Number.NaN]) {
    test(`refuses code ${code} with 'invalid-verdict'`, () => {
      assertUsageError(() => reply(code, undefined, 'x'), 'invalid-verdict');
    });
  }

  for (const enhanced of ['4.7.1', '5.7', '5.7.1.2', 'x.7.1', '5.1000.1']) {
    test(`refuses enhanced code '${enhanced}' with a 550 reply`, () => {
      assertUsageError(() => reply(550, enhanced, 'x'), 'invalid-verdict');
    });
  }

  for (const [name, text] of [
    ['CR', 'a\rb'],
    ['LF', 'a\nb'],
    ['CRLF', 'a\r\n250 ok'],
    ['NUL', 'a\0b'],
  ] as const) {
    test(`refuses ${name} in the text with 'invalid-verdict'`, () => {
      assertUsageError(() => reply(550, '5.7.1', 'fine', text), 'invalid-verdict');
    });
  }

  test('refuses more than 32 lines', () => {
    assert.equal(reply(550, undefined, ...Array.from({ length: 32 }, () => 'x')).kind, 'reply');
    assertUsageError(() => reply(550, undefined, ...Array.from({ length: 33 }, () => 'x')), 'invalid-verdict');
  });
});

describe('defineMilter()', () => {
  test('rejects an unknown option with invalid-option, naming it', () => {
    const options = { name: 'typo', createHandler: () => ({}), acitons: ['addHeaders'] } as unknown as MilterOptions;
    assertUsageError(() => defineMilter(options), 'invalid-option', /acitons/);
  });

  test('rejects a missing createHandler', () => {
    assertUsageError(() => defineMilter({ name: 'x' } as unknown as MilterOptions), 'invalid-option', /createHandler/);
  });

  test('rejects continue or skip as onError', () => {
    assertUsageError(() => defineMilter({ name: 'x', createHandler: () => ({}), onError: CONTINUE }), 'invalid-option', /onError/);
    assertUsageError(() => defineMilter({ name: 'x', createHandler: () => ({}), onError: SKIP }), 'invalid-option', /onError/);
  });

  test('fills the documented defaults and freezes the definition', () => {
    const definition = defineMilter({ name: 'defaults', createHandler: () => ({}) });
    assert.deepEqual(
      { ...definition, createHandler: undefined },
      {
        name: 'defaults',
        createHandler: undefined,
        actions: [],
        observe: [],
        noReply: [],
        headerLeadingSpace: true,
        rejectedRecipients: false,
        macros: {},
        collectBody: false,
        onError: TEMPFAIL,
      },
    );
    assert.ok(Object.isFrozen(definition));
  });
});
