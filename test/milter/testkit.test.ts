/**
 * The example milters driven through the test kit (a Postfix-like MTA in process, no sockets), and the
 * kit's own `applyModifications`, which stands in for the MTA applying a filter's changes.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { applyModifications, runTransaction, type DeliveredMessage, type Response, type Transaction } from '../../milter/src/index.ts';
import { noopMilter } from '../../examples/noop-milter.ts';
import { rejectRecipientMilter } from '../../examples/reject-recipient-milter.ts';
import { stampMilter } from '../../examples/stamp-milter.ts';

/** The stamp milter's footer, spelled out here so a change to the example shows up as a failure. */
const FOOTER = '-- \r\nstamped by stamp-milter\r\n';

const MESSAGE: Transaction = {
  sender: '<alice@a.test>',
  recipients: ['<bob@b.test>'],
  headers: [
    { name: 'From', value: ' Alice <alice@a.test>' },
    { name: 'To', value: ' Bob <bob@b.test>' },
    { name: 'Subject', value: ' hello' },
  ],
  body: Buffer.from('Hello Bob,\r\n\r\nsee you.\r\n'),
  macros: { i: '4XyZ1Q2w3', j: 'mx.a.test' },
};

describe('stamp-milter', () => {
  test('adds X-Stamp with the queue id and appends the footer to a body ending in CRLF', async () => {
    const result = await runTransaction(stampMilter(), MESSAGE);
    assert.deepEqual(result.negotiation.macroRequests, [{ stage: 5, names: ['i'] }]);
    assert.deepEqual(result.verdict, { kind: 'continue' });
    assert.deepEqual(result.modifications, [
      { kind: 'addHeader', name: 'X-Stamp', value: ' stamped queue-id=4XyZ1Q2w3' },
      { kind: 'replaceBody', chunk: Buffer.from(`Hello Bob,\r\n\r\nsee you.\r\n${FOOTER}`, 'latin1') },
    ]);
    assert.deepEqual(result.delivered, {
      sender: '<alice@a.test>',
      recipients: ['<bob@b.test>'],
      headers: [...MESSAGE.headers, { name: 'X-Stamp', value: ' stamped queue-id=4XyZ1Q2w3' }],
      body: Buffer.from(`Hello Bob,\r\n\r\nsee you.\r\n${FOOTER}`, 'latin1'),
      quarantine: undefined,
    });
  });

  test('puts a line break before the footer when the body has no final CRLF', async () => {
    const result = await runTransaction(stampMilter(), { ...MESSAGE, body: Buffer.from('no final line break') });
    assert.equal(result.delivered?.body.toString('latin1'), `no final line break\r\n${FOOTER}`);
  });

  test('an empty body becomes the footer alone', async () => {
    const result = await runTransaction(stampMilter(), { ...MESSAGE, body: Buffer.alloc(0) });
    assert.equal(result.delivered?.body.toString('latin1'), FOOTER);
  });

  test('a body of several chunks with 8-bit bytes is kept byte for byte, and re-sent in 65535-byte chunks', async () => {
    const original = Buffer.alloc(150_000);
    for (let i = 0; i < original.length; i++) original[i] = (i * 7) % 256;
    original.write('\r\n', original.length - 2, 'latin1');
    const result = await runTransaction(stampMilter(), { ...MESSAGE, body: original });
    const expected = Buffer.concat([original, Buffer.from(FOOTER, 'latin1')]);
    assert.ok(result.delivered?.body.equals(expected));
    assert.deepEqual(
      result.modifications.map((m) => (m.kind === 'replaceBody' ? m.chunk.length : m.kind)),
      ['addHeader', 65535, 65535, expected.length - 2 * 65535],
    );
  });

  test("without a queue id macro the header says 'unknown'", async () => {
    const result = await runTransaction(stampMilter(), { ...MESSAGE, macros: {} });
    assert.deepEqual(result.delivered?.headers.at(-1), { name: 'X-Stamp', value: ' stamped queue-id=unknown' });
  });
});

describe('reject-recipient-milter', () => {
  const recipients = ['<bob@b.test>', '<Nobody@Example.TEST>', '<carol@c.test>'];

  test('refuses the listed recipient with 550 5.1.1 and delivers to the others', async () => {
    const result = await runTransaction(rejectRecipientMilter(['nobody@example.test']), { ...MESSAGE, recipients });
    assert.deepEqual(
      result.steps.filter((s) => s.step === 'rcpt').map((s) => s.reply),
      [
        { kind: 'continue' },
        { kind: 'replyCode', reply: '550 5.1.1 Recipient nobody@example.test is not accepted here' },
        { kind: 'continue' },
      ],
    );
    assert.deepEqual(result.verdict, { kind: 'continue' });
    assert.deepEqual(result.delivered?.recipients, ['<bob@b.test>', '<carol@c.test>']);
    assert.deepEqual(result.modifications, []);
  });

  test('every step but RCPT is left out', async () => {
    const result = await runTransaction(rejectRecipientMilter(['nobody@example.test']), MESSAGE);
    assert.deepEqual(
      result.steps.filter((s) => !s.skipped).map((s) => s.step),
      ['rcpt'],
    );
  });

  test('when every recipient is refused the message ends at RCPT and nothing is delivered', async () => {
    const result = await runTransaction(rejectRecipientMilter(['bob@b.test']), MESSAGE);
    assert.equal(result.stoppedAt, 'rcpt');
    assert.equal(result.endOfMessage, undefined);
    assert.deepEqual(result.verdict, { kind: 'replyCode', reply: '550 5.1.1 Recipient bob@b.test is not accepted here' });
    assert.equal(result.delivered, undefined);
  });
});

