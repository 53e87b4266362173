import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decideRecipient, type AdminPolicy, type DomainFacts, type RecipientPolicySettings } from '../../src/daemon/recipient-policy.ts';
import { groupOf, planMessage, type PlannedRecipient } from '../../src/daemon/message-plan.ts';
import type { DomainOutlook } from '../../src/policy/domain-outlook.ts';

function settings(overrides: Partial<RecipientPolicySettings> & { admin?: AdminPolicy } = {}): RecipientPolicySettings {
  return {
    policyFor: () => overrides.admin ?? 'dns',
    isLocal: (d) => d === 'local.test',
    requireDnssec: false,
    signCleartext: 'always',
    actions: { dnsError: 'tempfail', noKeyRequired: 'tempfail' },
    ...overrides,
  };
}

const encrypt: DomainOutlook = { action: 'encrypt', encryptTo: ['AAAA', 'BBBB'], policy: 'opportunistic', reason: '2 usable key(s)' };
const encryptEnforce: DomainOutlook = { ...encrypt, policy: 'enforce' };
const signOnly: DomainOutlook = { action: 'sign-only', encryptTo: [], policy: 'opportunistic', reason: 'no usable site key published' };
const enforceNoKey: DomainOutlook = {
  action: 'tempfail-downgrade',
  encryptTo: [],
  policy: 'enforce',
  reason: 'the site requires encryption (p=enforce) but publishes no usable key',
};
const downgrade: DomainOutlook = { action: 'tempfail-downgrade', encryptTo: [], policy: 'enforce', reason: 'downgrade: records removed while pinned' };
const dnsFail: DomainOutlook = { action: 'tempfail-dns', encryptTo: [], policy: 'opportunistic', reason: 'DNS lookup failed: timeout' };

const facts = (outlook: DomainOutlook, dnssec = true, pinned = false, published = true): DomainFacts => ({ outlook, dnssec, pinned, published });

describe('decideRecipient', () => {
  test('signCleartext muse-sites signs clear text only for domains that publish a record or are pinned', () => {
    const museSites = settings({ signCleartext: 'muse-sites' });
    assert.deepEqual(decideRecipient('c.test', facts(signOnly, true, false, true), museSites), { kind: 'clear', signed: true, reason: 'no usable site key published' });
    assert.deepEqual(decideRecipient('c.test', facts(signOnly, true, false, false), museSites), { kind: 'clear', signed: false, reason: 'no usable site key published' });
    assert.deepEqual(decideRecipient('c.test', facts(signOnly, false, true, false), museSites), { kind: 'clear', signed: true, reason: 'no usable site key published' });
    // The administrator's never skips the lookup: nothing says the domain is a MUSE site.
    assert.deepEqual(decideRecipient('c.test', undefined, settings({ admin: 'never', signCleartext: 'muse-sites' })), { kind: 'clear', signed: false, reason: 'policy never' });
    assert.deepEqual(decideRecipient('c.test', facts(signOnly, true, false, false), settings({ signCleartext: 'always' })), { kind: 'clear', signed: true, reason: 'no usable site key published' });
    assert.deepEqual(decideRecipient('c.test', facts(signOnly, true, true, true), settings({ signCleartext: 'never' })), { kind: 'clear', signed: false, reason: 'no usable site key published' });
  });
  test('local domains are never encrypted, whatever DNS says', () => {
    assert.deepEqual(decideRecipient('local.test', facts(encrypt), settings()), { kind: 'local', reason: 'local domain' });
  });
  test('never: clear text, signed as configured, even when pinned', () => {
    assert.deepEqual(decideRecipient('b.test', facts(downgrade, true, true), settings({ admin: 'never' })), { kind: 'clear', signed: true, reason: 'policy never' });
    assert.deepEqual(decideRecipient('b.test', undefined, settings({ admin: 'never', signCleartext: 'never' })), { kind: 'clear', signed: false, reason: 'policy never' });
  });
  test('keys mean encryption', () => {
    assert.deepEqual(decideRecipient('b.test', facts(encrypt), settings()), { kind: 'encrypt', fingerprints: ['AAAA', 'BBBB'], dnssec: true, reason: '2 usable key(s)' });
  });
  test('requireDnssec: unvalidated keys count as absent, refused when required', () => {
    assert.deepEqual(decideRecipient('b.test', facts(encrypt, false), settings({ requireDnssec: true })), {
      kind: 'clear',
      signed: true,
      reason: 'keys not validated by DNSSEC (requireDnssec)',
    });
    assert.deepEqual(decideRecipient('b.test', facts(encryptEnforce, false), settings({ requireDnssec: true })), {
      kind: 'refuse',
      temporary: true,
      reply: { code: 451, enhanced: '4.7.1', text: 'No DNSSEC-validated key for b.test' },
      reason: 'keys not validated by DNSSEC',
    });
  });
  test('no key: opportunistic gets signed clear text, required is refused by the noKeyRequired action', () => {
    assert.deepEqual(decideRecipient('c.test', facts(signOnly), settings()), { kind: 'clear', signed: true, reason: 'no usable site key published' });
    assert.deepEqual(decideRecipient('c.test', facts(signOnly), settings({ admin: 'required' })), {
      kind: 'refuse',
      temporary: true,
      reply: { code: 451, enhanced: '4.7.1', text: 'Encryption to c.test is required and no key was found' },
      reason: 'no usable site key published',
    });
    assert.deepEqual(decideRecipient('c.test', facts(signOnly), settings({ admin: 'required', actions: { dnsError: 'tempfail', noKeyRequired: 'reject' } })), {
      kind: 'refuse',
      temporary: false,
      reply: { code: 550, enhanced: '5.7.1', text: 'Encryption to c.test is required and no key was found' },
      reason: 'no usable site key published',
    });
  });
  test('published enforce without a key is refused, unless the administrator lowered it to opportunistic', () => {
    assert.equal(decideRecipient('d.test', facts(enforceNoKey), settings()).kind, 'refuse');
    assert.deepEqual(decideRecipient('d.test', facts(enforceNoKey), settings({ admin: 'opportunistic' })), {
      kind: 'clear',
      signed: true,
      reason: 'no usable key; policy opportunistic (published enforce overridden)',
    });
  });
  test('a pin violation is refused temporarily even for an opportunistic administrator policy', () => {
    assert.deepEqual(decideRecipient('e.test', facts(downgrade, true, true), settings({ admin: 'opportunistic' })), {
      kind: 'refuse',
      temporary: true,
      reply: { code: 451, enhanced: '4.7.1', text: 'Encryption to e.test is required but not possible now' },
      reason: 'downgrade: records removed while pinned',
    });
  });
  test('DNS failure follows dnsError, but never clear text to a pinned or required domain', () => {
    const accept = settings({ actions: { dnsError: 'accept', noKeyRequired: 'tempfail' } });
    assert.deepEqual(decideRecipient('f.test', facts(dnsFail), accept), { kind: 'clear', signed: true, reason: 'DNS lookup failed: timeout; delivered in clear (dnsError accept)' });
    const pinnedRefusal = decideRecipient('f.test', facts(dnsFail, false, true), accept);
    assert.deepEqual(pinnedRefusal, {
      kind: 'refuse',
      temporary: true,
      reply: { code: 451, enhanced: '4.4.3', text: 'Key lookup for f.test failed' },
      reason: 'DNS lookup failed: timeout',
    });
    assert.equal(decideRecipient('f.test', facts(dnsFail), { ...accept, policyFor: () => 'required' }).kind, 'refuse');
    assert.deepEqual(decideRecipient('f.test', facts(dnsFail), settings({ actions: { dnsError: 'reject', noKeyRequired: 'tempfail' } })).kind, 'refuse');
  });
});

