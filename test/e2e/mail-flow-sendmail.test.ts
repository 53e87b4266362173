/**
 * End to end, DKIM and DMARC through Sendmail, with the filters in the order examples/sendmail/dkim.mc gives
 * (read verbatim, with muse.mc before it; only the sockets are pointed at loopback ports and its ${INBOUND_PORT}
 * filled in):
 *   - sending site: site A's Sendmail runs muse-milter, then OpenDKIM signing, and relays through the tap to site
 *     B's Postfix, whose INBOUND listener runs OpenDKIM verifying and OpenDMARC before muse-milter
 *     (examples/postfix/opendkim.cf);
 *   - receiving site: site B's Sendmail, on the INBOUND listener dkim.mc defines, runs OpenDKIM verifying and
 *     OpenDMARC, then muse-milter B, and relays to the mailbox.
 * What this shows about Sendmail: a later filter is handed the message as an earlier one left it, header fields
 * and body, as with Postfix. The signature OpenDKIM adds after muse-milter covers the protected Subject and the
 * ciphertext, and verifies at the receiver; OpenDMARC passes on the dkim= result OpenDKIM inserted just before it.
 * Each delivered message is checked with python3-dkim (dkimverify) and OpenDKIM's library (opendkim-testmsg).
 * Fails, never skips, when a program cannot start.
 *
 * Ports: picked free by the kernel for each run (test/e2e/topology.ts).
 */
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { waitForPort } from '../support/processes.ts';
import { sendMail } from '../support/smtp-client.ts';
import type { SendmailInstance } from '../support/sendmail.ts';
import { passResult, trafficCounts, waitForEmptyQueue } from './checks.ts';
import { dkimReasons, dkimverify, opendkimTestmsg, signerOf, tagsOf } from './dkim-checks.ts';
import { DKIM_SELECTOR } from './dkim-milters.ts';
import { fieldValues, messageFromSiteA, parseMessage } from './mail.ts';
import { DOMAINS, startReceivingSendmail, startTopology, type DkimMilters, type ReceivingSendmail, type Topology } from './topology.ts';

/** Bound on one message crossing both sites. */
const DELIVERY_TIMEOUT_MS = 30_000;

let topology: Topology;
let dkim: DkimMilters;
let sendmail: SendmailInstance;
let receiving: ReceivingSendmail;

before(async () => {
  topology = await startTopology({ dkim: true, sendmail: true });
  assert.ok(topology.dkim !== undefined && topology.sendmail !== undefined);
  dkim = topology.dkim;
  sendmail = topology.sendmail;
  receiving = await startReceivingSendmail(topology);
  await waitForPort(receiving.inboundPort, { timeoutMs: DELIVERY_TIMEOUT_MS });
});

