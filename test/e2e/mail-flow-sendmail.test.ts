/**
 * End to end, DKIM and DMARC through Sendmail: site A's Sendmail runs muse-milter and then OpenDKIM signing,
 * configured from examples/sendmail/muse.mc and examples/sendmail/dkim.mc verbatim (only the sockets pointed at
 * loopback ports); it relays to site B's Postfix, whose INBOUND listener runs OpenDKIM verifying and OpenDMARC
 * before muse-milter (examples/postfix/opendkim.cf). What this shows about Sendmail: a later filter is handed the
 * message as an earlier one left it, headers and body, so the signature OpenDKIM adds covers the encrypted
 * message muse-milter made and verifies at the receiver. Fails, never skips, when a program cannot start.
 *
 * Ports: picked free by the kernel for each run (test/e2e/topology.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sendMail } from '../support/smtp-client.ts';
import type { SendmailInstance } from '../support/sendmail.ts';
import { passResult, trafficCounts, waitForEmptyQueue } from './checks.ts';
import { dkimReasons, dkimverify, opendkimTestmsg, signerOf, tagsOf } from './dkim-checks.ts';
import { DKIM_SELECTOR } from './dkim-milters.ts';
import { fieldValues, messageFromSiteA, parseMessage } from './mail.ts';
import { DOMAINS, startTopology, type DkimMilters, type Topology } from './topology.ts';

/** Bound on one message crossing both sites. */
const DELIVERY_TIMEOUT_MS = 30_000;

let topology: Topology;
let dkim: DkimMilters;
let sendmail: SendmailInstance;

before(async () => {
  topology = await startTopology({ dkim: true, sendmail: true });
  assert.ok(topology.dkim !== undefined && topology.sendmail !== undefined);
  dkim = topology.dkim;
  sendmail = topology.sendmail;
});

after(async () => {
  await topology?.stop();
});

describe('e2e mail flow through Sendmail with OpenDKIM and OpenDMARC', () => {
  it('Sendmail sending site: muse-milter, then OpenDKIM; the encrypted message leaves DKIM-signed and passes at B', async () => {
    const start = trafficCounts(topology);
    const message = messageFromSiteA('smdkim', 'Bob Example <bob@site-b.test>');
    const sent = await sendMail({ port: topology.ports.sendmail, from: 'alice@site-a.test', to: ['bob@site-b.test'], data: message.bytes, mailParams: 'BODY=8BITMIME' });
    assert.equal(sent.final.code, 250, sent.final.text);
    const queueId = /^2\.0\.0 (\S+) Message accepted/.exec(sent.final.text)?.[1] ?? '';
    const delivered = await topology.mailbox.waitForCount(start.mailbox + 1, DELIVERY_TIMEOUT_MS);
    await waitForEmptyQueue(topology.siteB.postfix, DELIVERY_TIMEOUT_MS);

    // Sendmail's log (level 14): muse-milter changed the headers and replaced the body, then OpenDKIM, the next
    // filter in dkim.mc's list, inserted its signature.
    const steps = sendmail
      .readLog()
      .split('\n')
      .map((line) => new RegExp(`: ${queueId}: (Milter \\((?:muse|opendkim)\\) [^:]+):`).exec(line)?.[1])
      .filter((step) => step !== undefined);
    for (const step of steps) console.log(`sendmail: ${step}`);
    assert.deepEqual(steps, [
      'Milter (muse) change',
      'Milter (muse) delete',
      'Milter (muse) change',
      'Milter (muse) add',
      'Milter (muse) message',
      'Milter (opendkim) insert (0)',
    ]);

    // On the wire: the encrypted message with the protected Subject, signed by site-a.test over what muse-milter
    // made of it. The signature covers the Subject ("...", muse-milter's change) and the body (the ciphertext
    // muse-milter put in): had Sendmail handed OpenDKIM the message as it arrived, both would fail here.
    const crossed = topology.tap.messages.slice(start.tap);
    assert.deepEqual(
      crossed.map((attempt) => attempt.reply?.code),
      [250],
    );
    const wire = (crossed[0] as (typeof crossed)[number]).data;
    const outer = parseMessage(wire);
    assert.match(fieldValues(outer, 'Content-Type')[0] ?? '', /^multipart\/encrypted;/);
    assert.deepEqual(fieldValues(outer, 'Subject'), ['...']);
    const signatures = fieldValues(outer, 'DKIM-Signature');
    assert.equal(signatures.length, 1, `DKIM-Signature fields: ${JSON.stringify(signatures)}`);
    const signature = signatures[0] as string;
    assert.deepEqual(signerOf(signature), { domain: DOMAINS.siteA, selector: DKIM_SELECTOR });
    assert.equal(tagsOf(signature).get('h'), 'From:To:Subject:Date');
    const wireVerdict = await dkimverify(dkim, wire);
    const wireOpendkim = await opendkimTestmsg(dkim, wire);
    console.log(`dkimverify (wire): ${wireVerdict}`);
    console.log(`opendkim-testmsg (wire): exit ${wireOpendkim.code}: ${wireOpendkim.output}`);
    assert.equal(wireVerdict, 'signature ok');
    assert.deepEqual(wireOpendkim, { code: 0, output: '' });

    // At B: the original message, the three verdicts, and the sending site's signature renamed.
    assert.equal(delivered.length, start.mailbox + 1);
    const copy = delivered.at(-1);
    assert.ok(copy !== undefined);
    assert.deepEqual(copy.rcptTo, ['bob@site-b.test']);
    const inbox = parseMessage(copy.data);
    assert.ok(inbox.body.equals(message.body), 'the delivered body differs from the original');
    const results = fieldValues(inbox, 'Authentication-Results');
    for (const line of results) console.log(`Authentication-Results: ${line}`);
    assert.deepEqual(results, [
      passResult(DOMAINS.siteB, DOMAINS.siteA, topology.siteA.fingerprint),
      `${DOMAINS.siteB}; dmarc=pass (p=reject dis=none) header.from=${DOMAINS.siteA}`,
      `${DOMAINS.siteB}; dkim=pass (2048-bit key; unprotected) header.d=${DOMAINS.siteA} header.i=@${DOMAINS.siteA} header.a=rsa-sha256 header.s=${DKIM_SELECTOR} header.b=${(tagsOf(signature).get('b') ?? '').slice(0, 8)}; dkim-atps=neutral`,
    ]);
    assert.deepEqual(fieldValues(inbox, 'DKIM-Signature'), []);
    assert.deepEqual(fieldValues(inbox, 'Muse-Original-DKIM-Signature'), [signature]);

    // Nothing left on the delivered message can fail.
    const deliveredVerdict = await dkimverify(dkim, copy.data);
    const deliveredReasons = await dkimReasons(dkim, copy.data);
    const deliveredOpendkim = await opendkimTestmsg(dkim, copy.data);
    console.log(`dkimverify (mailbox): ${deliveredVerdict}`);
    console.log(`opendkim-testmsg (mailbox): exit ${deliveredOpendkim.code}: ${deliveredOpendkim.output}`);
    assert.equal(deliveredVerdict, 'signature verification failed');
    assert.doesNotMatch(deliveredReasons, /body hash mismatch/);
    assert.deepEqual(deliveredOpendkim, { code: 70, output: 'opendkim-testmsg: dkim_chunk(): No signature' });
  });
});
