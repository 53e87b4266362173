/**
 * Attack: fields added to the outer header in transit of a genuine message. victim.test signs and encrypts a message
 * to us (our outbound engine, as victim.test's milter runs it); on the way someone adds Reply-To (so the answer goes
 * to them), Cc, Sender, a second To, or changes the transport From. The verdict passes, since the signed content is
 * genuine, so the header shown with it must be exactly the signed one: every unsigned user-facing field is removed,
 * the outer Subject placeholder is replaced by the signed Subject, and a field the sender did not sign at all is
 * not shown. Fields that are not user-facing (trace fields) are left alone.
 * Ports: ephemeral only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyHeaderEdits, protectOutbound } from '../../src/engine/index.ts';
import { authResults, entity, field, pgpMime, signedAndEncrypted, startReceiver, transportFields, type ExpectedVerdict, type Field, type Receiver } from './support/inbound-attack.ts';

let rx: Receiver;
before(async () => {
  rx = await startReceiver();
});
after(() => rx?.close());

const ORIGINAL: Field[] = [
  field('From', 'CEO <ceo@victim.test>'),
  field('To', 'Bob <bob@site.test>'),
  field('Subject', 'Board minutes'),
  field('Date', 'Mon, 02 Jun 2025 12:00:00 +0000'),
  field('Message-ID', '<minutes-1@victim.test>'),
  field('MIME-Version', '1.0'),
  field('Content-Type', 'text/plain; charset=utf-8'),
  field('Content-Transfer-Encoding', '8bit'),
];
const BODY = Buffer.from('Bob,\r\n\r\nthe minutes are attached.\r\n', 'utf8');

/** victim.test's outbound: signed with its key, encrypted to ours, Subject replaced by `...` outside. */
async function fromVictim(): Promise<{ headers: Field[]; body: Buffer }> {
  const result = await protectOutbound({ headers: ORIGINAL, body: BODY, siteKey: rx.sites.victim.privateKey, recipientKeys: [rx.sites.ours.publicKey], subjectPlaceholder: '...', headerEncoding: 'latin1' });
  if (result.kind !== 'protected') throw new Error(`not protected: ${result.kind}`);
  return { headers: applyHeaderEdits(ORIGINAL, result.headerEdits), body: await result.body.toBuffer() };
}

const passed = (): ExpectedVerdict => ({ result: 'pass', reason: 'signature-verified', from: 'victim.test', fingerprint: rx.sites.victim.fingerprint, dnssec: false, encrypted: true });

describe('unsigned outer fields', () => {
  it('the message as sent: the outer Subject placeholder is replaced by the signed Subject', async () => {
    const sent = await fromVictim();
    assert.deepEqual(sent.headers.find((h) => h.name === 'Subject'), field('Subject', '...'), 'placeholder outside');
    const outcome = await rx.send(sent, 'Q-AS-SENT');
    assert.deepEqual(outcome.delivered?.headers, [authResults(passed()), ...ORIGINAL]);
    assert.ok(outcome.delivered?.body.equals(BODY));
  });

  it('removes Reply-To, Cc, Sender and a second To added in transit, and restores a changed From', async () => {
    const sent = await fromVictim();
    const headers = [
      field('Received', 'from relay.example by mx.site.test'),
      field('Reply-To', 'payments@attacker.test'),
      ...sent.headers.map((h) => (h.name === 'From' ? field('From', 'CEO <ceo@attacker.test>') : h)),
      field('Cc', 'x@attacker.test'),
      field('Sender', 'x@attacker.test'),
      field('To', 'everyone@site.test'),
      field('Bcc', 'hidden@attacker.test'),
    ];
    const outcome = await rx.send({ headers, body: sent.body }, 'Q-ADDED');
    assert.deepEqual(outcome.delivered?.headers, [authResults(passed()), field('Received', 'from relay.example by mx.site.test'), ...ORIGINAL]);
  });

  it('removes an outer field the sender did not sign at all, and keeps a signed one the transport lacked', async () => {
    // Signed without Subject, with Reply-To; the transport header has a Subject and no Reply-To.
    const inner = [field('From', 'CEO <ceo@victim.test>'), field('To', 'Bob <bob@site.test>'), field('Reply-To', 'ceo@victim.test'), field('Date', 'Mon, 02 Jun 2025 12:00:00 +0000'), field('Message-ID', '<m2@victim.test>'), field('MIME-Version', '1.0'), field('Content-Type', 'text/plain; charset=utf-8')];
    const armored = await signedAndEncrypted(entity(inner), rx.sites.victim.privateKey, [rx.sites.ours.publicKey]);
    const message = pgpMime(transportFields('CEO <ceo@victim.test>').map((f) => (f.name === 'Subject' ? field('Subject', 'Invoice overdue') : f)), armored);
    const outcome = await rx.send(message, 'Q-UNSIGNED-SUBJECT');
    assert.deepEqual(outcome.delivered?.headers, [
      authResults(passed()),
      field('From', 'CEO <ceo@victim.test>'),
      field('To', 'Bob <bob@site.test>'),
      field('Date', 'Mon, 02 Jun 2025 12:00:00 +0000'),
      field('Message-ID', '<m2@victim.test>'),
      field('MIME-Version', '1.0'),
      field('Content-Type', 'text/plain; charset=utf-8'),
      field('Reply-To', 'ceo@victim.test'),
    ]);
  });
});
