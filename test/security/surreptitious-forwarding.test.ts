/**
 * Attack: surreptitious forwarding (replay to another recipient). victim.test signs and encrypts a message to a
 * third site; someone there decrypts it and encrypts the very same signed packets (one-pass signature, literal
 * data, signature) anew to our key. The signature still verifies against victim.test's published key and the
 * signed From is victim.test's, but the message was never meant for us. Our outbound names every recipient key in
 * the signature (Intended Recipient Fingerprints, hashed): ours is not among them, so fail not-intended-recipient,
 * kept encrypted. Variants: the forwarder adds an Intended Recipient subpacket naming us to the signature's
 * unhashed area (not covered by the signature: ignored); a signature without the subpacket (openpgp.js, GnuPG,
 * older senders) is bound only by a signed To or Cc in one of our domains, else policy recipient-not-bound.
 * Ports: ephemeral only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encrypt, enums, Message, PacketList, readMessage, type AnyPacket, type SignaturePacket } from 'openpgp';
import { armorBytes } from '../../src/pgp/armor.ts';
import { INTENDED_RECIPIENT_SUBPACKET, intendedRecipientBody } from '../../src/pgp/intended-recipient.ts';
import {
  authResults,
  entity,
  field,
  innerFields,
  pgpMime,
  signedAndEncrypted,
  signedAndEncryptedUnbound,
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

/**
 * What the third site can do with a message it received: decrypt it with its key and encrypt the same signed
 * packets to us, optionally adding an unhashed Intended Recipient subpacket naming us to each signature.
 */
async function reEncryptToUs(armored: Buffer, addUnhashedRecipient = false): Promise<Buffer> {
  const received = await readMessage({ armoredMessage: armored.toString('latin1') });
  const decrypted = await received.decrypt([rx.sites.third.privateKey]);
  // openpgp.js hands the packets after the literal data (the signatures of a one-pass signed message) over as a
  // stream on the packet list, to be read once the literal data has been.
  const rest = (decrypted.packets as PacketList<AnyPacket> & { stream?: { getReader(): { read(): Promise<{ done: boolean; value?: AnyPacket }> } } }).stream;
  const packets = new PacketList<AnyPacket>();
  packets.push(...decrypted.packets);
  for (const reader = rest?.getReader(); reader !== undefined; ) {
    const { done, value } = await reader.read();
    if (done) break;
    if (value !== undefined) packets.push(value);
  }
  assert.deepEqual([...packets].map((p) => (p.constructor as unknown as { tag: number }).tag), [enums.packet.onePassSignature, enums.packet.literalData, enums.packet.signature]);
  if (addUnhashedRecipient) {
    const signature = packets[2] as SignaturePacket;
    signature.unhashedSubpackets.push({ type: INTENDED_RECIPIENT_SUBPACKET, critical: false, body: intendedRecipientBody(rx.sites.ours.publicKey) });
  }
  const binary = await encrypt({ message: new Message(packets), encryptionKeys: rx.sites.ours.publicKey, format: 'binary' });
  return armorBytes('MESSAGE', binary);
}

const VICTIM_TO_THIRD = innerFields('CEO <ceo@victim.test>', { to: 'Carol <carol@third.test>', subject: 'Our offer for third.test' });

/** Sends and checks the message is kept encrypted under the transport header with `verdict`. */
async function expectKeptEncrypted(armored: Buffer, queueId: string, verdict: ExpectedVerdict): Promise<void> {
  const message = pgpMime(transportFields('CEO <ceo@victim.test>'), armored);
  const outcome = await rx.send(message, queueId);
  assert.deepEqual(outcome.delivered?.headers, [authResults(verdict), ...message.headers]);
  assert.ok(outcome.delivered?.body.equals(message.body), 'kept encrypted');
  assert.equal(rx.summary(queueId).reason, summaryReason(verdict));
}

/** Sends and checks the message is opened with `verdict` and exactly the signed header `signed`. */
async function expectOpened(armored: Buffer, queueId: string, verdict: ExpectedVerdict, signed: readonly Field[]): Promise<void> {
  const outcome = await rx.send(pgpMime(transportFields('CEO <ceo@victim.test>'), armored), queueId);
  assert.deepEqual(outcome.delivered?.headers, [authResults(verdict), ...signed]);
  assert.equal(outcome.delivered?.body.toString('utf8'), 'Please wire 50000 EUR to the account below today.\r\n');
  assert.equal(rx.summary(queueId).reason, summaryReason(verdict));
}

