import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyHeaderEdits, syncFieldEdits, type HeaderEdit } from '../../src/engine/header-edits.ts';
import type { HeaderField } from '../../src/mime/header-fields.ts';

const fields: HeaderField[] = [
  { name: 'Received', value: ' a' },
  { name: 'To', value: ' one' },
  { name: 'Subject', value: ' s' },
  { name: 'to', value: ' two' },
  { name: 'TO', value: ' three' },
];

test('change, delete, add and insert as the MTA applies them', () => {
  const out = applyHeaderEdits(fields, [
    { op: 'change', name: 'to', index: 2, value: ' TWO' },
    { op: 'change', name: 'To', index: 3, value: '' },
    { op: 'add', name: 'X-New', value: ' end' },
    { op: 'insert', index: 0, name: 'X-Top', value: ' top' },
    { op: 'change', name: 'Missing', index: 1, value: '' },
    { op: 'change', name: 'Absent', index: 1, value: ' added' },
  ]);
  assert.deepEqual(out, [
    { name: 'X-Top', value: ' top' },
    { name: 'Received', value: ' a' },
    { name: 'To', value: ' one' },
    { name: 'Subject', value: ' s' },
    { name: 'to', value: ' TWO' },
    { name: 'X-New', value: ' end' },
    { name: 'Absent', value: ' added' },
  ]);
});

test('sync emits changes, then deletions from the highest index, then additions', () => {
  assert.deepEqual(syncFieldEdits(fields, 'To', [' one', ' 2']), [
    { op: 'change', name: 'To', index: 2, value: ' 2' },
    { op: 'change', name: 'To', index: 3, value: '' },
  ]);
  assert.deepEqual(syncFieldEdits(fields, 'To', []), [
    { op: 'change', name: 'To', index: 3, value: '' },
    { op: 'change', name: 'To', index: 2, value: '' },
    { op: 'change', name: 'To', index: 1, value: '' },
  ]);
  assert.deepEqual(syncFieldEdits(fields, 'Cc', [' x', ' y']), [
    { op: 'add', name: 'Cc', value: ' x' },
    { op: 'add', name: 'Cc', value: ' y' },
  ]);
  assert.deepEqual(syncFieldEdits(fields, 'Subject', [' s']), []);
});

/** Applies edits with `index` counted among the original fields (the other reading an MTA may use). */
function applyByOriginalIndex(original: readonly HeaderField[], edits: readonly HeaderEdit[]): HeaderField[] {
  const out: (HeaderField | null)[] = [...original];
  const added: HeaderField[] = [];
  for (const edit of edits) {
    if (edit.op !== 'change') {
      added.push({ name: edit.name, value: edit.value });
      continue;
    }
    const positions = original.flatMap((f, i) => (f.name.toLowerCase() === edit.name.toLowerCase() ? [i] : []));
    const at = positions[edit.index - 1] as number;
    out[at] = edit.value === '' ? null : { name: (original[at] as HeaderField).name, value: edit.value };
  }
  return [...out.filter((f): f is HeaderField => f !== null), ...added];
}

test('sync edits give the same result whether indices count original or current fields', () => {
  for (const values of [[' only'], [], [' one', ' 2'], [' a', ' b', ' c', ' d']]) {
    const edits = syncFieldEdits(fields, 'To', values);
    assert.deepEqual(applyHeaderEdits(fields, edits), applyByOriginalIndex(fields, edits));
  }
});
