import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contentTypeOf, multipartBoundary, parseContentType, transferEncodingOf } from '../../src/mime/content-fields.ts';

test('RFC 2045 defaults apply when the fields are absent or unusable', () => {
  assert.deepEqual(contentTypeOf([]), { mediaType: 'text/plain', params: { charset: 'us-ascii' } });
  assert.equal(contentTypeOf([{ name: 'Content-Type', value: ' garbage' }]).mediaType, 'text/plain');
  assert.equal(transferEncodingOf([]), '7bit');
});

test('case, comments and folding are normalised away', () => {
  const type = contentTypeOf([{ name: 'content-type', value: ' Multipart/Mixed (note);\r\n\tBoundary="a b"' }]);
  assert.equal(type.mediaType, 'multipart/mixed');
  assert.equal(multipartBoundary(type), 'a b');
  assert.equal(transferEncodingOf([{ name: 'Content-Transfer-Encoding', value: ' 8BIT (raw)' }]), '8bit');
});

test('RFC 2231 continuations are assembled', () => {
  const type = parseContentType(" application/pdf;\r\n name*0*=utf-8''%C3%89t%C3%A9%20report%20;\r\n name*1=\"2025.pdf\"");
  assert.equal(type.params['name'], 'Été report 2025.pdf');
});

test('a multipart without boundary has none', () => {
  assert.equal(multipartBoundary(parseContentType(' multipart/mixed')), undefined);
  assert.equal(multipartBoundary(parseContentType(' text/plain; boundary=x')), undefined);
});
