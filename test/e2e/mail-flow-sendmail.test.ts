/**
 * End to end, DKIM and DMARC through Sendmail, with the filters in the order examples/sendmail/dkim.mc gives
 * (read verbatim, with muse.mc before it; only the sockets are pointed at loopback ports and its ${INBOUND_PORT}
 * filled in):
 *   - sending site: site A's Sendmail runs muse-milter, then OpenDKIM signing, and relays through the tap to site
 *     B's Postfix, whose INBOUND listener runs OpenDKIM verifying and OpenDMARC before muse-milter
 *     (examples/postfix/opendkim.cf);
 *   - receiving site: site B's Sendmail, on the INBOUND listener dkim.mc defines, runs OpenDKIM verifying and
 *     OpenDMARC, then muse-milter B, and relays to the mailbox;
 *   - a Sendmail-only sending site (site A without Postfix), mixed recipients split: the clear-text copy comes back
 *     on the REINJECT listener muse.mc defines, where muse-milter checks and removes its marker and OpenDKIM then
 *     signs it.
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
import { waitFor, waitForPort } from '../support/processes.ts';
import { sendMail } from '../support/smtp-client.ts';
import type { SendmailInstance } from '../support/sendmail.ts';
import { passResult, trafficCounts, waitForEmptyQueue } from './checks.ts';
import { assertNoSignatureLeftToFail, dkimReasons, dkimverify, opendkimTestmsg, signerOf, tagsOf } from './dkim-checks.ts';
import { DKIM_SELECTOR } from './dkim-milters.ts';
import { fieldValues, messageFromSiteA, parseMessage, protectedHeaders } from './mail.ts';
import { DOMAINS, SENDMAIL_SITE_HOSTNAME, startReceivingSendmail, startSendmailSite, startTopology, type DkimMilters, type ReceivingSendmail, type SendmailSite, type Topology } from './topology.ts';

/** The Authentication-Results site B writes for a message site A signed with `signature`: x-muse, DMARC, DKIM. */
function resultsAtB(topology: Topology, signature: string): string[] {
  return [
    passResult(DOMAINS.siteB, DOMAINS.siteA, topology.siteA.fingerprint),
    `${DOMAINS.siteB}; dmarc=pass (p=reject dis=none) header.from=${DOMAINS.siteA}`,
    `${DOMAINS.siteB}; dkim=pass (2048-bit key; unprotected) header.d=${DOMAINS.siteA} header.i=@${DOMAINS.siteA} header.a=rsa-sha256 header.s=${DKIM_SELECTOR} header.b=${(tagsOf(signature).get('b') ?? '').slice(0, 8)}; dkim-atps=neutral`,
  ];
}

/** Bound on one message crossing both sites. */
const DELIVERY_TIMEOUT_MS = 30_000;

let topology: Topology;
let dkim: DkimMilters;
let sendmail: SendmailInstance;
let receiving: ReceivingSendmail;
let sendmailSite: SendmailSite;

before(async () => {
  topology = await startTopology({ dkim: true, sendmail: true });
  assert.ok(topology.dkim !== undefined && topology.sendmail !== undefined);
  dkim = topology.dkim;
  sendmail = topology.sendmail;
  receiving = await startReceivingSendmail(topology);
  await waitForPort(receiving.inboundPort, { timeoutMs: DELIVERY_TIMEOUT_MS });
  sendmailSite = await startSendmailSite(topology);
});

