/**
 * Attack: a From whose display name shows an address the signature is not about. attacker.test signs with its own
 * published site key a message whose protected From is `"<x@attacker.test>" <ceo@victim.test>`: a reader (or a
 * pattern) that takes the first `addr@domain` it sees finds attacker.test, whose key did sign; the grammar says the
 * mailbox is ceo@victim.test, whose key did not. The verdict names victim.test and fails; the message stays
 * encrypted and the transport From is what the user sees. Variants hide the attacker's address in a comment, in an
 * encoded word, before an obsolete route, and the victim's domain in a look-alike IDN (which publishes nothing).
 * Ports: ephemeral only (the daemon on 127.0.0.1:0, a fake DNS server on 127.0.0.1:0).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  authResults,
  innerFields,
  entity,
  pgpMime,
  signedAndEncrypted,
  startReceiver,
  summaryReason,
  transportFields,
  type ExpectedVerdict,
  type Receiver,
} from './support/inbound-attack.ts';

let rx: Receiver;
before(async () => {
  rx = await startReceiver();
});
after(() => rx?.close());

/** Signs `from` as the protected From with attacker.test's key, encrypts to us, sends it; checks it stays encrypted. */
async function attack(from: string, queueId: string, verdict: ExpectedVerdict): Promise<void> {
  const armored = await signedAndEncrypted(entity(innerFields(from)), rx.sites.attacker.privateKey, [rx.sites.ours.publicKey]);
  const message = pgpMime(transportFields('<x@attacker.test>'), armored);
  const outcome = await rx.send(message, queueId);
  assert.deepEqual(outcome.eom?.verdict, { kind: 'continue' }, 'never refused: only reported');
  assert.deepEqual(outcome.delivered?.headers, [authResults(verdict), ...message.headers], 'the transport header, untouched, under our verdict');
  assert.ok(outcome.delivered?.body.equals(message.body), 'kept encrypted, byte for byte');
  assert.equal(rx.summary(queueId).reason, summaryReason(verdict));
  assert.equal(rx.summary(queueId).action, 'annotated');
}

const NOT_VICTIMS_KEY: ExpectedVerdict = { result: 'fail', reason: 'signer-not-published', from: 'victim.test', dnssec: false, encrypted: true };

describe('from display-name spoof', () => {
  it('control: attacker.test signing its own From passes, under its own name', async () => {
    const armored = await signedAndEncrypted(entity(innerFields('Mallory <x@attacker.test>')), rx.sites.attacker.privateKey, [rx.sites.ours.publicKey]);
    const outcome = await rx.send(pgpMime(transportFields('<x@attacker.test>'), armored), 'Q-CONTROL');
    assert.deepEqual(outcome.delivered?.headers[0], authResults({ result: 'pass', reason: 'signature-verified', from: 'attacker.test', fingerprint: rx.sites.attacker.fingerprint, dnssec: false, encrypted: true }));
    assert.deepEqual(
      outcome.delivered?.headers.find((h) => h.name === 'From'),
      { name: 'From', value: ' Mallory <x@attacker.test>' },
    );
  });

  const cases: Array<[string, string]> = [
    ['a quoted display name holding the attacker\'s address', '"<x@attacker.test>" <ceo@victim.test>'],
    ['a quoted display name holding a whole mailbox', '"x@attacker.test <x@attacker.test>" <ceo@victim.test>'],
    ['a comment after the address', 'ceo@victim.test (x@attacker.test)'],
    ['a comment holding angle brackets', '(<x@attacker.test>) ceo@victim.test'],
    ['a comment inside the angle address', '<(x@attacker.test) ceo@victim.test>'],
    ['an encoded-word display name decoding to <x@attacker.test>', '=?utf-8?Q?=3Cx=40attacker=2Etest=3E?= <ceo@victim.test>'],
    ['a base64 encoded-word display name', '=?utf-8?B?PHhAYXR0YWNrZXIudGVzdD4=?= <ceo@victim.test>'],
    ['an obsolete route naming attacker.test', '<@attacker.test:ceo@victim.test>'],
    ['CFWS around the dots of the domain (obsolete syntax)', 'ceo@victim (x@attacker.test) . test'],
    ['an upper-case domain', 'CEO <ceo@VICTIM.TEST>'],
  ];
  for (const [what, from] of cases) {
    it(`fails signer-not-published for victim.test: ${what}`, () => attack(from, `Q-${cases.findIndex((c) => c[0] === what)}`, NOT_VICTIMS_KEY));
  }

  it('a domain with a trailing dot is not a dot-atom: fail unparseable-from, no domain', () =>
    attack('ceo@victim.test.', 'Q-DOT', { result: 'fail', reason: 'unparseable-from', encrypted: true }));

  it('a display name with an unquoted @ is not a mailbox the grammar reads: fail unparseable-from, no domain', () =>
    attack('x@attacker.test <ceo@victim.test>', 'Q-AT', { result: 'fail', reason: 'unparseable-from', encrypted: true }));

  it('a look-alike IDN of victim.test (Cyrillic i) is another domain: it publishes nothing, so none, and the transport header stays', async () => {
    const from = 'CEO <ceo@v\u0456ctim.test>';
    const armored = await signedAndEncrypted(entity(innerFields(from)), rx.sites.attacker.privateKey, [rx.sites.ours.publicKey]);
    const message = pgpMime(transportFields('<x@attacker.test>'), armored);
    const outcome = await rx.send(message, 'Q-IDN');
    const verdict: ExpectedVerdict = { result: 'none', reason: 'no-published-key', from: 'xn--vctim-n2e.test', encrypted: true };
    // Opened (nobody's key vouches for anything): the transport fields stay; the decrypted ones only as Muse-Unverified-*.
    const inner = innerFields(from);
    assert.deepEqual(outcome.delivered?.headers, [
      authResults(verdict),
      ...transportFields('<x@attacker.test>'),
      { name: 'MIME-Version', value: ' 1.0' },
      { name: 'Content-Type', value: ' text/plain; charset=utf-8' },
      // Header strings are carried as bytes (one character per byte): the UTF-8 of the From value as sent.
      ...inner.filter((f) => !['MIME-Version', 'Content-Type'].includes(f.name)).map((f) => ({ name: `Muse-Unverified-${f.name}`, value: Buffer.from(f.value, 'utf8').toString('latin1') })),
    ]);
    assert.equal(rx.summary('Q-IDN').reason, summaryReason(verdict));
  });
});
