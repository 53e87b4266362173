/**
 * End to end under load with restarts (case 6): 1,000 messages from site A to site B over several SMTP
 * connections at once, while both sites' milters are restarted six times, with SIGTERM (drain, then exit)
 * and with SIGKILL (in the middle of whatever they were doing). The client retries what site A refuses with
 * 4xx, as an MTA would, and Postfix A retries what site B refuses. At the end every message was delivered
 * exactly once, decrypted, with the body it was sent with (SHA-256, by Message-ID), and nothing crossed the
 * wire in clear. Fails, never skips, when a program cannot start.
 *
 * Ports: picked free by the kernel for each run (test/e2e/topology.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { waitFor } from '../support/processes.ts';
import { sendMail } from '../support/smtp-client.ts';
import { assertDeliveredIntact, assertEncryptedOnWire, passResult, retryNow, waitForEmptyQueue } from './checks.ts';
import { GpgKeyring } from './gpg-check.ts';
import { composeMessage, fieldValue, parseMessage, sha256, type TestMessage } from './mail.ts';
import { DOMAINS, startTopology, type Site, type Topology } from './topology.ts';

/** Messages sent. */
const TOTAL = 1000;
/** SMTP connections sending at once. */
const CONNECTIONS = 8;
/** Bound on the whole run: sending, restarts, retries and delivery (about a minute here). */
const RUN_TIMEOUT_MS = 240_000;
/** A refused message is offered again after this pause, as an MTA would after its first short backoff. */
const RESEND_PAUSE_MS = 200;
/** Every this many-th delivered message is also opened with GnuPG on the wire (all are checked by hash). */
const GPG_SAMPLE_EVERY = 100;

/** A restart of one site's milter, done once site A has accepted `after` messages. */
interface Restart {
  readonly after: number;
  readonly site: 'siteA' | 'siteB';
  readonly signal: 'SIGTERM' | 'SIGKILL';
}

/** Both sites, both signals, spread over the run. */
const RESTARTS: readonly Restart[] = [
  { after: 120, site: 'siteA', signal: 'SIGTERM' },
  { after: 260, site: 'siteB', signal: 'SIGKILL' },
  { after: 400, site: 'siteA', signal: 'SIGKILL' },
  { after: 540, site: 'siteB', signal: 'SIGTERM' },
  { after: 680, site: 'siteA', signal: 'SIGKILL' },
  { after: 820, site: 'siteB', signal: 'SIGKILL' },
];

let topology: Topology;
let siteBKeyring: GpgKeyring;

before(async () => {
  topology = await startTopology();
  siteBKeyring = await GpgKeyring.create([await readFile(topology.siteB.privateKeyPath, 'utf8'), topology.siteA.publicKeyArmored]);
});

after(async () => {
  await siteBKeyring?.dispose();
  await topology?.stop();
});

/** Message `n` of the run: a random body of about 2 KiB, so equal hashes cannot be chance. */
function loadMessage(n: number): TestMessage {
  const lines = Array.from({ length: 24 }, () => randomBytes(60).toString('base64'));
  return composeMessage({
    headers: {
      from: 'Alice Example <alice@site-a.test>',
      to: 'Bob Example <bob@site-b.test>',
      subject: `Load message ${n} of ${TOTAL}`,
      date: 'Wed, 25 Nov 2026 12:00:00 +0000',
      messageId: `<load.${n}.${process.pid}@site-a.test>`,
    },
    bodyLines: [`Message ${n}, ünïcödé included.`, '.dot-led line', ...lines],
  });
}

/** Restarts a milter with `signal`, then has both Postfix instances retry what they deferred meanwhile. */
async function restart(site: Site, signal: Restart['signal']): Promise<void> {
  await site.milter.restart(signal);
  await retryNow(topology.siteA.postfix);
  await retryNow(topology.siteB.postfix);
}

