/**
 * Replaying the re-injection marker. A genuine marker, taken from a split copy (anyone who receives the copy
 * could see it before the re-injection listener learnt to remove it), must not make the milter wave any other
 * message through: not another message, not the copy arriving from outside or on another listener, not the copy
 * with a recipient added, another body, another Message-ID or another sender. In every such case the marker is
 * removed, a notice logged, and the message processed as if it had none. And however often the MTA retries the
 * original, its copy is re-injected once.
 * Ports: ephemeral only (milter, DNS, SMTP sink).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Response } from '../../milter/src/index.ts';
import { parseEntity } from '../../src/mime/entity.ts';
import { SmtpSink } from '../support/smtp-sink.ts';
import { MuseZone } from '../daemon/support/muse-zone.ts';
import {
  crlfBody,
  LOCAL_CLIENT,
  makeSite,
  REMOTE_CLIENT,
  sendOne,
  startMuse,
  summaryFields,
  type ClientInfo,
  type RunningMuse,
  type TestMessage,
  type TestSite,
} from '../daemon/support/harness.ts';

const CONTINUE: Response = { kind: 'continue' };
const DELETE_MARKER = { kind: 'changeHeader', index: 1, name: 'X-Muse-Reinjected', value: '' } as const;
const HEADERS = [
  { name: 'From', value: ' Alice <alice@site.test>' },
  { name: 'To', value: ' Bob <bob@b.test>, Carol <carol@c.test>' },
  { name: 'Subject', value: ' Replay me' },
  { name: 'Message-ID', value: ' <replay@site.test>' },
  { name: 'MIME-Version', value: ' 1.0' },
  { name: 'Content-Type', value: ' text/plain; charset=us-ascii' },
];
const BODY = crlfBody('Hello Bob and Carol,', '', 'see you.');

let zone: MuseZone;
let sink: SmtpSink;
let ours: TestSite;
let bob: TestSite;
let muse: RunningMuse;
/** The genuine copy the milter re-injected: its header fields (marker first) and body. */
let copy: { headers: Array<{ name: string; value: string }>; body: Buffer };

before(async () => {
  zone = await MuseZone.start();
  sink = await SmtpSink.start();
  [ours, bob] = await Promise.all([makeSite('site.test'), makeSite('b.test')]);
  zone.publish('b.test', [bob.bytes]);
  muse = await startMuse({ site: ours, dnsServer: zone.address, reinjectPort: sink.port });
  const outcome = await sendOne(muse.address, { sender: '<alice@site.test>', recipients: ['<bob@b.test>', '<carol@c.test>'], headers: HEADERS, body: BODY, macros: { i: 'Q-ORIGINAL' } });
  assert.equal(muse.summaries().find((l) => l.queueId === 'Q-ORIGINAL')?.action, 'split', String(JSON.stringify(outcome.eom)));
  const data = sink.messages.at(-1)?.data;
  assert.ok(data);
  const parsed = parseEntity(data, 'latin1');
  copy = { headers: parsed.fields, body: data.subarray(parsed.bodyOffset) };
  assert.equal(copy.headers[0]?.name, 'X-Muse-Reinjected');
});
after(async () => {
  await muse?.stop();
  await sink?.close();
  await zone?.close();
});

const REINJECTION = { '{daemon_name}': 'REINJECT' };

/** The genuine copy as it would come back, with `change` applied. */
function copyMessage(queueId: string, change: Partial<TestMessage> = {}, macros: Record<string, string> = REINJECTION): TestMessage {
  return { sender: '<alice@site.test>', recipients: ['<carol@c.test>'], headers: copy.headers, body: copy.body, macros: { i: queueId, ...macros }, ...change };
}

function withField(name: string, value: string): Array<{ name: string; value: string }> {
  return copy.headers.map((h) => (h.name === name ? { name, value } : h));
}

/** Sends `message` and checks the marker was removed, a notice logged with `reason`, and the message processed. */
async function expectProcessed(message: TestMessage, client: ClientInfo, reason: string, markers = 1): Promise<{ action: unknown; direction: unknown }> {
  const queueId = message.macros?.i ?? '';
  const outcome = await sendOne(muse.address, message, client);
  assert.deepEqual(outcome.eom?.verdict, CONTINUE, queueId);
  const deletions = Array.from({ length: markers }, (_, i) => ({ ...DELETE_MARKER, index: markers - i }));
  assert.deepEqual(outcome.eom?.modifications.slice(0, markers), deletions, queueId);
  assert.equal(outcome.delivered?.headers.some((h) => h.name.toLowerCase() === 'x-muse-reinjected'), false, `${queueId}: no marker delivered`);
  const notice = muse.lines.find((l) => l.message === 're-injection marker removed' && l.queueId === queueId);
  assert.deepEqual([notice?.level, notice?.reason], ['notice', reason], queueId);
  const summary = summaryFields(muse.summaries().find((l) => l.queueId === queueId));
  assert.notEqual(summary.action, 'reinjected', queueId);
  return { action: summary.action, direction: summary.direction };
}

const MISMATCH = 'marker does not match this message';

