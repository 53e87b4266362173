/**
 * Mixed recipients through the real daemon: the split strategy (the encrypted version stays on the original, the
 * signed clear-text copy is re-injected over SMTP into a sink that keeps its exact bytes, and the original is
 * refused when the copy is not queued), the marker (bound to the copy; a copy coming back on the re-injection
 * listener is let through with the marker removed, a forged marker is removed and the message processed), the
 * ledger (a retried message re-injects its copy once), and the defer strategy (452 4.5.3 at RCPT). The attacks on
 * the marker have their own file, test/security/reinjection-marker-replay.test.ts.
 * Ports: ephemeral only (milter, DNS, SMTP sink).
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestBody } from '../../src/daemon/copy-identity.ts';
import { readOrCreateSecret } from '../../src/daemon/key-files.ts';
import { verifyMarker } from '../../src/daemon/reinjection-marker.ts';
import type { Response } from '../../milter/src/index.ts';
import { parseEntity } from '../../src/mime/entity.ts';
import { SmtpSink } from '../support/smtp-sink.ts';
import { MuseZone } from './support/muse-zone.ts';
import { crlfBody, makeSite, REMOTE_CLIENT, replyCode, sendOne, startMuse, summaryFields, type Outcome, type RunningMuse, type TestMessage, type TestSite } from './support/harness.ts';
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

/** {@link HEADERS} with another Message-ID: each test its own message, so the ledger of one does not meet another's. */
function headersWithId(id: string): Array<{ name: string; value: string }> {
  return HEADERS.map((h) => (h.name === 'Message-ID' ? { name: h.name, value: ` <${id}@site.test>` } : h));
}

