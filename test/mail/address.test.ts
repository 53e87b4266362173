import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authorOf, domainOfAddressOrDomain, envelopeAddress, envelopeDomain, mailboxesOf, normaliseDomain } from '../../src/mail/address.ts';

/** An envelope address as the milter library hands it over: its UTF-8 bytes, one character per byte. */
const wire = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

test('domains: IDNA A-labels, lower case, no trailing dot; what cannot be a mail domain is null', () => {
  assert.equal(normaliseDomain('Example.ORG.'), 'example.org');
  assert.equal(normaliseDomain('bücher.test'), 'xn--bcher-kva.test');
  assert.equal(normaliseDomain('BÜCHER.test'), 'xn--bcher-kva.test');
  assert.equal(normaliseDomain('xn--bcher-kva.test'), 'xn--bcher-kva.test');
  for (const bad of ['', 'localhost', '[192.0.2.1]', 'a..b', '-a.test', 'a_b.test', 'a\u0378b.test', `${'a'.repeat(64)}.test`, `${'a.'.repeat(127)}test`]) {
    assert.equal(normaliseDomain(bad), null, JSON.stringify(bad));
  }
});

test('envelope addresses: angle brackets dropped, bytes read as UTF-8; bytes that are not UTF-8 never become another name', () => {
  assert.equal(envelopeAddress(wire('<bob@bücher.test>')), 'bob@bücher.test');
  assert.equal(envelopeDomain(wire('<bob@bücher.test>'), 'site.test'), 'xn--bcher-kva.test');
  assert.equal(envelopeDomain('<postmaster>', 'site.test'), 'site.test');
  assert.equal(envelopeDomain('<bob@b\xfccher.test>', 'site.test'), null);
  assert.equal(domainOfAddressOrDomain('<bob@Bücher.test>'), 'xn--bcher-kva.test');
  assert.equal(domainOfAddressOrDomain('bücher.test'), 'xn--bcher-kva.test');
});

test('header mailboxes follow the RFC 5322 grammar, never the first angle bracket', () => {
  const domains = (value: string): Array<string | null> | null => mailboxesOf(value, 'utf8')?.map((m) => m.domain) ?? null;
  assert.deepEqual(domains(' "<x@attacker.test>" <ceo@victim.test>'), ['victim.test']);
  assert.deepEqual(domains(' ceo@victim.test (x@attacker.test)'), ['victim.test']);
  assert.deepEqual(domains(' =?utf-8?q?=3Cx=40attacker=2Etest=3E?= <ceo@victim.test>'), ['victim.test']);
  assert.deepEqual(domains(' Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>'), ['silly.test']);
  assert.deepEqual(domains(' <@route.test:ceo@victim.test>'), ['victim.test']);
  assert.deepEqual(domains(' a@one.test, b@two.test'), ['one.test', 'two.test']);
  assert.deepEqual(domains(' Alice\r\n <alice@folded.test>'), ['folded.test']);
  assert.deepEqual(domains(' ceo@[192.0.2.1]'), [null]);
  assert.equal(domains(' x@attacker.test <ceo@victim.test>'), null);
  // UTF-8 header bytes as the daemon holds them (latin1 strings) are decoded first (RFC 6532).
  assert.deepEqual(mailboxesOf(wire(' Jörg <jörg@bücher.test>'), 'latin1')?.map((m) => m.domain), ['xn--bcher-kva.test']);
});

test('the author: exactly one From field with exactly one mailbox (never a group) in a mail domain', () => {
  assert.deepEqual(authorOf([' Alice <alice@Sender.Test>'], 'utf8'), {
    kind: 'single',
    mailbox: { address: 'alice@Sender.Test', rawDomain: 'Sender.Test', domain: 'sender.test', inGroup: false },
  });
  assert.deepEqual(authorOf([], 'utf8'), { kind: 'no-from' });
  assert.deepEqual(authorOf([' a@x.test', ' b@y.test'], 'utf8'), { kind: 'multiple-from-fields', count: 2 });
  assert.deepEqual(authorOf([' a@x.test, b@y.test'], 'utf8'), { kind: 'multiple-mailboxes', count: 2 });
  assert.deepEqual(authorOf([' Team: a@x.test;'], 'utf8'), { kind: 'unparseable-from' });
  assert.deepEqual(authorOf([' <>'], 'utf8'), { kind: 'unparseable-from' });
  assert.deepEqual(authorOf([' a@[192.0.2.1]'], 'utf8'), { kind: 'bad-from-domain', rawDomain: '[192.0.2.1]' });
});
