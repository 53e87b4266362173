/**
 * Attack: an encrypted message carrying thousands of public-key session key packets (PKESKs) that name our key
 * (or nobody: the anonymous key ID 0), none of which opens. openpgp.js tries every one with every matching key,
 * so 2,000 of them (192 KB) cost 1.4 s of private-key work. The bounds: with more than
 * limits.maxSessionKeyPackets (default 1000) packets the message is a limit-exceeded result and nothing is tried;
 * otherwise packets naming our key come first, then anonymous ones, each tried alone, the first that opens wins,
 * and at most limits.maxSessionKeyAttempts (default 8) are tried. Private-key attempts are counted through the
 * key's own lookup of decryption keys, which openpgp.js makes once per packet tried.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { createMessage, encrypt, enums, readMessage, readPrivateKey, type AnyPacket, type PrivateKey } from 'openpgp';
import { FIXED_NOW, testKeys } from '../engine/fixtures.ts';
import { relabelledSessionKeyPacket, splitFirstPacket, withSessionKeyPackets } from '../support/hostile-messages.ts';
import { openAsReceiver, pgpMime, type HostileMessage } from './support/hostile-mail.ts';

const INNER = Buffer.from('Content-Type: text/plain\r\n\r\nhello\r\n');
const SESSION_KEY = { data: new Uint8Array(32).fill(7), algorithm: 'aes256' as const };

/** The receiving site's key, counting the private-key attempts made with it. */
let counted: PrivateKey;
let attempts = 0;
/** A PKESK that opens with our key, the same for the anonymous key ID, and the encrypted data. */
let good: Uint8Array;
let goodAnonymous: Uint8Array;
let data: Uint8Array;
/** A PKESK made for someone else: relabelled to name our key, or nobody, it fails. */
let stranger: Uint8Array;
let ourKeyId: Uint8Array;

/** A message encrypted with the shared session key: its one PKESK's body, and the encrypted data packet's bytes. */
async function encryptedFor(options: { to: 'receiver' | 'stranger'; wildcard?: boolean }): Promise<{ pkesk: Uint8Array; data: Uint8Array }> {
  const keys = await testKeys();
  const key = options.to === 'receiver' ? keys.receiverSite.public : keys.stranger.public;
  const binary = await encrypt({ message: await createMessage({ binary: INNER }), encryptionKeys: key, sessionKey: SESSION_KEY, wildcard: options.wildcard ?? false, format: 'binary', date: FIXED_NOW });
  const packets = (await readMessage({ binaryMessage: binary })).packets;
  assert.deepEqual(
    [...packets].map((p) => (p.constructor as unknown as { tag: number }).tag),
    [enums.packet.publicKeyEncryptedSessionKey, enums.packet.symEncryptedIntegrityProtectedData],
  );
  // The data packet is what follows the PKESK packet, as encrypt() wrote it.
  const { body, rest } = splitFirstPacket(binary, packets[0] as AnyPacket);
  return { pkesk: body, data: rest };
}

const relabelled = relabelledSessionKeyPacket;

/** A message of the given PKESK bodies and the encrypted data. */
function message(pkesks: Uint8Array[]): HostileMessage {
  return pgpMime(withSessionKeyPackets(pkesks, data));
}

const times = (n: number, body: Uint8Array): Uint8Array[] => Array.from({ length: n }, () => body);
const ANONYMOUS = new Uint8Array(8);

before(async () => {
  const keys = await testKeys();
  // A copy of our key whose lookups of decryption keys are counted: one per packet tried with it.
  counted = await readPrivateKey({ armoredKey: keys.receiverSite.secretArmored });
  const lookup = counted.getDecryptionKeys.bind(counted);
  counted.getDecryptionKeys = (...args: Parameters<PrivateKey['getDecryptionKeys']>) => {
    attempts++;
    return lookup(...args);
  };
  const ours = await encryptedFor({ to: 'receiver' });
  good = ours.pkesk;
  data = ours.data;
  goodAnonymous = (await encryptedFor({ to: 'receiver', wildcard: true })).pkesk;
  stranger = (await encryptedFor({ to: 'stranger' })).pkesk;
  ourKeyId = good.subarray(1, 9);
});

