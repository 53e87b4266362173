/**
 * Attack: the RFC 3156 §6.1 shape. The attacker encrypts, without a signature of its own, a multipart/signed whose
 * signed part says `From: ceo@victim.test` and whose signature is by attacker.test's published key (or by a key
 * nobody publishes). A verifier that judged only the combined form (§6.2), or took the signer's domain as the
 * author, would pass it. Judged alike: the verdict is exactly the one the combined form gets with the same key and
 * From, the message stays encrypted under the transport header. Variants: a From on the encrypted payload outside
 * the signed part (only the signed part's header counts), and the same multipart/signed in clear (not ours to
 * judge: left unchanged).
 * Ports: ephemeral only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PrivateKey } from 'openpgp';
import {
  authResults,
  entity,
  field,
  innerFields,
  multipartSigned,
  nestedSigned,
  pgpMime,
  signedAndEncrypted,
  startReceiver,
  summaryReason,
  transportFields,
  type ExpectedVerdict,
  type Receiver,
} from './support/inbound-attack.ts';

let rx: Receiver;
before(async () => {
  rx = await startReceiver();
});
after(() => rx?.close());

const SPOOF = innerFields('CEO <ceo@victim.test>');

/** Sends `armored` under the transport header; checks the verdict and that it is delivered as received. */
async function sendKeptEncrypted(armored: Buffer, queueId: string, verdict: ExpectedVerdict): Promise<void> {
  const message = pgpMime(transportFields('<x@attacker.test>'), armored);
  const outcome = await rx.send(message, queueId);
  assert.deepEqual(outcome.delivered?.headers, [authResults(verdict), ...message.headers], queueId);
  assert.ok(outcome.delivered?.body.equals(message.body), `${queueId}: kept encrypted`);
  assert.equal(rx.summary(queueId).reason, summaryReason(verdict));
}

const NOT_VICTIMS_KEY: ExpectedVerdict = { result: 'fail', reason: 'signer-not-published', from: 'victim.test', dnssec: false, encrypted: true };

describe('nested signed spoof (RFC 3156 §6.1)', () => {
  for (const [who, key] of [
    ['attacker.test\'s published key', () => rx.sites.attacker.privateKey],
    ['a key no domain publishes', () => rx.sites.stray.privateKey],
  ] as Array<[string, () => PrivateKey]>) {
    it(`a signed part saying From: ceo@victim.test, signed by ${who}: fail signer-not-published, as the combined form`, async () => {
      const tag = who.startsWith('a key') ? 'STRAY' : 'ATT';
      await sendKeptEncrypted(await signedAndEncrypted(entity(SPOOF), key(), [rx.sites.ours.publicKey]), `Q-62-${tag}`, NOT_VICTIMS_KEY);
      await sendKeptEncrypted(await nestedSigned(entity(SPOOF), key(), [rx.sites.ours.publicKey]), `Q-61-${tag}`, NOT_VICTIMS_KEY);
    });
  }

  it('control: the victim\'s own key signing the §6.1 shape passes (no recipient fingerprints: bound by the signed To)', async () => {
    const armored = await nestedSigned(entity(SPOOF), rx.sites.victim.privateKey, [rx.sites.ours.publicKey]);
    const outcome = await rx.send(pgpMime(transportFields('<x@attacker.test>'), armored), 'Q-61-VICTIM');
    assert.deepEqual(outcome.delivered?.headers[0], authResults({ result: 'pass', reason: 'signature-verified', from: 'victim.test', fingerprint: rx.sites.victim.fingerprint, dnssec: false, encrypted: true }));
  });

  it('a From on the encrypted payload outside the signed part does not count: the signed part\'s From (attacker.test) is judged and delivered', async () => {
    const signedPart = entity(innerFields('Mallory <x@attacker.test>'));
    const armored = await nestedSigned(signedPart, rx.sites.attacker.privateKey, [rx.sites.ours.publicKey], [field('From', 'CEO <ceo@victim.test>'), field('Subject', 'From the CEO')]);
    const outcome = await rx.send(pgpMime(transportFields('<x@attacker.test>'), armored), 'Q-61-OUTSIDE');
    const verdict: ExpectedVerdict = { result: 'pass', reason: 'signature-verified', from: 'attacker.test', fingerprint: rx.sites.attacker.fingerprint, dnssec: false, encrypted: true };
    // Bound to us only by the signed To (a detached signature names no recipients): pass.
    assert.deepEqual(outcome.delivered?.headers, [
      authResults(verdict),
      { name: 'From', value: ' Mallory <x@attacker.test>' },
      { name: 'To', value: ' Bob <bob@site.test>' },
      { name: 'Subject', value: ' Urgent: payment today' },
      { name: 'Date', value: ' Mon, 02 Jun 2025 12:00:00 +0000' },
      { name: 'Message-ID', value: ' <inner-1@victim.test>' },
      { name: 'MIME-Version', value: ' 1.0' },
      { name: 'Content-Type', value: ' text/plain; charset=utf-8' },
    ]);
    assert.equal(outcome.delivered?.body.toString('utf8'), 'Please wire 50000 EUR to the account below today.\r\n');
  });

  it('the same multipart/signed in clear is not a site signature of victim.test: unchanged, no verdict', async () => {
    const signed = await multipartSigned(entity(SPOOF), rx.sites.attacker.privateKey);
    const headers = [...transportFields('<x@attacker.test>'), field('MIME-Version', '1.0'), { name: 'Content-Type', value: signed.contentType }];
    const outcome = await rx.send({ headers, body: signed.body }, 'Q-CLEAR');
    assert.deepEqual(outcome.eom?.modifications, []);
    assert.deepEqual(outcome.delivered?.headers, headers);
    assert.equal(rx.summary('Q-CLEAR').reason, 'not-site-signed');
  });
});
