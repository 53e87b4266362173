/**
 * Attack: one sender takes the CPU. Each hostile message is refused at its limit after linear work, but a sender
 * sending them back to back (or ordinary mail of any size, as fast as it can) keeps the daemon busy, and ordinary
 * mail from everyone else waits behind it. The bound (docs/security.md §7): inbound messages are opened on two
 * threads, and a sender (SMTP client address) that has taken more than limits.backgroundAboveCpuShare of a core
 * lately has its next messages opened on the background one, at the lowest CPU priority (nice 19); so has any
 * message over 1 MiB. The share here is set tiny so that the first costly message is over it whatever the
 * machine: the test asserts the lane each message was opened in (the daemon's debug line), the exact reply and
 * delivered header, and the nice value of the threads of this process. How much latency that saves is the
 * benchmark's (BENCHMARKS.md, "Hostile load").
 * Ports: ephemeral only.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { armorBytes } from '../../src/pgp/armor.ts';
import { replyCode, sendOne, type ClientInfo, type LogLine, type Outcome } from '../daemon/support/harness.ts';
import { encryptedTo, headerFloodEntity } from '../support/hostile-messages.ts';
import { authResults, entity, innerFields, pgpMime, signedAndEncrypted, startReceiver, transportFields, type Field, type Receiver } from './support/inbound-attack.ts';

const HOSTILE: ClientInfo = { hostname: 'mx.attacker.test', family: 'inet', port: 40100, address: '192.0.2.66' };
const ORDINARY: ClientInfo = { hostname: 'mx.victim.test', family: 'inet', port: 40200, address: '198.51.100.7' };
const LARGE: ClientInfo = { hostname: 'mx2.victim.test', family: 'inet', port: 40300, address: '198.51.100.8' };
const FROM = 'CEO <ceo@victim.test>';

let rx: Receiver;
before(async () => {
  rx = await startReceiver({ logging: { level: 'debug' }, limits: { backgroundAboveCpuShare: 0.0001 } });
});
after(() => rx?.close());

/** Sends `sent` from `client`; returns the outcome and the lane of its one `inbound message read` line. */
async function send(sent: { headers: Field[]; body: Buffer }, queueId: string, client: ClientInfo): Promise<{ outcome: Outcome; lane: unknown }> {
  const before = rx.daemon.lines.length;
  const outcome = await sendOne(rx.daemon.address, { sender: '<x@victim.test>', recipients: ['<bob@site.test>'], headers: sent.headers.map((h) => ({ ...h })), body: sent.body, macros: { i: queueId } }, client);
  const reads = rx.daemon.lines.slice(before).filter((line: LogLine) => line.message === 'inbound message read');
  assert.equal(reads.length, 1, queueId);
  return { outcome, lane: reads[0]?.lane };
}