after(async () => {
  await receiving?.sendmail.stop();
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
    await sendmail.waitForLog(new RegExp(`: ${queueId}: Milter \\(opendkim\\) insert`), DELIVERY_TIMEOUT_MS);

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

  it('Sendmail receiving site: OpenDKIM and OpenDMARC, then muse-milter; their results reach the mailbox, no DKIM-Signature left to fail', async () => {
    // A message as site A sends it (Sendmail A: encrypted, then DKIM-signed), taken off the wire.
    const start = trafficCounts(topology);
    const message = messageFromSiteA('smrecv', 'Bob Example <bob@site-b.test>');
    const sent = await sendMail({ port: topology.ports.sendmail, from: 'alice@site-a.test', to: ['bob@site-b.test'], data: message.bytes, mailParams: 'BODY=8BITMIME' });
    assert.equal(sent.final.code, 250, sent.final.text);
    await topology.mailbox.waitForCount(start.mailbox + 1, DELIVERY_TIMEOUT_MS);
    const crossed = topology.tap.messages.slice(start.tap);
    assert.deepEqual(
      crossed.map((attempt) => attempt.reply?.code),
      [250],
    );
    const wire = (crossed[0] as (typeof crossed)[number]).data;
    const signature = fieldValues(parseMessage(wire), 'DKIM-Signature');
    assert.equal(signature.length, 1);

    // The same bytes handed to site B's Sendmail on its INBOUND listener, as site A's MTA would.
    const handed = await sendMail({ port: receiving.inboundPort, from: 'alice@site-a.test', to: ['bob@site-b.test'], data: wire, mailParams: 'BODY=8BITMIME' });
    assert.equal(handed.final.code, 250, handed.final.text);
    const queueId = /^2\.0\.0 (\S+) Message accepted/.exec(handed.final.text)?.[1] ?? '';
    const delivered = await topology.mailbox.waitForCount(start.mailbox + 2, DELIVERY_TIMEOUT_MS);
    await receiving.sendmail.waitForLog(new RegExp(`: ${queueId}: Milter \\(muse\\) message: body replaced`), DELIVERY_TIMEOUT_MS);

    // Sendmail B ran the INBOUND listener's list, in its order: each verifier added its result, and muse-milter,
    // last, opened the message and renamed the sending site's signature. OpenDMARC's dmarc=pass rests on the dkim=
    // result OpenDKIM had just added: Sendmail handed the later filter the header field the earlier one inserted.
    const steps = receiving.sendmail
      .readLog()
      .split('\n')
      .map((line) => new RegExp(`: ${queueId}: Milter \\(([a-z-]+)\\) ((?:insert \\(\\d+\\)|add|change|delete): header:? [A-Za-z-]+|message: body replaced)`).exec(line))
      .filter((match) => match !== null)
      .map((match) => `${match[1]} ${match[2]}`);
    for (const step of steps) console.log(`sendmail B: ${step}`);
    assert.deepEqual(steps, [
      'opendkim-verify insert (0): header: Authentication-Results',
      'opendmarc insert (0): header: Authentication-Results',
      'muse delete: header Muse-Protection',
      'muse change: header Content-Type',
      'muse add: header: Content-Transfer-Encoding',
      'muse change: header Subject',
      'muse insert (0): header: Authentication-Results',
      'muse delete: header DKIM-Signature',
      'muse add: header: Muse-Original-DKIM-Signature',
      'muse message: body replaced',
    ]);

    // The mailbox: the original message from Sendmail B, the three verdicts, the signature renamed.
    assert.equal(delivered.length, start.mailbox + 2);
    const copy = delivered.at(-1);
    assert.ok(copy !== undefined);
    assert.deepEqual(copy.rcptTo, ['bob@site-b.test']);
    const inbox = parseMessage(copy.data);
    assert.match(fieldValues(inbox, 'Received')[0] ?? '', /^from client\.test \(sm\.site-b\.test \[127\.0\.0\.1\]\)\s+by sm\.site-b\.test \(8\./);
    assert.ok(inbox.body.equals(message.body), 'the delivered body differs from the original');
    const results = fieldValues(inbox, 'Authentication-Results');
    for (const line of results) console.log(`Authentication-Results: ${line}`);
    assert.deepEqual(results, [
      passResult(DOMAINS.siteB, DOMAINS.siteA, topology.siteA.fingerprint),
      `${DOMAINS.siteB}; dmarc=pass (p=reject dis=none) header.from=${DOMAINS.siteA}`,
      `${DOMAINS.siteB}; dkim=pass (2048-bit key; unprotected) header.d=${DOMAINS.siteA} header.i=@${DOMAINS.siteA} header.a=rsa-sha256 header.s=${DKIM_SELECTOR} header.b=${(tagsOf(signature[0] as string).get('b') ?? '').slice(0, 8)}; dkim-atps=neutral`,
    ]);
    assert.deepEqual(fieldValues(inbox, 'DKIM-Signature'), []);
    assert.deepEqual(fieldValues(inbox, 'Muse-Original-DKIM-Signature'), signature);

    // Nothing left on the delivered message can fail, for python3-dkim or for OpenDKIM's library; the control, the
    // field under its old name again, fails on the body hash.
    const deliveredVerdict = await dkimverify(dkim, copy.data);
    const deliveredReasons = await dkimReasons(dkim, copy.data);
    const deliveredOpendkim = await opendkimTestmsg(dkim, copy.data);
    console.log(`dkimverify (mailbox): ${deliveredVerdict}`);
    console.log(`opendkim-testmsg (mailbox): exit ${deliveredOpendkim.code}: ${deliveredOpendkim.output}`);
    assert.equal(deliveredVerdict, 'signature verification failed');
    assert.doesNotMatch(deliveredReasons, /body hash mismatch/);
    assert.deepEqual(deliveredOpendkim, { code: 70, output: 'opendkim-testmsg: dkim_chunk(): No signature' });
    const unrenamed = Buffer.from(copy.data.toString('latin1').replace(/^Muse-Original-DKIM-Signature:/m, 'DKIM-Signature:'), 'latin1');
    const unrenamedReasons = await dkimReasons(dkim, unrenamed);
    const unrenamedOpendkim = await opendkimTestmsg(dkim, unrenamed);
    console.log(`python3-dkim (mailbox, signature named DKIM-Signature again): ${unrenamedReasons.split('\n').at(-1) ?? ''}`);
    console.log(`opendkim-testmsg (mailbox, signature named DKIM-Signature again): exit ${unrenamedOpendkim.code}: ${unrenamedOpendkim.output}`);
    assert.match(unrenamedReasons, /body hash mismatch/);
    assert.deepEqual(unrenamedOpendkim, { code: 70, output: 'opendkim-testmsg: dkim_eom(): Bad signature' });
  });

  it("README's Sendmail section shows the lines of examples/sendmail/dkim.mc this test ran, as they are", () => {
    const root = new URL('../../', import.meta.url);
    const example = readFileSync(new URL('examples/sendmail/dkim.mc', root), 'utf8')
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('dnl'))
      .map((line) => line.replace(/dnl$/, ''));
    const readme = readFileSync(new URL('README.md', root), 'utf8');
    const intro = readme.indexOf('[examples/sendmail/dkim.mc](examples/sendmail/dkim.mc)');
    assert.ok(intro >= 0, 'README.md does not point at examples/sendmail/dkim.mc');
    const open = readme.indexOf('```\n', intro) + 4;
    const block = readme.slice(open, readme.indexOf('```', open)).replace(/\n$/, '').split('\n');
    assert.deepEqual(block, example);
  });
});
