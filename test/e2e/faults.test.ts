/**
 * End to end, faults: the two-site topology of test/e2e/topology.ts when DNS fails, when DNS answers SERVFAIL
 * for a zone signed with a wrong trust anchor, when a pinned site's records disappear, and when the
 * receiving site's milter is killed in the middle of a message. Each case checks that nothing went out in
 * clear text, that the MTA was told to try again (4xx), and, where the fault ends, that the message then
 * arrived exactly once and intact. Fails, never skips, when a program cannot start.
 *
 * The cases run in order on one topology: 4a leaves site B pinned at site A, which 4c relies on, and 4c
 * removes B's records, so it comes last.
 *
 * Ports: picked free by the kernel for each run (test/e2e/topology.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DnsTransport, parseServerAddress, RR_TYPE } from '../../src/dns/index.ts';
import { waitFor } from '../support/processes.ts';
import { sendMail } from '../support/smtp-client.ts';
import { assertDeliveredOnceToB, queuedMessages, retryNow, trafficCounts, type TrafficCounts } from './checks.ts';
import { GpgKeyring } from './gpg-check.ts';
import { messageFromSiteA, type TestMessage } from './mail.ts';
import { DOMAINS, startTopology, type Topology } from './topology.ts';

/** Bound on a message crossing both sites, retries included. */
const DELIVERY_TIMEOUT_MS = 30_000;

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

/** Sends `message` to A's submission port for `to`. */
function submit(message: TestMessage, to: readonly string[] = ['bob@site-b.test']) {
  return sendMail({ port: topology.ports.a.submission, from: 'alice@site-a.test', to, data: message.bytes, mailParams: 'BODY=8BITMIME' });
}

/** Counts before a case. */
function counts(): TrafficCounts {
  return trafficCounts(topology);
}

/** Site A's last summary line. */
function lastLineOfA(): Readonly<Record<string, unknown>> | undefined {
  return topology.siteA.milter.messageLines().at(-1);
}

/** The end of a fault: `message` reached B once, intact; returns B's replies to each transaction of it. */
async function assertDeliveredOnce(start: TrafficCounts, message: TestMessage): Promise<Array<number | undefined>> {
  const crossed = await assertDeliveredOnceToB(topology, start, message, siteBKeyring, DELIVERY_TIMEOUT_MS);
  return crossed.map((attempt) => attempt.reply?.code);
}

/**
 * Polls unbound until none of the `_muse` record types at `name` answers (its cache-max-ttl is 5 s). A failed
 * query (the zone being re-signed) counts as not yet.
 */
async function waitUntilRecordsGone(name: string): Promise<void> {
  const transport = new DnsTransport({ servers: [parseServerAddress(topology.dns.resolver)], udpTimeoutMs: 500, tries: 1 });
  const answers = async (type: number): Promise<boolean> => (await transport.query(name, type)).outcome === 'answer';
  await waitFor(
    async () => {
      for (const type of [RR_TYPE.TXT, RR_TYPE.KEY, RR_TYPE.OPENPGPKEY]) {
        if (await answers(type).catch(() => true)) return undefined;
      }
      return true;
    },
    { timeoutMs: 20_000, what: `unbound no longer answering for ${name}`, intervalMs: 250 },
  );
}

/** A resolver that never answers: DNS that is slow, not down. */
interface SilentResolver {
  /** Queries received so far. */
  readonly queries: number;
  close(): Promise<void>;
}

