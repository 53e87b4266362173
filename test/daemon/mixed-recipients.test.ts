/**
 * Mixed recipients through the real daemon: the split strategy (the encrypted version stays on the original, the
 * signed clear-text copy is re-injected over SMTP into a sink that keeps its exact bytes, and the original is
 * refused when the copy is not queued), the loop marker (a copy coming back is let through with the marker removed,
 * a forged marker is removed and the message processed), and the defer strategy (452 4.5.3 at RCPT).
 * Ports: ephemeral only (milter, DNS, SMTP sink).
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Response } from '../../milter/src/index.ts';
import { parseEntity } from '../../src/mime/entity.ts';
import { SmtpSink } from '../support/smtp-sink.ts';
import { MuseZone } from './support/muse-zone.ts';
import { crlfBody, makeSite, replyCode, sendOne, startMuse, summaryFields, type RunningMuse, type TestMessage, type TestSite } from './support/harness.ts';
import { boundaryOf, openDelivered } from './support/open-delivered.ts';

const CONTINUE: Response = { kind: 'continue' };
const HEADERS = [
  { name: 'From', value: ' Alice <alice@site.test>' },
  { name: 'To', value: ' Bob <bob@b.test>, Carol <carol@c.test>' },
  { name: 'Subject', value: ' Quarterly\r\n numbers' },
  { name: 'Message-ID', value: ' <mixed@site.test>' },
  { name: 'MIME-Version', value: ' 1.0' },
  { name: 'Content-Type', value: ' text/plain; charset=us-ascii' },
];
const BODY = crlfBody('Hello Bob and Carol,', '', 'the numbers are attached.');

function message(recipients: string[], queueId: string, overrides: Partial<TestMessage> = {}): TestMessage {
  return { sender: '<alice@site.test>', recipients, headers: HEADERS, body: BODY, macros: { i: queueId }, ...overrides };
}

let zone: MuseZone;
let sink: SmtpSink;
let ours: TestSite;
let bob: TestSite;
let carol: TestSite;
let split: RunningMuse;
let defer: RunningMuse;

before(async () => {
  zone = await MuseZone.start();
  sink = await SmtpSink.start();
  [ours, bob, carol] = await Promise.all([makeSite('site.test'), makeSite('b.test'), makeSite('c.test')]);
  zone.publish('b.test', [bob.bytes]);
  zone.publish('b2.test', [bob.bytes]);
  split = await startMuse({ site: ours, dnsServer: zone.address, reinjectPort: sink.port });
  defer = await startMuse({ site: ours, dnsServer: zone.address, reinjectPort: sink.port, settings: { mixedRecipients: { strategy: 'defer' } } });
});
after(async () => {
  await split?.stop();
  await defer?.stop();
  await sink?.close();
  await zone?.close();
});
beforeEach(() => sink.clearFaults());

/** Header fields and body of bytes the sink received. */
function parse(bytes: Buffer): { headers: Array<{ name: string; value: string }>; body: Buffer } {
  const parsed = parseEntity(bytes, 'latin1');
  return { headers: parsed.fields, body: bytes.subarray(parsed.bodyOffset) };
}

