import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authenticationResultsInsert, authenticationResultsValue, forgedFieldDeletions } from '../../src/engine/authentication-results.ts';
import type { Verdict } from '../../src/engine/verdict.ts';
import { readAuthenticationResults } from '../../src/mail/authentication-results.ts';

const pass: Verdict = { result: 'pass', reason: 'signature-verified', domain: 'sender.test', fingerprint: 'ABCD', dnssec: true, encrypted: true };

test('the field value follows RFC 8601 syntax, folded with CRLF TAB', () => {
  assert.equal(
    authenticationResultsValue('mx.receiver.test', pass),
    ' mx.receiver.test;\r\n\tx-muse=pass reason="signature-verified"\r\n\theader.from=sender.test\r\n\tpolicy.key-fingerprint=ABCD\r\n\tpolicy.dnssec=yes\r\n\tpolicy.encrypted=yes',
  );
  const fail: Verdict = { result: 'fail', reason: 'decryption-failed', domain: null, fingerprint: null, dnssec: null, encrypted: true };
  assert.equal(authenticationResultsValue('mx', fail), ' mx;\r\n\tx-muse=fail reason="decryption-failed"\r\n\tpolicy.encrypted=yes');
});

test('our own field reads back as our authserv-id and method', () => {
  assert.deepEqual(readAuthenticationResults(authenticationResultsValue('mx.receiver.test', pass)), { authservId: 'mx.receiver.test', methods: ['x-muse'], complete: true });
});

test('the reader follows the grammar: comments (nested, with ; inside), quoting, version, case, CFWS', () => {
  const cases: Array<[string, { authservId: string; methods: string[]; complete: boolean } | null]> = [
    [' MX.Receiver.test 1; spf=pass smtp.mailfrom=a@b.test', { authservId: 'mx.receiver.test', methods: ['spf'], complete: true }],
    [' (comment; with (nested; parts)) mx.receiver.test;\r\n\tdkim=none', { authservId: 'mx.receiver.test', methods: ['dkim'], complete: true }],
    [' "mx.receiver.test"; x-muse=pass', { authservId: 'mx.receiver.test', methods: ['x-muse'], complete: true }],
    [' "mx.re\\ceiver.test" (x); X-MUSE = pass', { authservId: 'mx.receiver.test', methods: ['x-muse'], complete: true }],
    [' mx.receiver.test; dkim=pass reason="a; b" header.d=x.test; x-muse/1=pass', { authservId: 'mx.receiver.test', methods: ['dkim', 'x-muse/1'.split('/')[0] as string], complete: true }],
    [' mx.receiver.test; none', { authservId: 'mx.receiver.test', methods: [], complete: true }],
    [' mx.receiver.test (x-muse=pass)', { authservId: 'mx.receiver.test', methods: [], complete: true }],
    [' mx.receiver.test; dkim=pass (unterminated', { authservId: 'mx.receiver.test', methods: ['dkim'], complete: false }],
    [' "mx.receiver.test', null],
    ['', null],
    [' ; x-muse=pass', null],
  ];
  for (const [value, expected] of cases) assert.deepEqual(readAuthenticationResults(value), expected, value);
});

test('deleted: x-muse results under our id however written, unreadable fields, our own fields; kept: other ids and other methods', () => {
  const fields = [
    { name: 'Authentication-Results', value: ' mx.receiver.test; x-muse=pass' },
    { name: 'Authentication-Results', value: ' other.test; x-muse=pass' },
    { name: 'authentication-results', value: ' MX.RECEIVER.TEST; dkim=pass header.d=sender.test' },
    { name: 'Authentication-Results', value: ' "mx.receiver.test" (quoted); X-Muse=pass' },
    { name: 'Authentication-Results', value: ' mx.receiver.test; dkim=pass; x-muse=pass' },
    { name: 'Authentication-Results', value: ' mx.receiver.test; dkim=pass (broken' },
    { name: 'Authentication-Results', value: ' "unterminated' },
    { name: 'Muse-Protection', value: ' signed+encrypted; signer=ABCD' },
    { name: 'muse-unverified-from', value: ' ceo@victim.test' },
    { name: 'From', value: ' a@sender.test' },
  ];
  assert.deepEqual(forgedFieldDeletions(fields, 'mx.receiver.test'), [
    { op: 'change', name: 'Authentication-Results', index: 7, value: '' },
    { op: 'change', name: 'Authentication-Results', index: 6, value: '' },
    { op: 'change', name: 'Authentication-Results', index: 5, value: '' },
    { op: 'change', name: 'Authentication-Results', index: 4, value: '' },
    { op: 'change', name: 'Authentication-Results', index: 1, value: '' },
    { op: 'change', name: 'Muse-Protection', index: 1, value: '' },
    { op: 'change', name: 'muse-unverified-from', index: 1, value: '' },
  ]);
  assert.deepEqual(authenticationResultsInsert('mx', pass).op, 'insert');
});
