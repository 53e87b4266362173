/** Pin evaluation (docs/dns-records.md §7): every state, and when the stored pin is set, refreshed, kept or removed. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { evaluatePin, type Pin, type PinInput } from '../../src/pins/index.ts';

const A = 'A'.repeat(40);
const B = 'B'.repeat(40);
const C = 'C'.repeat(40);
const NOW = new Date('2026-06-01T00:00:00.000Z');
const DAY = 86_400;

function pin(fingerprints: string[], options: Partial<Pin> = {}): Pin {
  return {
    domain: 'example.test',
    fingerprints,
    policy: 'enforce',
    maxAge: 7 * DAY,
    firstSeen: '2026-05-01T00:00:00.000Z',
    lastSeen: '2026-05-31T00:00:00.000Z',
    expiresAt: '2026-06-07T00:00:00.000Z',
    dnssec: false,
    publicKeys: {},
    ...options,
  };
}

function lookup(fingerprints: string[], options: Partial<PinInput> = {}): PinInput {
  return {
    domain: 'example.test',
    status: fingerprints.length > 0 ? 'found' : 'none',
    keys: fingerprints.map((fingerprint) => ({ fingerprint })),
    policy: 'enforce',
    maxAge: 7 * DAY,
    dnssec: false,
    ...options,
  };
}

describe('evaluatePin', () => {
  it('trusts keys on first use and pins them for max-age', () => {
    const result = evaluatePin(undefined, lookup([B, A]), NOW);
    assert.equal(result.state, 'no-pin');
    assert.equal(result.pin, null);
    assert.deepEqual(result.encryptTo, [A, B]);
    assert.deepEqual(result.update, {
      kind: 'set',
      pin: {
        domain: 'example.test',
        fingerprints: [A, B],
        policy: 'enforce',
        maxAge: 7 * DAY,
        firstSeen: NOW.toISOString(),
        lastSeen: NOW.toISOString(),
        expiresAt: '2026-06-08T00:00:00.000Z',
        dnssec: false,
        publicKeys: {},
      },
    });
  });

  it('does not pin without a TXT record (policy null) or with ma=0', () => {
    assert.deepEqual(evaluatePin(undefined, lookup([A], { policy: null, maxAge: 0 }), NOW).update, { kind: 'keep' });
    assert.deepEqual(evaluatePin(undefined, lookup([A], { maxAge: 0 }), NOW).update, { kind: 'keep' });
  });

  it('is ok when the keys found are pinned, and leaves a fresh pin alone', () => {
    const result = evaluatePin(pin([A]), lookup([A]), NOW);
    assert.equal(result.state, 'ok');
    assert.deepEqual(result.encryptTo, [A]);
    assert.deepEqual(result.update, { kind: 'keep' });
  });

  it('refreshes an unchanged pin once less than half its lifetime remains', () => {
    const old = pin([A], { expiresAt: '2026-06-03T00:00:00.000Z' });
    const result = evaluatePin(old, lookup([A]), NOW);
    assert.equal(result.state, 'ok');
    assert.equal(result.update.kind, 'set');
    assert.equal(result.update.kind === 'set' && result.update.pin.expiresAt, '2026-06-08T00:00:00.000Z');
    assert.equal(result.update.kind === 'set' && result.update.pin.firstSeen, old.firstSeen);
  });

  it('lets an unauthenticated answer raise the policy but not lower it', () => {
    const raised = evaluatePin(pin([A], { policy: 'testing' }), lookup([A], { policy: 'enforce' }), NOW);
    assert.equal(raised.update.kind === 'set' && raised.update.pin.policy, 'enforce');
    assert.deepEqual(evaluatePin(pin([A]), lookup([A], { policy: 'testing' }), NOW).update, { kind: 'keep' });
    const lowered = evaluatePin(pin([A], { expiresAt: '2026-06-02T00:00:00.000Z' }), lookup([A], { policy: 'testing' }), NOW);
    assert.equal(lowered.update.kind === 'set' && lowered.update.pin.policy, 'enforce', 'a refresh keeps the pinned policy');
  });

  it('lets a DNSSEC-validated answer lower the policy', () => {
    const result = evaluatePin(pin([A]), lookup([A], { policy: 'testing', dnssec: true }), NOW);
    assert.equal(result.update.kind === 'set' && result.update.pin.policy, 'testing');
    assert.equal(result.update.kind === 'set' && result.update.pin.dnssec, true);
  });

  it('never moves the expiry earlier on an unauthenticated answer, and extends it on a longer ma', () => {
    const year = pin([A], { maxAge: 365 * DAY, expiresAt: '2027-05-31T00:00:00.000Z' });
    const shorter = evaluatePin(year, lookup([A], { maxAge: DAY }), NOW);
    assert.equal(shorter.update.kind, 'set');
    assert.equal(shorter.update.kind === 'set' && shorter.update.pin.expiresAt, '2027-05-31T00:00:00.000Z');
    const longer = evaluatePin(pin([A]), lookup([A], { maxAge: 30 * DAY }), NOW);
    assert.equal(longer.update.kind === 'set' && longer.update.pin.expiresAt, '2026-07-01T00:00:00.000Z');
    assert.equal(longer.update.kind === 'set' && longer.update.pin.maxAge, 30 * DAY);
  });

  it('ignores ma=0 without DNSSEC, removes the pin on ma=0 with DNSSEC, and keeps it when only KEY/OPENPGPKEY answer', () => {
    const forged = evaluatePin(pin([A]), lookup([A], { maxAge: 0 }), NOW);
    assert.equal(forged.state, 'ok');
    assert.deepEqual(forged.encryptTo, [A]);
    assert.deepEqual(forged.update, { kind: 'keep' });
    assert.deepEqual(evaluatePin(pin([A]), lookup([A], { maxAge: 0, dnssec: true }), NOW).update, { kind: 'delete' });
    const compat = evaluatePin(pin([A]), lookup([A], { policy: null, maxAge: 0 }), NOW);
    assert.equal(compat.state, 'ok');
    assert.deepEqual(compat.update, { kind: 'keep' });
  });

  it('encrypts only to the pinned key when an unvouched key is published beside it, and does not pin the new one', () => {
    const result = evaluatePin(pin([A]), lookup([A, B]), NOW);
    assert.equal(result.state, 'new-key-announced');
    assert.deepEqual(result.encryptTo, [A]);
    assert.deepEqual(result.update, { kind: 'keep' });
    assert.match(result.detail, new RegExp(`new key\\(s\\) ${B} published next to the pinned one\\(s\\), neither DNSSEC-validated nor certified`));
  });

  it('accepts a key certified by a pinned key beside it: encrypts to both and pins both', () => {
    const result = evaluatePin(pin([A]), lookup([A, B], { certifiedBy: { [B]: A } }), NOW);
    assert.equal(result.state, 'key-rotation');
    assert.deepEqual(result.encryptTo, [A, B]);
    assert.equal(result.update.kind === 'set' && result.update.pin.fingerprints.join(), [A, B].join());
    assert.equal(result.detail, `new key(s) ${B} accepted: certified by pinned key(s) ${A}`);
  });

  it('follows a certified rotation whose old key is gone: the successor replaces the key that certified it', () => {
    const result = evaluatePin(pin([A, C]), lookup([B], { certifiedBy: { [B]: A } }), NOW);
    assert.equal(result.state, 'key-rotation');
    assert.deepEqual(result.encryptTo, [B]);
    assert.equal(result.update.kind === 'set' && result.update.pin.fingerprints.join(), [B, C].join(), 'C, not handed over, stays pinned');
  });

  it('retires a pinned key once a pinned key it certified stands alone', () => {
    const result = evaluatePin(pin([A, B]), lookup([B], { certifiedBy: { [B]: A } }), NOW);
    assert.equal(result.state, 'ok');
    assert.deepEqual(result.encryptTo, [B]);
    assert.equal(result.update.kind === 'set' && result.update.pin.fingerprints.join(), B);
  });

  it('encrypts to pinned and certified keys only when an unvouched key is published too', () => {
    const result = evaluatePin(pin([A]), lookup([A, B, C], { certifiedBy: { [B]: A } }), NOW);
    assert.equal(result.state, 'key-rotation');
    assert.deepEqual(result.encryptTo, [A, B]);
    assert.equal(result.update.kind === 'set' && result.update.pin.fingerprints.join(), [A, B].join());
    assert.match(result.detail, new RegExp(`unvouched key\\(s\\) ${C} ignored`));
  });

  it('accepts new keys from a DNSSEC-validated answer, and pins exactly what it publishes', () => {
    const result = evaluatePin(pin([A]), lookup([C], { dnssec: true }), NOW);
    assert.equal(result.state, 'key-rotation');
    assert.deepEqual(result.encryptTo, [C]);
    assert.equal(result.update.kind === 'set' && result.update.pin.fingerprints.join(), C);
    assert.equal(result.detail, `new key(s) ${C} accepted: the answer is DNSSEC-validated`);
  });

  it('keeps a pinned key an unauthenticated answer no longer publishes; DNSSEC may drop it', () => {
    const result = evaluatePin(pin([A, B]), lookup([B]), NOW);
    assert.equal(result.state, 'ok');
    assert.deepEqual(result.encryptTo, [B]);
    assert.deepEqual(result.update, { kind: 'keep' });
    const signed = evaluatePin(pin([A, B]), lookup([B], { dnssec: true }), NOW);
    assert.equal(signed.update.kind === 'set' && signed.update.pin.fingerprints.join(), B);
  });

  it('stores the public key bytes of the keys it pins, and keeps stored bytes of keys no longer published', () => {
    const keyA = new Uint8Array([1, 2, 3]);
    const keyB = new Uint8Array([4, 5, 6]);
    const first = evaluatePin(undefined, { ...lookup([A]), keys: [{ fingerprint: A, bytes: keyA }] }, NOW);
    assert.deepEqual(first.update.kind === 'set' && first.update.pin.publicKeys, { [A]: 'AQID' });
    const rotated = evaluatePin(pin([A], { publicKeys: { [A]: 'AQID' } }), { ...lookup([B]), keys: [{ fingerprint: B, bytes: keyB }], certifiedBy: { [B]: A } }, NOW);
    assert.deepEqual(rotated.update.kind === 'set' && rotated.update.pin.publicKeys, { [B]: 'BAUG' });
    const v1 = evaluatePin(pin([A]), { ...lookup([A]), keys: [{ fingerprint: A, bytes: keyA }] }, NOW);
    assert.deepEqual(v1.update.kind === 'set' && v1.update.pin.publicKeys, { [A]: 'AQID' }, 'a version 1 pin learns the bytes');
  });

  it('reports a downgrade when no usable key is published while pinned', () => {
    for (const input of [lookup([]), lookup([], { policy: null, maxAge: 0 })]) {
      const result = evaluatePin(pin([A]), input, NOW);
      assert.equal(result.state, 'downgrade');
      assert.deepEqual(result.encryptTo, []);
      assert.deepEqual(result.update, { kind: 'keep' });
      assert.equal(result.detail, 'no usable key published, yet 1 key(s) pinned until 2026-06-07T00:00:00.000Z');
    }
  });

  it('reports a suspicious change when only unpinned keys are published', () => {
    const result = evaluatePin(pin([A]), lookup([C]), NOW);
    assert.equal(result.state, 'suspicious-change');
    assert.deepEqual(result.encryptTo, []);
    assert.deepEqual(result.update, { kind: 'keep' });
  });

  it('treats an expired pin as none: replaced by a new pin, or deleted', () => {
    const expired = pin([A], { expiresAt: '2026-05-31T23:59:59.000Z' });
    const replaced = evaluatePin(expired, lookup([C]), NOW);
    assert.equal(replaced.state, 'no-pin');
    assert.deepEqual(replaced.encryptTo, [C]);
    assert.equal(replaced.update.kind === 'set' && replaced.update.pin.firstSeen, NOW.toISOString());
    assert.match(replaced.detail, /the pin expired at 2026-05-31T23:59:59\.000Z/);
    assert.deepEqual(evaluatePin(expired, lookup([]), NOW).update, { kind: 'delete' });
  });

  it('does not evaluate a temporary failure and leaves the pin as it is', () => {
    const result = evaluatePin(pin([A]), lookup([], { status: 'temporary-failure', policy: null }), NOW);
    assert.equal(result.state, 'not-evaluated');
    assert.deepEqual(result.update, { kind: 'keep' });
    assert.equal(result.pin?.fingerprints[0], A);
  });
});