describe('split', () => {
  let copyBytes: Buffer | undefined;

  it('keeps the encrypted version on the original, deletes the clear-text recipient, and re-injects exactly one signed copy', async () => {
    const before = sink.messages.length;
    const outcome = await sendOne(split.address, message(['<bob@b.test>', '<carol@c.test>'], 'Q-SPLIT'));
    assert.deepEqual(outcome.rcpt, [CONTINUE, CONTINUE]);
    assert.deepEqual(outcome.eom?.verdict, CONTINUE);
    const kinds = outcome.eom?.modifications.map((m) => m.kind);
    assert.deepEqual(kinds, ['deleteRecipient', 'changeHeader', 'changeHeader', 'addHeader', ...kinds?.slice(4).map(() => 'replaceBody')]);
    assert.deepEqual(outcome.eom?.modifications[0], { kind: 'deleteRecipient', recipient: '<carol@c.test>' });
    const delivered = outcome.delivered;
    assert.ok(delivered);
    assert.deepEqual(delivered.recipients, ['<bob@b.test>']);
    const opened = await openDelivered(delivered, bob, ours);
    assert.equal(opened.result.kind === 'opened' && opened.result.verdict.result, 'pass');
    assert.ok(opened.body?.equals(BODY));

    assert.equal(sink.messages.length, before + 1, 'exactly one copy');
    const copy = sink.messages.at(-1);
    assert.ok(copy);
    assert.equal(copy.ehlo, 'site.test');
    assert.equal(copy.mailFrom, 'alice@site.test');
    assert.equal(copy.mailParams, 'BODY=8BITMIME');
    assert.deepEqual(copy.rcptTo, ['carol@c.test']);
    copyBytes = copy.data;
    const { headers, body } = parse(copy.data);
    assert.match(headers[0]?.name ?? '', /^X-Muse-Reinjected$/);
    assert.match(headers[0]?.value ?? '', /^ v=1; id=Q-SPLIT; g=clear; t=\d+; mac=[A-Za-z0-9_-]{43}$/);
    const boundary = boundaryOf(headers.find((h) => h.name === 'Content-Type')?.value);
    assert.deepEqual(headers.slice(1), [
      ...HEADERS.slice(0, 5),
      { name: 'Content-Type', value: ` multipart/signed; micalg=pgp-sha512;\r\n protocol="application/pgp-signature";\r\n boundary="${boundary}"` },
      { name: 'Muse-Protection', value: ` signed; signer=${ours.fingerprint}` },
    ]);
    assert.doesNotMatch(copy.data.toString('latin1'), /[^\r]\n/, 'every line of the copy ends in CRLF');
    const copyOpened = await openDelivered({ headers, body }, carol, ours);
    assert.equal(copyOpened.result.kind, 'opened');
    if (copyOpened.result.kind !== 'opened') return;
    assert.deepEqual(copyOpened.result.verdict, { result: 'pass', reason: 'signature-verified', domain: 'site.test', fingerprint: ours.fingerprint, dnssec: false, encrypted: false });
    assert.ok(copyOpened.body?.equals(BODY), 'the copy is the original body, signed');

    assert.deepEqual(summaryFields(split.summaries().find((l) => l.queueId === 'Q-SPLIT')), {
      queueId: 'Q-SPLIT',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: ['b.test', 'c.test'],
      action: 'split',
      reason: `encrypted:b.test clear+signed:c.test; copy 250 2.0.0 Ok: queued as ${copy.index}`,
      keys: [bob.fingerprint],
      dnssec: false,
    });
  });

  it('lets the copy through unchanged when it passes the milter again, removing only the marker', async () => {
    assert.ok(copyBytes, 'the copy of the first test');
    const { headers, body } = parse(copyBytes);
    const outcome = await sendOne(split.address, message(['<carol@c.test>'], 'Q-AGAIN', { headers, body }));
    assert.deepEqual(outcome.eom, { modifications: [{ kind: 'changeHeader', index: 1, name: 'X-Muse-Reinjected', value: '' }], verdict: CONTINUE, progress: 0 });
    assert.deepEqual(outcome.delivered?.headers, headers.slice(1));
    assert.deepEqual(summaryFields(split.summaries().find((l) => l.queueId === 'Q-AGAIN')), {
      queueId: 'Q-AGAIN',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: ['c.test'],
      action: 'reinjected',
      reason: 'copy of Q-SPLIT',
      keys: [],
      dnssec: undefined,
    });
  });

  it('removes a marker that does not verify (forged, or recipients added) and processes the message normally', async () => {
    assert.ok(copyBytes, 'the copy of the first test');
    const genuine = parse(copyBytes).headers[0];
    assert.ok(genuine);
    const forged = { name: 'X-Muse-Reinjected', value: ` v=1; id=Q-X; g=clear; t=${Math.floor(Date.now() / 1000)}; mac=${'A'.repeat(43)}` };
    for (const [marker, recipients, queueId] of [
      [forged, ['<bob@b.test>'], 'Q-FORGED'],
      [genuine, ['<carol@c.test>', '<bob@b.test>'], 'Q-WIDENED'],
    ] as const) {
      const before = sink.messages.length;
      const outcome = await sendOne(split.address, message([...recipients], queueId, { headers: [marker, ...HEADERS] }));
      assert.deepEqual(outcome.eom?.verdict, CONTINUE);
      assert.deepEqual(outcome.eom?.modifications[0], { kind: 'changeHeader', index: 1, name: 'X-Muse-Reinjected', value: '' }, queueId);
      assert.ok(outcome.delivered?.headers.every((h) => h.name !== 'X-Muse-Reinjected'));
      const opened = await openDelivered(outcome.delivered ?? { headers: [], body: Buffer.alloc(0) }, bob, ours);
      assert.ok(opened.body?.equals(BODY), `${queueId}: encrypted as usual`);
      assert.equal(split.summaries().find((l) => l.queueId === queueId)?.action, recipients.length === 1 ? 'encrypted' : 'split');
      assert.equal(sink.messages.length, before + recipients.length - 1);
    }
  });

  for (const [fault, arm] of [
    ['the message', (s: SmtpSink) => s.failData('452 4.3.1 Insufficient system storage')],
    ['the recipient', (s: SmtpSink) => s.failRcpt('carol@c.test', '450 4.2.0 Mailbox busy')],
  ] as const) {
    it(`refuses the original with 451 4.3.0 when the endpoint refuses ${fault}; nothing is queued`, async () => {
      arm(sink);
      const queued = sink.messages.length;
      const queueId = `Q-FAIL-${fault.replace(' ', '-')}`;
      const outcome = await sendOne(split.address, message(['<bob@b.test>', '<carol@c.test>'], queueId));
      assert.deepEqual(outcome.eom, { modifications: [], verdict: replyCode(451, '4.3.0', 'Could not queue the copy for the other recipients'), progress: 0 });
      assert.equal(sink.messages.length, queued, 'no copy queued');
      const summary = summaryFields(split.summaries().find((l) => l.queueId === queueId));
      assert.equal(summary.action, 'tempfail');
      assert.match(String(summary.reason), /^re-injection failed: (end of data: 452 4\.3\.1 Insufficient system storage|RCPT TO carol@c\.test: 450 4\.2\.0 Mailbox busy)$/);
    });
  }

  it('encrypts once to every keyed domain: one version, no copy, when all recipients have keys', async () => {
    const before = sink.messages.length;
    const outcome = await sendOne(split.address, message(['<bob@b.test>', '<bea@b2.test>'], 'Q-ALLKEYS'));
    assert.deepEqual(outcome.delivered?.recipients, ['<bob@b.test>', '<bea@b2.test>']);
    assert.equal(sink.messages.length, before);
    assert.equal(split.summaries().find((l) => l.queueId === 'Q-ALLKEYS')?.reason, 'encrypted:b.test,b2.test');
  });
});

