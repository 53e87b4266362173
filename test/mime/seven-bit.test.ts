import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MimeError } from '../../src/mime/errors.ts';
import type { HeaderField } from '../../src/mime/header-fields.ts';
import { isSevenBitSafe, makeSevenBitSafe } from '../../src/mime/seven-bit.ts';

const ct = (value: string, cte?: string): HeaderField[] => [
  { name: 'Content-Type', value: ' ' + value },
  ...(cte === undefined ? [] : [{ name: 'Content-Transfer-Encoding', value: ' ' + cte }]),
];

test('what is 7-bit safe', () => {
  assert.equal(isSevenBitSafe(Buffer.from('plain\r\ntext')), true);
  assert.equal(isSevenBitSafe(Buffer.from('caf\xe9', 'latin1')), false);
  assert.equal(isSevenBitSafe(Buffer.from('nul\x00')), false);
  assert.equal(isSevenBitSafe(Buffer.from('bare\nlf')), false);
  assert.equal(isSevenBitSafe(Buffer.from('lone\rcr')), false);
  assert.equal(isSevenBitSafe(Buffer.from('x'.repeat(999))), false);
  assert.equal(isSevenBitSafe(Buffer.from('x'.repeat(998))), true);
  assert.equal(isSevenBitSafe(Buffer.from('trailing \r\n')), false);
  assert.equal(isSevenBitSafe(Buffer.from('a\r\nFrom b')), false);
});

test('a safe entity is returned as is', () => {
  const body = Buffer.from('hello\r\n');
  const result = makeSevenBitSafe(ct('text/plain'), body, 8);
  assert.equal(result.changed, false);
  assert.equal(result.body, body);
});

test('8-bit text becomes quoted-printable, binary data base64', () => {
  const text = makeSevenBitSafe(ct('text/plain; charset=utf-8', '8bit'), Buffer.from('Grüße\r\n'), 8);
  assert.equal(text.body.toString('latin1'), 'Gr=C3=BC=C3=9Fe\r\n');
  assert.deepEqual(text.fields[1], { name: 'Content-Transfer-Encoding', value: ' quoted-printable' });
  const binary = makeSevenBitSafe(ct('application/octet-stream'), Buffer.from([0, 1, 2, 255]), 8);
  assert.equal(binary.body.toString('latin1'), 'AAEC/w==\r\n');
  assert.deepEqual(binary.fields[1], { name: 'Content-Transfer-Encoding', value: ' base64' });
});

test('a base64 leaf with an overlong line is re-wrapped, not double-encoded', () => {
  const raw = Buffer.alloc(900, 7);
  const result = makeSevenBitSafe(ct('application/pdf', 'base64'), Buffer.from(raw.toString('base64')), 8);
  assert.equal(result.changed, true);
  assert.deepEqual(Buffer.from(result.body.toString('latin1').replace(/\r\n/g, ''), 'base64'), raw);
});

test('in a multipart only unsafe leaves change; framing and safe parts are byte-identical', () => {
  const body = Buffer.from(
    'preamble\r\n--x\r\nContent-Type: text/plain\r\n\r\nsafe\r\n--x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nünsafe\r\n--x--\r\nepilogue\r\n',
  );
  const result = makeSevenBitSafe(ct('multipart/mixed; boundary=x', '8bit'), body, 8);
  assert.equal(
    result.body.toString('latin1'),
    'preamble\r\n--x\r\nContent-Type: text/plain\r\n\r\nsafe\r\n--x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=C3=BCnsafe\r\n--x--\r\nepilogue\r\n',
  );
  assert.deepEqual(result.fields[1], { name: 'Content-Transfer-Encoding', value: ' 7bit' });
});

test('encapsulated messages are descended into', () => {
  const body = Buffer.from('Subject: inner\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\nä\r\n');
  const result = makeSevenBitSafe(ct('message/rfc822', '8bit'), body, 8);
  assert.equal(result.body.toString('latin1'), 'Subject: inner\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A4\r\n');
});

test('an unknown transfer encoding is left alone', () => {
  const result = makeSevenBitSafe(ct('text/plain', 'x-uuencode'), Buffer.from('ü\r\n'), 8);
  assert.equal(result.changed, false);
});

test('nesting beyond the limit is reported as MIME_DEPTH', () => {
  let body = 'ü\r\n';
  let type = 'text/plain';
  for (let d = 5; d >= 1; d--) {
    body = `--l${d}\r\nContent-Type: ${type}\r\n\r\n${body}--l${d}--\r\n`;
    type = `multipart/mixed; boundary=l${d}`;
  }
  assert.equal(makeSevenBitSafe(ct(type), Buffer.from(body), 5).changed, true);
  assert.throws(
    () => makeSevenBitSafe(ct(type), Buffer.from(body), 4),
    (e: unknown) => e instanceof MimeError && e.code === 'MIME_DEPTH',
  );
});