async function open(pkesks: Uint8Array[], limits = {}): Promise<{ result: Awaited<ReturnType<typeof openAsReceiver>>; attempts: number; ms: number }> {
  const hostile = message(pkesks);
  attempts = 0;
  const started = performance.now();
  const result = await openAsReceiver(hostile, { siteKeys: [counted], limits });
  return { result, attempts, ms: performance.now() - started };
}

test('2,000 packets naming our key: refused without a single private-key attempt', async () => {
  const { result, attempts: tried, ms } = await open(times(2000, relabelled(stranger, ourKeyId)));
  assert.deepEqual(result, { kind: 'limit-exceeded', limit: 'session-key-packets', max: 1000 });
  assert.equal(tried, 0);
  // It took 1.4 s; parsing 2,000 packets is milliseconds. Generous, so never flaky.
  assert.ok(ms < 1000, `took ${ms} ms`);
});

test('2,000 anonymous packets: refused alike', async () => {
  const { result, attempts: tried } = await open(times(2000, relabelled(stranger, ANONYMOUS)));
  assert.deepEqual(result, { kind: 'limit-exceeded', limit: 'session-key-packets', max: 1000 });
  assert.equal(tried, 0);
});

test('1,000 failing packets for us, the good one last: 8 attempts, then the limit', async () => {
  const { result, attempts: tried } = await open([...times(999, relabelled(stranger, ourKeyId)), good]);
  assert.deepEqual(result, { kind: 'limit-exceeded', limit: 'session-key-attempts', max: 8 });
  assert.equal(tried, 8);
});

test('the first packet that opens wins: no packet after it is tried', async () => {
  const first = await open([good, ...times(999, relabelled(stranger, ourKeyId))]);
  assert.ok(first.result.kind === 'opened', JSON.stringify(first.result));
  assert.deepEqual(await first.result.body.toBuffer(), Buffer.from('hello\r\n'));
  assert.equal(first.attempts, 1);
  const sixth = await open([...times(5, relabelled(stranger, ourKeyId)), good]);
  assert.equal(sixth.result.kind, 'opened');
  assert.equal(sixth.attempts, 6);
});

test('packets naming our key are tried before anonymous ones; packets for others never', async () => {
  const { result, attempts: tried } = await open([...times(900, stranger), ...times(7, relabelled(stranger, ANONYMOUS)), good]);
  assert.ok(result.kind === 'opened', JSON.stringify(result));
  assert.equal(tried, 1);
  const anonymous = await open([...times(900, stranger), relabelled(stranger, ANONYMOUS), goodAnonymous]);
  assert.equal(anonymous.result.kind, 'opened');
  assert.equal(anonymous.attempts, 2);
});

test('every packet for us tried and none opens: decryption failed, delivered still encrypted', async () => {
  const { result, attempts: tried } = await open(times(3, relabelled(stranger, ourKeyId)));
  assert.ok(result.kind === 'annotated', JSON.stringify(result));
  assert.deepEqual([result.verdict.result, result.verdict.reason], ['fail', 'decryption-failed']);
  assert.equal(tried, 3);
});

test('the bounds follow the configured limits', async () => {
  const packets = [...times(20, relabelled(stranger, ourKeyId)), good];
  assert.deepEqual((await open(packets, { maxSessionKeyPackets: 20 })).result, { kind: 'limit-exceeded', limit: 'session-key-packets', max: 20 });
  const { result, attempts: tried } = await open(packets, { maxSessionKeyAttempts: 21 });
  assert.equal(result.kind, 'opened');
  assert.equal(tried, 21);
});
