/**
 * Testing mode (`policy.testing: true`) must observe only, inbound too: a site trying the milter out must get its
 * mail exactly as it would without it. An encrypted message that would pass, one that would fail, and plain mail
 * with a forged x-muse result are delivered exactly as received (no header edit, no body replacement, no refusal),
 * while the summary line says `testing` and what would have happened.
 * Ports: ephemeral only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { entity, field, innerFields, pgpMime, signedAndEncrypted, startReceiver, transportFields, type Receiver } from './support/inbound-attack.ts';

let rx: Receiver;
before(async () => {
  rx = await startReceiver({ policy: { testing: true } });
});
after(() => rx?.close());

/** Sends `message` and checks it is delivered exactly as received; returns the summary line's action and reason. */
async function asReceived(message: { headers: ReturnType<typeof field>[]; body: Buffer }, queueId: string): Promise<[unknown, unknown]> {
  const outcome = await rx.send(message, queueId);
  assert.deepEqual(outcome.eom, { modifications: [], verdict: { kind: 'continue' }, progress: 0 });
  assert.deepEqual(outcome.delivered?.headers, message.headers);
  assert.ok(outcome.delivered?.body.equals(message.body));
  const summary = rx.summary(queueId);
  return [summary.action, summary.reason];
}

describe('testing mode, inbound', () => {
  it('an encrypted message that would pass (with a forged result on it) is delivered as received', async () => {
    const armored = await signedAndEncrypted(entity(innerFields('Mallory <x@attacker.test>')), rx.sites.attacker.privateKey, [rx.sites.ours.publicKey]);
    const message = pgpMime([field('Authentication-Results', 'site.test; x-muse=fail'), field('Muse-Protection', 'signed'), ...transportFields('<x@attacker.test>')], armored);
    assert.deepEqual(await asReceived(message, 'Q-T-PASS'), ['testing', 'would decrypted: pass (signature-verified) from attacker.test']);
  });

  it('an encrypted spoof that would fail is delivered as received', async () => {
    const armored = await signedAndEncrypted(entity(innerFields('CEO <ceo@victim.test>')), rx.sites.attacker.privateKey, [rx.sites.ours.publicKey]);
    const message = pgpMime(transportFields('<x@attacker.test>'), armored);
    assert.deepEqual(await asReceived(message, 'Q-T-FAIL'), ['testing', 'would annotated: fail (signer-not-published) from victim.test']);
  });

  it('plain mail with a forged x-muse=pass and a forged Muse-Protection is delivered as received', async () => {
    const message = {
      headers: [field('Authentication-Results', 'site.test; x-muse=pass header.from=victim.test'), field('Muse-Protection', 'signed; encrypted'), ...transportFields('CEO <ceo@victim.test>')],
      body: Buffer.from('plain\r\n'),
    };
    assert.deepEqual(await asReceived(message, 'Q-T-PLAIN'), ['testing', 'would unchanged: not-pgp-mime']);
  });

  it('a message whose key lookup fails is not deferred: delivered as received', async () => {
    rx.zone.misbehave('victim.test', 'servfail');
    try {
      const armored = await signedAndEncrypted(entity(innerFields('CEO <ceo@victim.test>')), rx.sites.victim.privateKey, [rx.sites.ours.publicKey]);
      const message = pgpMime(transportFields('CEO <ceo@victim.test>'), armored);
      assert.deepEqual(await asReceived(message, 'Q-T-DNS'), ['testing', 'would tempfail: temperror (key-lookup-failed) from victim.test']);
    } finally {
      rx.zone.misbehave('victim.test', undefined);
    }
  });
});
