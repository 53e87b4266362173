/**
 * Attack: tampering with a large message that is opened as it streams. An encrypted message over 1 MiB is
 * dearmored, decrypted and inflated chunk by chunk into a spool file (docs/pgp-mime.md, "Memory"), so nothing may
 * reach the MTA before the integrity check (MDC) and the whole armor have been checked, and a compressed payload
 * must stop at the same decompression cap as a message read whole. Each variant goes through the daemon over the
 * milter protocol from a remote client, and the test asserts the reader that answered (the debug line), the exact
 * end-of-message reply, the exact delivered header and the delivered body: a changed bit anywhere in the
 * ciphertext, the MDC, reordered armor lines, a wrong armor checksum, truncated data, a forged verdict beside the
 * tampering, and a compressed bomb signed by a published site. Armor faults and truncation are left to the whole
 * read (within the message size limit and the decryption slots), which answers as it always did. The control (the same message untouched) passes and is delivered decrypted.
 * The next variant arrives as outbound mail (an internal client) to a local recipient, and is opened as inbound all the same.
 * Ports: ephemeral only.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createMessage, encrypt, enums } from 'openpgp';
import { armorBytes, dearmor } from '../../src/pgp/armor.ts';
import { LOCAL_CLIENT, replyCode, sendOne, type LogLine, type Outcome } from '../daemon/support/harness.ts';
import { authResults, entity, field, innerFields, pgpMime, signedAndEncrypted, startReceiver, transportFields, type Field, type Receiver } from './support/inbound-attack.ts';

const MIB = 1024 * 1024;
const FROM = 'CEO <ceo@victim.test>';

let rx: Receiver;
before(async () => {
  rx = await startReceiver({ logging: { level: 'debug' } });
});
after(() => rx?.close());

/** About 1.5 MiB of text that compression cannot shrink (digests), so the armored message is well over 1 MiB. */
function largeText(): string {
  const lines: string[] = [];
  for (let i = 0; lines.length < 20_000; i++) lines.push(`Line ${i}: ${createHash('sha512').update(String(i)).digest('base64')}`);
  return lines.join('\r\n') + '\r\n';
}

const TEXT = largeText();
const INNER = innerFields(FROM, { subject: 'Quarterly figures' });
const OUTER = transportFields(FROM);

/** The binary OpenPGP message victim.test's site would send us: signed by its key, encrypted to ours. */
async function victimBinary(): Promise<Buffer> {
  return dearmor('MESSAGE', await signedAndEncrypted(entity(INNER, TEXT), rx.sites.victim.privateKey, [rx.sites.ours.publicKey]));
}

/** A PGP/MIME message of `armored` under the transport header. */
function message(armored: Buffer): { headers: Field[]; body: Buffer } {
  const built = pgpMime(OUTER, armored);
  assert.ok(built.body.length > MIB, `${built.body.length} bytes: above the streaming threshold`);
  return built;
}

/** A copy of `binary` with one bit changed `fromEnd` octets before its end. */
function flipped(binary: Buffer, fromEnd: number): Buffer {
  const copy = Buffer.from(binary);
  copy[copy.length - fromEnd] = (copy[copy.length - fromEnd] as number) ^ 0x01;
  return copy;
}

/** Sends `sent`; returns the outcome and which reader opened it (the daemon's debug line for this message). */
async function send(sent: { headers: Field[]; body: Buffer }, queueId: string): Promise<{ outcome: Outcome; route: unknown }> {
  const before = rx.daemon.lines.length;
  const outcome = await rx.send(sent, queueId);
  const routes = rx.daemon.lines.slice(before).filter((line: LogLine) => line.message === 'inbound message read');
  assert.equal(routes.length, 1, queueId);
  return { outcome, route: routes[0]?.route };
}

