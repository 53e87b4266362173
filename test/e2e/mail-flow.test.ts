/**
 * End to end, DKIM and DMARC beside muse-milter, with the real programs chained as examples/postfix/opendkim.cf
 * says: site A's muse-milter, then OpenDKIM signing; site B's OpenDKIM verifying and OpenDMARC, then muse-milter.
 * Checks what the verifiers concluded (Authentication-Results), what python3-dkim's dkimverify and OpenDKIM's
 * opendkim-testmsg say of the bytes on the wire and of what was delivered, and that mail to an ordinary site leaves as it arrived, with only the
 * trace field and the DKIM signature added. Then, in a second topology, a forward: site B's alias for an address
 * at site A, with the second pass of examples/postfix/forwarding.cf, sends the message on encrypted to site A.
 * Fails, never skips, when a program cannot start.
 *
 * Ports: picked free by the kernel for each run (test/e2e/topology.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sendMail } from '../support/smtp-client.ts';
import { assertEncryptedOnWire, passResult, trafficCounts, waitForEmptyQueue } from './checks.ts';
import { GpgKeyring } from './gpg-check.ts';
import { dkimReasons as reasonsOf, dkimverify as verifyWith, opendkimTestmsg as testmsgWith, signerOf, tagsOf } from './dkim-checks.ts';
import { DKIM_SELECTOR } from './dkim-milters.ts';
import { fieldValues, messageFromSiteA, parseMessage, type ParsedMessage } from './mail.ts';
import { DOMAINS, FORWARD_TARGET, FORWARDED_ALIAS, startTopology, type DkimMilters, type Topology } from './topology.ts';

/** Bound on one message crossing both sites. */
const DELIVERY_TIMEOUT_MS = 30_000;

let topology: Topology;
let dkim: DkimMilters;

before(async () => {
  topology = await startTopology({ dkim: true });
  assert.ok(topology.dkim !== undefined);
  dkim = topology.dkim;
});

after(async () => {
  await topology?.stop();
});

/** dkimverify's verdict on `message`, its DNS answered by the topology. */
const dkimverify = (message: Buffer): Promise<string> => verifyWith(dkim, message);
/** python3-dkim's reasons when verifying `message`. */
const dkimReasons = (message: Buffer): Promise<string> => reasonsOf(dkim, message);
/** OpenDKIM's verdict on `message` (opendkim-testmsg). */
const opendkimTestmsg = (message: Buffer) => testmsgWith(dkim, message);

function assertSignedBySiteA(message: ParsedMessage): void {
  const signatures = fieldValues(message, 'DKIM-Signature');
  assert.equal(signatures.length, 1, `DKIM-Signature fields: ${JSON.stringify(signatures)}`);
  assert.deepEqual(signerOf(signatures[0] as string), { domain: DOMAINS.siteA, selector: DKIM_SELECTOR });
}

/**
 * `data` without its Received and DKIM-Signature fields (each with its folded lines): what is left of a message
 * that went through Postfix and OpenDKIM untouched otherwise.
 */
function withoutTraceAndDkim(data: Buffer): Buffer {
  const end = data.indexOf('\r\n\r\n');
  assert.ok(end >= 0, 'no end of header');
  const kept: string[] = [];
  let dropping = false;
  for (const line of data.subarray(0, end).toString('latin1').split('\r\n')) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) kept.push(line);
      continue;
    }
    const name = line.slice(0, line.indexOf(':')).toLowerCase();
    dropping = name === 'received' || name === 'dkim-signature';
    if (!dropping) kept.push(line);
  }
  return Buffer.concat([Buffer.from(kept.join('\r\n'), 'latin1'), data.subarray(end)]);
}

/** Waits until both sites' queues are empty, so every copy has arrived. */
async function settle(on: Topology = topology): Promise<void> {
  await waitForEmptyQueue(on.siteA.postfix, DELIVERY_TIMEOUT_MS);
  await waitForEmptyQueue(on.siteB.postfix, DELIVERY_TIMEOUT_MS);
}

/** Submits `data` at site A (alice@site-a.test, 8BITMIME unless `mailParams` says more) and expects it queued. */
async function submitAtA(on: Topology, to: string[], data: Buffer, params: { mailParams?: string; rcptParams?: string[] } = {}): Promise<void> {
  const sent = await sendMail({ port: on.ports.a.submission, from: 'alice@site-a.test', to, data, mailParams: params.mailParams ?? 'BODY=8BITMIME', ...(params.rcptParams === undefined ? {} : { rcptParams: params.rcptParams }) });
  assert.equal(sent.final.code, 250, sent.final.text);
}

