/**
 * End to end, re-injection: a message from site A to a recipient at B (encrypted) and one at a domain without a
 * key (clear text) goes through real Postfix configured from examples/. The clear-text copy the milter
 * splits off passes Postfix A's re-injection smtpd (examples/postfix/master.cf, REINJECT), whose milter checks its
 * marker and removes it: the copy reaches the world without X-Muse-Reinjected, exactly once, also when the
 * client sends the same message a second time. Fails, never skips, when a program cannot start.
 *
 * Ports: picked free by the kernel for each run (test/e2e/topology.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sendMail } from '../support/smtp-client.ts';
import { waitForEmptyQueue } from './checks.ts';
import { messageFromSiteA, parseMessage, type TestMessage } from './mail.ts';
import { startTopology, type Topology } from './topology.ts';

/** Bound on one message crossing both sites (about half a second when nothing is wrong). */
const DELIVERY_TIMEOUT_MS = 30_000;

let topology: Topology;

before(async () => {
  topology = await startTopology();
});

after(async () => {
  await topology?.stop();
});

/** The queue id in Postfix's `250 2.0.0 Ok: queued as ID`. */
function queueIdOf(reply: string): string {
  const match = /queued as ([0-9A-Za-z]+)/.exec(reply);
  assert.ok(match?.[1] !== undefined, `no queue id in ${JSON.stringify(reply)}`);
  return match[1];
}

const RECIPIENTS = ['bob@site-b.test', 'carol@keyless.test'];
const TO = 'Bob <bob@site-b.test>, Carol <carol@keyless.test>';

/** Submits `message` to Postfix A for both recipients; returns Postfix A's queue id. */
async function submit(message: TestMessage): Promise<string> {
  const sent = await sendMail({ port: topology.ports.a.submission, from: 'alice@site-a.test', to: RECIPIENTS, data: message.bytes });
  assert.equal(sent.final.code, 250, sent.final.text);
  return queueIdOf(sent.final.text);
}

/** Site A's summary lines, by action. */
function linesOfA(action: string): Array<Record<string, unknown>> {
  return topology.siteA.milter.messageLines().filter((line) => line['action'] === action) as Array<Record<string, unknown>>;
}

/** Waits until both sites hold nothing more: every count is then final. */
async function settled(): Promise<void> {
  await waitForEmptyQueue(topology.siteA.postfix, DELIVERY_TIMEOUT_MS);
  await waitForEmptyQueue(topology.siteB.postfix, DELIVERY_TIMEOUT_MS);
}

/** Checks the world got exactly one new message since `before`, the copy for Carol, with no marker; returns it. */
function oneCopy(before: number, message: TestMessage): Buffer {
  const copies = topology.world.messages.slice(before);
  assert.equal(copies.length, 1, 'exactly one copy');
  const copy = copies[0];
  assert.ok(copy !== undefined);
  assert.deepEqual(copy.rcptTo, ['carol@keyless.test']);
  assert.equal(copy.mailFrom, 'alice@site-a.test');
  assert.doesNotMatch(copy.data.toString('latin1'), /x-muse-reinjected/i, 'no marker on the delivered copy');
  const parsed = parseMessage(copy.data);
  assert.equal(parsed.fields.filter((f) => f.name.toLowerCase() === 'subject')[0]?.value, message.headers.subject);
  return copy.data;
}

describe('e2e re-injection of split copies through Postfix', () => {
  it('delivers the copy once, without its marker; a second submission of the same message queues no second copy', async () => {
    const message = messageFromSiteA('reinject', TO, { ascii: true });
    const worldBefore = topology.world.messages.length;
    const mailboxBefore = topology.mailbox.messages.length;

    const first = await submit(message);
    await topology.mailbox.waitForCount(mailboxBefore + 1, DELIVERY_TIMEOUT_MS);
    await topology.world.waitForCount(worldBefore + 1, DELIVERY_TIMEOUT_MS);
    await settled();
    oneCopy(worldBefore, message);
    assert.deepEqual(topology.mailbox.messages.slice(mailboxBefore).map((m) => m.rcptTo), [['bob@site-b.test']]);

    // Milter A saw the copy exactly once more, on the re-injection listener, and let it through.
    const split = linesOfA('split').filter((line) => line['queueId'] === first);
    assert.equal(split.length, 1);
    assert.match(String(split[0]?.['reason']), /^encrypted:site-b\.test clear:keyless\.test; copy 250 2\.0\.0 Ok: queued as [0-9A-F]+$/);
    const copyQueueId = queueIdOf(String(split[0]?.['reason']));
    assert.deepEqual(
      topology.siteA.milter.messageLines().filter((line) => line['queueId'] === copyQueueId).map((line) => [line['direction'], line['action'], line['reason']]),
      [['outbound', 'reinjected', `copy of ${first}`]],
    );
    assert.match(topology.siteA.postfix.readMaillog(), new RegExp(`postfix/muse-reinject/smtpd\\[\\d+\\]: ${copyQueueId}: client=localhost\\[127\\.0\\.0\\.1\\]`));

    // The client sends the very same message again (as after a lost reply): Bob gets it again, the MTA's doing;
    // Carol's copy is not queued again.
    const second = await submit(message);
    await topology.mailbox.waitForCount(mailboxBefore + 2, DELIVERY_TIMEOUT_MS);
    await settled();
    oneCopy(worldBefore, message);
    const retried = linesOfA('split').filter((line) => line['queueId'] === second);
    assert.equal(retried.length, 1);
    assert.equal(retried[0]?.['reason'], `encrypted:site-b.test clear:keyless.test; copy already queued by ${first}: 250 2.0.0 Ok: queued as ${copyQueueId}`);
    assert.equal(linesOfA('reinjected').filter((line) => line['reason'] === `copy of ${second}`).length, 0);
  });

  it('delivers the copy of a message without a Message-ID once, without its marker', async () => {
    const worldBefore = topology.world.messages.length;
    const base = messageFromSiteA('reinject-noid', TO, { ascii: true });
    const text = base.bytes.toString('latin1').replace(/^Message-ID: [^\r]*\r\n/m, '');
    const message = { ...base, bytes: Buffer.from(text, 'latin1') };
    assert.doesNotMatch(text, /^Message-ID:/im);
    const first = await submit(message);
    await topology.world.waitForCount(worldBefore + 1, DELIVERY_TIMEOUT_MS);
    await settled();
    oneCopy(worldBefore, message);
    const split = linesOfA('split').find((line) => line['queueId'] === first);
    const copyQueueId = queueIdOf(String(split?.['reason']));
    assert.deepEqual(
      topology.siteA.milter.messageLines().filter((line) => line['queueId'] === copyQueueId).map((line) => line['action']),
      ['reinjected'],
    );
  });
});

