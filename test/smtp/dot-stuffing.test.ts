import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DotStuffer } from '../../src/smtp/dot-stuffing.ts';

function stuffAt(message: string, splits: number[]): string {
  const stuffer = new DotStuffer();
  const bytes = Buffer.from(message, 'latin1');
  const out: Buffer[] = [];
  let from = 0;
  for (const at of [...splits, bytes.length]) {
    out.push(stuffer.push(bytes.subarray(from, at)));
    from = at;
  }
  out.push(stuffer.end());
  return Buffer.concat(out).toString('latin1');
}

test('line-initial dots are doubled wherever the chunks split', () => {
  const message = '.first\r\nmid.dle\r\n.\r\n..two\r\nlast';
  const expected = '..first\r\nmid.dle\r\n..\r\n...two\r\nlast\r\n.\r\n';
  for (let a = 0; a <= message.length; a++) {
    assert.equal(stuffAt(message, [a]), expected, `split at ${a}`);
    for (let b = a; b <= message.length; b += 3) assert.equal(stuffAt(message, [a, b]), expected, `split at ${a},${b}`);
  }
});

test('a message ending in CRLF gets only the terminator; an empty message gets one too', () => {
  assert.equal(stuffAt('a\r\n', []), 'a\r\n.\r\n');
  assert.equal(stuffAt('', []), '.\r\n');
  assert.equal(stuffAt('a\r', []), 'a\r\r\n.\r\n');
});