describe('noop-milter', () => {
  test('adds X-Noop and accepts, leaving everything else as it was', async () => {
    const result = await runTransaction(noopMilter(), MESSAGE);
    assert.deepEqual(result.modifications, [{ kind: 'addHeader', name: 'X-Noop', value: ' seen' }]);
    assert.deepEqual(result.verdict, { kind: 'accept' });
    assert.deepEqual(result.delivered, {
      sender: '<alice@a.test>',
      recipients: ['<bob@b.test>'],
      headers: [...MESSAGE.headers, { name: 'X-Noop', value: ' seen' }],
      body: MESSAGE.body,
      quarantine: undefined,
    });
  });
});

describe('applyModifications()', () => {
  const message: DeliveredMessage = {
    sender: '<alice@a.test>',
    recipients: ['<bob@b.test>', '<carol@c.test>'],
    headers: [
      { name: 'Received', value: ' from a' },
      { name: 'Subject', value: ' hi' },
      { name: 'received', value: ' from b' },
      { name: 'RECEIVED', value: ' from c' },
    ],
    body: Buffer.from('original\r\n'),
    quarantine: undefined,
  };
  const apply = (...modifications: Response[]): DeliveredMessage => applyModifications(message, modifications);
  const headerList = (result: DeliveredMessage): string[] => result.headers.map((h) => `${h.name}:${h.value}`);

  test('insert puts the header at a 0-based index; an index past the end appends', () => {
    assert.deepEqual(headerList(apply({ kind: 'insertHeader', index: 0, name: 'X-A', value: ' 0' })), [
      'X-A: 0',
      'Received: from a',
      'Subject: hi',
      'received: from b',
      'RECEIVED: from c',
    ]);
    assert.deepEqual(headerList(apply({ kind: 'insertHeader', index: 2, name: 'X-A', value: ' 2' })), [
      'Received: from a',
      'Subject: hi',
      'X-A: 2',
      'received: from b',
      'RECEIVED: from c',
    ]);
    assert.deepEqual(headerList(apply({ kind: 'insertHeader', index: 99, name: 'X-A', value: ' end' })).at(-1), 'X-A: end');
  });

  test('change addresses the n-th header of that name, case-insensitively, keeping its spelling', () => {
    assert.deepEqual(headerList(apply({ kind: 'changeHeader', index: 2, name: 'Received', value: ' changed' })), [
      'Received: from a',
      'Subject: hi',
      'received: changed',
      'RECEIVED: from c',
    ]);
    assert.deepEqual(headerList(apply({ kind: 'changeHeader', index: 3, name: 'rEcEiVeD', value: ' third' })).at(-1), 'RECEIVED: third');
  });

  test('change with an empty value deletes that header only', () => {
    assert.deepEqual(headerList(apply({ kind: 'changeHeader', index: 1, name: 'RECEIVED', value: '' })), [
      'Subject: hi',
      'received: from b',
      'RECEIVED: from c',
    ]);
  });

  test('change of a header that does not exist appends it; deleting one that does not exist changes nothing', () => {
    assert.deepEqual(headerList(apply({ kind: 'changeHeader', index: 1, name: 'X-New', value: ' v' })).at(-1), 'X-New: v');
    assert.deepEqual(headerList(apply({ kind: 'changeHeader', index: 4, name: 'Received', value: ' fourth' })).at(-1), 'Received: fourth');
    assert.deepEqual(apply({ kind: 'changeHeader', index: 1, name: 'X-Missing', value: '' }).headers, message.headers);
  });

  test('add appends; changes apply in order, so a later change sees an earlier add', () => {
    const result = apply({ kind: 'addHeader', name: 'X-Tag', value: ' 1' }, { kind: 'changeHeader', index: 1, name: 'x-tag', value: ' 2' });
    assert.deepEqual(headerList(result).at(-1), 'X-Tag: 2');
    assert.equal(result.headers.length, 5);
  });

  test('envelope changes, quarantine and a body replaced in chunks', () => {
    const result = apply(
      { kind: 'addRecipient', recipient: '<dave@d.test>' },
      { kind: 'addRecipientWithArgs', recipient: '<erin@e.test>', args: 'NOTIFY=NEVER' },
      { kind: 'deleteRecipient', recipient: '<bob@b.test>' },
      { kind: 'changeFrom', sender: '<bounce@a.test>', args: 'SIZE=10' },
      { kind: 'quarantine', reason: 'held for review' },
      { kind: 'replaceBody', chunk: Buffer.from('new ') },
      { kind: 'replaceBody', chunk: Buffer.from('body\r\n') },
    );
    assert.deepEqual(result, {
      sender: '<bounce@a.test>',
      recipients: ['<carol@c.test>', '<dave@d.test>', '<erin@e.test>'],
      headers: message.headers,
      body: Buffer.from('new body\r\n'),
      quarantine: 'held for review',
    });
  });

  test('one empty replacement chunk empties the body; no replacement keeps it', () => {
    assert.deepEqual(apply({ kind: 'replaceBody', chunk: Buffer.alloc(0) }).body, Buffer.alloc(0));
    assert.equal(apply().body, message.body);
  });

  test('the input message is not changed', () => {
    const before = structuredClone({ ...message, body: undefined });
    apply({ kind: 'changeHeader', index: 1, name: 'Subject', value: ' x' }, { kind: 'deleteRecipient', recipient: '<bob@b.test>' });
    assert.deepEqual({ ...message, body: undefined }, before);
  });

  test('a reply that is no modification is refused', () => {
    assert.throws(() => apply({ kind: 'continue' }), /'continue' is not a modification/);
  });
});
