import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isSevenBitSafe } from '../../src/mime/seven-bit.ts';
import { decodeBase64, decodeQuotedPrintable, encodeBase64Lines, encodeQuotedPrintable } from '../../src/mime/transfer-encoding.ts';

test('quoted-printable keeps CRLF as hard breaks and escapes what a relay could change', () => {
  const input = Buffer.from('From me\r\n-- sig\r\ntrail \r\ncaf\xe9=\x00\r\n', 'latin1');
  assert.equal(encodeQuotedPrintable(input).toString('latin1'), '=46rom me\r\n=2D- sig\r\ntrail=20\r\ncaf=E9=3D=00\r\n');
});

test('quoted-printable soft breaks keep lines at 76 characters and never split an escape', () => {
  const encoded = encodeQuotedPrintable(Buffer.alloc(200, 0xe9)).toString('latin1');
  for (const line of encoded.split('\r\n')) {
    assert.ok(line.length <= 76, line);
    assert.match(line, /^(=E9)*=?$/);
  }
});

test('quoted-printable and base64 round-trip arbitrary bytes and are 7-bit safe', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), (data) => {
      const bytes = Buffer.from(data);
      const qp = encodeQuotedPrintable(bytes);
      const b64 = encodeBase64Lines(bytes);
      assert.deepEqual(decodeQuotedPrintable(qp), bytes);
      assert.deepEqual(decodeBase64(b64), bytes);
      assert.ok(isSevenBitSafe(qp));
      assert.ok(isSevenBitSafe(b64));
    }),
    { numRuns: 300 },
  );
});

test('quoted-printable decoding drops transport blanks and keeps malformed escapes', () => {
  assert.equal(decodeQuotedPrintable(Buffer.from('a=\r\nb  \r\n=ZZ=4')).toString('latin1'), 'ab\r\n=ZZ=4');
});