after(async () => {
  await sendmailSite?.stop();
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
    assert.deepEqual(results, resultsAtB(topology, signature));
    assert.deepEqual(fieldValues(inbox, 'DKIM-Signature'), []);
    assert.deepEqual(fieldValues(inbox, 'Muse-Original-DKIM-Signature'), [signature]);

    // Nothing left on the delivered message can fail.
    await assertNoSignatureLeftToFail(dkim, copy.data, 'mailbox');
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
    assert.deepEqual(results, resultsAtB(topology, signature[0] as string));
    assert.deepEqual(fieldValues(inbox, 'DKIM-Signature'), []);
    assert.deepEqual(fieldValues(inbox, 'Muse-Original-DKIM-Signature'), signature);

    // Nothing left on the delivered message can fail, for python3-dkim or for OpenDKIM's library; the control, the
    // field under its old name again, fails on the body hash.
    await assertNoSignatureLeftToFail(dkim, copy.data, 'mailbox');
    const unrenamed = Buffer.from(copy.data.toString('latin1').replace(/^Muse-Original-DKIM-Signature:/m, 'DKIM-Signature:'), 'latin1');
    const unrenamedReasons = await dkimReasons(dkim, unrenamed);
    const unrenamedOpendkim = await opendkimTestmsg(dkim, unrenamed);
    console.log(`python3-dkim (mailbox, signature named DKIM-Signature again): ${unrenamedReasons.split('\n').at(-1) ?? ''}`);
    console.log(`opendkim-testmsg (mailbox, signature named DKIM-Signature again): exit ${unrenamedOpendkim.code}: ${unrenamedOpendkim.output}`);
    assert.match(unrenamedReasons, /body hash mismatch/);
    assert.deepEqual(unrenamedOpendkim, { code: 70, output: 'opendkim-testmsg: dkim_eom(): Bad signature' });
  });

  it('Sendmail-only sending site, mixed recipients split: the copy comes back on the REINJECT listener of muse.mc, muse-milter lets it through, OpenDKIM signs it', async () => {
    const start = trafficCounts(topology);
    const siteALines = topology.siteA.milter.messageLines().length;
    const message = messageFromSiteA('smsplit', 'Bob Example <bob@site-b.test>, Carol <carol@keyless.test>');
    const sent = await sendMail({ port: sendmailSite.smtpPort, from: 'alice@site-a.test', to: ['bob@site-b.test', 'carol@keyless.test'], data: message.bytes, mailParams: 'BODY=8BITMIME' });
    assert.equal(sent.final.code, 250, sent.final.text);
    const queueId = /^2\.0\.0 (\S+) Message accepted/.exec(sent.final.text)?.[1] ?? '';
    assert.notEqual(queueId, '');

    // The milter kept bob on the original, encrypted, and had Sendmail queue carol's copy before it answered.
    const original = await waitFor(() => sendmailSite.milter.messageLines().find((line) => line['queueId'] === queueId), {
      timeoutMs: DELIVERY_TIMEOUT_MS,
      what: `muse-milter's line for ${queueId}`,
    });
    const copyQueueId = /; copy 250 2\.0\.0 (\S+) Message accepted for delivery$/.exec(String(original['reason']))?.[1] ?? '';
    console.log(`muse-milter (original ${queueId}): ${original['action']}: ${original['reason']}`);
    assert.notEqual(copyQueueId, '');
    assert.deepEqual([original['direction'], original['action'], original['reason']], [
      'outbound',
      'split',
      `encrypted:${DOMAINS.siteB} clear:${DOMAINS.keyless}; copy 250 2.0.0 ${copyQueueId} Message accepted for delivery`,
    ]);
    // Each left Sendmail once: the original through the tap (the mailertable's esmtp), the copy to the world (the
    // smart host's relay mailer). Both sent, so nothing is left to arrive anywhere.
    await sendmailSite.sendmail.waitForLog(new RegExp(`: ${queueId}: to=<bob@site-b\\.test>, .*, mailer=esmtp, .*, stat=Sent`), DELIVERY_TIMEOUT_MS);
    await sendmailSite.sendmail.waitForLog(new RegExp(`: ${copyQueueId}: to=<carol@keyless\\.test>, .*, mailer=relay, .*, stat=Sent`), DELIVERY_TIMEOUT_MS);
    await topology.mailbox.waitForCount(start.mailbox + 1, DELIVERY_TIMEOUT_MS);
    await waitForEmptyQueue(topology.siteB.postfix, DELIVERY_TIMEOUT_MS);

    // Sendmail took the original on its MTA listener and the copy on the REINJECT listener, from muse-milter.
    const log = sendmailSite.sendmail.readLog();
    const host = SENDMAIL_SITE_HOSTNAME.replaceAll('.', '\\.');
    assert.match(log, new RegExp(`: ${queueId}: from=<alice@site-a\\.test>, .*, daemon=MTA, relay=`));
    assert.match(log, new RegExp(`: ${copyQueueId}: from=<alice@site-a\\.test>, .*, nrcpts=1, .*, daemon=REINJECT, relay=${host} \\[127\\.0\\.0\\.1\\]`));
    // M=A: the MTA listener's session offered AUTH (Sendmail logs the mechanisms at its start), REINJECT's did not.
    const sessionPid = (id: string): string => new RegExp(`sendmail\\[(\\d+)\\]: ${id}: from=`).exec(log)?.[1] ?? 'none';
    const offersAuth = (pid: string): boolean => log.includes(`sendmail[${pid}]: AUTH: available mech=`);
    assert.deepEqual([offersAuth(sessionPid(queueId)), offersAuth(sessionPid(copyQueueId))], [true, false]);
    // On the copy, the REINJECT listener ran the leaving list (confINPUT_MAIL_FILTERS of dkim.mc): muse-milter
    // removed the marker and changed nothing else, then OpenDKIM signed.
    const copySteps = log
      .split('\n')
      .map((line) => new RegExp(`: ${copyQueueId}: Milter \\(([a-z-]+)\\) ((?:insert \\(\\d+\\)|add|change|delete): header:? [A-Za-z-]+|message: body replaced)`).exec(line))
      .filter((match) => match !== null)
      .map((match) => `${match[1]} ${match[2]}`);
    for (const step of copySteps) console.log(`sendmail (copy ${copyQueueId}): ${step}`);
    assert.deepEqual(copySteps, ['muse delete: header X-Muse-Reinjected', 'opendkim insert (0): header: DKIM-Signature']);
    const copyLine = sendmailSite.milter.messageLines().find((line) => line['queueId'] === copyQueueId);
    assert.deepEqual([copyLine?.['direction'], copyLine?.['recipientDomains'], copyLine?.['action'], copyLine?.['reason']], ['outbound', [DOMAINS.keyless], 'reinjected', `copy of ${queueId}`]);
    assert.equal(sendmailSite.milter.messageLines().length, 2);
    // Postfix A and its milter had no part in it.
    assert.equal(topology.siteA.milter.messageLines().length, siteALines);

    // The world: carol's copy alone, the original message in clear with no marker, signed by site-a.test.
    const outside = topology.world.messages.slice(start.world);
    assert.equal(outside.length, 1);
    const copy = outside[0];
    assert.ok(copy !== undefined);
    assert.equal(copy.mailFrom, 'alice@site-a.test');
    assert.deepEqual(copy.rcptTo, ['carol@keyless.test']);
    const clear = parseMessage(copy.data);
    // One trace field: Sendmail does not show its filters the Received field it adds, so the copy muse-milter made
    // of the original had none, and the REINJECT listener added the one here.
    assert.deepEqual(
      clear.fields.map((field) => field.name),
      ['DKIM-Signature', 'Received', 'From', 'To', 'Subject', 'Date', 'Message-ID', 'MIME-Version', 'Content-Type', 'Content-Transfer-Encoding'],
    );
    assert.deepEqual(fieldValues(clear, 'X-Muse-Reinjected'), []);
    assert.doesNotMatch(copy.data.toString('latin1'), /X-Muse-Reinjected/i);
    assert.deepEqual(protectedHeaders(clear), message.headers);
    assert.ok(clear.body.equals(message.body), 'the body of the copy differs from the original');
    // The REINJECT listener's trace field, with the copy's queue id.
    assert.match(fieldValues(clear, 'Received')[0] ?? '', new RegExp(`^from site-a\\.test \\(${host} \\[127\\.0\\.0\\.1\\]\\) by ${host} \\(8\\.[^)]*\\) with ESMTP id ${copyQueueId} for <carol@keyless\\.test>;`));
    const copySignature = fieldValues(clear, 'DKIM-Signature')[0] ?? '';
    assert.deepEqual(signerOf(copySignature), { domain: DOMAINS.siteA, selector: DKIM_SELECTOR });
    assert.equal(tagsOf(copySignature).get('h'), 'From:To:Subject:Date');
    const copyVerdict = await dkimverify(dkim, copy.data);
    const copyOpendkim = await opendkimTestmsg(dkim, copy.data);
    console.log(`dkimverify (re-injected copy for keyless.test): ${copyVerdict}`);
    console.log(`opendkim-testmsg (re-injected copy for keyless.test): exit ${copyOpendkim.code}: ${copyOpendkim.output}`);
    assert.equal(copyVerdict, 'signature ok');
    assert.deepEqual(copyOpendkim, { code: 0, output: '' });

    // Site B: bob's version alone crossed, encrypted and signed by site-a.test, and passes there.
    const crossed = topology.tap.messages.slice(start.tap);
    assert.deepEqual(
      crossed.map((attempt) => [attempt.rcptTo, attempt.reply?.code]),
      [[['bob@site-b.test'], 250]],
    );
    const wire = (crossed[0] as (typeof crossed)[number]).data;
    const outer = parseMessage(wire);
    assert.match(fieldValues(outer, 'Content-Type')[0] ?? '', /^multipart\/encrypted;/);
    assert.deepEqual(fieldValues(outer, 'Subject'), ['...']);
    assert.ok(!wire.includes(message.body), 'the original body crossed to site B in clear');
    const signatures = fieldValues(outer, 'DKIM-Signature');
    assert.equal(signatures.length, 1, `DKIM-Signature fields: ${JSON.stringify(signatures)}`);
    const signature = signatures[0] as string;
    assert.deepEqual(signerOf(signature), { domain: DOMAINS.siteA, selector: DKIM_SELECTOR });
    assert.equal(await dkimverify(dkim, wire), 'signature ok');
    const delivered = topology.mailbox.messages.slice(start.mailbox);
    assert.deepEqual(
      delivered.map((m) => m.rcptTo),
      [['bob@site-b.test']],
    );
    const inbox = parseMessage((delivered[0] as (typeof delivered)[number]).data);
    assert.ok(inbox.body.equals(message.body), 'the delivered body differs from the original');
    assert.deepEqual(protectedHeaders(inbox), message.headers);
    const results = fieldValues(inbox, 'Authentication-Results');
    for (const line of results) console.log(`Authentication-Results: ${line}`);
    assert.deepEqual(results, resultsAtB(topology, signature));
    assert.deepEqual(fieldValues(inbox, 'Muse-Original-DKIM-Signature'), [signature]);
  });

  it("README's Sendmail section shows the lines of examples/sendmail/muse.mc and dkim.mc this test ran, as they are", () => {
    const root = new URL('../../', import.meta.url);
    const readme = readFileSync(new URL('README.md', root), 'utf8');
    for (const file of ['examples/sendmail/muse.mc', 'examples/sendmail/dkim.mc']) {
      const example = readFileSync(new URL(file, root), 'utf8')
        .split('\n')
        .filter((line) => line !== '' && !line.startsWith('dnl'))
        .map((line) => line.replace(/dnl$/, ''));
      const intro = readme.indexOf(`[${file}](${file})`);
      assert.ok(intro >= 0, `README.md does not point at ${file}`);
      const open = readme.indexOf('```\n', intro) + 4;
      const block = readme.slice(open, readme.indexOf('```', open)).replace(/\n$/, '').split('\n');
      assert.deepEqual(block, example, file);
    }
  });
});
