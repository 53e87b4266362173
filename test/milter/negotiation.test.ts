/**
 * Option negotiation as a table: each row is an MTA offer (version, actions, protocol) and a filter
 * declaration, and the exact OPTNEG reply the library sends, or the failure. Rows go through a real
 * {@link MilterSession}, so the declaration is read the way a filter's is (handler methods, options).
 * Expected flags are written as literals; the comments name the bits.
 *
 * Flag bits used below — protocol: NOCONNECT 0x1, NOHELO 0x2, NOMAIL 0x4, NORCPT 0x8, NOBODY 0x10,
 * NOHDRS 0x20, NOEOH 0x40, NR_HDR 0x80, NOUNKNOWN 0x100, NODATA 0x200, SKIP 0x400, RCPT_REJ 0x800,
 * NR_CONN 0x1000, NR_HELO 0x2000, NR_MAIL 0x4000, NR_RCPT 0x8000, NR_DATA 0x10000, NR_UNKN 0x20000,
 * NR_EOH 0x40000, NR_BODY 0x80000, HDR_LEADSPC 0x100000; actions: ADDHDRS 0x1, CHGBODY 0x2, ADDRCPT 0x4,
 * DELRCPT 0x8, CHGHDRS 0x10, QUARANTINE 0x20, CHGFROM 0x40, ADDRCPT_PAR 0x80, SETSYMLIST 0x100.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ACCEPT,
  addHeader,
  CONTINUE,
  defineMilter,
  encodeResponse,
  MilterProtocolError,
  MilterSession,
  negotiate,
  runTransaction,
  STEPS,
  type MilterHandler,
  type MilterOptions,
  type MtaOffer,
  type Response,
  type Step,
  type Transaction,
} from '../../milter/src/index.ts';
import { bytes, RESPONSE_VECTORS } from './vectors.ts';

type OptionNegotiationReply = Extract<Response, { kind: 'optneg' }>;

/** Postfix 3.x with milter_protocol = 6. */
const POSTFIX: MtaOffer = { version: 6, actions: 0x1ff, protocol: 0x1fffff };
/** Sendmail 8.17: the same bits as Postfix, checked separately so a change to either constant shows. */
const SENDMAIL_8_17: MtaOffer = { version: 6, actions: 0x1ff, protocol: 0x1fffff };
/** An MTA speaking version 2: no NR_* flags, no SKIP, no leading-space headers, no v6 actions. */
const OLD_V2: MtaOffer = { version: 2, actions: 0x3f, protocol: 0x7f };

/** A filter as its author declares it: the steps it has handler methods for, and its options. */
interface Declaration {
  steps: readonly Step[];
  options?: Partial<Omit<MilterOptions, 'name' | 'createHandler'>>;
}

interface Row {
  name: string;
  offer: MtaOffer;
  filter: Declaration;
  expect: Omit<OptionNegotiationReply, 'kind'> | { failure: RegExp };
}

const HANDLER_METHOD: Record<Step, keyof MilterHandler> = {
  connect: 'connect',
  helo: 'helo',
  mail: 'mailFrom',
  rcpt: 'rcptTo',
  data: 'data',
  header: 'header',
  eoh: 'endOfHeaders',
  body: 'body',
  unknown: 'unknown',
};

function definitionOf(filter: Declaration): ReturnType<typeof defineMilter> {
  const createHandler = (): MilterHandler => Object.fromEntries(filter.steps.map((step) => [HANDLER_METHOD[step], () => CONTINUE]));
  return defineMilter({ name: 'table', createHandler, ...filter.options });
}

/** Sends the offer to a fresh session and returns its reply. */
async function negotiateWith(offer: MtaOffer, filter: Declaration): Promise<OptionNegotiationReply> {
  const session = new MilterSession(definitionOf(filter), { connectionId: 'negotiation' });
  try {
    const replies: Response[] = [];
    for await (const response of session.handle({ kind: 'optneg', ...offer })) replies.push(response);
    assert.equal(replies.length, 1);
    const [reply] = replies;
    assert.ok(reply?.kind === 'optneg');
    return reply;
  } finally {
    await session.dispose();
  }
}