describe('e2e mail flow with OpenDKIM and OpenDMARC', () => {
  it('case 1: A to B: DKIM-signed on the wire, dkim=pass, dmarc=pass and x-muse=pass at B, the signature retired', async () => {
    const start = trafficCounts(topology);
    const message = messageFromSiteA('dkim1', 'Bob Example <bob@site-b.test>');
    await submitAtA(topology, ['bob@site-b.test'], message.bytes);
    const delivered = await topology.mailbox.waitForCount(start.mailbox + 1, DELIVERY_TIMEOUT_MS);
    await settle();

    // On the wire: the encrypted message, signed by site-a.test, and the signature holds.
    const crossed = topology.tap.messages.slice(start.tap);
    assert.deepEqual(
      crossed.map((attempt) => attempt.reply?.code),
      [250],
    );
    const wire = (crossed[0] as (typeof crossed)[number]).data;
    const outer = parseMessage(wire);
    assert.match(fieldValues(outer, 'Content-Type')[0] ?? '', /^multipart\/encrypted;/);
    assertSignedBySiteA(outer);
    const wireVerdict = await dkimverify(wire);
    console.log(`dkimverify (wire): ${wireVerdict}`);
    assert.equal(wireVerdict, 'signature ok');

    // At B: one delivery, with the three verdicts, and the sending site's signature renamed.
    assert.equal(delivered.length, start.mailbox + 1);
    const copy = delivered.at(-1);
    assert.ok(copy !== undefined);
    assert.deepEqual(copy.rcptTo, ['bob@site-b.test']);
    const inbox = parseMessage(copy.data);
    assert.ok(inbox.body.equals(message.body), 'the delivered body differs from the original');
    const results = fieldValues(inbox, 'Authentication-Results');
    for (const line of results) console.log(`Authentication-Results: ${line}`);
    // Each milter inserts its field at the top: muse-milter's (last in the chain) first, then OpenDMARC's, then
    // OpenDKIM's, which names the signature by the first 8 characters of its b= tag.
    const signatureB = tagsOf(fieldValues(outer, 'DKIM-Signature')[0] ?? '').get('b') ?? '';
    assert.deepEqual(results, [
      passResult(DOMAINS.siteB, DOMAINS.siteA, topology.siteA.fingerprint),
      `${DOMAINS.siteB}; dmarc=pass (p=reject dis=none) header.from=${DOMAINS.siteA}`,
      `${DOMAINS.siteB}; dkim=pass (2048-bit key; unprotected) header.d=${DOMAINS.siteA} header.i=@${DOMAINS.siteA} header.a=rsa-sha256 header.s=${DKIM_SELECTOR} header.b=${signatureB.slice(0, 8)}; dkim-atps=neutral`,
    ]);
    assert.deepEqual(fieldValues(inbox, 'DKIM-Signature'), []);
    assert.deepEqual(fieldValues(inbox, 'Muse-Original-DKIM-Signature'), fieldValues(outer, 'DKIM-Signature'));

    // Nothing on the delivered message can fail: dkimverify finds no signature to check, so no body hash mismatch.
    const deliveredVerdict = await dkimverify(copy.data);
    const reasons = await dkimReasons(copy.data);
    console.log(`dkimverify (mailbox): ${deliveredVerdict}`);
    console.log(`python3-dkim (mailbox): ${reasons}`);
    assert.equal(deliveredVerdict, 'signature verification failed');
    assert.doesNotMatch(reasons, /body hash mismatch/);
    // And the rename is what spares it: the same field under its old name fails on the decrypted body.
    const unrenamed = Buffer.from(copy.data.toString('latin1').replace(/^Muse-Original-DKIM-Signature:/m, 'DKIM-Signature:'), 'latin1');
    const unrenamedReasons = await dkimReasons(unrenamed);
    console.log(`python3-dkim (mailbox, signature named DKIM-Signature again): ${unrenamedReasons.split('\n').at(-1) ?? ''}`);
    assert.match(unrenamedReasons, /body hash mismatch/);

    // The same through OpenDKIM's library. The bytes that crossed verify (no output, exit 0), so the tool and its
    // DNS work; the delivered bytes hold no signature it could fail (libopendkim stops at "No signature", before any
    // key lookup); the control with the old name restored fails, the same signature now over the decrypted message
    // (python3-dkim above names the reason: the body hash).
    const opendkimWire = await opendkimTestmsg(wire);
    const opendkimDelivered = await opendkimTestmsg(copy.data);
    const opendkimUnrenamed = await opendkimTestmsg(unrenamed);
    console.log(`opendkim-testmsg (wire): exit ${opendkimWire.code}: ${opendkimWire.output}`);
    console.log(`opendkim-testmsg (mailbox): exit ${opendkimDelivered.code}: ${opendkimDelivered.output}`);
    console.log(`opendkim-testmsg (mailbox, signature named DKIM-Signature again): exit ${opendkimUnrenamed.code}: ${opendkimUnrenamed.output}`);
    assert.deepEqual(opendkimWire, { code: 0, output: '' });
    assert.deepEqual(opendkimDelivered, { code: 70, output: 'opendkim-testmsg: dkim_chunk(): No signature' });
    assert.deepEqual(opendkimUnrenamed, { code: 70, output: 'opendkim-testmsg: dkim_eom(): Bad signature' });
  });

  it('case 2: A to an ordinary site: the message leaves as it arrived, plus Received and a valid DKIM-Signature', async () => {
    const start = trafficCounts(topology);
    const message = messageFromSiteA('dkim2', 'Carol <carol@keyless.test>');
    await submitAtA(topology, ['carol@keyless.test'], message.bytes);
    const world = await topology.world.waitForCount(start.world + 1, DELIVERY_TIMEOUT_MS);
    await settle();
    assert.equal(topology.world.messages.length, start.world + 1);
    assert.equal(topology.tap.messages.length, start.tap);
    const copy = world.at(-1);
    assert.ok(copy !== undefined);
    assert.deepEqual(copy.rcptTo, ['carol@keyless.test']);
    const received = parseMessage(copy.data);
    assert.equal(fieldValues(received, 'Received').length, 1);
    assertSignedBySiteA(received);
    assert.equal(withoutTraceAndDkim(copy.data).toString('latin1'), message.bytes.toString('latin1'));
    const verdict = await dkimverify(copy.data);
    console.log(`dkimverify (keyless.test): ${verdict}`);
    assert.equal(verdict, 'signature ok');
  });

  it('case 3: mixed recipients, split: the re-injected copy for the ordinary site is DKIM-signed by site-a.test', async () => {
    const start = trafficCounts(topology);
    const message = messageFromSiteA('dkim3', 'Bob <bob@site-b.test>, Carol <carol@keyless.test>');
    await submitAtA(topology, ['bob@site-b.test', 'carol@keyless.test'], message.bytes);
    await topology.world.waitForCount(start.world + 1, DELIVERY_TIMEOUT_MS);
    await topology.mailbox.waitForCount(start.mailbox + 1, DELIVERY_TIMEOUT_MS);
    await settle();
    assert.match(topology.siteA.postfix.readMaillog(), /postfix\/muse-reinject\/smtpd\[\d+\]: [0-9A-F]+: client=localhost\[127\.0\.0\.1\]/);

    // carol's copy: re-injected, then signed by OpenDKIM after muse-milter let it through.
    const outside = topology.world.messages.slice(start.world);
    assert.equal(outside.length, 1);
    const copy = outside[0];
    assert.ok(copy !== undefined);
    assert.deepEqual(copy.rcptTo, ['carol@keyless.test']);
    assertSignedBySiteA(parseMessage(copy.data));
    assert.equal(withoutTraceAndDkim(copy.data).toString('latin1'), message.bytes.toString('latin1'));
    const verdict = await dkimverify(copy.data);
    console.log(`dkimverify (re-injected copy for keyless.test): ${verdict}`);
    assert.equal(verdict, 'signature ok');

    // bob's copy: encrypted and signed on the wire, delivered at B with the signature renamed.
    const crossed = topology.tap.messages.slice(start.tap);
    assert.deepEqual(
      crossed.map((attempt) => [attempt.rcptTo, attempt.reply?.code]),
      [[['bob@site-b.test'], 250]],
    );
    assert.equal(await dkimverify((crossed[0] as (typeof crossed)[number]).data), 'signature ok');
    const inbox = parseMessage((topology.mailbox.messages.at(-1) as (typeof topology.mailbox.messages)[number]).data);
    assert.ok(inbox.body.equals(message.body), 'the delivered body differs from the original');
    assert.deepEqual(fieldValues(inbox, 'DKIM-Signature'), []);
    assert.equal(fieldValues(inbox, 'Muse-Original-DKIM-Signature').length, 1);
  });
  it('case 4: mixed recipients, split: the re-injected copy keeps the DSN and SMTPUTF8 parameters on MAIL and RCPT', async () => {
    const start = trafficCounts(topology);
    const message = messageFromSiteA('dsn4', 'Bob <bob@site-b.test>, Carol <carol@keyless.test>');
    await submitAtA(topology, ['bob@site-b.test', 'carol@keyless.test'], message.bytes, { mailParams: 'BODY=8BITMIME SMTPUTF8 ENVID=abc123 RET=HDRS', rcptParams: ['', 'NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;carol@keyless.test'] });
    await topology.world.waitForCount(start.world + 1, DELIVERY_TIMEOUT_MS);
    await topology.mailbox.waitForCount(start.mailbox + 1, DELIVERY_TIMEOUT_MS);
    await settle();
    assert.match(topology.siteA.postfix.readMaillog(), /postfix\/muse-reinject\/smtpd\[\d+\]: [0-9A-F]+: client=localhost\[127\.0\.0\.1\]/);

    // carol's copy went through the re-injection listener; Postfix A then relayed the parameters it was given to
    // the world, which announces DSN and SMTPUTF8 (BODY is Postfix's own, for the 8-bit copy it relays).
    const outside = topology.world.messages.slice(start.world);
    assert.equal(outside.length, 1);
    const copy = outside[0];
    assert.ok(copy !== undefined);
    console.log(`world sink saw: MAIL ${JSON.stringify(copy.mailParams)} RCPT ${JSON.stringify(copy.rcptParams)}`);
    assert.equal(copy.mailFrom, 'alice@site-a.test');
    assert.deepEqual(copy.rcptTo, ['carol@keyless.test']);
    assert.equal(copy.mailParams, 'BODY=8BITMIME ENVID=abc123 RET=HDRS SMTPUTF8');
    assert.deepEqual(copy.rcptParams, ['ORCPT=rfc822;carol@keyless.test NOTIFY=SUCCESS,FAILURE']);
  });
});

