/**
 * Outbound mail encrypted while its body arrives: a message whose every recipient gets the one encrypted version,
 * with every key answer in at the end of its headers, is encrypted from there on, fed chunk by chunk, so its body is
 * never stored; other messages are stored and handled at end of message. A message that ends early (ABORT, QUIT)
 * leaves nothing behind, and so does one whose body the disk cannot take (it is tempfailed). Observed from outside: what the daemon creates in its spool directory (inotify), what the
 * receiving site opens, the summary lines. Ports: ephemeral only (milter and DNS on 127.0.0.1:0).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { watch } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_BODY_CHUNK, type DeliveredMessage, type MilterClient } from '../../milter/src/index.ts';
import { withFileSizeLimit } from '../support/file-size-limit.ts';
import { waitFor } from '../support/processes.ts';
import { MuseZone } from './support/muse-zone.ts';
import { LOCAL_CLIENT, makeSite, openSession, REMOTE_CLIENT, sendOne, startMuse, transact, type Outcome, type RunningMuse, type TestMessage, type TestSite } from './support/harness.ts';
import { openDelivered } from './support/open-delivered.ts';
import { createMessage, encrypt } from 'openpgp';
import { armorBytes } from '../../src/pgp/armor.ts';
import { PGP_MIME_TYPE, pgpMimeBody } from '../support/encrypted-mail.ts';

const HEADERS = [
  { name: 'From', value: ' Alice <alice@site.test>' },
  { name: 'To', value: ' Bob <bob@b.test>' },
  { name: 'Subject', value: ' The large report' },
  { name: 'Message-ID', value: ' <big@site.test>' },
  { name: 'MIME-Version', value: ' 1.0' },
  { name: 'Content-Type', value: ' text/plain; charset=us-ascii' },
];

/** About `bytes` of numbered CRLF lines: more than the milter keeps in memory (1 MiB), so a stored body spills. */
function largeBody(bytes: number): Buffer {
  const lines: string[] = [];
  for (let n = 0, size = 0; size < bytes; n++) {
    const line = `line ${String(n).padStart(7, '0')} of the quarterly report, in plain seven-bit text.\r\n`;
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join(''), 'latin1');
}

const BODY = largeBody(2 * 1024 * 1024);

let zone: MuseZone;
let ours: TestSite;
let bob: TestSite;
let daemon: RunningMuse;

before(async () => {
  zone = await MuseZone.start();
  [ours, bob] = await Promise.all([makeSite('site.test'), makeSite('b.test')]);
  zone.publish('b.test', [bob.bytes]);
  zone.publish('slow.test', [bob.bytes]);
  zone.publish('lost.test', [bob.bytes]);
  // Debug lines say when a milter connection is closed: the event after which no more summary lines can come from it.
  daemon = await startMuse({ site: ours, dnsServer: zone.address, settings: { site: { localDomains: ['site.test'] }, logging: { level: 'debug' } } });
});
after(async () => {
  await daemon?.stop();
  await zone?.close();
});

const spoolEntries = (): Promise<string[]> => readdir(join(daemon.dataDir, 'spool'));

/**
 * Records every name created in the spool directory (inotify, so nothing is missed however briefly it lives)
 * while `run` runs.
 */
async function spoolCreations(run: () => Promise<void>): Promise<string[]> {
  const created: string[] = [];
  const watcher = watch(join(daemon.dataDir, 'spool'), (event, name) => {
    if (event === 'rename' && name !== null && !created.includes(name)) created.push(name);
  });
  try {
    await run();
  } finally {
    watcher.close();
  }
  return created;
}

/** MAIL through the last body chunk; end of message is left to the caller. */
async function upToEndOfMessage(mta: MilterClient, message: TestMessage): Promise<void> {
  const macros = message.macros ?? {};
  await mta.mailFrom(message.sender, [], macros);
  for (const recipient of message.recipients) assert.equal((await mta.rcptTo(recipient, [], macros)).reply.kind, 'continue');
  await mta.data(macros);
  for (const header of message.headers) await mta.header(header.name, header.value, macros);
  await mta.endOfHeaders(macros);
  for (let offset = 0; offset < message.body.length; offset += MAX_BODY_CHUNK) {
    await mta.body(message.body.subarray(offset, offset + MAX_BODY_CHUNK), macros);
  }
}

const emptySpool = (): Promise<string[]> => waitFor(async () => ((await spoolEntries()).length === 0 ? [] : undefined), { timeoutMs: 5000, what: 'an empty spool directory' });

