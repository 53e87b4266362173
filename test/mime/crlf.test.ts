import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { canonicalizeChunks, CrlfCanonicalizer, toCrlf } from '../../src/mime/crlf.ts';

test('bare LF becomes CRLF; CRLF and lone CR stay', () => {
  assert.equal(toCrlf(Buffer.from('a\nb\r\nc\rd\n')).toString('latin1'), 'a\r\nb\r\nc\rd\r\n');
});

test('canonical input is returned without copying', () => {
  const input = Buffer.from('a\r\nb\r\n');
  assert.equal(toCrlf(input), input);
});

test('a CRLF split between chunks is not doubled', () => {
  const canon = new CrlfCanonicalizer();
  const out = Buffer.concat([canon.push(Buffer.from('a\r')), canon.push(Buffer.from('\nb\n'))]);
  assert.equal(out.toString('latin1'), 'a\r\nb\r\n');
});

test('any chunking gives the same bytes as the whole buffer', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(300), { maxLength: 6 }), async (data, cuts) => {
      const bytes = Buffer.from(data.map((b) => [10, 13, 65][b % 3] as number));
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const chunks: Buffer[] = [];
      let at = 0;
      for (const p of [...points, bytes.length]) {
        chunks.push(bytes.subarray(at, p));
        at = p;
      }
      const out: Buffer[] = [];
      for await (const c of canonicalizeChunks((async function* () { yield* chunks; })())) out.push(c);
      assert.deepEqual(Buffer.concat(out), toCrlf(bytes));
    }),
    { numRuns: 200 },
  );
});
