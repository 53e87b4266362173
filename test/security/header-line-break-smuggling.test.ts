/**
 * Attack: fields smuggled into the delivered header through a bare CR in a field value found inside the encryption.
 * The entity inside is read line by line on LF, so `Subject: Invoice<CR>From: CEO <ceo@victim.test>` is one Subject
 * field to us; but many readers (Python's email package among them) also end a line at a bare CR and see a second
 * From field, or an `Authentication-Results` under our authserv-id that we never wrote and never removed (fields
 * from inside are not on the header we clean). The values we copy from inside are the only header bytes the MTA
 * never saw, so no bare CR may reach it in them: it becomes a blank. Under `pass` (attacker.test signing its own
 * message) and under `none` (an unsigned payload, whose fields travel as `Muse-Unverified-*`) alike. A NUL, which
 * ends a string on the milter wire (the library refuses it, and the message would be deferred for ever), becomes a
 * blank as well.
 * Ports: ephemeral only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authResults, encryptedOnly, entity, field, pgpMime, signedAndEncrypted, startReceiver, transportFields, type Field, type Receiver } from './support/inbound-attack.ts';

let rx: Receiver;
before(async () => {
  rx = await startReceiver();
});
after(() => rx?.close());

const SMUGGLED_FROM = 'Invoice\rFrom: CEO <ceo@victim.test>';
const SMUGGLED_RESULT = 'Lunch?\rAuthentication-Results: site.test; x-muse=pass header.from=victim.test';

/** An inner header from Mallory at attacker.test, with the smuggling values in Subject and Comments. */
const INNER: Field[] = [
  field('From', 'Mallory <x@attacker.test>'),
  field('To', 'Bob <bob@site.test>'),
  field('Subject', SMUGGLED_FROM),
  field('Comments', SMUGGLED_RESULT),
  field('Date', 'Mon, 02 Jun 2025 12:00:00 +0000'),
  field('Message-ID', '<m1@attacker.test>'),
  field('MIME-Version', '1.0'),
  field('Content-Type', 'text/plain; charset=utf-8'),
];

describe('header line break smuggling', () => {
  it('under pass: the signed values are delivered with the bare CR as a blank', async () => {
    const armored = await signedAndEncrypted(entity(INNER), rx.sites.attacker.privateKey, [rx.sites.ours.publicKey]);
    const outcome = await rx.send(pgpMime(transportFields('Mallory <x@attacker.test>'), armored), 'Q-CR-PASS');
    assert.deepEqual(outcome.delivered?.headers, [
      authResults({ result: 'pass', reason: 'signature-verified', from: 'attacker.test', fingerprint: rx.sites.attacker.fingerprint, dnssec: false, encrypted: true }),
      field('From', 'Mallory <x@attacker.test>'),
      field('To', 'Bob <bob@site.test>'),
      field('Subject', 'Invoice From: CEO <ceo@victim.test>'),
      field('Date', 'Mon, 02 Jun 2025 12:00:00 +0000'),
      field('Message-ID', '<m1@attacker.test>'),
      field('MIME-Version', '1.0'),
      field('Content-Type', 'text/plain; charset=utf-8'),
      field('Comments', 'Lunch? Authentication-Results: site.test; x-muse=pass header.from=victim.test'),
    ]);
  });

  it('a NUL in a signed value (which ends a string on the milter wire) becomes a blank: delivered, not deferred', async () => {
    const inner = INNER.map((f) => (f.name === 'Subject' ? field('Subject', 'Invoice\0From: CEO <ceo@victim.test>') : f.name === 'Comments' ? field('Comments', 'none') : f));
    const armored = await signedAndEncrypted(entity(inner), rx.sites.attacker.privateKey, [rx.sites.ours.publicKey]);
    const outcome = await rx.send(pgpMime(transportFields('Mallory <x@attacker.test>'), armored), 'Q-NUL-PASS');
    assert.deepEqual(outcome.eom?.verdict, { kind: 'continue' });
    assert.deepEqual(outcome.delivered?.headers.find((h) => h.name === 'Subject'), field('Subject', 'Invoice From: CEO <ceo@victim.test>'));
  });

  it('under none: the unverified copies carry no bare CR either', async () => {
    const armored = await encryptedOnly(entity(INNER), [rx.sites.ours.publicKey]);
    const outcome = await rx.send(pgpMime(transportFields('<x@attacker.test>'), armored), 'Q-CR-NONE');
    const delivered = outcome.delivered?.headers ?? [];
    assert.deepEqual(
      delivered.filter((h) => h.name.startsWith('Muse-Unverified-')),
      [
        field('Muse-Unverified-From', 'Mallory <x@attacker.test>'),
        field('Muse-Unverified-To', 'Bob <bob@site.test>'),
        field('Muse-Unverified-Subject', 'Invoice From: CEO <ceo@victim.test>'),
        field('Muse-Unverified-Comments', 'Lunch? Authentication-Results: site.test; x-muse=pass header.from=victim.test'),
        field('Muse-Unverified-Date', 'Mon, 02 Jun 2025 12:00:00 +0000'),
        field('Muse-Unverified-Message-ID', '<m1@attacker.test>'),
      ],
    );
    assert.ok(delivered.every((h) => !/\r(?!\n)/.test(h.value)), 'no bare CR in any delivered value');
  });
});