describe('e2e load with milter restarts', () => {
  it(`case 6: ${TOTAL} messages A → B while both milters restart (SIGTERM, SIGKILL): each delivered once, decrypted, intact`, async (t) => {
    const messages = Array.from({ length: TOTAL }, (_, i) => loadMessage(i + 1));
    const byId = new Map(messages.map((message) => [message.headers.messageId, message]));
    const deadline = Date.now() + RUN_TIMEOUT_MS;
    let next = 0;
    let accepted = 0;
    let refusals = 0;

    // Senders: each connection takes the next message and offers it until site A accepts it.
    const sender = async (): Promise<void> => {
      for (let index = next++; index < TOTAL; index = next++) {
        const message = messages[index] as TestMessage;
        for (;;) {
          if (Date.now() > deadline) throw new Error(`message ${index + 1} not accepted by site A within the run's bound`);
          const result = await sendMail({
            port: topology.ports.a.submission,
            from: 'alice@site-a.test',
            to: ['bob@site-b.test'],
            data: message.bytes,
            mailParams: 'BODY=8BITMIME',
          }).catch((error: Error) => ({ accepted: false, final: { code: 0, text: error.message } }));
          if (result.accepted) break;
          // Only "try again later" is expected while a milter restarts; anything permanent is a failure.
          assert.ok(result.final.code === 0 || (result.final.code >= 400 && result.final.code < 500), `message ${index + 1}: ${result.final.code} ${result.final.text}`);
          refusals++;
          await new Promise((resolve) => setTimeout(resolve, RESEND_PAUSE_MS));
        }
        accepted++;
      }
    };

    // The restarts, each once site A has accepted enough messages.
    const restarts = async (): Promise<number> => {
      let done = 0;
      for (const step of RESTARTS) {
        await waitFor(() => (accepted >= step.after ? true : undefined), {
          timeoutMs: Math.max(1, deadline - Date.now()),
          what: `${step.after} messages accepted by site A`,
        });
        await restart(topology[step.site], step.signal);
        done++;
      }
      return done;
    };

    const [, restartsDone] = await Promise.all([Promise.all(Array.from({ length: CONNECTIONS }, sender)), restarts()]);
    assert.equal(accepted, TOTAL);
    assert.equal(restartsDone, RESTARTS.length);

    // Postfix retries deferred mail by itself within seconds; a flush now and then only shortens the wait.
    await waitFor(
      async () => {
        if (topology.mailbox.messages.length >= TOTAL) return true;
        await retryNow(topology.siteA.postfix);
        return undefined;
      },
      { timeoutMs: Math.max(1, deadline - Date.now()), what: `${TOTAL} messages in B's mailbox (have ${topology.mailbox.messages.length})`, intervalMs: 2_000 },
    );
    await waitForEmptyQueue(topology.siteA.postfix, 30_000);
    await waitForEmptyQueue(topology.siteB.postfix, 30_000);

    // Counts: with both queues empty nothing more can arrive, so these are final.
    const delivered = topology.mailbox.messages;
    assert.equal(delivered.length, TOTAL, 'messages in B mailbox');
    const seen = new Map<string, number>();
    const expectedResult = passResult(DOMAINS.siteB, DOMAINS.siteA, topology.siteA.fingerprint);
    for (const received of delivered) {
      const id = fieldValue(parseMessage(received.data), 'Message-ID');
      seen.set(id, (seen.get(id) ?? 0) + 1);
      const original = byId.get(id);
      assert.ok(original !== undefined, `unknown message ${id}`);
      assert.equal(sha256(parseMessage(received.data).body), sha256(original.body), `body of ${id}`);
      assertDeliveredIntact(received.data, original, expectedResult);
    }
    assert.equal(seen.size, TOTAL, 'distinct messages delivered');
    assert.deepEqual([...seen.values()].filter((count) => count !== 1), [], 'messages delivered more than once');

    // The wire: every transaction that crossed from A to B was ciphertext; exactly one accepted per message.
    const crossed = topology.tap.messages;
    const acceptedOnWire = crossed.filter((m) => m.reply?.code === 250);
    assert.equal(acceptedOnWire.length, TOTAL, 'transactions B accepted');
    for (const [index, wire] of crossed.entries()) {
      const outer = parseMessage(wire.data);
      assert.match(fieldValue(outer, 'Content-Type'), /^multipart\/encrypted; protocol="application\/pgp-encrypted";/);
      const original = byId.get(fieldValue(outer, 'Message-ID'));
      assert.ok(original !== undefined);
      assert.equal(wire.data.includes(original.body.subarray(0, 120)), false, 'clear text on the wire');
      if (index % GPG_SAMPLE_EVERY === 0) await assertEncryptedOnWire(wire.data, original, siteBKeyring, topology.siteA.fingerprint);
    }
    assert.deepEqual(topology.tap.problems, []);
    assert.equal(topology.world.messages.length, 0, 'messages sent elsewhere');

    const encrypted = topology.siteA.milter.messageLines().filter((line) => line['action'] === 'encrypted').length;
    const decrypted = topology.siteB.milter.messageLines().filter((line) => line['action'] === 'decrypted').length;
    assert.ok(encrypted >= TOTAL && decrypted >= TOTAL, `encrypted ${encrypted}, decrypted ${decrypted}`);
    t.diagnostic(
      `client refusals ${refusals}, transactions A→B ${crossed.length} (${crossed.length - acceptedOnWire.length} refused by B), ` +
        `encrypted by A ${encrypted}, decrypted by B ${decrypted}`,
    );
  });
});
