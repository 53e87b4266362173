/**
 * The line-by-line armor decoder used on streamed messages must accept exactly what `dearmor` accepts and decode
 * it to the same octets: valid armor of many sizes (across the decoder's batch boundary), with and without
 * headers, checksum and surrounding blank lines, in CRLF and LF; and each kind of damage refused by both.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { armorBytes, dearmor, LineDearmorer } from '../../src/pgp/armor.ts';
import { PgpError } from '../../src/pgp/errors.ts';

/** Splits as dearmor does (at LF, a CR before it dropped, the text after the last LF a line too) and decodes. */
function byLines(armored: Buffer): Buffer | 'refused' {
  const decoder = new LineDearmorer('MESSAGE');
  const out: Buffer[] = [];
  try {
    let start = 0;
    for (;;) {
      const lf = armored.indexOf(0x0a, start);
      const end = lf === -1 ? armored.length : lf > start && armored[lf - 1] === 0x0d ? lf - 1 : lf;
      out.push(...decoder.line(armored, start, end));
      if (lf === -1) break;
      start = lf + 1;
    }
    out.push(decoder.finish());
  } catch (error) {
    if (error instanceof PgpError && error.code === 'ARMOR_INVALID') return 'refused';
    throw error;
  }
  return Buffer.concat(out);
}

function whole(armored: Buffer): Buffer | 'refused' {
  try {
    return dearmor('MESSAGE', armored);
  } catch (error) {
    if (error instanceof PgpError && error.code === 'ARMOR_INVALID') return 'refused';
    throw error;
  }
}

function variants(data: Buffer): Array<[string, Buffer]> {
  const armored = armorBytes('MESSAGE', data).toString('latin1');
  const lines = armored.split('\r\n');
  const change = (at: number): string => {
    const i = armored.indexOf('\r\n\r\n') + 4 + at;
    return armored.slice(0, i) + (armored[i] === 'A' ? 'B' : 'A') + armored.slice(i + 1);
  };
  return [
    ['as written', armored],
    ['bare LF', armored.replace(/\r\n/g, '\n')],
    ['blank lines around', `\r\n \r\n${armored}\r\n\t\r\n`],
    ['an armor header', armored.replace('-----\r\n\r\n', '-----\r\nVersion: x\r\nComment: y\r\n\r\n')],
    ['no checksum', lines.filter((l) => !l.startsWith('=') || l.length !== 5).join('\r\n')],
    ['a wrong checksum', armored.replace(/\r\n=(....)\r\n/, '\r\n=AAAA\r\n')],
    ['a changed character', change(3)],
    ['text after END', `${armored}x\r\n`],
    ['no END line', lines.slice(0, -2).join('\r\n')],
    ['data after the checksum', armored.replace(/(\r\n=....\r\n)/, '$1QUJD\r\n')],
    ['a bad character', armored.replace('\r\n\r\n', '\r\n\r\n!')],
    ['no blank line after the headers', armored.replace('-----\r\n\r\n', '-----\r\n')],
    ['a data line split in two', armored.replace(/(\r\n\r\n.{8})/, '$1\r\n')],
    ['an empty line in the data', armored.replace(/(\r\n\r\n[^\r]*\r\n)/, '$1\r\n')],
  ].map(([name, text]) => [name as string, Buffer.from(text as string, 'latin1')]);
}

test('LineDearmorer accepts and decodes exactly what dearmor does', () => {
  let accepted = 0;
  for (const size of [0, 1, 2, 47, 48, 1000, 196_607, 196_608, 196_609, 400_000]) {
    const data = randomBytes(size);
    for (const [name, armored] of variants(data)) {
      const expected = whole(armored);
      assert.deepEqual(byLines(armored), expected, `${size} bytes, ${name}`);
      if (expected !== 'refused') {
        assert.ok(expected.equals(data), `${size} bytes, ${name}`);
        accepted++;
      }
    }
  }
  // As written, bare LF, blank lines, a header, no checksum, a line split in two: accepted for every size.
  assert.equal(accepted, 10 * 6);
});
