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

  it('rewrites the pin when the published policy or lifetime changes', () => {
    const result = evaluatePin(pin([A]), lookup([A], { policy: 'testing' }), NOW);
    assert.equal(result.update.kind === 'set' && result.update.pin.policy, 'testing');
  });

  it('removes the pin on ma=0 from a matching record, and keeps it when only KEY/OPENPGPKEY answer', () => {
    assert.deepEqual(evaluatePin(pin([A]), lookup([A], { maxAge: 0 }), NOW).update, { kind: 'delete' });
    const compat = evaluatePin(pin([A]), lookup([A], { policy: null, maxAge: 0 }), NOW);
    assert.equal(compat.state, 'ok');
    assert.deepEqual(compat.update, { kind: 'keep' });
  });

  it('reports a new key next to a pinned one, encrypts only to the pinned one, and pins both', () => {
    const result = evaluatePin(pin([A]), lookup([A, B]), NOW);
    assert.equal(result.state, 'new-key-announced');
    assert.deepEqual(result.encryptTo, [A]);
    assert.equal(result.update.kind === 'set' && result.update.pin.fingerprints.join(), [A, B].join());
    assert.match(result.detail, new RegExp(`new key\\(s\\) ${B}`));
  });

  it('follows a finished rotation: the new key alone, already pinned, is ok', () => {
    const result = evaluatePin(pin([A, B]), lookup([B]), NOW);
    assert.equal(result.state, 'ok');
    assert.deepEqual(result.encryptTo, [B]);
    assert.equal(result.update.kind === 'set' && result.update.pin.fingerprints.join(), B);
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