const NOOP_LIKE: Declaration = { steps: [], options: { actions: ['addHeaders'] } };
const STAMP_LIKE: Declaration = { steps: [], options: { actions: ['addHeaders', 'changeBody'], collectBody: true, macros: { EndOfMessage: ['i'] } } };
const NO_LEADING_SPACE = { headerLeadingSpace: false } as const;

const TABLE: readonly Row[] = [
  {
    name: "Postfix's v6 offer, a filter that only acts at end of message",
    offer: POSTFIX,
    filter: NOOP_LIKE,
    // every NO* step flag 0x37f, HDR_LEADSPC; no SKIP (no body step wanted)
    expect: { version: 6, actions: 0x01, protocol: 0x10037f, macroRequests: [] },
  },
  {
    name: "Sendmail 8.17's offer, the same filter: the same reply",
    offer: SENDMAIL_8_17,
    filter: NOOP_LIKE,
    expect: { version: 6, actions: 0x01, protocol: 0x10037f, macroRequests: [] },
  },
  {
    name: 'Postfix, a filter that collects the body and wants the queue id at end of message',
    offer: POSTFIX,
    filter: STAMP_LIKE,
    // NO* flags except NOBODY (0x36f), SKIP, HDR_LEADSPC; SETSYMLIST because a macro list is asked for
    expect: { version: 6, actions: 0x103, protocol: 0x10076f, macroRequests: [{ stage: 5, names: ['i'] }] },
  },
  {
    name: 'Postfix, macro lists for MAIL and end of message (the golden vector)',
    offer: POSTFIX,
    filter: { steps: [], options: { ...STAMP_LIKE.options, macros: { EndOfMessage: ['i'], Mail: ['i', '{auth_authen}'] } } },
    expect: {
      version: 6,
      actions: 0x103,
      protocol: 0x10076f,
      macroRequests: [
        { stage: 2, names: ['i', '{auth_authen}'] },
        { stage: 5, names: ['i'] },
      ],
    },
  },
  {
    name: 'Postfix, macro lists for every stage come in stage order',
    offer: POSTFIX,
    filter: {
      steps: [],
      options: {
        macros: {
          EndOfHeaders: ['i'],
          Connect: ['j', '{daemon_name}'],
          Rcpt: ['{rcpt_addr}'],
          Helo: ['{cipher}'],
          EndOfMessage: ['i', '{msg_id}'],
          Data: ['i'],
          Mail: ['{auth_authen}'],
        },
      },
    },
    expect: {
      version: 6,
      actions: 0x100,
      protocol: 0x10037f,
      macroRequests: [
        { stage: 0, names: ['j', '{daemon_name}'] },
        { stage: 1, names: ['{cipher}'] },
        { stage: 2, names: ['{auth_authen}'] },
        { stage: 3, names: ['{rcpt_addr}'] },
        { stage: 4, names: ['i'] },
        { stage: 5, names: ['i', '{msg_id}'] },
        { stage: 6, names: ['i'] },
      ],
    },
  },
  {
    name: 'Postfix, a filter with only a RCPT method',
    offer: POSTFIX,
    filter: { steps: ['rcpt'] },
    // NO* flags except NORCPT
    expect: { version: 6, actions: 0, protocol: 0x100377, macroRequests: [] },
  },
  {
    name: 'Postfix, a filter with every step',
    offer: POSTFIX,
    filter: { steps: STEPS },
    // no NO* flag, SKIP, HDR_LEADSPC
    expect: { version: 6, actions: 0, protocol: 0x100400, macroRequests: [] },
  },
  {
    name: 'Postfix, every step and every step without reply',
    offer: POSTFIX,
    filter: { steps: STEPS, options: { noReply: STEPS } },
    // every NR_* flag (0xff080), SKIP, HDR_LEADSPC
    expect: { version: 6, actions: 0, protocol: 0x1ff480, macroRequests: [] },
  },
  {
    name: 'Postfix, RCPT and header steps without reply',
    offer: POSTFIX,
    filter: { steps: ['rcpt', 'header'], options: { noReply: ['rcpt', 'header'] } },
    // NO* flags except NORCPT and NOHDRS (0x357), NR_RCPT, NR_HDR, HDR_LEADSPC
    expect: { version: 6, actions: 0, protocol: 0x1083d7, macroRequests: [] },
  },
  {
    name: 'Postfix, noReply for a step the filter does not take: the step is left out, no NR flag',
    offer: POSTFIX,
    filter: { steps: [], options: { noReply: ['connect', 'body'] } },
    expect: { version: 6, actions: 0, protocol: 0x10037f, macroRequests: [] },
  },
  {
    name: 'Postfix, a step observed without a handler method is kept',
    offer: POSTFIX,
    filter: { steps: [], options: { observe: ['header'] } },
    // NO* flags except NOHDRS
    expect: { version: 6, actions: 0, protocol: 0x10035f, macroRequests: [] },
  },
  {
    name: 'Postfix, rejected recipients asked for',
    offer: POSTFIX,
    filter: { steps: ['rcpt'], options: { rejectedRecipients: true } },
    expect: { version: 6, actions: 0, protocol: 0x100b77, macroRequests: [] },
  },
  {
    name: 'Postfix, a filter that does not need leading space does not ask for it',
    offer: POSTFIX,
    filter: { steps: ['header'], options: NO_LEADING_SPACE },
    expect: { version: 6, actions: 0, protocol: 0x35f, macroRequests: [] },
  },
  {
    name: 'Postfix, every modification',
    offer: POSTFIX,
    filter: {
      steps: [],
      options: {
        actions: ['addHeaders', 'changeHeaders', 'changeBody', 'addRecipients', 'addRecipientsWithArgs', 'deleteRecipients', 'changeFrom', 'quarantine'],
      },
    },
    expect: { version: 6, actions: 0xff, protocol: 0x10037f, macroRequests: [] },
  },
  {
    name: 'an offer without SETSYMLIST: no macro lists and no SETSYMLIST in the reply',
    offer: { version: 6, actions: 0xff, protocol: 0x1fffff },
    filter: STAMP_LIKE,
    expect: { version: 6, actions: 0x03, protocol: 0x10076f, macroRequests: [] },
  },
  {
    name: 'an offer without SKIP: a body filter does not get SKIP',
    offer: { version: 6, actions: 0x1ff, protocol: 0x1ffbff },
    filter: { steps: ['body'] },
    expect: { version: 6, actions: 0, protocol: 0x10036f, macroRequests: [] },
  },
  {
    name: 'an offer with no NO* flag: unwanted steps get none',
    offer: { version: 6, actions: 0x1ff, protocol: 0x1ffc80 },
    filter: { steps: ['rcpt'], options: { noReply: ['rcpt'] } },
    // only NR_RCPT and HDR_LEADSPC
    expect: { version: 6, actions: 0, protocol: 0x108000, macroRequests: [] },
  },
  {
    name: 'an offer with only NOCONNECT and NOBODY: only those are taken',
    offer: { version: 6, actions: 0x1ff, protocol: 0x100011 },
    filter: { steps: ['rcpt'] },
    expect: { version: 6, actions: 0, protocol: 0x100011, macroRequests: [] },
  },
  {
    name: 'an offer with no NR_* flag: no-reply steps keep their replies',
    offer: { version: 6, actions: 0x1ff, protocol: 0x10077f },
    filter: { steps: ['helo', 'rcpt'], options: { noReply: ['helo', 'rcpt'] } },
    // NO* flags except NOHELO and NORCPT (0x375), HDR_LEADSPC
    expect: { version: 6, actions: 0, protocol: 0x100375, macroRequests: [] },
  },
  {
    name: 'an offer with the chunk-size flags MDS_256K and MDS_1M: they are not taken',
    offer: { version: 6, actions: 0x1ff, protocol: 0x301fffff },
    filter: NOOP_LIKE,
    expect: { version: 6, actions: 0x01, protocol: 0x10037f, macroRequests: [] },
  },
  {
    name: 'a newer MTA offering version 7: the reply says 6',
    offer: { version: 7, actions: 0x1ff, protocol: 0x1fffff },
    filter: NOOP_LIKE,
    expect: { version: 6, actions: 0x01, protocol: 0x10037f, macroRequests: [] },
  },
  {
    name: 'an old v2 MTA, a RCPT filter without leading space and with noReply: version 2, only offered flags',
    offer: OLD_V2,
    filter: { steps: ['rcpt'], options: { ...NO_LEADING_SPACE, noReply: ['rcpt'] } },
    // NOCONNECT NOHELO NOMAIL NOBODY NOHDRS NOEOH; no NODATA, NOUNKNOWN or NR_RCPT: not offered
    expect: { version: 2, actions: 0, protocol: 0x77, macroRequests: [] },
  },
  {
    name: 'an old v2 MTA, a body filter: no SKIP',
    offer: OLD_V2,
    filter: { steps: ['body'], options: { ...NO_LEADING_SPACE, actions: ['addHeaders', 'changeBody'] } },
    expect: { version: 2, actions: 0x03, protocol: 0x6f, macroRequests: [] },
  },
  {
    name: 'an old v2 MTA, a filter wanting macro lists: none (no SETSYMLIST offered)',
    offer: OLD_V2,
    filter: { steps: [], options: { ...NO_LEADING_SPACE, macros: { Mail: ['i'] } } },
    expect: { version: 2, actions: 0, protocol: 0x7f, macroRequests: [] },
  },
  {
    name: 'an old v2 MTA, a filter that needs leading space (the default)',
    offer: OLD_V2,
    filter: NOOP_LIKE,
    expect: { failure: /leading space/ },
  },
  {
    name: 'an old v2 MTA, a filter that needs changeFrom (a v6 action)',
    offer: OLD_V2,
    filter: { steps: [], options: { ...NO_LEADING_SPACE, actions: ['addHeaders', 'changeFrom'] } },
    expect: { failure: /actions this filter needs: changeFrom \(offered 0x3f\)/ },
  },
  {
    name: 'version 1 is refused',
    offer: { version: 1, actions: 0x0f, protocol: 0 },
    filter: { steps: [], options: NO_LEADING_SPACE },
    expect: { failure: /version 1; at least 2/ },
  },
  {
    name: 'version 0 is refused',
    offer: { version: 0, actions: 0x1ff, protocol: 0x1fffff },
    filter: NOOP_LIKE,
    expect: { failure: /version 0; at least 2/ },
  },
  {
    name: 'required actions not offered: the message names each missing one',
    offer: { version: 6, actions: 0x0f, protocol: 0x1fffff },
    filter: { steps: [], options: { actions: ['addHeaders', 'changeHeaders', 'quarantine'] } },
    expect: { failure: /actions this filter needs: changeHeaders, quarantine \(offered 0xf\)/ },
  },
  {
    name: 'addRecipientsWithArgs not offered',
    offer: { version: 6, actions: 0x7f, protocol: 0x1fffff },
    filter: { steps: [], options: { actions: ['addRecipientsWithArgs'] } },
    expect: { failure: /addRecipientsWithArgs/ },
  },
];