describe('e2e forwarding with the second pass of examples/postfix/forwarding.cf', () => {
  let forwarding: Topology;
  /** Site A's private key and site B's public key: opens what B sends to site A. */
  let siteAKeyring: GpgKeyring;

  before(async () => {
    forwarding = await startTopology({ forwarding: true });
    siteAKeyring = await GpgKeyring.create([readFileSync(forwarding.siteA.privateKeyPath, 'utf8'), forwarding.siteB.publicKeyArmored]);
  });

  after(async () => {
    await siteAKeyring?.dispose();
    await forwarding?.stop();
  });

  it('case 5: A to an alias at B that forwards to site A: the copy B sends on is encrypted to site A, no clear text', async () => {
    const start = trafficCounts(forwarding);
    const message = messageFromSiteA('fwd5', `List <${FORWARDED_ALIAS}>`);
    await submitAtA(forwarding, [FORWARDED_ALIAS], message.bytes);
    await forwarding.world.waitForCount(start.world + 1, DELIVERY_TIMEOUT_MS);
    await settle(forwarding);

    // A to B: encrypted for site B, addressed to the alias.
    const crossed = forwarding.tap.messages.slice(start.tap);
    assert.deepEqual(
      crossed.map((attempt) => [attempt.rcptTo, attempt.reply?.code]),
      [[[FORWARDED_ALIAS], 250]],
    );
    // B to site A, after the alias expanded and the second pass ran: encrypted again, for site A.
    assert.equal(forwarding.mailbox.messages.length, start.mailbox);
    const onward = forwarding.world.messages.slice(start.world);
    assert.equal(onward.length, 1);
    const copy = onward[0];
    assert.ok(copy !== undefined);
    assert.deepEqual(copy.rcptTo, [FORWARD_TARGET]);
    // PGP/MIME, no line of the original in clear; GnuPG opens it with site A's key and finds site B's signature.
    await assertEncryptedOnWire(copy.data, message, siteAKeyring, forwarding.siteB.fingerprint);
    assert.ok(!copy.data.includes(message.body), 'the original body is on the wire in clear');
    assert.match(forwarding.siteB.postfix.readMaillog(), /postfix\/muse-second-pass\/smtpd\[\d+\]: [0-9A-F]+: client=localhost\[127\.0\.0\.1\]/);
    assert.doesNotMatch(readFileSync(join(forwarding.siteB.dataDir, 'milter.log'), 'utf8'), /a message this site decrypted leaves again in clear/);
  });
});