/** Binds a UDP socket on the resolver's port that reads queries and never answers. */
async function silentResolver(port: number): Promise<SilentResolver> {
  const socket = createSocket('udp4');
  let queries = 0;
  socket.on('message', () => {
    queries++;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => resolve());
  });
  return {
    get queries() {
      return queries;
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

describe('e2e faults between two MUSE sites', () => {
  it('case 4a: DNS down (unbound stopped) tempfails; Postfix delivers the held message once DNS is back', async () => {
    // A restarted milter has no cached answer that would hide the outage.
    await topology.siteA.milter.restart('SIGTERM');
    const start = counts();
    await topology.dns.stopResolver();
    const refused = messageFromSiteA('case4a-smtp', 'Bob Example <bob@site-b.test>');
    const held = messageFromSiteA('case4a-local', 'Bob Example <bob@site-b.test>');
    try {
      // Over SMTP the client is told to try again later: nothing was queued.
      const sent = await submit(refused);
      assert.equal(sent.final.code, 451);
      assert.equal(sent.final.text, '4.4.3 Key lookup for site-b.test failed');
      assert.match(String(lastLineOfA()?.['reason']), new RegExp(`^site-b\\.test: DNS lookup failed: .*127\\.0\\.0\\.1:${topology.ports.unbound}/udp: network \\(UDP ECONNREFUSED\\)`));
      assert.equal(lastLineOfA()?.['action'], 'tempfail');
      assert.deepEqual(queuedMessages(topology.siteA.postfix), []);

      // Submitted locally, the message waits in Postfix's maildrop: the milter's tempfail makes pickup keep it.
      const local = await topology.siteA.postfix.sendmailCommand(['-i', '-f', 'alice@site-a.test', '--', 'bob@site-b.test'], held.bytes);
      assert.equal(local.code, 0, local.stderr);
      await topology.siteA.postfix.waitForMaillog(
        /postfix\/cleanup\[\d+\]: [0-9A-F]+: milter-reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: 4\.4\.3 Key lookup for site-b\.test failed/,
        DELIVERY_TIMEOUT_MS,
      );
      assert.equal(queuedMessages(topology.siteA.postfix).filter((path) => path.includes('/maildrop/')).length, 1);
      assert.deepEqual(counts(), start, 'nothing left site A');
    } finally {
      await topology.dns.startResolver();
    }
    await retryNow(topology.siteA.postfix);
    const replies = await assertDeliveredOnce(start, held);
    assert.deepEqual(replies, [250]);
    assert.equal(topology.mailbox.messages.some((m) => m.data.includes(refused.headers.messageId)), false);
  });

  it('case 4b: a zone whose answers fail validation (SERVFAIL) tempfails, and nothing goes out in clear', async () => {
    const start = counts();
    const message = messageFromSiteA('case4b', 'Carol <carol@bogus.test>');
    const sent = await submit(message, ['carol@bogus.test']);
    assert.equal(sent.final.code, 451);
    assert.equal(sent.final.text, '4.4.3 Key lookup for bogus.test failed');
    assert.equal(lastLineOfA()?.['action'], 'tempfail');
    assert.equal(lastLineOfA()?.['reason'], `bogus.test: DNS lookup failed: no usable DNS answer: 127.0.0.1:${topology.ports.unbound}/udp: servfail (SERVFAIL)`);
    assert.deepEqual(queuedMessages(topology.siteA.postfix), []);
    assert.deepEqual(counts(), start);
  });

  it('case 5: the receiving milter killed (SIGKILL) at end of message: A retries, the message arrives once, intact', async () => {
    // B's milter starts afresh, so checking A's signature at the end of the message takes a DNS lookup. The
    // tap holds back the end of the content while DNS is made silent (A has done its own lookup by then);
    // released, B's milter sits at end of message waiting for the answer, and is killed there.
    await topology.siteB.milter.restart('SIGTERM');
    const start = counts();
    const message = messageFromSiteA('case5', 'Bob Example <bob@site-b.test>');
    const held = topology.tap.holdNextContentEnd(DELIVERY_TIMEOUT_MS);
    const sent = await submit(message);
    assert.equal(sent.final.code, 250, sent.final.text);
    const inFlight = await held;
    await topology.dns.stopResolver();
    const silent = await silentResolver(topology.ports.unbound);
    try {
      const linesBefore = topology.siteB.milter.messageLines().length;
      topology.tap.releaseHeld();
      // B's milter has the whole message and asks DNS, which does not answer for seconds (dns.timeout).
      await waitFor(() => (silent.queries > 0 ? true : undefined), { timeoutMs: DELIVERY_TIMEOUT_MS, what: "B's milter asking DNS" });
      const killed = await topology.siteB.milter.kill();
      assert.equal(killed?.signal, 'SIGKILL');
      assert.equal(topology.siteB.milter.messageLines().length, linesBefore, 'B had not finished the message');
      // B's Postfix applies milter_default_action = tempfail (examples/postfix/main.cf): A must keep the message.
      await waitFor(() => inFlight.reply, { timeoutMs: DELIVERY_TIMEOUT_MS, what: "B's reply to the content" });
      assert.deepEqual(inFlight.reply, { code: 451, text: '4.7.1 Service unavailable - try again later' });
      await topology.siteA.postfix.waitForMaillog(/status=deferred \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 451 4\.7\.1 Service unavailable/, DELIVERY_TIMEOUT_MS);
      assert.equal(topology.mailbox.messages.length, start.mailbox);
    } finally {
      topology.tap.releaseHeld();
      await silent.close();
      await topology.dns.startResolver();
    }
    await topology.siteB.milter.start();
    await retryNow(topology.siteA.postfix);
    const replies = await assertDeliveredOnce(start, message);
    assert.deepEqual(replies, [451, 250]);
  });

  it('case 4c: a pinned site whose records vanish gets nothing: the next message is tempfailed (downgrade)', async () => {
    // Case 4a's delivery pinned B's key at A (pins.json in A's data directory).
    const pins = await readFile(join(topology.siteA.dataDir, 'pins.json'), 'utf8');
    assert.ok(pins.includes(DOMAINS.siteB) && pins.includes(topology.siteB.fingerprint), pins);

    const zone = DOMAINS.siteB;
    for (const command of [['zone-begin', zone], ['zone-unset', zone, '_muse'], ['zone-commit', zone]]) {
      const result = await topology.dns.knotc(command);
      assert.equal(result.code, 0, `knotc ${command.join(' ')}: ${result.stdout}${result.stderr}`);
    }
    await waitUntilRecordsGone(`_muse.${zone}`);
    // A's own cache may keep the key longer than unbound does (dns.minTtl): a restart empties it; the pin,
    // on disk, stays.
    await topology.siteA.milter.restart('SIGTERM');

    const start = counts();
    const message = messageFromSiteA('case4c', 'Bob Example <bob@site-b.test>');
    const sent = await submit(message);
    assert.equal(sent.final.code, 451);
    assert.equal(sent.final.text, '4.7.1 Encryption to site-b.test is required but not possible now');
    assert.equal(lastLineOfA()?.['action'], 'tempfail');
    assert.match(String(lastLineOfA()?.['reason']), /^site-b\.test: downgrade: no usable key published, yet 1 key\(s\) pinned until \d{4}-/);
    assert.deepEqual(queuedMessages(topology.siteA.postfix), []);
    assert.deepEqual(counts(), start);
  });
});