describe('negotiation table', () => {
  for (const row of TABLE) {
    test(row.name, async () => {
      if ('failure' in row.expect) {
        const failure = row.expect.failure;
        await assert.rejects(negotiateWith(row.offer, row.filter), (error: unknown) => {
          assert.ok(error instanceof MilterProtocolError, `expected MilterProtocolError, got ${String(error)}`);
          assert.equal(error.code, 'negotiation-failed');
          assert.match(error.message, failure);
          return true;
        });
        return;
      }
      const reply = await negotiateWith(row.offer, row.filter);
      assert.deepStrictEqual(reply, { kind: 'optneg', ...row.expect });
      // Whatever the row, a reply never takes more than was offered.
      assert.ok(reply.version <= row.offer.version);
      assert.equal(reply.actions & ~row.offer.actions, 0);
      assert.equal(reply.protocol & ~row.offer.protocol, 0);
    });
  }

  test('the reply with macro lists is byte for byte the golden vector', async () => {
    const row = TABLE.find((r) => r.name.includes('golden vector')) as Row;
    const vector = RESPONSE_VECTORS.find((v) => v.name === 'O optneg reply with macro lists');
    assert.equal(encodeResponse(await negotiateWith(row.offer, row.filter)).toString('hex'), bytes(vector?.hex ?? '').toString('hex'));
  });

  test('the end-of-message-only reply to Postfix is byte for byte the golden vector', async () => {
    const vector = RESPONSE_VECTORS.find((v) => v.name === 'O optneg reply without macro lists');
    assert.equal(encodeResponse(await negotiateWith(POSTFIX, NOOP_LIKE)).toString('hex'), bytes(vector?.hex ?? '').toString('hex'));
  });

  test('negotiate() keeps the offer for diagnostics', () => {
    const result = negotiate(
      { kind: 'optneg', version: 6, actions: 0x1ff, protocol: 0x301fffff },
      { actions: ['addHeaders'], steps: new Set(), noReply: new Set(), headerLeadingSpace: true, rejectedRecipients: false, macros: {} },
    );
    assert.deepStrictEqual(result, {
      version: 6,
      actions: 0x01,
      protocol: 0x10037f,
      offered: { version: 6, actions: 0x1ff, protocol: 0x301fffff },
      reply: { kind: 'optneg', version: 6, actions: 0x01, protocol: 0x10037f, macroRequests: [] },
    });
  });

  test('after a failed negotiation the session accepts no other command', async () => {
    const session = new MilterSession(definitionOf(NOOP_LIKE), { connectionId: 'failed' });
    try {
      await assert.rejects(session.handle({ kind: 'optneg', ...OLD_V2 }).next(), { code: 'negotiation-failed' });
      await assert.rejects(session.handle({ kind: 'helo', name: 'x' }).next(), { code: 'out-of-phase' });
    } finally {
      await session.dispose();
    }
  });
});

