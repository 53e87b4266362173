import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HeaderField } from '../../src/mime/header-fields.ts';
import { buildInnerFields, DEFAULT_PROTECTED_FIELDS, stripHeaderProtection } from '../../src/mime/inner-entity.ts';

const original: HeaderField[] = [
  { name: 'Received', value: ' from x by y' },
  { name: 'From', value: ' alice@sender.test' },
  { name: 'Subject', value: ' Secret plans' },
  { name: 'Content-Type', value: ' text/plain;\r\n charset=utf-8' },
  { name: 'X-Mailer', value: ' test' },
  { name: 'Content-Transfer-Encoding', value: ' 8bit' },
];

test('encrypted: Content-* and protected fields in original order, hp="cipher", HP-Outer for the outer fields', () => {
  const outer: HeaderField[] = [
    { name: 'From', value: ' alice@sender.test' },
    { name: 'Subject', value: ' [...]' },
    { name: 'Received', value: ' not protected' },
  ];
  assert.deepEqual(buildInnerFields({ original, protectedNames: DEFAULT_PROTECTED_FIELDS, hp: 'cipher', outer }), [
    { name: 'From', value: ' alice@sender.test' },
    { name: 'Subject', value: ' Secret plans' },
    { name: 'Content-Type', value: ' text/plain;\r\n charset=utf-8;\r\n hp="cipher"' },
    { name: 'Content-Transfer-Encoding', value: ' 8bit' },
    { name: 'HP-Outer', value: ' From: alice@sender.test' },
    { name: 'HP-Outer', value: ' Subject: [...]' },
  ]);
});

test('signed: hp="clear" and no HP-Outer', () => {
  const fields = buildInnerFields({ original, protectedNames: DEFAULT_PROTECTED_FIELDS, hp: 'clear', outer: original });
  assert.equal(fields.filter((f) => f.name === 'HP-Outer').length, 0);
  assert.equal(fields.find((f) => f.name === 'Content-Type')?.value, ' text/plain;\r\n charset=utf-8;\r\n hp="clear"');
});

test('without header protection only the content fields go inside', () => {
  assert.deepEqual(buildInnerFields({ original, protectedNames: [], hp: null, outer: [] }), [
    { name: 'Content-Type', value: ' text/plain;\r\n charset=utf-8' },
    { name: 'Content-Transfer-Encoding', value: ' 8bit' },
  ]);
});

test('a missing Content-Type becomes the RFC 2045 default', () => {
  const fields = buildInnerFields({ original: [{ name: 'Subject', value: ' x' }], protectedNames: ['Subject'], hp: 'cipher', outer: [] });
  assert.deepEqual(fields[0], { name: 'Content-Type', value: ' text/plain; charset=us-ascii;\r\n hp="cipher"' });
});

test('stripping the hp parameter restores the original value exactly', () => {
  const built = buildInnerFields({ original, protectedNames: [], hp: 'cipher', outer: [] });
  const stripped = stripHeaderProtection(built[0]?.value ?? '');
  assert.deepEqual(stripped, { value: ' text/plain;\r\n charset=utf-8', hp: 'cipher' });
  assert.deepEqual(stripHeaderProtection(' text/plain; hp=clear'), { value: ' text/plain', hp: 'clear' });
  assert.deepEqual(stripHeaderProtection(' text/plain; charset=x'), { value: ' text/plain; charset=x', hp: null });
});