const victimVerdict = (result: ExpectedVerdict['result'], reason: string): ExpectedVerdict => ({
  result,
  reason,
  from: 'victim.test',
  fingerprint: rx.sites.victim.fingerprint,
  dnssec: false,
  encrypted: true,
});

describe('surreptitious forwarding', () => {
  it('control: the same message encrypted by victim.test to us passes', async () => {
    const armored = await signedAndEncrypted(entity(VICTIM_TO_THIRD), rx.sites.victim.privateKey, [rx.sites.ours.publicKey]);
    await expectOpened(armored, 'Q-DIRECT', victimVerdict('pass', 'signature-verified'), VICTIM_TO_THIRD);
  });

  it('re-encrypted to us by the third site: fail not-intended-recipient, kept encrypted', async () => {
    const original = await signedAndEncrypted(entity(VICTIM_TO_THIRD), rx.sites.victim.privateKey, [rx.sites.third.publicKey]);
    await expectKeptEncrypted(await reEncryptToUs(original), 'Q-FORWARDED', victimVerdict('fail', 'not-intended-recipient'));
  });

  it('even when the signed To names us: the signature\'s recipient list decides', async () => {
    const toUs = innerFields('CEO <ceo@victim.test>');
    const original = await signedAndEncrypted(entity(toUs), rx.sites.victim.privateKey, [rx.sites.third.publicKey]);
    await expectKeptEncrypted(await reEncryptToUs(original), 'Q-FORWARDED-TO-US', victimVerdict('fail', 'not-intended-recipient'));
  });

  it('an Intended Recipient subpacket naming us in the unhashed area is not read: fail not-intended-recipient', async () => {
    const original = await signedAndEncrypted(entity(VICTIM_TO_THIRD), rx.sites.victim.privateKey, [rx.sites.third.publicKey]);
    await expectKeptEncrypted(await reEncryptToUs(original, true), 'Q-UNHASHED', victimVerdict('fail', 'not-intended-recipient'));
  });

  it('a signature without the subpacket (openpgp.js), signed To at the third site: policy recipient-not-bound, signed header shown', async () => {
    const original = await signedAndEncryptedUnbound(entity(VICTIM_TO_THIRD), rx.sites.victim.privateKey, [rx.sites.third.publicKey]);
    await expectOpened(await reEncryptToUs(original), 'Q-UNBOUND-THIRD', victimVerdict('policy', 'recipient-not-bound'), VICTIM_TO_THIRD);
  });

  it('a signature without the subpacket, signed Cc at the third site and no To: policy recipient-not-bound', async () => {
    const fields = [field('From', 'CEO <ceo@victim.test>'), field('Cc', 'carol@third.test, bob@SITE.TEST.example'), field('Subject', 'x'), field('Date', 'Mon, 02 Jun 2025 12:00:00 +0000'), field('MIME-Version', '1.0'), field('Content-Type', 'text/plain; charset=utf-8')];
    const original = await signedAndEncryptedUnbound(entity(fields), rx.sites.victim.privateKey, [rx.sites.third.publicKey]);
    const outcome = await rx.send(pgpMime(transportFields('CEO <ceo@victim.test>'), await reEncryptToUs(original)), 'Q-UNBOUND-CC');
    assert.deepEqual(outcome.delivered?.headers[0], authResults(victimVerdict('policy', 'recipient-not-bound')));
  });

  it('a signature without the subpacket, signed To at site.test: pass', async () => {
    const toUs = innerFields('CEO <ceo@victim.test>');
    const original = await signedAndEncryptedUnbound(entity(toUs), rx.sites.victim.privateKey, [rx.sites.third.publicKey]);
    await expectOpened(await reEncryptToUs(original), 'Q-UNBOUND-US', victimVerdict('pass', 'signature-verified'), toUs);
  });

  it('a signature without the subpacket, our domain only in a To display name or comment: policy recipient-not-bound', async () => {
    const fields = innerFields('CEO <ceo@victim.test>', { to: '"bob@site.test" <carol@third.test> (bob@site.test)' });
    const original = await signedAndEncryptedUnbound(entity(fields), rx.sites.victim.privateKey, [rx.sites.third.publicKey]);
    const outcome = await rx.send(pgpMime(transportFields('CEO <ceo@victim.test>'), await reEncryptToUs(original)), 'Q-UNBOUND-NAME');
    assert.deepEqual(outcome.delivered?.headers[0], authResults(victimVerdict('policy', 'recipient-not-bound')));
  });
});