describe('a genuine marker replayed', () => {
  it('is accepted on the copy it was made for, on the re-injection listener (the control case)', async () => {
    const outcome = await sendOne(muse.address, copyMessage('Q-CONTROL'));
    assert.deepEqual(outcome.eom, { modifications: [DELETE_MARKER], verdict: CONTINUE, progress: 0 });
    assert.equal(muse.summaries().find((l) => l.queueId === 'Q-CONTROL')?.action, 'reinjected');
  });

  it('on another message (other sender, subject, body, Message-ID) is removed and the message processed', async () => {
    const marker = copy.headers[0] as { name: string; value: string };
    const other: TestMessage = {
      sender: '<mallory@site.test>',
      recipients: ['<bob@b.test>'],
      headers: [marker, ...HEADERS.map((h) => (h.name === 'Message-ID' ? { ...h, value: ' <other@site.test>' } : h.name === 'Subject' ? { ...h, value: ' Pay now' } : h))],
      body: crlfBody('Pay now.'),
      macros: { i: 'Q-MOVED', ...REINJECTION },
    };
    assert.deepEqual(await expectProcessed(other, LOCAL_CLIENT, MISMATCH), { action: 'encrypted', direction: 'outbound' });
  });

  it('on inbound mail from outside is removed and the mail processed as inbound', async () => {
    // The very copy, byte for byte, but from an Internet client on the MX listener.
    const inbound = copyMessage('Q-INBOUND', {}, { '{daemon_name}': 'mx.site.test' });
    assert.deepEqual(await expectProcessed(inbound, REMOTE_CLIENT, 'marker outside the re-injection listener (default)'), { action: 'unchanged', direction: 'inbound' });
  });

  it('on the copy arriving at a listener other than the re-injection one is removed and the copy processed', async () => {
    const elsewhere = copyMessage('Q-ORIGINATING', {}, { '{daemon_name}': 'ORIGINATING' });
    assert.deepEqual(await expectProcessed(elsewhere, LOCAL_CLIENT, 'marker outside the re-injection listener (daemon ORIGINATING)'), { action: 'signed', direction: 'outbound' });
    const unnamed = copyMessage('Q-UNNAMED', {}, {});
    assert.deepEqual(await expectProcessed(unnamed, LOCAL_CLIENT, 'marker outside the re-injection listener (internal network 127.0.0.1)'), { action: 'signed', direction: 'outbound' });
  });

  it('on the copy with a recipient added, another body, another Message-ID or another sender is removed and the copy processed', async () => {
    const before = sink.messages.length;
    // Bob added: the message is split again, so Carol's copy goes out anew and Bob gets it encrypted.
    assert.deepEqual(await expectProcessed(copyMessage('Q-WIDENED', { recipients: ['<carol@c.test>', '<bob@b.test>'] }), LOCAL_CLIENT, MISMATCH), { action: 'split', direction: 'outbound' });
    assert.equal(sink.messages.length, before + 1);
    const changedBody = Buffer.from(copy.body);
    changedBody[changedBody.indexOf('Carol')] = 'K'.charCodeAt(0);
    for (const [queueId, change] of [
      ['Q-BODY', { body: changedBody }],
      ['Q-BODY-APPENDED', { body: Buffer.concat([copy.body, crlfBody('P.S. pay now')]) }],
      ['Q-MESSAGE-ID', { headers: withField('Message-ID', ' <replay2@site.test>') }],
      ['Q-NO-MESSAGE-ID', { headers: copy.headers.filter((h) => h.name !== 'Message-ID') }],
      ['Q-SENDER', { sender: '<mallory@site.test>' }],
      ['Q-RECIPIENT-SWAPPED', { recipients: ['<dave@c.test>'] }],
    ] as const) {
      assert.deepEqual(await expectProcessed(copyMessage(queueId, change), LOCAL_CLIENT, MISMATCH), { action: 'signed', direction: 'outbound' }, queueId);
    }
    assert.equal(sink.messages.length, before + 1);
  });

  it('twice on the copy is refused, and both fields are removed', async () => {
    const doubled = copyMessage('Q-TWICE', { headers: [copy.headers[0] as { name: string; value: string }, ...copy.headers] });
    assert.deepEqual(await expectProcessed(doubled, LOCAL_CLIENT, '2 marker fields', 2), { action: 'signed', direction: 'outbound' });
  });
});

describe('a retried original', () => {
  it('re-injects its copy once, however often the MTA retries it', async () => {
    const before = sink.messages.length;
    const headers = HEADERS.map((h) => (h.name === 'Message-ID' ? { ...h, value: ' <retried@site.test>' } : h));
    for (const queueId of ['Q-TRY-1', 'Q-TRY-2', 'Q-TRY-3', 'Q-TRY-4']) {
      const outcome = await sendOne(muse.address, { sender: '<alice@site.test>', recipients: ['<bob@b.test>', '<carol@c.test>'], headers, body: BODY, macros: { i: queueId } });
      assert.deepEqual(outcome.eom?.verdict, CONTINUE, queueId);
      assert.deepEqual(outcome.delivered?.recipients, ['<bob@b.test>'], queueId);
    }
    assert.deepEqual(sink.messages.slice(before).map((m) => m.rcptTo), [['carol@c.test']]);
    const reasons = ['Q-TRY-2', 'Q-TRY-3', 'Q-TRY-4'].map((q) => muse.summaries().find((l) => l.queueId === q)?.reason);
    const index = sink.messages.at(-1)?.index;
    assert.deepEqual(reasons, Array(3).fill(`encrypted:b.test clear+signed:c.test; copy already queued by Q-TRY-1: 250 2.0.0 Ok: queued as ${index}`));
  });
});
