/**
 * Attack: shrink, then remove. A site publishes p=enforce with a one-year ma; a sender pins it. An active DNS
 * attacker (no DNSSEC) serves the genuine record with ma=0, which used to remove the pin, then no record at all:
 * the next message left in clear text. Now an unauthenticated answer cannot remove or shorten a pin, and the
 * message is deferred with 4.7.1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PrivateKey } from 'openpgp';
import { generateSiteKey } from '../../src/keys/index.ts';
import { fp, PARTNER, startSender, txt, type Sender } from './support/pinned-site.ts';

const YEAR = 31_536_000;

describe('pin shrink-then-remove', () => {
  let sender: Sender;
  let key: PrivateKey;
  before(async () => {
    sender = await startSender();
    key = await generateSiteKey(PARTNER, new Date(Date.now() - 60_000));
  });
  after(() => sender.close());

  it('keeps the pin through a forged ma=0 and a forged shorter ma, and defers once the records are gone', async () => {
    sender.serve([txt(key, 'enforce', YEAR)]);
    assert.deepEqual((await sender.send()).kind, 'encrypt');
    const pinned = (await sender.store()).get(PARTNER);
    assert.deepEqual(pinned?.fingerprints, [fp(key)]);

    sender.serve([txt(key, 'enforce', 0)]);
    const afterZero = await sender.send();
    assert.equal(afterZero.kind, 'encrypt');
    assert.deepEqual(afterZero.kind === 'encrypt' && afterZero.fingerprints, [fp(key)]);
    assert.deepEqual((await sender.store()).get(PARTNER), pinned, 'ma=0 without DNSSEC leaves the pin exactly as it was');

    sender.serve([txt(key, 'testing', 60)]);
    assert.equal((await sender.send()).kind, 'encrypt');
    const afterShrink = (await sender.store()).get(PARTNER);
    assert.equal(afterShrink?.expiresAt, pinned?.expiresAt, 'a shorter ma does not move the expiry earlier');
    assert.equal(afterShrink?.policy, 'enforce', 'a lower policy is ignored');

    sender.serve([]);
    const decision = await sender.send();
    assert.equal(decision.kind, 'refuse');
    assert.deepEqual(decision.kind === 'refuse' && { temporary: decision.temporary, reply: decision.reply }, {
      temporary: true,
      reply: { code: 451, enhanced: '4.7.1', text: `Encryption to ${PARTNER} is required but not possible now` },
    });
    assert.match(decision.reason, /^downgrade: no usable key published, yet 1 key\(s\) pinned until /);
  });

  it('lets a DNSSEC-validated ma=0 remove the pin, as the site asks', async () => {
    sender.serve([txt(key, 'enforce', YEAR)], { ad: true });
    assert.equal((await sender.send()).kind, 'encrypt');
    sender.serve([txt(key, 'enforce', 0)], { ad: true });
    assert.equal((await sender.send()).kind, 'encrypt');
    assert.equal((await sender.store()).get(PARTNER), undefined);
    sender.serve([], { ad: true });
    assert.deepEqual(await sender.send(), { kind: 'clear', signed: true, reason: 'no usable site key published' });
  });
});
