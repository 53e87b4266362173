/**
 * Attack: a signer key slipped into DNS beside the pinned one. We hold a pin for victim.test (learnt, without
 * DNSSEC, when we sent it mail) on key A. An attacker who can change unauthenticated DNS answers publishes its own key
 * B beside A and signs a message from ceo@victim.test with B. B is published, but the pin does not vouch for it: fail
 * signer-not-pinned, kept encrypted. A message signed by A still passes; B published alone still fails; a
 * DNSSEC-validated answer is the domain's own word and B then passes.
 * Ports: ephemeral only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { crlfBody, LOCAL_CLIENT, makeSite, sendOne, type TestSite } from '../daemon/support/harness.ts';
import {
  authResults,
  entity,
  innerFields,
  pgpMime,
  signedAndEncrypted,
  startReceiver,
  summaryReason,
  transportFields,
  type ExpectedVerdict,
  type Receiver,
} from './support/inbound-attack.ts';

const MONTH = 2_592_000;
let rx: Receiver;
let keyB: TestSite;
before(async () => {
  rx = await startReceiver();
  keyB = await makeSite('victim.test');
});
after(() => rx?.close());

async function signedBy(signer: TestSite, queueId: string): Promise<{ delivered: ReturnType<typeof pgpMime>; outcome: Awaited<ReturnType<Receiver['send']>> }> {
  const armored = await signedAndEncrypted(entity(innerFields('CEO <ceo@victim.test>')), signer.privateKey, [rx.sites.ours.publicKey]);
  const message = pgpMime(transportFields('CEO <ceo@victim.test>'), armored);
  return { delivered: message, outcome: await rx.send(message, queueId) };
}

describe('unpinned signer', () => {
  it('pins victim.test on key A by sending it mail (outbound)', async () => {
    rx.zone.publish('victim.test', [rx.sites.victim.bytes], { maxAge: MONTH });
    const outcome = await sendOne(rx.daemon.address, {
      sender: '<bob@site.test>',
      recipients: ['<ceo@victim.test>'],
      headers: [{ name: 'From', value: ' bob@site.test' }, { name: 'To', value: ' ceo@victim.test' }, { name: 'Subject', value: ' hello' }],
      body: crlfBody('hello'),
      macros: { i: 'Q-OUT' },
    }, LOCAL_CLIENT);
    assert.deepEqual(outcome.eom?.verdict, { kind: 'continue' });
    assert.equal(rx.summary('Q-OUT').action, 'encrypted');
  });

  it('DNS publishes A and B: a message signed by B fails signer-not-pinned and stays encrypted', async () => {
    rx.zone.publish('victim.test', [rx.sites.victim.bytes, keyB.bytes], { maxAge: MONTH });
    const { delivered, outcome } = await signedBy(keyB, 'Q-B');
    const verdict: ExpectedVerdict = { result: 'fail', reason: 'signer-not-pinned', from: 'victim.test', dnssec: false, encrypted: true };
    assert.deepEqual(outcome.delivered?.headers, [authResults(verdict), ...delivered.headers]);
    assert.ok(outcome.delivered?.body.equals(delivered.body), 'kept encrypted');
    assert.equal(rx.summary('Q-B').reason, summaryReason(verdict));
  });

  it('DNS publishes A and B: a message signed by A passes', async () => {
    const { outcome } = await signedBy(rx.sites.victim, 'Q-A');
    const verdict: ExpectedVerdict = { result: 'pass', reason: 'signature-verified', from: 'victim.test', fingerprint: rx.sites.victim.fingerprint, dnssec: false, encrypted: true };
    assert.deepEqual(outcome.delivered?.headers, [authResults(verdict), ...innerFields('CEO <ceo@victim.test>')]);
  });

  it('DNS publishes B alone: a message signed by B still fails signer-not-pinned', async () => {
    rx.zone.publish('victim.test', [keyB.bytes], { maxAge: MONTH });
    const { delivered, outcome } = await signedBy(keyB, 'Q-B-ALONE');
    assert.deepEqual(outcome.delivered?.headers, [authResults({ result: 'fail', reason: 'signer-not-pinned', from: 'victim.test', dnssec: false, encrypted: true }), ...delivered.headers]);
  });

  it('DNS withdraws every record (unvalidated) while the pin holds: B\'s signature still fails, kept encrypted', async () => {
    // §5: the pinned keys stay pinned when no longer published. A forged "no record" must not turn the loud fail
    // into none/no-published-key, which decrypts the message and shows its inner fields as Muse-Unverified-*.
    rx.zone.withdraw('victim.test');
    const { delivered, outcome } = await signedBy(keyB, 'Q-B-WITHDRAWN');
    assert.deepEqual(outcome.delivered?.headers, [authResults({ result: 'fail', reason: 'signer-not-published', from: 'victim.test', dnssec: false, encrypted: true }), ...delivered.headers]);
    assert.ok(outcome.delivered?.body.equals(delivered.body), 'kept encrypted');
  });

  it('DNS withdraws every record (unvalidated) while the pin holds: A, the pinned key, still vouches for victim.test', async () => {
    const { outcome } = await signedBy(rx.sites.victim, 'Q-A-WITHDRAWN');
    const verdict: ExpectedVerdict = { result: 'pass', reason: 'signature-verified', from: 'victim.test', fingerprint: rx.sites.victim.fingerprint, dnssec: false, encrypted: true };
    assert.deepEqual(outcome.delivered?.headers, [authResults(verdict), ...innerFields('CEO <ceo@victim.test>')]);
  });

  it('a DNSSEC-validated answer publishing A and B: B is the domain\'s own word, so it passes', async () => {
    rx.zone.publish('victim.test', [rx.sites.victim.bytes, keyB.bytes], { maxAge: MONTH, ad: true });
    const { outcome } = await signedBy(keyB, 'Q-B-DNSSEC');
    assert.deepEqual(outcome.delivered?.headers[0], authResults({ result: 'pass', reason: 'signature-verified', from: 'victim.test', fingerprint: keyB.fingerprint, dnssec: true, encrypted: true }));
  });
});