/** The macros of a message arriving on the re-injection listener (examples/postfix/master.cf). */
function atReinjection(queueId: string): Record<string, string> {
  return { i: queueId, '{daemon_name}': 'REINJECT' };
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
    assert.match(headers[0]?.value ?? '', /^ v=2; id=Q-SPLIT; t=\d+; mac=[A-Za-z0-9_-]{43}$/);
    // Bound to the copy as the re-injection listener receives it: its envelope, Message-ID and body.
    const secret = await readOrCreateSecret(join(split.dataDir, 'marker-secret'));
    const identity = { sender: copy.mailFrom, recipients: copy.rcptTo, messageIds: ['<mixed@site.test>'], bodyDigest: await digestBody([body]) };
    const now = Math.floor(Date.now() / 1000);
    assert.equal(verifyMarker(secret, headers[0]?.value ?? '', identity, now).valid, true);
    assert.deepEqual(verifyMarker(secret, headers[0]?.value ?? '', { ...identity, recipients: ['bob@b.test'] }, now), { valid: false, reason: 'marker does not match this message' });
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

  it('lets the copy through unchanged on the re-injection listener, removing only the marker', async () => {
    assert.ok(copyBytes, 'the copy of the first test');
    const { headers, body } = parse(copyBytes);
    const outcome = await sendOne(split.address, message(['<carol@c.test>'], 'Q-AGAIN', { headers, body, macros: atReinjection('Q-AGAIN') }));
    assert.deepEqual(outcome.rcpt, [CONTINUE]);
    assert.deepEqual(outcome.eom, { modifications: [{ kind: 'changeHeader', index: 1, name: 'X-Muse-Reinjected', value: '' }], verdict: CONTINUE, progress: 0 });
    // Delivered exactly as re-injected, less the marker.
    assert.deepEqual(outcome.delivered?.headers, headers.slice(1));
    assert.ok(outcome.delivered?.body.equals(body));
    assert.equal(outcome.delivered?.headers.some((h) => h.name.toLowerCase() === 'x-muse-reinjected'), false);
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

  it('processes mail on the re-injection listener without a marker as outbound, whatever its client', async () => {
    const before = sink.messages.length;
    const outcome = await sendOne(split.address, message(['<bob@b.test>'], 'Q-REINJECT-PLAIN', { headers: headersWithId('plain'), macros: atReinjection('Q-REINJECT-PLAIN') }), REMOTE_CLIENT);
    assert.deepEqual(outcome.eom?.verdict, CONTINUE);
    const opened = await openDelivered(outcome.delivered ?? { headers: [], body: Buffer.alloc(0) }, bob, ours);
    assert.ok(opened.body?.equals(BODY), 'encrypted as any outbound message');
    const summary = split.summaries().find((l) => l.queueId === 'Q-REINJECT-PLAIN');
    assert.deepEqual([summary?.direction, summary?.action], ['outbound', 'encrypted']);
    assert.equal(sink.messages.length, before);
  });

  it('removes a marker that does not verify (forged) and processes the message normally, logging at notice', async () => {
    const before = sink.messages.length;
    const forged = { name: 'X-Muse-Reinjected', value: ` v=2; id=Q-X; t=${Math.floor(Date.now() / 1000)}; mac=${'A'.repeat(43)}` };
    const outcome = await sendOne(split.address, message(['<bob@b.test>'], 'Q-FORGED', { headers: [forged, ...headersWithId('forged')], macros: atReinjection('Q-FORGED') }));
    assert.deepEqual(outcome.eom?.verdict, CONTINUE);
    assert.deepEqual(outcome.eom?.modifications[0], { kind: 'changeHeader', index: 1, name: 'X-Muse-Reinjected', value: '' });
    assert.equal(outcome.delivered?.headers.some((h) => h.name === 'X-Muse-Reinjected'), false);
    const opened = await openDelivered(outcome.delivered ?? { headers: [], body: Buffer.alloc(0) }, bob, ours);
    assert.ok(opened.body?.equals(BODY), 'encrypted as usual');
    assert.equal(split.summaries().find((l) => l.queueId === 'Q-FORGED')?.action, 'encrypted');
    const notice = split.lines.find((l) => l.message === 're-injection marker removed' && l.queueId === 'Q-FORGED');
    assert.deepEqual([notice?.level, notice?.reason], ['notice', 'marker does not match this message']);
    assert.equal(sink.messages.length, before);
  });

  it("re-injects the copy of a retried message once: the retry still drops the copy's recipients", async () => {
    const headers = headersWithId('retried');
    const send = (queueId: string): Promise<Outcome> => sendOne(split.address, message(['<bob@b.test>', '<carol@c.test>'], queueId, { headers }));
    const before = sink.messages.length;
    // A copy the MTA refused is not recorded: the next try sends it.
    sink.failData('452 4.3.1 Insufficient system storage', 1);
    assert.deepEqual((await send('Q-RETRY-0')).eom?.verdict, replyCode(451, '4.3.0', 'Could not queue the copy for the other recipients'));
    assert.equal(sink.messages.length, before);
    const first = await send('Q-RETRY-1');
    assert.equal(sink.messages.length, before + 1);
    const queued = sink.messages.at(-1);
    assert.deepEqual(queued?.rcptTo, ['carol@c.test']);
    // The MTA tries the same message again (its end-of-message reply was lost): no second copy, same recipients.
    for (const queueId of ['Q-RETRY-2', 'Q-RETRY-3']) {
      const retry = await send(queueId);
      assert.deepEqual(retry.eom?.verdict, CONTINUE);
      assert.deepEqual(retry.eom?.modifications[0], { kind: 'deleteRecipient', recipient: '<carol@c.test>' });
      assert.deepEqual(retry.delivered?.recipients, first.delivered?.recipients);
      assert.deepEqual(retry.delivered?.recipients, ['<bob@b.test>']);
      const opened = await openDelivered(retry.delivered ?? { headers: [], body: Buffer.alloc(0) }, bob, ours);
      assert.ok(opened.body?.equals(BODY));
      assert.deepEqual(summaryFields(split.summaries().find((l) => l.queueId === queueId)), {
        queueId,
        direction: 'outbound',
        senderDomain: 'site.test',
        recipientDomains: ['b.test', 'c.test'],
        action: 'split',
        reason: `encrypted:b.test clear+signed:c.test; copy already queued by Q-RETRY-1: 250 2.0.0 Ok: queued as ${queued?.index}`,
        keys: [bob.fingerprint],
        dnssec: false,
      });
    }
    assert.equal(sink.messages.length, before + 1, 'one copy in all');
    // Another body, or other recipients for the copy, make another message: its copy goes out.
    await sendOne(split.address, message(['<bob@b.test>', '<carol@c.test>'], 'Q-RETRY-BODY', { headers, body: crlfBody('Another body') }));
    await sendOne(split.address, message(['<bob@b.test>', '<carol@c.test>', '<cleo@c.test>'], 'Q-RETRY-RCPT', { headers }));
    assert.deepEqual(sink.messages.slice(before + 1).map((m) => m.rcptTo), [['carol@c.test'], ['carol@c.test', 'cleo@c.test']]);
  });

  it('re-injects again messages without a Message-ID: identical envelope and body may be two messages sent on purpose', async () => {
    const before = sink.messages.length;
    const headers = HEADERS.filter((h) => h.name !== 'Message-ID');
    for (const queueId of ['Q-NOID-1', 'Q-NOID-2']) {
      assert.deepEqual((await sendOne(split.address, message(['<bob@b.test>', '<carol@c.test>'], queueId, { headers }))).eom?.verdict, CONTINUE);
    }
    assert.equal(sink.messages.length, before + 2);
  });

  it('accepts the original when the ledger cannot be written (the copy is queued), so a retry sends the copy again', async () => {
    const ledgerDir = join(split.dataDir, 'reinjected');
    await rm(ledgerDir, { recursive: true, force: true });
    await writeFile(ledgerDir, 'not a directory');
    try {
      const headers = headersWithId('unrecorded');
      const before = sink.messages.length;
      for (const queueId of ['Q-NOLEDGER-1', 'Q-NOLEDGER-2']) {
        const outcome = await sendOne(split.address, message(['<bob@b.test>', '<carol@c.test>'], queueId, { headers }));
        assert.deepEqual(outcome.eom?.verdict, CONTINUE);
        assert.deepEqual(outcome.delivered?.recipients, ['<bob@b.test>']);
        assert.equal(split.summaries().find((l) => l.queueId === queueId)?.action, 'split');
        const failure = split.lines.find((l) => l.queueId === queueId && l.level === 'error');
        assert.equal(failure?.message, 'cannot record the queued copy in the re-injection ledger; a retry of this message would send the copy again');
      }
      // The second try could not read the ledger either: it said so, and sent the copy (the lesser evil).
      const unreadable = split.lines.find((l) => l.queueId === 'Q-NOLEDGER-2' && l.level === 'warning');
      assert.equal(unreadable?.message, 're-injection ledger entry unreadable; the copy is sent (again, if it was queued before)');
      assert.equal(sink.messages.length, before + 2, 'a duplicate rather than a lost copy');
    } finally {
      await rm(ledgerDir, { force: true });
      await mkdir(ledgerDir, { mode: 0o700 });
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