/** The nice values of this process's threads (Linux: field 19 of each task's stat). */
function threadNiceValues(): number[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

/** The hostile message: encrypted to us, 8 000 inner header fields (limit 1000), refused after linear work. */
async function headerFlood(): Promise<{ headers: Field[]; body: Buffer }> {
  return pgpMime(transportFields('Mallory <m@attacker.test>'), armorBytes('MESSAGE', await encryptedTo(rx.sites.ours.publicKey, headerFloodEntity(8000))));
}

const TOO_LARGE = replyCode(451, '4.3.4', 'Message too large to protect');

describe('one sender taking the CPU', () => {
  it('opens a new sender in the foreground, and its messages once over its share in the background, at nice 19', async () => {
    assert.ok(!threadNiceValues().includes(19), 'no thread runs at nice 19 before anything was opened there');
    const flood = await headerFlood();
    const lanes: unknown[] = [];
    for (const queueId of ['Q-FLOOD1', 'Q-FLOOD2', 'Q-FLOOD3']) {
      const { outcome, lane } = await send(flood, queueId, HOSTILE);
      assert.deepEqual(outcome.eom, { modifications: [], verdict: TOO_LARGE, progress: outcome.eom?.progress }, queueId);
      assert.equal(outcome.delivered, undefined, queueId);
      lanes.push(lane);
    }
    assert.deepEqual(lanes, ['foreground', 'background', 'background']);
    assert.equal(threadNiceValues().filter((nice) => nice === 19).length, 1, 'one thread, the background lane, at nice 19');
    assert.equal(rx.summary('Q-FLOOD3').action, 'tempfail');
  });

  it('keeps another sender in the foreground: its mail is opened there and passes as before', async () => {
    const inner = innerFields(FROM, { subject: 'Quarterly figures' });
    const sent = pgpMime(transportFields(FROM), await signedAndEncrypted(entity(inner), rx.sites.victim.privateKey, [rx.sites.ours.publicKey]));
    const { outcome, lane } = await send(sent, 'Q-ORDINARY', ORDINARY);
    assert.equal(lane, 'foreground');
    assert.deepEqual(outcome.eom?.verdict, { kind: 'continue' });
    const verdict = { result: 'pass', reason: 'signature-verified', from: 'victim.test', fingerprint: rx.sites.victim.fingerprint, dnssec: false, encrypted: true } as const;
    assert.deepEqual(outcome.delivered?.headers, [authResults(verdict), ...inner]);
  });

  it('opens a message over 1 MiB in the background even from a sender never seen, and delivers it whole', async () => {
    const lines: string[] = [];
    for (let i = 0; lines.length < 20_000; i++) lines.push(`Line ${i}: ${createHash('sha512').update(String(i)).digest('base64')}`);
    const text = lines.join('\r\n') + '\r\n';
    const inner = innerFields(FROM, { subject: 'Annual report' });
    const sent = pgpMime(transportFields(FROM), await signedAndEncrypted(entity(inner, text), rx.sites.victim.privateKey, [rx.sites.ours.publicKey]));
    assert.ok(sent.body.length > 1024 * 1024, `${sent.body.length} bytes`);
    const { outcome, lane } = await send(sent, 'Q-LARGE', LARGE);
    assert.equal(lane, 'background');
    const verdict = { result: 'pass', reason: 'signature-verified', from: 'victim.test', fingerprint: rx.sites.victim.fingerprint, dnssec: false, encrypted: true } as const;
    assert.deepEqual(outcome.delivered?.headers, [authResults(verdict), ...inner]);
    assert.equal(outcome.delivered?.body.toString('utf8'), text);
  });

  it('keeps the account of a sender whatever its address looks like: another address of its IPv6 /64, its IPv4 as an IPv4-mapped address', async () => {
    const flood = await headerFlood();
    const v6 = (address: string, port: number): ClientInfo => ({ hostname: 'mx6.attacker.test', family: 'inet6', port, address });
    const lanes: unknown[] = [];
    for (const [queueId, client] of [
      ['Q-V6-FIRST', v6('2001:db8:1:2::66', 40400)],
      ['Q-V6-SAME-64', v6('2001:db8:1:2:ffff::99', 40401)],
      ['Q-V6-OTHER-64', v6('2001:db8:1:3::66', 40402)],
      ['Q-V4-MAPPED', v6('::ffff:192.0.2.66', 40403)],
    ] as const) {
      const { outcome, lane } = await send(flood, queueId, client);
      assert.deepEqual(outcome.eom?.verdict, TOO_LARGE, queueId);
      assert.equal(outcome.delivered, undefined, queueId);
      lanes.push(lane);
    }
    // A new /64 starts afresh (it is another network); the same /64, and the IPv4 sender above in its mapped form,
    // do not.
    assert.deepEqual(lanes, ['foreground', 'background', 'foreground', 'background']);
  });

  it('opens the next variant, the same flood from a new connection of the same client, in the background too', async () => {
    // Accounts are kept by client address, so reconnecting does not start a sender afresh.
    const { outcome, lane } = await send(await headerFlood(), 'Q-FLOOD4', { ...HOSTILE, port: 40101 });
    assert.equal(lane, 'background');
    assert.deepEqual(outcome.eom?.verdict, TOO_LARGE);
  });
});