describe('planMessage', () => {
  const r = (recipient: string, decision: PlannedRecipient['decision']): PlannedRecipient => ({ recipient, domain: (recipient.split('@')[1] ?? '').replace('>', ''), decision });
  test('all keyed: one encrypted group with every key once', () => {
    const plan = planMessage([
      r('<a@b.test>', { kind: 'encrypt', fingerprints: ['K1'], dnssec: true, reason: '' }),
      r('<c@d.test>', { kind: 'encrypt', fingerprints: ['K2', 'K1'], dnssec: false, reason: '' }),
    ]);
    assert.equal(plan.kind, 'deliver');
    assert.deepEqual(plan.kind === 'deliver' && plan.groups.map((g) => [g.kind, g.recipients.length, g.fingerprints]), [['encrypted', 2, ['K1', 'K2']]]);
  });
  test('mixed: an encrypted and a clear group; the clear group is signed if any remote member asks', () => {
    const plan = planMessage([
      r('<a@b.test>', { kind: 'encrypt', fingerprints: ['K1'], dnssec: true, reason: '' }),
      r('<x@local.test>', { kind: 'local', reason: '' }),
      r('<y@c.test>', { kind: 'clear', signed: true, reason: '' }),
    ]);
    assert.deepEqual(plan.kind === 'deliver' && plan.groups.map((g) => [g.kind, g.recipients.map((x) => x.recipient), g.signed]), [
      ['encrypted', ['<a@b.test>'], true],
      ['clear', ['<x@local.test>', '<y@c.test>'], true],
    ]);
    const localOnly = planMessage([r('<x@local.test>', { kind: 'local', reason: '' })]);
    assert.deepEqual(localOnly.kind === 'deliver' && localOnly.groups.map((g) => g.signed), [false]);
  });
  test('any refusal refuses the message; a temporary refusal wins', () => {
    const plan = planMessage([
      r('<a@b.test>', { kind: 'refuse', temporary: false, reply: { code: 550, enhanced: '5.7.1', text: 'no' }, reason: 'r1' }),
      r('<c@d.test>', { kind: 'refuse', temporary: true, reply: { code: 451, enhanced: '4.7.1', text: 'later' }, reason: 'r2' }),
      r('<e@f.test>', { kind: 'encrypt', fingerprints: ['K'], dnssec: true, reason: '' }),
    ]);
    assert.deepEqual(plan, { kind: 'refuse', temporary: true, reply: { code: 451, enhanced: '4.7.1', text: 'later' }, reasons: ['b.test: r1', 'd.test: r2'] });
  });
  test('groupOf', () => {
    assert.equal(groupOf({ kind: 'local', reason: '' }), 'clear');
    assert.equal(groupOf({ kind: 'encrypt', fingerprints: [], dnssec: true, reason: '' }), 'encrypted');
    assert.equal(groupOf({ kind: 'refuse', temporary: true, reply: { code: 451, enhanced: '4.7.1', text: '' }, reason: '' }), 'refused');
  });
});
