/**
 * The assertions every e2e case makes on bytes: what crossed the wire between the sites is ciphertext that
 * GnuPG decrypts with the receiving site's key and whose signature is the sending site's; what the receiving
 * site delivered is the original message; Postfix queues are empty once a case is over (so no copy is still
 * on its way and the counts are final).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { PostfixInstance } from '../support/postfix.ts';
import { runCommand, waitFor } from '../support/processes.ts';
import type { GpgKeyring, GpgVerdict } from './gpg-check.ts';
import { armoredBlock, fieldValue, fieldValues, parseMessage, protectedHeaders, type ParsedMessage, type TestMessage } from './mail.ts';
import type { TappedMessage } from './smtp-tap.ts';
import { DOMAINS, type Topology } from './topology.ts';

/** `policy.subjectPlaceholder` of examples/muse.yaml: the Subject outside the encryption. */
export const SUBJECT_PLACEHOLDER = '...';

/** Lines of `message` long enough that finding one in other bytes cannot be chance. */
function distinctiveLines(message: TestMessage): string[] {
  return [message.headers.subject, ...message.body.toString('utf8').split('\r\n')].filter((line) => line.length >= 12);
}

/**
 * Checks that `wire` (a message as site A sent it to site B) is `original` signed and encrypted: PGP/MIME
 * with the Subject hidden and no line of the original in it, that GnuPG decrypts it with the keyring (site B's
 * private key) and finds a good signature by `signer`, and that the decrypted entity holds the original body
 * byte for byte and the original Subject. Returns gpg's verdict.
 */
export async function assertEncryptedOnWire(wire: Buffer, original: TestMessage, keyring: GpgKeyring, signer: string): Promise<GpgVerdict> {
  assertCrlfOnly(wire);
  const outer = parseMessage(wire);
  assert.match(fieldValue(outer, 'Content-Type'), /^multipart\/encrypted; protocol="application\/pgp-encrypted"; boundary="[^"]+"$/);
  assert.equal(fieldValue(outer, 'Subject'), SUBJECT_PLACEHOLDER);
  assert.equal(fieldValue(outer, 'Muse-Protection'), `signed+encrypted; signer=${signer}`);
  const text = wire.toString('utf8');
  for (const line of distinctiveLines(original)) assert.equal(text.includes(line), false, `clear text on the wire: ${JSON.stringify(line)}`);

  const verdict = await keyring.decrypt(armoredBlock(outer.body, 'MESSAGE'));
  assert.equal(verdict.code, 0, verdict.stderr);
  assert.ok(verdict.status.includes('DECRYPTION_OKAY'), verdict.status.join('\n'));
  assert.ok(verdict.status.some((line) => line.startsWith('GOODSIG ')), verdict.status.join('\n'));
  assert.equal(verdict.signer, signer);
  const inner = parseMessage(verdict.plaintext);
  assert.equal(fieldValue(inner, 'Subject'), original.headers.subject);
  assert.ok(inner.body.equals(original.body), 'the decrypted body differs from the original');
  return verdict;
}

/** Checks that every CR in `data` starts a CRLF and every LF ends one: no bare CR or LF (RFC 5322 §2.3). */
export function assertCrlfOnly(data: Buffer): void {
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0x0d) assert.equal(data[i + 1], 0x0a, `bare CR at byte ${i}: ${JSON.stringify(data.subarray(Math.max(0, i - 40), i + 40).toString('latin1'))}`);
    if (data[i] === 0x0a) assert.equal(data[i - 1], 0x0d, `bare LF at byte ${i}: ${JSON.stringify(data.subarray(Math.max(0, i - 40), i + 40).toString('latin1'))}`);
  }
}

/** The Authentication-Results value site B writes for a message opened and verified. */
export function passResult(authservId: string, senderDomain: string, fingerprint: string): string {
  return `${authservId}; x-muse=pass reason="signature-verified" header.from=${senderDomain} policy.key-fingerprint=${fingerprint} policy.dnssec=yes policy.encrypted=yes`;
}

/**
 * Checks that `delivered` (what site B handed to its mailbox) is `original` again: the protected fields
 * restored, the original Content-* fields, the body byte for byte, and exactly one Authentication-Results
 * field equal to `authenticationResults`. Returns the parsed message.
 */
export function assertDeliveredIntact(delivered: Buffer, original: TestMessage, authenticationResults: string): ParsedMessage {
  assertCrlfOnly(delivered);
  const message = parseMessage(delivered);
  assert.deepEqual(protectedHeaders(message), original.headers);
  const sent = parseMessage(original.bytes);
  for (const name of ['Content-Type', 'Content-Transfer-Encoding']) assert.deepEqual(fieldValues(message, name), fieldValues(sent, name));
  assert.deepEqual(fieldValues(message, 'Authentication-Results'), [authenticationResults]);
  assert.ok(message.body.equals(original.body), 'the delivered body differs from the original');
  return message;
}

