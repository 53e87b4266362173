/**
 * Attack: a signature of the site key that signs no document, used as the signature over a message. OpenPGP
 * signatures of type 0x02 (standalone) and 0x40 (timestamp) hash nothing but their own subpackets, and a verifier
 * that checks a signature under its own type finds them valid over any data. Whoever holds one such signature made
 * by victim.test's key (from any program that ever used the key that way) could sign anything as victim.test. Only
 * binary (0x00) and text (0x01) signatures sign a message (RFC 9580 §5.2.1): any other type fails as
 * `bad-signature`, in clear (multipart/signed) and inside the encryption (§6.2) alike. (openpgp.js 6 leaves such
 * signatures out of a message verification, which the engine reports as a signature of the key that does not verify:
 * this test keeps it that way.)
 * Ports: ephemeral only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMessage, encrypt, enums, Message, PacketList, SignaturePacket, type AnyPacket, type PrivateKey } from 'openpgp';
import { armorBytes } from '../../src/pgp/armor.ts';
import { pgpConfig } from '../../src/pgp/config.ts';
import { signedBody, signedContentType } from '../../src/mime/pgp-mime-build.ts';
import { authResults, entity, field, innerFields, pgpMime, startReceiver, transportFields, type ExpectedVerdict, type Receiver } from './support/inbound-attack.ts';

let rx: Receiver;
before(async () => {
  rx = await startReceiver();
});
after(() => rx?.close());

const SPOOF = entity(innerFields('CEO <ceo@victim.test>'));

/** A signature of `type` by `key` over nothing: what some program once made with victim.test's key. */
async function documentlessSignature(key: PrivateKey, type: enums.signature): Promise<SignaturePacket> {
  const signing = await key.getSigningKey();
  const packet = new SignaturePacket();
  packet.signatureType = type;
  packet.hashAlgorithm = enums.hash.sha256;
  packet.publicKeyAlgorithm = signing.keyPacket.algorithm;
  packet.issuerKeyID = signing.getKeyID();
  packet.issuerFingerprint = signing.keyPacket.getFingerprintBytes();
  // The typings leave out the configuration argument openpgp.js 6 reads.
  const sign = packet.sign.bind(packet) as (key: unknown, data: unknown, date: Date, detached: boolean, config: unknown) => Promise<void>;
  await sign(signing.keyPacket, {}, new Date(Date.now() - 60_000), false, pgpConfig());
  return packet;
}

function armoredSignature(packet: SignaturePacket): Buffer {
  const list = new PacketList<SignaturePacket>();
  list.push(packet);
  return armorBytes('SIGNATURE', list.write());
}

const BAD = (encrypted: boolean): ExpectedVerdict => ({ result: 'fail', reason: 'bad-signature', from: 'victim.test', fingerprint: rx.sites.victim.fingerprint, dnssec: false, encrypted });

describe('signature type confusion', () => {
  for (const [name, type] of [
    ['standalone (0x02)', enums.signature.standalone],
    ['timestamp (0x40)', enums.signature.timestamp],
  ] as const) {
    it(`a ${name} signature of victim.test's key as the detached signature of a multipart/signed: fail bad-signature`, async () => {
      const signature = armoredSignature(await documentlessSignature(rx.sites.victim.privateKey, type));
      const headers = [...transportFields('<x@attacker.test>'), field('MIME-Version', '1.0'), { name: 'Content-Type', value: signedContentType('sig-b', 'pgp-sha256') }];
      const body = Buffer.concat(signedBody('sig-b', SPOOF, signature));
      const outcome = await rx.send({ headers, body }, `Q-STC-CLEAR-${type}`);
      assert.deepEqual(outcome.delivered?.headers, [authResults(BAD(false)), ...headers]);
      assert.ok(outcome.delivered?.body.equals(body));
    });

    it(`a ${name} signature of victim.test's key before the literal data inside the encryption: fail bad-signature, kept encrypted`, async () => {
      const packets = new PacketList<AnyPacket>();
      packets.push(await documentlessSignature(rx.sites.victim.privateKey, type));
      packets.push(...(await createMessage({ binary: SPOOF, format: 'binary' })).packets);
      const binary = await encrypt({ message: new Message(packets), encryptionKeys: rx.sites.ours.publicKey, format: 'binary' });
      const message = pgpMime(transportFields('<x@attacker.test>'), armorBytes('MESSAGE', binary));
      const outcome = await rx.send(message, `Q-STC-ENC-${type}`);
      assert.deepEqual(outcome.delivered?.headers, [authResults(BAD(true)), ...message.headers]);
      assert.ok(outcome.delivered?.body.equals(message.body));
    });
  }
});
