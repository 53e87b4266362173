/**
 * Attack: announce, then switch. A sender pins a site's key. An active DNS attacker (no DNSSEC) serves the genuine
 * key beside a key of its own, which used to be pinned as a rotation, then its key alone: the next message was
 * encrypted to the attacker's key only. Now a new key joins a pin only when the answer is DNSSEC-validated or a
 * pinned key certified it: mail goes to the pinned key only, then is deferred with 4.7.1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PrivateKey } from 'openpgp';
import { certifySuccessor, generateSiteKey } from '../../src/keys/index.ts';
import { fp, PARTNER, startSender, txt, type Sender } from './support/pinned-site.ts';

const MONTH = 2_592_000;
const DEFERRED = {
  temporary: true,
  reply: { code: 451, enhanced: '4.7.1', text: `Encryption to ${PARTNER} is required but not possible now` },
};

describe('pin announce-then-switch', () => {
  let sender: Sender;
  let genuine: PrivateKey;
  let attacker: PrivateKey;
  let successor: PrivateKey;
  let forgedSuccessor: PrivateKey;
  before(async () => {
    sender = await startSender();
    const earlier = new Date(Date.now() - 60_000);
    genuine = await generateSiteKey(PARTNER, earlier);
    attacker = await generateSiteKey(PARTNER, earlier);
    successor = await certifySuccessor(genuine, await generateSiteKey(PARTNER, earlier), earlier);
    // The attacker certifies its key with a key of its own: not a pinned one.
    forgedSuccessor = await certifySuccessor(attacker, await generateSiteKey(PARTNER, earlier), earlier);
  });
  after(() => sender.close());

  it('encrypts to the pinned key only while an unvouched key is announced, then defers when it stands alone', async () => {
    sender.serve([txt(genuine, 'opportunistic', MONTH)]);
    const first = await sender.send();
    assert.deepEqual(first.kind === 'encrypt' && first.fingerprints, [fp(genuine)]);

    for (const stranger of [attacker, forgedSuccessor]) {
      sender.serve([txt(genuine, 'opportunistic', MONTH), txt(stranger, 'opportunistic', MONTH)]);
      const announced = await sender.send();
      assert.equal(announced.kind, 'encrypt');
      assert.deepEqual(announced.kind === 'encrypt' && announced.fingerprints, [fp(genuine)]);
      assert.deepEqual((await sender.store()).get(PARTNER)?.fingerprints, [fp(genuine)], 'the stranger is not pinned');

      sender.serve([txt(stranger, 'opportunistic', MONTH)]);
      const switched = await sender.send();
      assert.equal(switched.kind, 'refuse');
      assert.deepEqual(switched.kind === 'refuse' && { temporary: switched.temporary, reply: switched.reply }, DEFERRED);
      assert.match(switched.reason, /^suspicious-change: published key\(s\) [0-9A-F]{40} differ from the key\(s\) pinned until /);
    }
  });

  it('follows a rotation the pinned key certified, without DNSSEC: both during the overlap, the new one after', async () => {
    sender.serve([txt(genuine, 'opportunistic', MONTH), txt(successor, 'opportunistic', MONTH)]);
    const overlap = await sender.send();
    assert.deepEqual(overlap.kind === 'encrypt' && overlap.fingerprints, [fp(genuine), fp(successor)].sort());

    sender.serve([txt(successor, 'opportunistic', MONTH)]);
    const after = await sender.send();
    assert.deepEqual(after.kind === 'encrypt' && after.fingerprints, [fp(successor)]);
    assert.deepEqual((await sender.store()).get(PARTNER)?.fingerprints, [fp(successor)], 'the certified successor replaced its certifier');

    // The retired key, replayed alone, is no longer pinned.
    sender.serve([txt(genuine, 'opportunistic', MONTH)]);
    const replay = await sender.send();
    assert.deepEqual(replay.kind === 'refuse' && replay.reply, DEFERRED.reply);
  });

  it('accepts a new key from a DNSSEC-validated answer', async () => {
    sender.serve([txt(attacker, 'opportunistic', MONTH)], { ad: true });
    const decision = await sender.send();
    assert.deepEqual(decision.kind === 'encrypt' && decision.fingerprints, [fp(attacker)]);
    assert.deepEqual((await sender.store()).get(PARTNER)?.fingerprints, [fp(attacker)]);
  });
});
