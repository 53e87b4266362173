/**
 * Attack, end to end: the display-name spoof of from-display-name-spoof.test.ts through real Postfix. Whoever holds
 * site-a.test's site key signs a message whose protected From is `"<alice@site-a.test>" <ceo@site-b.test>`,
 * encrypts it to site B and hands it, from its own MTA, to Postfix B's inbound listener under the transport From
 * `Mallory <mallory@site-a.test>`. B's muse-milter (examples/muse.yaml, knot + unbound with DNSSEC) reports fail
 * signer-not-published for site-b.test; Postfix delivers it still encrypted with the transport From. The variant
 * naming keyless.test (which publishes no key) is opened as unverified: x-muse=none, the transport From, the
 * decrypted From only as Muse-Unverified-From.
 *
 * Ports: picked free by the kernel (test/e2e/topology.ts). Fails, never skips, when a program cannot start.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { readKey, readPrivateKey, type PrivateKey, type PublicKey } from 'openpgp';
import { sendMail } from '../support/smtp-client.ts';
import { fieldValues, parseMessage } from '../e2e/mail.ts';
import { startTopology, type Topology } from '../e2e/topology.ts';
import { entity, field, innerFields, pgpMime, signedAndEncrypted, type Field } from './support/inbound-attack.ts';

const DELIVERY_TIMEOUT_MS = 30_000;

let topology: Topology;
let siteAKey: PrivateKey;
let siteBPublic: PublicKey;

before(async () => {
  topology = await startTopology();
  siteAKey = await readPrivateKey({ armoredKey: await readFile(topology.siteA.privateKeyPath, 'utf8') });
  siteBPublic = await readKey({ armoredKey: topology.siteB.publicKeyArmored });
});
after(() => topology?.stop());

const TRANSPORT: Field[] = [field('From', 'Mallory <mallory@site-a.test>'), field('To', 'Bob <bob@site-b.test>'), field('Subject', '...'), field('Date', 'Mon, 02 Jun 2025 12:00:00 +0000'), field('Message-ID', '<spoof-1@site-a.test>')];

/** Sends the attack for `signedFrom` straight to B's inbound listener; returns what B delivered and what was sent. */
async function sendSpoof(signedFrom: string): Promise<{ sent: { headers: Field[]; body: Buffer }; delivered: ReturnType<typeof parseMessage> }> {
  const armored = await signedAndEncrypted(entity(innerFields(signedFrom, { to: 'Bob <bob@site-b.test>' })), siteAKey, [siteBPublic]);
  const sent = pgpMime(TRANSPORT, armored);
  const data = Buffer.concat([Buffer.from(sent.headers.map((h) => `${h.name}:${h.value}\r\n`).join(''), 'utf8'), Buffer.from('\r\n'), sent.body]);
  const before = topology.mailbox.messages.length;
  const result = await sendMail({ port: topology.ports.b.inbound, from: 'mallory@site-a.test', to: ['bob@site-b.test'], data });
  assert.equal(result.final.code, 250, result.final.text);
  const delivered = await topology.mailbox.waitForCount(before + 1, DELIVERY_TIMEOUT_MS);
  const received = delivered.at(-1);
  assert.ok(received !== undefined);
  assert.deepEqual(received.rcptTo, ['bob@site-b.test']);
  return { sent, delivered: parseMessage(received.data) };
}

/** The delivered fields other than the ones Postfix adds on its way (Received), values unfolded as parseMessage does. */
function withoutTrace(message: ReturnType<typeof parseMessage>): Array<{ name: string; value: string }> {
  return message.fields.filter((f) => f.name.toLowerCase() !== 'received');
}

const unfolded = (fields: readonly Field[]): Array<{ name: string; value: string }> => fields.map((f) => ({ name: f.name, value: f.value.replace(/\r\n/g, '').replace(/\s+/g, ' ').trim() }));

describe('from spoof through postfix', () => {
  it('a display-name spoof of site-b.test signed by site-a.test: x-muse=fail, still encrypted, the transport From', async () => {
    const { sent, delivered } = await sendSpoof('"<alice@site-a.test>" <ceo@site-b.test>');
    assert.deepEqual(withoutTrace(delivered), [
      { name: 'Authentication-Results', value: 'site-b.test; x-muse=fail reason="signer-not-published" header.from=site-b.test policy.dnssec=yes policy.encrypted=yes' },
      ...unfolded(sent.headers),
    ]);
    assert.deepEqual(fieldValues(delivered, 'From'), ['Mallory <mallory@site-a.test>']);
    assert.ok(delivered.body.equals(sent.body), 'delivered still encrypted, byte for byte');
  });

  it('naming keyless.test instead: x-muse=none, the transport From, the signed one only as Muse-Unverified-From', async () => {
    const from = '"<alice@site-a.test>" <ceo@keyless.test>';
    const { delivered } = await sendSpoof(from);
    const inner = innerFields(from, { to: 'Bob <bob@site-b.test>' });
    assert.deepEqual(withoutTrace(delivered), [
      { name: 'Authentication-Results', value: 'site-b.test; x-muse=none reason="no-published-key" header.from=keyless.test policy.encrypted=yes' },
      ...unfolded(TRANSPORT),
      { name: 'MIME-Version', value: '1.0' },
      { name: 'Content-Type', value: 'text/plain; charset=utf-8' },
      ...unfolded(inner.filter((f) => !['MIME-Version', 'Content-Type'].includes(f.name)).map((f) => ({ name: `Muse-Unverified-${f.name}`, value: f.value }))),
    ]);
    assert.deepEqual(fieldValues(delivered, 'From'), ['Mallory <mallory@site-a.test>']);
    assert.equal(delivered.body.toString('utf8'), 'Please wire 50000 EUR to the account below today.\r\n');
  });
});