describe('encryption while the body arrives', () => {
  it('an encrypt-only message: its body is never stored, and the receiving site opens the original bytes', async () => {
    const message: TestMessage = { sender: '<alice@site.test>', recipients: ['<bob@b.test>'], headers: HEADERS, body: BODY, macros: { i: 'Q-EARLY' } };
    // A first message puts b.test's answers in the cache: at the end of the next one's headers they are in.
    const warm = await sendOne(daemon.address, { ...message, body: Buffer.from('Hello Bob,\r\n'), macros: { i: 'Q-WARM' } });
    assert.equal(warm.eom?.verdict.kind, 'continue');
    let outcome: Outcome | undefined;
    // The replacement (about 2.8 MB) stays in memory, below the engine's 4 MiB spool threshold: nothing at all may
    // be created, where a stored 2 MiB body would have spilled to a file past 1 MiB.
    const created = await spoolCreations(async () => {
      outcome = await sendOne(daemon.address, message);
    });
    assert.deepEqual(created, []);
    assert.equal(outcome?.eom?.verdict.kind, 'continue');
    const opened = await openDelivered(outcome?.delivered as DeliveredMessage, bob, ours);
    assert.equal(opened.result.kind, 'opened');
    assert.ok(opened.body?.equals(BODY), 'the decrypted body is the original, byte for byte');
    assert.deepEqual(daemon.summaries().filter((l) => l.queueId === 'Q-EARLY').map((l) => l.action), ['encrypted']);
  });

  it('mail the author already encrypted (PGP/MIME, over 1 MiB) passes unchanged: the body is read to its end, not waited on', async () => {
    // Really encrypted (a label alone would be protected like any other mail), and over 1 MiB.
    const headers = [...HEADERS.filter((h) => h.name !== 'Content-Type'), { name: 'Content-Type', value: PGP_MIME_TYPE }];
    const ciphertext = await encrypt({ message: await createMessage({ binary: BODY }), encryptionKeys: bob.publicKey, format: 'binary' });
    const body = pgpMimeBody(armorBytes('MESSAGE', ciphertext));
    assert.ok(body.length > 1024 * 1024);
    const message: TestMessage = { sender: '<alice@site.test>', recipients: ['<bob@b.test>'], headers, body, macros: { i: 'Q-ALREADY' } };
    const outcome = await sendOne(daemon.address, message);
    assert.deepEqual(outcome.eom, { modifications: [], verdict: { kind: 'continue' }, progress: 0 });
    const summary = daemon.summaries().find((l) => l.queueId === 'Q-ALREADY');
    assert.equal(summary?.action, 'unchanged');
    assert.equal(summary?.reason, 'already encrypted (pgp-mime)');
  });

  it('a message whose key lookup is still under way at the end of its headers is stored, then encrypted at its end', async () => {
    zone.misbehave('slow.test', 'stall');
    const message: TestMessage = { sender: '<alice@site.test>', recipients: ['<sam@slow.test>'], headers: HEADERS, body: BODY, macros: { i: 'Q-SLOW' } };
    let outcome: Outcome | undefined;
    try {
      const created = await spoolCreations(async () => {
        const sent = sendOne(daemon.address, message);
        // The body spilling to a file shows the daemon chose to store it; only then may the answer come.
        await waitFor(async () => ((await spoolEntries()).length > 0 ? true : undefined), { timeoutMs: 10_000, what: 'the body stored' });
        zone.release();
        outcome = await sent;
      });
      assert.equal(created.length, 1);
      assert.match(created[0] as string, /^milter-body-/);
    } finally {
      zone.misbehave('slow.test', undefined);
    }
    const opened = await openDelivered(outcome?.delivered as DeliveredMessage, bob, ours);
    assert.ok(opened.body?.equals(BODY), 'the decrypted body is the original, byte for byte');
    assert.deepEqual(await emptySpool(), []);
  });

  it('a message handled at end of message (here inbound) is stored while it arrives, as before', async () => {
    const message: TestMessage = { sender: '<carol@a.test>', recipients: ['<alice@site.test>'], headers: HEADERS, body: BODY, macros: { i: 'Q-STORED' } };
    let outcome: Outcome | undefined;
    const created = await spoolCreations(async () => {
      outcome = await sendOne(daemon.address, message, REMOTE_CLIENT);
    });
    assert.equal(created.length, 1);
    assert.match(created[0] as string, /^milter-body-/);
    assert.equal(outcome?.eom?.verdict.kind, 'continue');
    assert.deepEqual(await emptySpool(), []);
  });

  it('a body the disk cannot take (file size limit: EFBIG) is tempfailed, said so in the summary line, and nothing is left', async () => {
    const message: TestMessage = { sender: '<carol@a.test>', recipients: ['<alice@site.test>'], headers: HEADERS, body: BODY, macros: { i: 'Q-FULL' } };
    const outcome = await withFileSizeLimit(1024 * 1024 + 65536, () => sendOne(daemon.address, message, REMOTE_CLIENT));
    assert.deepEqual(outcome.eom, { modifications: [], verdict: { kind: 'tempfail' }, progress: 0 });
    const summary = daemon.summaries().find((l) => l.queueId === 'Q-FULL');
    assert.equal(summary?.action, 'tempfail');
    assert.match(String(summary?.reason), /^cannot store the message body: EFBIG/);
    assert.deepEqual(await emptySpool(), []);
  });

  it('a connection lost while end of message is under way: the message is summarised once, by end of message', async () => {
    zone.misbehave('lost.test', 'stall');
    const message: TestMessage = { sender: '<alice@site.test>', recipients: ['<sam@lost.test>'], headers: HEADERS, body: Buffer.from('Hello Sam,\r\n'), macros: { i: 'Q-LOST' } };
    const mta = await openSession(daemon.address, LOCAL_CLIENT, message.macros);
    try {
      await upToEndOfMessage(mta, message);
      // End of message waits for the stalled lookup; the MTA gives up on it and goes away meanwhile.
      const eom = mta.endOfMessage(message.macros ?? {}).catch(() => undefined);
      await waitFor(() => (zone.queriesFor('lost.test') > 0 ? true : undefined), { timeoutMs: 5000, what: 'the lookup under way' });
      await mta.close();
      await eom;
    } finally {
      zone.release();
      zone.misbehave('lost.test', undefined);
    }
    const lines = await waitFor(
      () => {
        const found = daemon.summaries().filter((l) => l.queueId === 'Q-LOST');
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 10_000, what: 'the summary of the message' },
    );
    // A second line could only come from the connection's close; once it is closed, every line it caused is written.
    await waitFor(() => daemon.lines.find((l) => l.message === 'connection closed' && l.conn === lines[0]?.conn), { timeoutMs: 10_000, what: 'the close of the connection' });
    assert.deepEqual(daemon.summaries().filter((l) => l.queueId === 'Q-LOST').map((l) => l.action), [lines[0]?.action]);
    assert.equal(lines[0]?.action, 'encrypted');
  });

  it('a message aborted or quit in the middle of its body leaves nothing behind, and the next message is encrypted', async () => {
    const half: TestMessage = { sender: '<alice@site.test>', recipients: ['<bob@b.test>'], headers: HEADERS, body: BODY.subarray(0, BODY.length / 2), macros: { i: 'Q-HALF' } };
    const mta = await openSession(daemon.address, LOCAL_CLIENT, half.macros);
    try {
      await upToEndOfMessage(mta, half);
      mta.abort();
      const small: TestMessage = { ...half, body: Buffer.from('Hello Bob,\r\n'), macros: { i: 'Q-NEXT' } };
      const next = await transact(mta, small);
      assert.equal(next.eom?.verdict.kind, 'continue');
      const opened = await openDelivered(next.delivered as DeliveredMessage, bob, ours);
      assert.equal(opened.body?.toString('latin1'), 'Hello Bob,\r\n');
      // And once more, ended by QUIT while the body is under way.
      await upToEndOfMessage(mta, { ...half, macros: { i: 'Q-QUIT' } });
    } finally {
      await mta.close();
    }
    await waitFor(() => (daemon.summaries().some((l) => l.queueId === 'Q-QUIT') ? true : undefined), { timeoutMs: 5000, what: 'summary of the quit message' });
    assert.deepEqual(
      daemon.summaries().filter((l) => ['Q-HALF', 'Q-NEXT', 'Q-QUIT'].includes(l.queueId as string)).map((l) => [l.queueId, l.action]),
      [
        ['Q-HALF', 'abandoned'],
        ['Q-NEXT', 'encrypted'],
        ['Q-QUIT', 'abandoned'],
      ],
    );
    assert.deepEqual(await emptySpool(), []);
  });
});
