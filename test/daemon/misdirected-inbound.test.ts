/**
 * Inbound mail that the direction rules call outbound (it reached the MTA from an internal address, and its
 * listener is not in direction.inboundDaemonNames): when it is encrypted to this site's key it is never delivered
 * as the encrypted blob. All recipients local: decrypted as inbound, with a warning naming the missing setting.
 * Some recipient elsewhere: deferred with the same warning. Mail encrypted to other keys is outbound as before.
 * Ports: ephemeral only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyHeaderEdits, protectOutbound } from '../../src/engine/index.ts';
import { MuseZone } from './support/muse-zone.ts';
import { crlfBody, LOCAL_CLIENT, makeSite, sendOne, startMuse, summaryFields, type RunningMuse, type TestSite } from './support/harness.ts';

const ORIGINAL = [
  { name: 'From', value: ' Alice <alice@a.test>' },
  { name: 'To', value: ' Bob <bob@site.test>' },
  { name: 'Subject', value: ' Contract draft' },
  { name: 'Date', value: ' Mon, 02 Jun 2025 12:00:00 +0000' },
  { name: 'Message-ID', value: ' <m1@a.test>' },
  { name: 'MIME-Version', value: ' 1.0' },
  { name: 'Content-Type', value: ' text/plain; charset=utf-8' },
];
const BODY = crlfBody('Bob,', '', 'the draft.', '', 'Alice');
const WARNING =
  "mail encrypted to this site's key was classified outbound (internal network 127.0.0.1): add \"GATEWAY\" to " +
  'direction.inboundDaemonNames, and give that smtpd -o milter_macro_daemon_name=INBOUND in master.cf ' +
  '(examples/postfix/master.cf), so that mail from other sites is processed as inbound';

let zone: MuseZone;
let ours: TestSite;
let siteA: TestSite;
let daemon: RunningMuse;

async function fromSiteA(recipient: TestSite): Promise<{ headers: Array<{ name: string; value: string }>; body: Buffer }> {
  const result = await protectOutbound({ headers: ORIGINAL, body: BODY, siteKey: siteA.privateKey, recipientKeys: [recipient.publicKey], subjectPlaceholder: '...', headerEncoding: 'latin1' });
  if (result.kind !== 'protected') throw new Error('not protected');
  return { headers: applyHeaderEdits(ORIGINAL, result.headerEdits), body: await result.body.toBuffer() };
}

before(async () => {
  zone = await MuseZone.start();
  [ours, siteA] = await Promise.all([makeSite('site.test'), makeSite('a.test')]);
  zone.publish('a.test', [siteA.bytes]);
  // The listener "GATEWAY" is not in inboundDaemonNames: the internal client address makes its mail outbound.
  daemon = await startMuse({ site: ours, dnsServer: zone.address, settings: { direction: { inboundDaemonNames: ['INBOUND'] } } });
});
after(async () => {
  await daemon?.stop();
  await zone?.close();
});

describe('mail encrypted to our key but classified outbound', () => {
  it('is decrypted as inbound when every recipient is local, with a warning naming the listener setting', async () => {
    const sent = await fromSiteA(ours);
    const message = { sender: '<alice@a.test>', recipients: ['<bob@site.test>'], headers: sent.headers, body: sent.body, macros: { i: 'Q-MIS', '{daemon_name}': 'GATEWAY' } };
    const outcome = await sendOne(daemon.address, message, LOCAL_CLIENT);
    assert.deepEqual(outcome.eom?.verdict, { kind: 'continue' });
    assert.ok(outcome.delivered?.body.equals(BODY), 'the original body, byte for byte');
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-MIS')), {
      queueId: 'Q-MIS',
      direction: 'outbound',
      senderDomain: 'a.test',
      recipientDomains: ['site.test'],
      action: 'decrypted',
      reason: 'classified outbound (internal network 127.0.0.1) but encrypted to the site key: processed as inbound; pass (signature-verified) from a.test',
      keys: [siteA.fingerprint],
      dnssec: false,
    });
    const warning = daemon.lines.find((l) => l.queueId === 'Q-MIS' && l.level === 'warning');
    assert.equal(warning?.message, WARNING);
  });

  it('is deferred when a recipient is outside the local domains', async () => {
    const sent = await fromSiteA(ours);
    const message = { sender: '<alice@a.test>', recipients: ['<bob@site.test>', '<carol@elsewhere.test>'], headers: sent.headers, body: sent.body, macros: { i: 'Q-MIX', '{daemon_name}': 'GATEWAY' } };
    const outcome = await sendOne(daemon.address, message, LOCAL_CLIENT);
    assert.deepEqual(outcome.eom?.verdict, { kind: 'replyCode', reply: '451 4.7.0 Message encrypted to this site arrived as outbound mail; the milter direction settings need attention' });
    assert.equal(outcome.delivered, undefined);
    assert.equal(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-MIX')).action, 'tempfail');
  });
});
