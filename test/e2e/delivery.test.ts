/**
 * End to end, delivery: mail from site A to site B through real Postfix (SMTP submission and the local
 * sendmail command) and real Sendmail, each with muse-milter configured from examples/, over loopback SMTP,
 * with knot and unbound serving the `_muse` records `genkey` made. Every case checks bytes (what crossed the
 * wire is ciphertext GnuPG opens with B's key and whose signature is A's; what B delivered is the original)
 * and counts (each copy exactly once, queues empty afterwards). Fails, never skips, when a program cannot
 * start.
 *
 * Ports: picked free by the kernel for each run (test/e2e/topology.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { sendMail } from '../support/smtp-client.ts';
import { assertDeliveredOnceToB, queuedMessages, trafficCounts, type TrafficCounts } from './checks.ts';
import { GpgKeyring } from './gpg-check.ts';
import { fieldValue, messageFromSiteA, parseMessage, type TestMessage } from './mail.ts';
import { DOMAINS, startTopology, type Topology } from './topology.ts';

/** Bound on one message crossing both sites (about half a second when nothing is wrong). */
const DELIVERY_TIMEOUT_MS = 30_000;

let topology: Topology;
/** Site B's private key and site A's public key: what B would check A's mail with. */
let siteBKeyring: GpgKeyring;

before(async () => {
  topology = await startTopology({ sendmail: true });
  siteBKeyring = await GpgKeyring.create([await readFile(topology.siteB.privateKeyPath, 'utf8'), topology.siteA.publicKeyArmored]);
});

after(async () => {
  await siteBKeyring?.dispose();
  await topology?.stop();
});

/** Counts before a case. */
function counts(): TrafficCounts {
  return trafficCounts(topology);
}

/** Case 1, 3 and 7's ending: one transaction crossed from A to B, accepted; B delivered the message once, intact. */
async function assertOneEncryptedDelivery(start: TrafficCounts, message: TestMessage): Promise<void> {
  const crossed = await assertDeliveredOnceToB(topology, start, message, siteBKeyring, DELIVERY_TIMEOUT_MS);
  assert.deepEqual(
    crossed.map((attempt) => attempt.reply?.code),
    [250],
  );
}

/** The summary line a site's milter wrote for the message with queue id `queueId`. */
function lineOf(site: 'siteA' | 'siteB', queueId: string): Record<string, unknown> {
  const lines = topology[site].milter.messageLines().filter((line) => line['queueId'] === queueId);
  assert.equal(lines.length, 1, `summary lines for ${queueId}: ${JSON.stringify(lines)}`);
  return lines[0] as Record<string, unknown>;
}

/** The queue id in Postfix's `250 2.0.0 Ok: queued as ID`. */
function queueIdOf(reply: string): string {
  const match = /queued as ([0-9A-Za-z]+)/.exec(reply);
  assert.ok(match?.[1] !== undefined, `no queue id in ${JSON.stringify(reply)}`);
  return match[1];
}

