/**
 * Attack: more than one author in the signed header. attacker.test signs a header with two From fields (its own and
 * the victim's, in either order) or one From naming several mailboxes: a verifier that reads the first field (or
 * mailbox) finds attacker.test and its valid signature, while a mail client may show the other. None of these can
 * pass; the verdict names no domain, the message stays encrypted, the transport From is delivered. Also a group
 * (RFC 5322 allows none in From), an address literal domain, and From fields spelled differently.
 * Ports: ephemeral only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  authResults,
  entity,
  field,
  innerFields,
  pgpMime,
  signedAndEncrypted,
  startReceiver,
  summaryReason,
  transportFields,
  type ExpectedVerdict,
  type Field,
  type Receiver,
} from './support/inbound-attack.ts';

let rx: Receiver;
before(async () => {
  rx = await startReceiver();
});
after(() => rx?.close());

/** The inner header with `froms` as its From fields (in place of the usual one). */
function withFroms(froms: readonly Field[]): Field[] {
  return [...froms, ...innerFields('unused@attacker.test').slice(1)];
}

/** Sends the attack signed by attacker.test and checks it is kept encrypted under the transport header and `verdict`. */
async function attack(froms: readonly Field[], queueId: string, verdict: ExpectedVerdict): Promise<void> {
  const armored = await signedAndEncrypted(entity(withFroms(froms)), rx.sites.attacker.privateKey, [rx.sites.ours.publicKey]);
  const message = pgpMime(transportFields('<x@attacker.test>'), armored);
  const outcome = await rx.send(message, queueId);
  assert.deepEqual(outcome.eom?.verdict, { kind: 'continue' });
  assert.deepEqual(outcome.delivered?.headers, [authResults(verdict), ...message.headers]);
  assert.ok(outcome.delivered?.body.equals(message.body), 'kept encrypted');
  assert.equal(rx.summary(queueId).reason, summaryReason(verdict));
}

const fail = (reason: string): ExpectedVerdict => ({ result: 'fail', reason, encrypted: true });

describe('multiple From', () => {
  it('two From fields, the attacker\'s first: fail multiple-from-fields', () =>
    attack([field('From', 'x@attacker.test'), field('From', 'CEO <ceo@victim.test>')], 'Q-AV', fail('multiple-from-fields')));

  it('two From fields, the victim\'s first: fail multiple-from-fields', () =>
    attack([field('From', 'CEO <ceo@victim.test>'), field('From', 'x@attacker.test')], 'Q-VA', fail('multiple-from-fields')));

  it('two From fields naming the same attacker mailbox: still two fields, fail', () =>
    attack([field('From', 'x@attacker.test'), field('From', 'x@attacker.test')], 'Q-AA', fail('multiple-from-fields')));

  it('From fields spelled in other cases (FROM, from) count as From fields', () =>
    attack([field('FROM', 'x@attacker.test'), field('from', 'CEO <ceo@victim.test>')], 'Q-CASE', fail('multiple-from-fields')));

  it('one From with two mailboxes (attacker, victim): fail multiple-from-mailboxes', () =>
    attack([field('From', 'x@attacker.test, CEO <ceo@victim.test>')], 'Q-MB', fail('multiple-from-mailboxes')));

  it('one From with two mailboxes (victim, attacker): fail multiple-from-mailboxes', () =>
    attack([field('From', 'CEO <ceo@victim.test>, x@attacker.test')], 'Q-BM', fail('multiple-from-mailboxes')));

  // RFC 5322 §3.6.2: From is a mailbox-list, so a group is not From syntax at all, whatever it holds.
  it('a group of two mailboxes: fail unparseable-from', () =>
    attack([field('From', 'Board: x@attacker.test, CEO <ceo@victim.test>;')], 'Q-GROUP', fail('unparseable-from')));

  it('an empty group names no mailbox: fail unparseable-from', () => attack([field('From', 'Undisclosed:;')], 'Q-EMPTY', fail('unparseable-from')));

  it('a group holding only the victim: fail unparseable-from', () => attack([field('From', 'Board: CEO <ceo@victim.test>;')], 'Q-GROUP-V', fail('unparseable-from')));

  it('a group holding only the signer itself: fail unparseable-from, never pass', () =>
    attack([field('From', 'Board: x@attacker.test;')], 'Q-GROUP-A', fail('unparseable-from')));

  it('an address literal domain: fail bad-from-domain', () => attack([field('From', 'CEO <ceo@[192.0.2.1]>')], 'Q-LITERAL', fail('bad-from-domain')));

  it('an IPv6 address literal: fail bad-from-domain', () => attack([field('From', 'ceo@[IPv6:2001:db8::1]')], 'Q-LITERAL6', fail('bad-from-domain')));

  it('no From in the signed header, transport From at victim.test, signed by victim.test: fail from-not-signed', async () => {
    const armored = await signedAndEncrypted(entity(withFroms([])), rx.sites.victim.privateKey, [rx.sites.ours.publicKey]);
    const message = pgpMime(transportFields('CEO <ceo@victim.test>'), armored);
    const outcome = await rx.send(message, 'Q-NOFROM-V');
    const verdict: ExpectedVerdict = { result: 'fail', reason: 'from-not-signed', from: 'victim.test', fingerprint: rx.sites.victim.fingerprint, dnssec: false, encrypted: true };
    assert.deepEqual(outcome.delivered?.headers, [authResults(verdict), ...message.headers]);
    assert.ok(outcome.delivered?.body.equals(message.body), 'kept encrypted');
  });

  it('no From in the signed header, transport From at victim.test, signed by attacker.test: fail from-not-signed, kept encrypted', async () => {
    const armored = await signedAndEncrypted(entity(withFroms([])), rx.sites.attacker.privateKey, [rx.sites.ours.publicKey]);
    const message = pgpMime(transportFields('CEO <ceo@victim.test>'), armored);
    const outcome = await rx.send(message, 'Q-NOFROM-A');
    assert.deepEqual(outcome.delivered?.headers, [authResults({ result: 'fail', reason: 'from-not-signed', from: 'victim.test', encrypted: true }), ...message.headers]);
    assert.ok(outcome.delivered?.body.equals(message.body), 'kept encrypted');
  });

  it('an empty From: fail unparseable-from', () => attack([field('From', '')], 'Q-BLANK', fail('unparseable-from')));
});