/** Asserts the message was delivered as received, under our fail verdict for `reason`. */
function assertKeptEncrypted(outcome: Outcome, sent: { headers: Field[]; body: Buffer }, reason: string): void {
  assert.deepEqual(outcome.eom?.verdict, { kind: 'continue' });
  assert.deepEqual(outcome.delivered?.headers, [authResults({ result: 'fail', reason, encrypted: true }), ...sent.headers]);
  assert.ok(outcome.delivered?.body.equals(sent.body), 'delivered exactly as received, still encrypted');
}

describe('tampering with a streamed inbound message', () => {
  it('control: the untouched message streams, passes, and is delivered decrypted', async () => {
    const sent = message(armorBytes('MESSAGE', await victimBinary()));
    const { outcome, route } = await send(sent, 'Q-CONTROL');
    assert.equal(route, 'streamed');
    assert.deepEqual(outcome.eom?.verdict, { kind: 'continue' });
    const verdict = { result: 'pass', reason: 'signature-verified', from: 'victim.test', fingerprint: rx.sites.victim.fingerprint, dnssec: false, encrypted: true } as const;
    assert.deepEqual(outcome.delivered?.headers, [authResults(verdict), ...INNER]);
    assert.equal(outcome.delivered?.body.toString('utf8'), TEXT);
    assert.equal(rx.summary('Q-CONTROL').action, 'decrypted');
  });

  // Where the changed bit lands: the first chunk of ciphertext, its middle, the last literal octets before the MDC
  // packet, and the MDC value itself.
  const FLIPS: Array<[string, (length: number) => number]> = [
    ['in the first 64 KiB of ciphertext', (length) => length - 2000],
    ['in the middle of the ciphertext', (length) => Math.floor(length / 2)],
    ['just before the MDC packet', () => 40],
    ['in the MDC value', () => 5],
  ];
  for (const [where, fromEnd] of FLIPS) {
    it(`one bit changed ${where}: fail decryption-failed, nothing decrypted delivered`, async () => {
      const binary = await victimBinary();
      const sent = message(armorBytes('MESSAGE', flipped(binary, fromEnd(binary.length))));
      const queueId = `Q-FLIP-${FLIPS.findIndex((f) => f[0] === where)}`;
      const { outcome, route } = await send(sent, queueId);
      assert.equal(route, 'streamed');
      assertKeptEncrypted(outcome, sent, 'decryption-failed');
      assert.equal(rx.summary(queueId).reason, 'fail (decryption-failed)');
    });
  }

  it('two armor lines swapped (the armor checksum disagrees): the whole read answers fail malformed, kept encrypted', async () => {
    const armored = armorBytes('MESSAGE', await victimBinary()).toString('latin1').split('\r\n');
    // Lines well inside the base64 text: the armor checksum no longer matches, and the ciphertext is out of order.
    const [a, b] = [Math.floor(armored.length / 3), Math.floor((2 * armored.length) / 3)];
    [armored[a], armored[b]] = [armored[b] as string, armored[a] as string];
    const sent = message(Buffer.from(armored.join('\r\n'), 'latin1'));
    const { outcome, route } = await send(sent, 'Q-SWAP');
    // An armor fault leaves the message to the whole read (bounded by the message size and the decryption slots),
    // which gives the verdict it always gave; nothing was decrypted by then.
    assert.equal(route, 'streamed-then-whole');
    assertKeptEncrypted(outcome, sent, 'malformed');
  });

  it('one armor character changed (the checksum disagrees): the whole read answers fail malformed, kept encrypted', async () => {
    const armored = armorBytes('MESSAGE', await victimBinary()).toString('latin1');
    const at = Math.floor(armored.length / 2);
    const garbled = armored.slice(0, at) + (armored[at] === 'A' ? 'B' : 'A') + armored.slice(at + 1);
    const sent = message(Buffer.from(garbled, 'latin1'));
    const { outcome, route } = await send(sent, 'Q-GARBLE');
    assert.equal(route, 'streamed-then-whole');
    assertKeptEncrypted(outcome, sent, 'malformed');
  });

  it('the last 1000 octets missing (truncated data): the whole read answers fail malformed, kept encrypted', async () => {
    const binary = await victimBinary();
    const sent = message(armorBytes('MESSAGE', binary.subarray(0, binary.length - 1000)));
    const { outcome, route } = await send(sent, 'Q-TRUNCATED');
    assert.equal(route, 'streamed-then-whole');
    assertKeptEncrypted(outcome, sent, 'malformed');
  });

  it('a compressed bomb signed by a published site: refused at the decompression cap (actions.oversize), as read whole', async () => {
    // 1.5 MiB of digests, then 40 MiB of one letter: about 1.1 MiB of OpenPGP data that inflates 37 times.
    const inner = Buffer.concat([entity(INNER, TEXT), Buffer.alloc(40 * MIB, 0x41)]);
    const compressed = await encrypt({
      message: await createMessage({ binary: inner }),
      encryptionKeys: rx.sites.ours.publicKey,
      signingKeys: rx.sites.victim.privateKey,
      format: 'binary',
      config: { preferredCompressionAlgorithm: enums.compression.zlib },
    });
    assert.ok(inner.length / compressed.length > 20, `expands ${(inner.length / compressed.length).toFixed(1)} times`);
    const sent = message(armorBytes('MESSAGE', compressed));
    const { outcome, route } = await send(sent, 'Q-BOMB');
    assert.equal(route, 'streamed');
    assert.deepEqual(outcome.eom, { modifications: [], verdict: replyCode(451, '4.3.4', 'Message too large to protect'), progress: outcome.eom?.progress });
    assert.equal(outcome.delivered, undefined);
    assert.equal(rx.summary('Q-BOMB').action, 'tempfail');
    assert.equal(rx.summary('Q-BOMB').reason, `limit decompressed-bytes (${compressed.length * 20})`);
  });

  it('a forged verdict in the outer header of a tampered streamed message is removed, ours alone is delivered', async () => {
    const binary = await victimBinary();
    const forged = field('Authentication-Results', 'site.test; x-muse=pass header.from=victim.test');
    const built = message(armorBytes('MESSAGE', flipped(binary, Math.floor(binary.length / 2))));
    const sent = { headers: [forged, ...built.headers], body: built.body };
    const { outcome, route } = await send(sent, 'Q-FORGED');
    assert.equal(route, 'streamed');
    assert.deepEqual(outcome.delivered?.headers, [authResults({ result: 'fail', reason: 'decryption-failed', encrypted: true }), ...built.headers]);
    assert.ok(outcome.delivered?.body.equals(built.body));
  });

  it('the next variant: the same tampered message arriving as outbound mail to a local recipient is opened as inbound, and still fails', async () => {
    // From an internal address on a listener not named in direction.inboundDaemonNames, mail is outbound; encrypted
    // to our key, with every recipient local, it is opened as inbound (misdirected), by the same streaming reader.
    const binary = await victimBinary();
    const sent = message(armorBytes('MESSAGE', flipped(binary, Math.floor(binary.length / 2))));
    const before = rx.daemon.lines.length;
    const outcome = await sendOne(rx.daemon.address, { sender: '<x@victim.test>', recipients: ['<bob@site.test>'], headers: sent.headers.map((h) => ({ ...h })), body: sent.body, macros: { i: 'Q-MISDIRECTED' } }, LOCAL_CLIENT);
    const reads = rx.daemon.lines.slice(before).filter((line: LogLine) => line.message === 'inbound message read');
    assert.deepEqual(reads.map((line) => [line.route, line.lane]), [['streamed', 'background']]);
    assertKeptEncrypted(outcome, sent, 'decryption-failed');
    const summary = rx.summary('Q-MISDIRECTED');
    assert.equal(summary.direction, 'outbound');
    assert.match(String(summary.reason), /^classified outbound \(internal network 127\.0\.0\.1\) but encrypted to the site key: processed as inbound; fail \(decryption-failed\)$/);
  });

  it('nothing decrypted is left in the spool directory after any of them', async () => {
    assert.deepEqual(await readdir(join(rx.daemon.dataDir, 'spool')), []);
  });
});