describe('e2e delivery between two MUSE sites', () => {
  it('case 1: one recipient at B gets ciphertext on the wire and the original message in the mailbox', async () => {
    const start = counts();
    const message = messageFromSiteA('case1', 'Bob Example <bob@site-b.test>');
    const sent = await sendMail({
      port: topology.ports.a.submission,
      from: 'alice@site-a.test',
      to: ['bob@site-b.test'],
      data: message.bytes,
      mailParams: 'BODY=8BITMIME',
    });
    assert.equal(sent.final.code, 250, sent.final.text);
    await assertOneEncryptedDelivery(start, message);

    const outbound = lineOf('siteA', queueIdOf(sent.final.text));
    assert.equal(outbound['direction'], 'outbound');
    assert.equal(outbound['action'], 'encrypted');
    assert.deepEqual(outbound['keys'], [topology.siteB.fingerprint]);
    assert.equal(outbound['dnssec'], true);
    const wireQueueId = queueIdOf(topology.tap.messages.at(-1)?.reply?.text ?? '');
    const inbound = lineOf('siteB', wireQueueId);
    assert.equal(inbound['direction'], 'inbound');
    assert.equal(inbound['action'], 'decrypted');
    assert.deepEqual(inbound['keys'], [topology.siteA.fingerprint]);
  });

  it('case 2: mixed recipients each get what policy says, nothing in clear to the required domain, nothing lost', async () => {
    const recipients = ['bob@site-b.test', 'carol@keyless.test', `dave@${DOMAINS.required}`];
    const message = messageFromSiteA('case2', 'Bob <bob@site-b.test>, Carol <carol@keyless.test>, Dave <dave@partner.example>', { ascii: true });
    const send = () =>
      sendMail({ port: topology.ports.a.submission, from: 'alice@site-a.test', to: recipients, data: message.bytes });

    // README (failures table): a required domain without a usable key gets 451 4.7.1 "at RCPT when the key
    // lookup is cached, else at end of data". First attempt: nothing about partner.example is cached, so
    // RCPT cannot refuse it alone; at the end of data one refused recipient tempfails the whole message
    // (src/daemon/message-plan.ts). Postfix queues nothing.
    const start = counts();
    const first = await send();
    assert.deepEqual(
      first.steps.filter((step) => step.command.startsWith('RCPT')).map((step) => step.reply.code),
      [250, 250, 250],
    );
    assert.equal(first.final.code, 451);
    assert.equal(first.final.text, '4.7.1 Encryption to partner.example is required and no key was found');
    assert.deepEqual(queuedMessages(topology.siteA.postfix), []);
    assert.deepEqual(counts(), start);

    // The sender tries again, as an MTA would: now the cached answer refuses partner.example alone at RCPT
    // (451, the sender keeps that recipient), and the message goes on for the other two.
    const second = await send();
    const rcptReplies = second.steps.filter((step) => step.command.startsWith('RCPT')).map((step) => `${step.reply.code} ${step.reply.text}`);
    assert.deepEqual(rcptReplies, [
      '250 2.1.5 Ok',
      '250 2.1.5 Ok',
      '451 4.7.1 Encryption to partner.example is required and no key was found',
    ]);
    assert.equal(second.final.code, 250, second.final.text);
    const split = lineOf('siteA', queueIdOf(second.final.text));
    assert.equal(split['action'], 'split');
    assert.match(String(split['reason']), /^encrypted:site-b\.test clear:keyless\.test; copy /);

    // B's copy: encrypted on the wire, the original in B's mailbox.
    await topology.world.waitForCount(start.world + 1, DELIVERY_TIMEOUT_MS);
    await assertOneEncryptedDelivery({ ...start, world: start.world + 1 }, message);

    // keyless.test's copy: re-injected through the smtpd of examples/postfix/master.cf. keyless.test publishes no
    // MUSE record, so (policy.signCleartext: muse-sites) the copy leaves as the message arrived: not signed.
    const outside = topology.world.messages.slice(start.world);
    assert.equal(outside.length, 1, 'messages to other domains');
    const copy = outside[0];
    assert.ok(copy !== undefined);
    assert.deepEqual(copy.rcptTo, ['carol@keyless.test']);
    assert.match(topology.siteA.postfix.readMaillog(), /postfix\/muse-reinject\/smtpd\[\d+\]: [0-9A-F]+: client=localhost\[127\.0\.0\.1\]/);
    const clearCopy = parseMessage(copy.data);
    assert.equal(fieldValue(clearCopy, 'Subject'), message.headers.subject);
    assert.doesNotMatch(copy.data.toString('latin1'), /^(Muse-Protection|X-Muse-Reinjected):/im);
    assert.doesNotMatch(copy.data.toString('latin1'), /multipart\/signed/i);
    assert.ok(clearCopy.body.equals(message.body), 'the original body, byte for byte');

    // partner.example: never sent, in clear or otherwise.
    assert.equal(
      [...topology.world.messages, ...topology.tap.messages].some((m) => m.rcptTo.some((r) => r.endsWith(`@${DOMAINS.required}`))),
      false,
    );
  });

  it('case 3: Sendmail with examples/sendmail/muse.mc sends ciphertext to B, and B delivers the original', async () => {
    const sendmail = topology.sendmail;
    assert.ok(sendmail !== undefined);
    const start = counts();
    const message = messageFromSiteA('case3', 'Bob Example <bob@site-b.test>');
    const sent = await sendMail({
      port: topology.ports.sendmail,
      from: 'alice@site-a.test',
      to: ['bob@site-b.test'],
      data: message.bytes,
      mailParams: 'BODY=8BITMIME',
    });
    assert.equal(sent.final.code, 250, sent.final.text);
    await assertOneEncryptedDelivery(start, message);
    const wire = topology.tap.messages.at(-1);
    // The copy that crossed came from Sendmail, not from Postfix A.
    assert.match(String(wire?.data.toString('latin1')), /^Received: from client\.test \([^)]*\[127\.0\.0\.1\]\)\r\n\tby sm\.site-a\.test \(8\./);
    // Sendmail logged the milter of muse.mc at work on this message, and muse-milter logged it as outbound.
    const queueId = /^2\.0\.0 (\S+) Message accepted/.exec(sent.final.text)?.[1] ?? '';
    await sendmail.waitForLog(new RegExp(`${queueId}: Milter \\(muse\\) message: body replaced$`), DELIVERY_TIMEOUT_MS);
    const outbound = lineOf('siteA', queueId);
    assert.equal(outbound['action'], 'encrypted');
    assert.equal(outbound['direction'], 'outbound');
  });

  it('case 7: local submission with the sendmail command (non_smtpd_milters) is encrypted to B like case 1', async () => {
    const start = counts();
    const message = messageFromSiteA('case7', 'Bob Example <bob@site-b.test>');
    const submitted = await topology.siteA.postfix.sendmailCommand(['-i', '-f', 'alice@site-a.test', '--', 'bob@site-b.test'], message.bytes);
    assert.equal(submitted.code, 0, submitted.stderr);
    await assertOneEncryptedDelivery(start, message);
    const local = topology.siteA.milter.messageLines().at(-1);
    assert.equal(local?.['action'], 'encrypted');
    assert.equal(local?.['direction'], 'outbound');
    assert.match(topology.siteA.postfix.readMaillog(), /postfix\/pickup\[\d+\]: [0-9A-F]+: uid=0 from=<alice@site-a\.test>/);
  });
});
