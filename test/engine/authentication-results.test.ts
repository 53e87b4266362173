import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  authenticationResultsInsert,
  authenticationResultsValue,
  authservIdOf,
  forgedResultsDeletions,
} from '../../src/engine/authentication-results.ts';
import type { Verdict } from '../../src/engine/verdict.ts';

const pass: Verdict = { result: 'pass', reason: 'signature-verified', domain: 'sender.test', fingerprint: 'ABCD', dnssec: true, encrypted: true };

test('the field value follows RFC 8601 syntax, folded with CRLF TAB', () => {
  assert.equal(
    authenticationResultsValue('mx.receiver.test', pass),
    ' mx.receiver.test;\r\n\tx-muse=pass reason="signature-verified"\r\n\theader.from=sender.test\r\n\tpolicy.key-fingerprint=ABCD\r\n\tpolicy.dnssec=yes\r\n\tpolicy.encrypted=yes',
  );
  const fail: Verdict = { result: 'fail', reason: 'decryption-failed', domain: null, fingerprint: null, dnssec: null, encrypted: true };
  assert.equal(authenticationResultsValue('mx', fail), ' mx;\r\n\tx-muse=fail reason="decryption-failed"\r\n\tpolicy.encrypted=yes');
});

test('authserv-id parsing ignores comments, version and case', () => {
  assert.equal(authservIdOf(' MX.Receiver.test 1; spf=pass'), 'mx.receiver.test');
  assert.equal(authservIdOf(' (comment) mx.receiver.test;\r\n\tdkim=none'), 'mx.receiver.test');
  assert.equal(authservIdOf(' mx.receiver.test'), 'mx.receiver.test');
});

test('only fields claiming our authserv-id are deleted, highest index first', () => {
  const fields = [
    { name: 'Authentication-Results', value: ' mx.receiver.test; x-muse=pass' },
    { name: 'Authentication-Results', value: ' other.test; spf=pass' },
    { name: 'authentication-results', value: ' MX.RECEIVER.TEST; dkim=pass' },
  ];
  assert.deepEqual(forgedResultsDeletions(fields, 'mx.receiver.test'), [
    { op: 'change', name: 'Authentication-Results', index: 3, value: '' },
    { op: 'change', name: 'Authentication-Results', index: 1, value: '' },
  ]);
  assert.deepEqual(authenticationResultsInsert('mx', pass).op, 'insert');
});
