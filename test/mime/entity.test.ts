import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseEntity } from '../../src/mime/entity.ts';

test('fields keep raw values, folding and leading blanks; body starts after the blank line', () => {
  const bytes = Buffer.from('Subject: Hello\r\nTo: a@b.test,\r\n\tc@d.test\r\nX-Empty:\r\nX-NoSpace:value\r\n\r\nbody\r\n', 'latin1');
  const parsed = parseEntity(bytes, 'latin1');
  assert.deepEqual(parsed.fields, [
    { name: 'Subject', value: ' Hello' },
    { name: 'To', value: ' a@b.test,\r\n\tc@d.test' },
    { name: 'X-Empty', value: '' },
    { name: 'X-NoSpace', value: 'value' },
  ]);
  assert.equal(bytes.toString('latin1', parsed.bodyOffset), 'body\r\n');
  assert.equal(bytes.toString('latin1', parsed.headerEnd, parsed.bodyOffset), '\r\n');
});

test('bare LF line ends are accepted and kept inside folded values', () => {
  const bytes = Buffer.from('A: 1\nB: 2\n 3\n\nbody', 'latin1');
  const parsed = parseEntity(bytes, 'latin1');
  assert.deepEqual(parsed.fields, [
    { name: 'A', value: ' 1' },
    { name: 'B', value: ' 2\n 3' },
  ]);
  assert.equal(bytes.toString('latin1', parsed.bodyOffset), 'body');
});

test('a part that starts with a blank line has no fields', () => {
  const parsed = parseEntity(Buffer.from('\r\ncontent\r\n'), 'latin1');
  assert.deepEqual(parsed.fields, []);
  assert.equal(parsed.bodyOffset, 2);
});

test('a line that is not a field ends the header section without a separator', () => {
  const bytes = Buffer.from('Content-Type: text/plain\r\nnot a header line\r\nmore\r\n');
  const parsed = parseEntity(bytes, 'latin1');
  assert.deepEqual(parsed.fields, [{ name: 'Content-Type', value: ' text/plain' }]);
  assert.equal(parsed.headerEnd, parsed.bodyOffset);
  assert.equal(bytes.toString('latin1', parsed.bodyOffset), 'not a header line\r\nmore\r\n');
});

test('headers without a body or blank line take the whole input', () => {
  const bytes = Buffer.from('Subject: only\r\n');
  const parsed = parseEntity(bytes, 'latin1');
  assert.deepEqual(parsed.fields, [{ name: 'Subject', value: ' only' }]);
  assert.equal(parsed.bodyOffset, bytes.length);
});

test('obsolete blanks before the colon keep the field a field', () => {
  const parsed = parseEntity(Buffer.from('Subject : spaced\r\n\r\n'), 'latin1');
  assert.deepEqual(parsed.fields, [{ name: 'Subject ', value: ' spaced' }]);
});

test('8-bit header bytes survive with latin1 and decode with utf8', () => {
  const bytes = Buffer.concat([Buffer.from('Subject: '), Buffer.from('Grüße', 'utf8'), Buffer.from('\r\n\r\n')]);
  assert.equal(parseEntity(bytes, 'utf8').fields[0]?.value, ' Grüße');
  assert.deepEqual(Buffer.from(parseEntity(bytes, 'latin1').fields[0]?.value ?? '', 'latin1'), bytes.subarray(8, bytes.length - 4));
});
