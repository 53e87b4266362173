import assert from 'node:assert/strict';
import { test } from 'node:test';
import { senderDomainOf } from '../../src/engine/sender-domain.ts';

test('the domain of the first From address', () => {
  assert.equal(senderDomainOf(' Alice <alice@Sender.Test>'), 'sender.test');
  assert.equal(senderDomainOf(' alice@sender.test (Alice)'), 'sender.test');
  assert.equal(senderDomainOf(' "Doe, John (x@y)" <john@example.test.>'), 'example.test');
  assert.equal(senderDomainOf(' =?utf-8?q?Jos=C3=A9?= <jose@sender.test>'), 'sender.test');
  assert.equal(senderDomainOf(' a@one.test, b@two.test'), 'one.test');
  assert.equal(senderDomainOf(' Alice\r\n <alice@folded.test>'), 'folded.test');
});

test('no usable address', () => {
  assert.equal(senderDomainOf(undefined), null);
  assert.equal(senderDomainOf(' undisclosed-recipients:;'), null);
  assert.equal(senderDomainOf(' <>'), null);
});