/** Queue directories whose files are messages Postfix still holds (maildrop: local submissions not yet picked up). */
const QUEUES = ['maildrop', 'incoming', 'active', 'deferred', 'hold'];

/** The message files in a Postfix instance's queues. */
export function queuedMessages(postfix: PostfixInstance): string[] {
  const files: string[] = [];
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) visit(join(dir, entry.name));
      else files.push(join(dir, entry.name));
    }
  };
  for (const queue of QUEUES) visit(join(postfix.queueDir, queue));
  return files;
}

/** Waits until the instance's queues are empty: it holds nothing that could still be delivered. */
export async function waitForEmptyQueue(postfix: PostfixInstance, timeoutMs: number): Promise<void> {
  await waitFor(() => (queuedMessages(postfix).length === 0 ? true : undefined), {
    timeoutMs,
    what: `empty queues in ${postfix.queueDir} (still: ${queuedMessages(postfix).join(', ')})`,
  });
}

/**
 * Makes Postfix try again now: `postfix flush` for deferred mail, and a wake-up of pickup for local
 * submissions a milter tempfailed (they wait in maildrop, which pickup otherwise rescans once a minute).
 */
export async function retryNow(postfix: PostfixInstance): Promise<void> {
  await postfix.flush();
  // postkick dies of SIGPIPE when it writes while pickup is between two reads of its FIFO: try again then.
  await waitFor(
    async () => {
      const kicked = await runCommand('postkick', ['-c', postfix.configDir, 'public', 'pickup', 'W'], { timeoutMs: 10_000 });
      if (kicked.code === 0) return true;
      if (kicked.signal !== 'SIGPIPE') throw new Error(`postkick exited with ${kicked.code ?? kicked.signal}: ${kicked.stderr}`);
      return undefined;
    },
    { timeoutMs: 10_000, what: 'postkick waking up pickup', intervalMs: 100 },
  );
}

/** How many messages each capture point holds, taken before a case to find exactly what the case added. */
export interface TrafficCounts {
  /** Transactions whose content crossed from A to B (accepted or not). */
  readonly tap: number;
  /** Messages B delivered. */
  readonly mailbox: number;
  /** Messages A delivered to other domains. */
  readonly world: number;
}

/** The counts now. */
export function trafficCounts(topology: Topology): TrafficCounts {
  return { tap: topology.tap.messages.length, mailbox: topology.mailbox.messages.length, world: topology.world.messages.length };
}

/**
 * Checks that since `start`, `message` reached B's mailbox exactly once and intact (restored headers, original
 * body, a pass result with A's key), that every transaction that crossed from A to B since then was its
 * ciphertext (GnuPG opens it with the keyring: B's private key, A's signature) and exactly one of them was
 * accepted, that nothing went to other domains, and that both sites' queues are empty, so the counts are final.
 * Returns the crossing transactions, in order.
 */
export async function assertDeliveredOnceToB(
  topology: Topology,
  start: TrafficCounts,
  message: TestMessage,
  keyring: GpgKeyring,
  timeoutMs: number,
): Promise<TappedMessage[]> {
  const delivered = await topology.mailbox.waitForCount(start.mailbox + 1, timeoutMs);
  await waitForEmptyQueue(topology.siteA.postfix, timeoutMs);
  await waitForEmptyQueue(topology.siteB.postfix, timeoutMs);
  assert.equal(topology.mailbox.messages.length, start.mailbox + 1, 'messages delivered by B');
  const received = delivered.at(-1);
  assert.ok(received !== undefined);
  assert.deepEqual(received.rcptTo, ['bob@site-b.test']);
  assertDeliveredIntact(received.data, message, passResult(DOMAINS.siteB, DOMAINS.siteA, topology.siteA.fingerprint));

  const crossed = topology.tap.messages.slice(start.tap);
  for (const attempt of crossed) {
    assert.deepEqual(attempt.rcptTo, ['bob@site-b.test']);
    await assertEncryptedOnWire(attempt.data, message, keyring, topology.siteA.fingerprint);
  }
  assert.equal(crossed.filter((attempt) => attempt.reply?.code === 250).length, 1, 'transactions from A to B that B accepted');
  assert.deepEqual(topology.tap.problems, []);
  assert.equal(topology.world.messages.length, start.world, 'messages sent to other domains');
  return crossed;
}
