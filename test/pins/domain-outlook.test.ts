/** What the milter would do for a domain (docs/dns-records.md §8), from lookup and pin state alone. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { domainOutlook, type DomainOutlookInput } from '../../src/policy/domain-outlook.ts';

const A = 'A'.repeat(40);

function input(lookup: Partial<DomainOutlookInput['lookup']>, pin: Partial<DomainOutlookInput['pin']>): DomainOutlookInput {
  return {
    lookup: { status: 'found', policy: 'opportunistic', ...lookup },
    pin: { state: 'no-pin', pin: null, encryptTo: [], detail: 'detail', ...pin },
  };
}

describe('domainOutlook', () => {
  it('encrypts to the keys the pin evaluation allows', () => {
    assert.deepEqual(domainOutlook(input({}, { encryptTo: [A], detail: 'no pin; keys trusted on first use' })), {
      action: 'encrypt',
      encryptTo: [A],
      policy: 'opportunistic',
      reason: '1 usable key(s); no pin; keys trusted on first use',
    });
  });

  it('defers on DNS failure whatever else is known', () => {
    const outlook = domainOutlook(input({ status: 'temporary-failure', policy: null, error: { message: 'SERVFAIL' } }, { state: 'not-evaluated' }));
    assert.equal(outlook.action, 'tempfail-dns');
    assert.equal(outlook.reason, 'DNS lookup failed: SERVFAIL');
  });

  it('defers on a downgrade or a suspicious change under an enforce or opportunistic pin', () => {
    for (const state of ['downgrade', 'suspicious-change'] as const) {
      for (const policy of ['enforce', 'opportunistic'] as const) {
        const outlook = domainOutlook(input({ status: 'none', policy: null }, { state, pin: { policy }, detail: 'why' }));
        assert.deepEqual(outlook, { action: 'tempfail-downgrade', encryptTo: [], policy, reason: `${state}: why` });
      }
    }
  });

  it('only reports pin violations under a testing pin and sends signed clear text', () => {
    const outlook = domainOutlook(input({ status: 'none', policy: null }, { state: 'downgrade', pin: { policy: 'testing' }, detail: 'why' }));
    assert.deepEqual(outlook, {
      action: 'sign-only',
      encryptTo: [],
      policy: 'testing',
      reason: 'downgrade reported only, the pinned policy is testing: why',
    });
  });

  it('defers when the site says enforce but publishes no usable key', () => {
    const outlook = domainOutlook(input({ status: 'none', policy: 'enforce' }, {}));
    assert.equal(outlook.action, 'tempfail-downgrade');
    assert.equal(outlook.reason, 'the site requires encryption (p=enforce) but publishes no usable key');
  });

  it('sends signed clear text to a site without usable keys under any other policy', () => {
    for (const policy of ['opportunistic', 'testing', null] as const) {
      const outlook = domainOutlook(input({ status: 'none', policy }, {}));
      assert.deepEqual(outlook, { action: 'sign-only', encryptTo: [], policy: policy ?? 'opportunistic', reason: 'no usable site key published' });
    }
  });
});
