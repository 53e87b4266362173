/**
 * Attack: an encrypted but unsigned payload whose own header says `From: CEO <ceo@victim.test>`, under a transport
 * From of x@attacker.test. Encryption to our key proves nothing about the author: a receiver that restored the
 * decrypted header (as it does for protected headers under a valid signature) would show the CEO. The verdict is
 * none/unsigned about the transport From's domain; the delivered From, Subject and Date are the outer ones, and the
 * decrypted user-facing fields appear only as `Muse-Unverified-<Name>`. Variants: fields smuggled inside the payload
 * (our Authentication-Results, our Muse-Unverified-* names, trace fields) never reach the delivered header, and a
 * forged Muse-Unverified-From on the outer header is removed.
 * Ports: ephemeral only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authResults, encryptedOnly, entity, field, pgpMime, startReceiver, summaryReason, transportFields, type ExpectedVerdict, type Field, type Receiver } from './support/inbound-attack.ts';

let rx: Receiver;
before(async () => {
  rx = await startReceiver();
});
after(() => rx?.close());

const INNER: Field[] = [
  field('From', 'CEO <ceo@victim.test>'),
  field('Reply-To', 'ceo.private@attacker.test'),
  field('To', 'Bob <bob@site.test>'),
  field('Subject', 'Wire the money today'),
  field('Date', 'Tue, 03 Jun 2025 09:00:00 +0000'),
  field('Message-ID', '<ceo-1@victim.test>'),
  field('MIME-Version', '1.0'),
  field('Content-Type', 'text/plain; charset=utf-8'),
];
const UNSIGNED: ExpectedVerdict = { result: 'none', reason: 'unsigned', from: 'attacker.test', encrypted: true };

/** The delivered header: our result, the transport fields, the inner body's Content-Type, the inner fields renamed. */
function expectedHeader(): Field[] {
  return [
    authResults(UNSIGNED),
    ...transportFields('<x@attacker.test>'),
    field('MIME-Version', '1.0'),
    field('Content-Type', 'text/plain; charset=utf-8'),
    field('Muse-Unverified-From', 'CEO <ceo@victim.test>'),
    field('Muse-Unverified-Reply-To', 'ceo.private@attacker.test'),
    field('Muse-Unverified-To', 'Bob <bob@site.test>'),
    field('Muse-Unverified-Subject', 'Wire the money today'),
    field('Muse-Unverified-Date', 'Tue, 03 Jun 2025 09:00:00 +0000'),
    field('Muse-Unverified-Message-ID', '<ceo-1@victim.test>'),
  ];
}

describe('unsigned inner header', () => {
  it('delivers the outer From, Subject and Date; the decrypted ones only as Muse-Unverified-*; none/unsigned', async () => {
    const message = pgpMime(transportFields('<x@attacker.test>'), await encryptedOnly(entity(INNER), [rx.sites.ours.publicKey]));
    const outcome = await rx.send(message, 'Q-UNSIGNED');
    assert.deepEqual(outcome.delivered?.headers, expectedHeader());
    assert.equal(outcome.delivered?.body.toString('utf8'), 'Please wire 50000 EUR to the account below today.\r\n');
    assert.equal(rx.summary('Q-UNSIGNED').reason, summaryReason(UNSIGNED));
    assert.equal(rx.summary('Q-UNSIGNED').action, 'decrypted');
  });

  it('fields smuggled inside the payload (our result, our Muse-Unverified-* names, Received) are not delivered', async () => {
    const smuggled = [
      field('Authentication-Results', 'site.test; x-muse=pass header.from=victim.test'),
      field('Muse-Unverified-From', 'nobody@site.test'),
      field('Muse-Protection', 'signed; encrypted'),
      field('Received', 'from mx.victim.test by mx.site.test'),
      ...INNER,
    ];
    const message = pgpMime(transportFields('<x@attacker.test>'), await encryptedOnly(entity(smuggled), [rx.sites.ours.publicKey]));
    const outcome = await rx.send(message, 'Q-SMUGGLED');
    assert.deepEqual(outcome.delivered?.headers, expectedHeader());
  });

  it('a forged Muse-Unverified-From and Authentication-Results on the outer header are removed', async () => {
    const outer = [field('Authentication-Results', 'site.test; x-muse=pass header.from=victim.test'), field('Muse-Unverified-From', 'CEO <ceo@victim.test>'), ...transportFields('<x@attacker.test>')];
    const message = pgpMime(outer, await encryptedOnly(entity(INNER), [rx.sites.ours.publicKey]));
    const outcome = await rx.send(message, 'Q-OUTER-FORGED');
    assert.deepEqual(outcome.delivered?.headers, expectedHeader());
  });

  it('a transport From with two mailboxes: none/unsigned names no domain, the header is handled the same way', async () => {
    const outer = [field('From', 'x@attacker.test, CEO <ceo@victim.test>'), ...transportFields('<x@attacker.test>').slice(1)];
    const message = pgpMime(outer, await encryptedOnly(entity(INNER), [rx.sites.ours.publicKey]));
    const outcome = await rx.send(message, 'Q-OUTER-TWO');
    const verdict: ExpectedVerdict = { result: 'none', reason: 'unsigned', encrypted: true };
    assert.deepEqual(outcome.delivered?.headers, [authResults(verdict), ...outer, ...expectedHeader().slice(6)]);
  });
});