describe('defer', () => {
  it('answers 452 4.5.3 at RCPT to a recipient of the other group and delivers the first group', async () => {
    const deferred = replyCode(452, '4.5.3', 'Too many recipients for one message; send to this one in a separate transaction');
    const outcome = await sendOne(defer.address, message(['<bob@b.test>', '<carol@c.test>', '<bea@b2.test>', '<dave@site.test>'], 'Q-DEFER'));
    assert.deepEqual(outcome.rcpt, [CONTINUE, deferred, CONTINUE, deferred]);
    assert.deepEqual(outcome.delivered?.recipients, ['<bob@b.test>', '<bea@b2.test>']);
    const opened = await openDelivered(outcome.delivered ?? { headers: [], body: Buffer.alloc(0) }, bob, ours);
    assert.ok(opened.body?.equals(BODY));
    assert.equal(defer.summaries().find((l) => l.queueId === 'Q-DEFER')?.action, 'encrypted');

    const clearFirst = await sendOne(defer.address, message(['<carol@c.test>', '<bob@b.test>'], 'Q-DEFER2'));
    assert.deepEqual(clearFirst.rcpt, [CONTINUE, deferred]);
    assert.equal(defer.summaries().find((l) => l.queueId === 'Q-DEFER2')?.action, 'signed');
  });
});
