import assert from 'node:assert/strict';
import { test } from 'node:test';
import { boundaryOccursIn, splitMultipart } from '../../src/mime/multipart.ts';

const slice = (body: Buffer, r: { start: number; end: number }): string => body.toString('latin1', r.start, r.end);

test('parts exclude the line break before each delimiter; preamble and epilogue are kept', () => {
  const body = Buffer.from('pre\r\n--b\r\nA: 1\r\n\r\none\r\n\r\n--b\r\n\r\ntwo\r\n--b--\r\nepi\r\n');
  const layout = splitMultipart(body, 'b');
  assert.ok(layout);
  assert.equal(slice(body, layout.preamble), 'pre');
  assert.deepEqual(layout.parts.map((p) => slice(body, p)), ['A: 1\r\n\r\none\r\n', '\r\ntwo']);
  assert.ok(layout.epilogue);
  assert.equal(slice(body, layout.epilogue), 'epi\r\n');
});

test('a line that only starts with the boundary is content; transport padding is allowed', () => {
  const body = Buffer.from('--b\r\nx\r\n--bNOT\r\n--b \t\r\ny\r\n--b--');
  const layout = splitMultipart(body, 'b');
  assert.ok(layout);
  assert.deepEqual(layout.parts.map((p) => slice(body, p)), ['x\r\n--bNOT', 'y']);
  assert.equal(slice(body, layout.preamble), '');
});

test('bare LF framing and a missing close delimiter', () => {
  const body = Buffer.from('--b\nfirst\n--b\nsecond\n');
  const layout = splitMultipart(body, 'b');
  assert.ok(layout);
  assert.deepEqual(layout.parts.map((p) => slice(body, p)), ['first', 'second\n']);
  assert.equal(layout.epilogue, null);
});

test('adjacent delimiters give an empty part', () => {
  const body = Buffer.from('--b\r\n--b\r\nx\r\n--b--\r\n');
  const layout = splitMultipart(body, 'b');
  assert.deepEqual(layout?.parts.map((p) => slice(body, p)), ['', 'x']);
});

test('no delimiter at all', () => {
  assert.equal(splitMultipart(Buffer.from('just text\r\n'), 'b'), null);
});

test('boundary collision detection looks at line starts only', () => {
  assert.equal(boundaryOccursIn(Buffer.from('text --abc inside\r\n'), 'abc'), false);
  assert.equal(boundaryOccursIn(Buffer.from('text\r\n--abcdef\r\n'), 'abc'), true);
  assert.equal(boundaryOccursIn(Buffer.from('--abc'), 'abc'), true);
});