describe('negotiation through the test kit', () => {
  const message: Transaction = {
    sender: '<alice@a.test>',
    recipients: ['<bob@b.test>'],
    headers: [
      { name: 'From', value: ' alice@a.test' },
      { name: 'Subject', value: ' hello' },
    ],
    body: Buffer.from('Hello\r\n'),
  };
  const noop = defineMilter({
    name: 'noop',
    actions: ['addHeaders'],
    createHandler: () => ({ endOfMessage: () => ({ verdict: ACCEPT, modifications: [addHeader('X-Noop', ' seen')] }) }),
  });
  const everyStepOfTheMessage = ['connect', 'helo', 'mail', 'rcpt', 'data', 'header', 'header', 'eoh', 'body'];

  test('when the MTA cannot leave a step out, the library answers continue for the filter', async () => {
    const result = await runTransaction(noop, message, { offer: { version: 6, actions: 0x1ff, protocol: 0x100000 } });
    assert.equal(result.negotiation.protocol, 0x100000);
    assert.deepEqual(
      result.steps.map((s) => [s.step, s.reply.kind, s.skipped]),
      everyStepOfTheMessage.map((step) => [step, 'continue', false]),
    );
    assert.deepEqual(result.verdict, { kind: 'accept' });
    assert.deepEqual(result.delivered?.headers.at(-1), { name: 'X-Noop', value: ' seen' });
  });

  test("with Postfix's offer every step the filter does not take is left out", async () => {
    const result = await runTransaction(noop, message);
    assert.deepEqual(
      result.steps.map((s) => [s.step, s.skipped]),
      everyStepOfTheMessage.map((step) => [step, true]),
    );
    assert.deepEqual(result.verdict, { kind: 'accept' });
  });

  test('an old v2 MTA: version 2, header values without their leading space, DATA sent and answered', async () => {
    const headers: Array<[string, string]> = [];
    const definition = defineMilter({
      name: 'v2',
      headerLeadingSpace: false,
      createHandler: () => ({ header: (_ctx, name, value) => (headers.push([name, value]), CONTINUE) }),
    });
    const result = await runTransaction(definition, message, { offer: OLD_V2 });
    assert.equal(result.negotiation.version, 2);
    assert.deepEqual(headers, [
      ['From', 'alice@a.test'],
      ['Subject', 'hello'],
    ]);
    assert.deepEqual(
      result.steps.filter((s) => !s.skipped).map((s) => [s.step, s.reply.kind]),
      [
        ['data', 'continue'],
        ['header', 'continue'],
        ['header', 'continue'],
      ],
    );
  });

  test('a filter the MTA cannot satisfy fails the transaction with negotiation-failed', async () => {
    await assert.rejects(runTransaction(noop, message, { offer: OLD_V2 }), (error: unknown) => {
      assert.ok(error instanceof MilterProtocolError);
      assert.equal(error.code, 'negotiation-failed');
      return true;
    });
  });
});
