/**
 * The example milters of `examples/`, each started as its own program, behind a real Postfix 3.7
 * (`milter_protocol = 6`, `milter_default_action = tempfail`) that relays to the SMTP sink: header and body
 * changes byte for byte over SMTP and by local submission, a recipient refused at RCPT, a unix-socket milter,
 * a milter that is down, and a milter connection broken by a protocol error. Postfix failing to start fails
 * every test here.
 *
 * Ports (127.0.0.1): all picked free by the kernel at start: the SMTP sink, Postfix smtpd (main.cf, stamp
 * milter) and four more smtpd (reject-recipient milter, noop milter on a unix socket, a milter port nothing
 * listens on, the tap, a milter at its connection limit), the stamp and reject-recipient milters, and the milter
 * tap (frame counting, fault injection). The milter at its connection limit runs in this process.
 * non_smtpd_milters (local submission) = the stamp milter.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MilterClient, MilterServer } from '../../milter/src/index.ts';
import { stampMilter, STAMP_FOOTER } from '../../examples/stamp-milter.ts';
import { freePort } from '../support/free-port.ts';
import { PostfixInstance } from '../support/postfix.ts';
import { sendMail, type SendMailResult } from '../support/smtp-client.ts';
import { SmtpSink, type SinkMessage } from '../support/smtp-sink.ts';
import { startExampleMilter, type ExampleMilter } from './conformance/example-milters.ts';
import { MilterTap, REFUSED_RECIPIENT, type TappedConversation, type TappedFrame } from './record-transcript.ts';

/** Every port, picked free by the kernel in before() (DOWN_PORT is never bound: the milter that is down). */
let SINK_PORT = 0;
let SMTPD_STAMP_PORT = 0;
let SMTPD_REJECT_PORT = 0;
let SMTPD_NOOP_PORT = 0;
let SMTPD_DOWN_PORT = 0;
let SMTPD_TAPPED_PORT = 0;
let STAMP_PORT = 0;
let REJECT_PORT = 0;
let TAP_PORT = 0;
let DOWN_PORT = 0;
let SMTPD_FULL_PORT = 0;

/** Generous bound for one message to cross Postfix into the sink (typically under a second). */
const DELIVERY_TIMEOUT_MS = 20_000;
/** SMFIC_BODY, and the unknown command byte the tap puts in its place to break one conversation. */
const BODY_COMMAND = 0x42;
const BROKEN_COMMAND = 0x5a;
/** SMFIR_REPLBODY. */
const REPLACE_BODY_REPLY = 0x62;
/** libmilter's MILTER_CHUNK_SIZE, the largest replacement chunk the stamp milter sends. */
const MAX_CHUNK = 65535;

/** A message with the headers Postfix would otherwise add (so it adds only Received), then `body`. */
function message(subject: string, body: Buffer): { headers: Buffer; body: Buffer; data: Buffer } {
  const headers = Buffer.from(
    `From: Alice <alice@sender.test>\r\nTo: Bob <bob@example.test>\r\nSubject: ${subject}\r\n` +
      `Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <${subject.replaceAll(' ', '-')}@sender.test>\r\n`,
  );
  return { headers, body, data: Buffer.concat([headers, Buffer.from('\r\n'), body]) };
}

/** About `size` bytes of body lines: printable ASCII, 8-bit bytes, lines starting with dots, all CRLF. */
function largeBody(size: number): Buffer {
  const lines: Buffer[] = [];
  let total = 0;
  for (let n = 0; total < size; n++) {
    const text = Buffer.from(`${n % 50 === 0 ? '..' : n % 7 === 0 ? '.' : ''}line ${n} ${'abcdefghij'.repeat(1 + (n % 9))}`, 'latin1');
    const eightBit = Buffer.from([0xc3, 0xa9, 0x80 + (n % 0x7f)]);
    const line = Buffer.concat([text, eightBit, Buffer.from('\r\n')]);
    lines.push(line);
    total += line.length;
  }
  return Buffer.concat(lines);
}

/** Splits what the sink received into Postfix's Received header (with its folded lines) and the rest. */
function splitReceived(data: Buffer): { received: string; rest: Buffer } {
  const text = data.toString('latin1');
  assert.ok(text.startsWith('Received: '), `no Received header first: ${JSON.stringify(text.slice(0, 80))}`);
  let end = text.indexOf('\r\n');
  while (text[end + 2] === '\t' || text[end + 2] === ' ') end = text.indexOf('\r\n', end + 2);
  return { received: text.slice(0, end + 2), rest: data.subarray(end + 2) };
}

/** The queue id of a `250 2.0.0 Ok: queued as ID` reply. */
function queueIdOf(result: SendMailResult): string {
  assert.equal(result.accepted, true, `not accepted: ${result.final.code} ${result.final.text}`);
  const id = /^2\.0\.0 Ok: queued as ([0-9A-F]+)$/.exec(result.final.text)?.[1];
  assert.ok(id !== undefined, result.final.text);
  return id;
}

/** An SMTP reply as one line, as the client saw it: `550 5.1.1 text`. */
function replyLine(result: SendMailResult, command: string): string {
  const step = result.steps.find((candidate) => candidate.command === command);
  assert.ok(step !== undefined, `no ${command} in ${JSON.stringify(result.steps.map((s) => s.command))}`);
  return `${step.reply.code} ${step.reply.lines.join('\n')}`;
}

describe('example milters as programs behind a real Postfix', { timeout: 180_000 }, () => {
  let sink: SmtpSink | undefined;
  let stamp: ExampleMilter | undefined;
  let reject: ExampleMilter | undefined;
  let noop: ExampleMilter | undefined;
  let tap: MilterTap | undefined;
  let postfix: PostfixInstance | undefined;
  let socketDir: string | undefined;
  /** When set, the tap breaks the next body frame from Postfix (one use). */
  let breakNextBody = false;
  let full: MilterServer | undefined;
  let holder: MilterClient | undefined;

  before(async () => {
    [SINK_PORT, SMTPD_STAMP_PORT, SMTPD_REJECT_PORT, SMTPD_NOOP_PORT, SMTPD_DOWN_PORT, SMTPD_TAPPED_PORT, STAMP_PORT, REJECT_PORT, TAP_PORT, DOWN_PORT] = [
      await freePort(), await freePort(), await freePort(), await freePort(), await freePort(),
      await freePort(), await freePort(), await freePort(), await freePort(), await freePort(),
    ];
    SMTPD_FULL_PORT = await freePort();
    // An in-process server at its connection limit: one connection, held by the test, fills it.
    const limited = await MilterServer.start(stampMilter(), { listen: 'inet:0@127.0.0.1', maxConnections: 1 });
    full = limited;
    holder = await MilterClient.connect(limited.address);
    // Postfix's smtpd runs as user postfix and must reach the noop milter's socket.
    socketDir = mkdtempSync(join(tmpdir(), 'muse-postfix-milters-'));
    chmodSync(socketDir, 0o755);
    const noopSocket = join(socketDir, 'noop.sock');
    sink = await SmtpSink.start({ port: SINK_PORT });
    stamp = await startExampleMilter('stamp-milter', `inet:127.0.0.1:${STAMP_PORT}`);
    reject = await startExampleMilter('reject-recipient-milter', `inet:127.0.0.1:${REJECT_PORT}`, { env: { REJECT_RECIPIENTS: REFUSED_RECIPIENT } });
    noop = await startExampleMilter('noop-milter', `unix:${noopSocket}`);
    // The milter runs as root and creates its socket 0660 root:root; let the postfix user in.
    chmodSync(noopSocket, 0o666);
    tap = await MilterTap.start({
      port: TAP_PORT,
      targetPort: STAMP_PORT,
      rewrite: (frame: TappedFrame) => {
        if (!breakNextBody || frame.from !== 'mta' || frame.bytes[4] !== BODY_COMMAND) return frame.bytes;
        breakNextBody = false;
        const broken = Buffer.from(frame.bytes);
        broken[4] = BROKEN_COMMAND;
        return broken;
      },
    });
    postfix = await PostfixInstance.start({
      smtpPort: SMTPD_STAMP_PORT,
      settings: {
        transport_maps: `inline:{ example.test=smtp:[127.0.0.1]:${SINK_PORT} }`,
        smtpd_milters: `inet:127.0.0.1:${STAMP_PORT}`,
        non_smtpd_milters: `inet:127.0.0.1:${STAMP_PORT}`,
        milter_protocol: '6',
        milter_default_action: 'tempfail',
        milter_connect_timeout: '10s',
        milter_command_timeout: '30s',
        milter_content_timeout: '120s',
      },
      masterLines: [
        `127.0.0.1:${SMTPD_REJECT_PORT} inet n - n - - smtpd`,
        `  -o smtpd_milters=inet:127.0.0.1:${REJECT_PORT}`,
        `127.0.0.1:${SMTPD_NOOP_PORT} inet n - n - - smtpd`,
        `  -o smtpd_milters=unix:${noopSocket}`,
        `127.0.0.1:${SMTPD_DOWN_PORT} inet n - n - - smtpd`,
        `  -o smtpd_milters=inet:127.0.0.1:${DOWN_PORT}`,
        `127.0.0.1:${SMTPD_TAPPED_PORT} inet n - n - - smtpd`,
        `  -o smtpd_milters=inet:127.0.0.1:${TAP_PORT}`,
        // milter_default_action = accept: a 4xx here comes from the milter's own tempfail, not from Postfix's fallback.
        `127.0.0.1:${SMTPD_FULL_PORT} inet n - n - - smtpd`,
        `  -o smtpd_milters=${limited.address}`,
        '  -o milter_default_action=accept',
      ],
    });
  });

  after(async () => {
    await postfix?.stop();
    await holder?.close();
    await full?.close(0);
    await tap?.close();
    for (const milter of [stamp, reject, noop]) await milter?.stop();
    await sink?.close();
    if (socketDir !== undefined) rmSync(socketDir, { recursive: true, force: true });
  });

  /** Everything before() started (a failed start fails every test here). */
  function running(): { postfix: PostfixInstance; sink: SmtpSink; stamp: ExampleMilter; tap: MilterTap } {
    assert.ok(postfix !== undefined && sink !== undefined && stamp !== undefined && tap !== undefined, 'the Postfix set-up did not start');
    return { postfix, sink, stamp, tap };
  }

  /** Waits for the sink's next message after `before` messages. */
  async function nextDelivery(sink: SmtpSink, count: number): Promise<SinkMessage> {
    const delivered = (await sink.waitForCount(count + 1, DELIVERY_TIMEOUT_MS))[count];
    assert.ok(delivered !== undefined);
    return delivered;
  }

  test('stamp-milter over SMTP: X-Stamp names the real queue id, the body is the original plus the footer', async () => {
    const { postfix, sink } = running();
    const original = message('stamp over smtp', Buffer.from('Hello Bob,\r\n.a dot line\r\n\r\ncaf\u00e9\r\nbye\r\n', 'latin1'));
    const count = sink.messages.length;
    const result = await sendMail({ port: SMTPD_STAMP_PORT, from: 'alice@sender.test', to: ['bob@example.test'], data: original.data });
    const queueId = queueIdOf(result);

    const delivered = await nextDelivery(sink, count);
    const { received, rest } = splitReceived(delivered.data);
    assert.match(received, new RegExp(String.raw`^Received: from client\.test \([^\s()]+ \[127\.0\.0\.1\]\)\r\n\tby postfix\.mta\.test \(Postfix\) with ESMTP id ${queueId}\r\n`));
    assert.deepEqual(
      rest,
      Buffer.concat([original.headers, Buffer.from(`X-Stamp: stamped queue-id=${queueId}\r\n\r\n`), original.body, STAMP_FOOTER]),
    );
    await postfix.waitForMaillog(new RegExp(String.raw`postfix/smtpd\[\d+\]: ${queueId}: client=localhost\[127\.0\.0\.1\]`), 5_000);
    await postfix.waitForMaillog(new RegExp(String.raw`${queueId}: to=<bob@example\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:${SINK_PORT}, .*status=sent`), 5_000);
  });

  test('stamp-milter: a 300 KB body goes out in several REPLBODY chunks and arrives exactly', async () => {
    const { sink, tap } = running();
    const original = message('stamp large', largeBody(300_000));
    const expectedBody = Buffer.concat([original.body, STAMP_FOOTER]);
    const count = sink.messages.length;
    const conversations = tap.conversations.length;
    // Through the tap, which only counts here: the replacement body's frames can be seen.
    const result = await sendMail({ port: SMTPD_TAPPED_PORT, from: 'alice@sender.test', to: ['bob@example.test'], data: original.data });
    const queueId = queueIdOf(result);

    const delivered = await nextDelivery(sink, count);
    assert.deepEqual(
      splitReceived(delivered.data).rest,
      Buffer.concat([original.headers, Buffer.from(`X-Stamp: stamped queue-id=${queueId}\r\n\r\n`), expectedBody]),
    );
    const conversation = await tap.waitForConversation(
      (candidate: TappedConversation) => tap.conversations.indexOf(candidate) >= conversations && candidate.frames.some((frame) => frame.bytes[4] === REPLACE_BODY_REPLY),
      DELIVERY_TIMEOUT_MS,
    );
    const chunks = conversation.frames.filter((frame) => frame.from === 'milter' && frame.bytes[4] === REPLACE_BODY_REPLY).map((frame) => frame.bytes.subarray(5));
    assert.deepEqual(
      chunks.map((chunk) => chunk.length),
      [MAX_CHUNK, MAX_CHUNK, MAX_CHUNK, MAX_CHUNK, expectedBody.length - 4 * MAX_CHUNK],
    );
    assert.deepEqual(Buffer.concat(chunks), expectedBody);
  });

  test('stamp-milter by local submission (non_smtpd_milters): stamped with the queue id, body plus footer', async () => {
    const { postfix, sink } = running();
    const original = message('stamp local', Buffer.from('Hello Dave,\r\n.a dot line\r\n\r\nbye\r\n'));
    const count = sink.messages.length;
    // Submitted with LF line ends, as a local program writes them; Postfix stores lines, so the milter
    // sees CRLF lines and the sink receives CRLF.
    const submitted = await postfix.sendmailCommand(['-f', 'carol@sender.test', 'dave@example.test'], original.data.toString('latin1').replaceAll('\r\n', '\n'));
    assert.deepEqual(submitted, { code: 0, signal: null, stdout: '', stderr: '' });

    const delivered = await nextDelivery(sink, count);
    assert.equal(delivered.mailFrom, 'carol@sender.test');
    assert.deepEqual(delivered.rcptTo, ['dave@example.test']);
    const { received, rest } = splitReceived(delivered.data);
    const queueId = /^Received: by postfix\.mta\.test \(Postfix, from userid 0\)\r\n\tid ([0-9A-F]+); [^\r\n]+\r\n$/.exec(received)?.[1];
    assert.ok(queueId !== undefined, received);
    assert.deepEqual(rest, Buffer.concat([original.headers, Buffer.from(`X-Stamp: stamped queue-id=${queueId}\r\n\r\n`), original.body, STAMP_FOOTER]));
    await postfix.waitForMaillog(new RegExp(String.raw`postfix/pickup\[\d+\]: ${queueId}: uid=0 from=<carol@sender\.test>`), 5_000);
  });

  test('reject-recipient-milter: the refused recipient gets its 550 at RCPT, the other one is delivered', async () => {
    const { sink } = running();
    const original = message('two recipients', Buffer.from('Hello\r\n'));
    const count = sink.messages.length;
    const result = await sendMail({ port: SMTPD_REJECT_PORT, from: 'alice@sender.test', to: [REFUSED_RECIPIENT, 'bob@example.test'], data: original.data });
    assert.equal(replyLine(result, `RCPT TO:<${REFUSED_RECIPIENT}>`), `550 5.1.1 Recipient ${REFUSED_RECIPIENT} is not accepted here`);
    assert.equal(replyLine(result, 'RCPT TO:<bob@example.test>'), '250 2.1.5 Ok');
    queueIdOf(result);

    const delivered = await nextDelivery(sink, count);
    assert.deepEqual(delivered.rcptTo, ['bob@example.test']);
    assert.deepEqual(splitReceived(delivered.data).rest, original.data);
  });

  test('noop-milter over a unix socket adds X-Noop and changes nothing else', async () => {
    const { sink } = running();
    const original = message('noop', Buffer.from('Hello\r\n'));
    const count = sink.messages.length;
    const result = await sendMail({ port: SMTPD_NOOP_PORT, from: 'alice@sender.test', to: ['bob@example.test'], data: original.data });
    queueIdOf(result);

    const delivered = await nextDelivery(sink, count);
    assert.deepEqual(splitReceived(delivered.data).rest, Buffer.concat([original.headers, Buffer.from('X-Noop: seen\r\n\r\n'), original.body]));
  });

  test('milter down: Postfix answers 451 4.7.1 at MAIL and nothing reaches the sink', async () => {
    const { postfix, sink } = running();
    const count = sink.messages.length;
    const result = await sendMail({ port: SMTPD_DOWN_PORT, from: 'alice@sender.test', to: ['bob@example.test'], data: message('down', Buffer.from('x\r\n')).data });
    // smtpd logs the milter's tempfail at CONNECT and EHLO too, but answers it first at MAIL.
    assert.deepEqual(
      result.steps.map((step) => `${step.command} -> ${step.reply.code}`),
      ['EHLO client.test -> 250', 'MAIL FROM:<alice@sender.test> -> 451'],
    );
    assert.equal(replyLine(result, 'MAIL FROM:<alice@sender.test>'), '451 4.7.1 Service unavailable - try again later');
    assert.equal(result.accepted, false);
    await postfix.waitForMaillog(new RegExp(String.raw`warning: connect to Milter service inet:127\.0\.0\.1:${DOWN_PORT}: Connection refused`), 5_000);
    await postfix.waitForMaillog(/NOQUEUE: milter-reject: MAIL from localhost\[127\.0\.0\.1\]: 451 4\.7\.1 Service unavailable - try again later;/, 5_000);
    assert.equal(sink.messages.length, count);
  });

  test('milter at its connection limit: Postfix answers 451 4.7.1 at MAIL even with milter_default_action = accept', async () => {
    const { postfix, sink } = running();
    const count = sink.messages.length;
    const refused = once(full as MilterServer, 'connectionRefused');
    const result = await sendMail({ port: SMTPD_FULL_PORT, from: 'alice@sender.test', to: ['bob@example.test'], data: message('full', Buffer.from('x\r\n')).data });
    assert.deepEqual(
      result.steps.map((step) => `${step.command} -> ${step.reply.code}`),
      ['EHLO client.test -> 250', 'MAIL FROM:<alice@sender.test> -> 451'],
    );
    assert.equal(replyLine(result, 'MAIL FROM:<alice@sender.test>'), '451 4.7.1 Service unavailable - try again later');
    await refused;
    await postfix.waitForMaillog(/NOQUEUE: milter-reject: MAIL from localhost\[127\.0\.0\.1\]: 451 4\.7\.1 Service unavailable - try again later;/, 5_000);
    assert.equal(sink.messages.length, count);
    assert.equal(full?.connectionCount, 1);
  });

  test('a milter connection broken by a protocol error: that message is tempfailed, the milter lives on, the next one passes', async () => {
    const { postfix, sink, stamp } = running();
    const count = sink.messages.length;
    breakNextBody = true;
    const broken = await sendMail({ port: SMTPD_TAPPED_PORT, from: 'alice@sender.test', to: ['bob@example.test'], data: message('broken', Buffer.from('x\r\n')).data });
    assert.equal(breakNextBody, false, 'the tap did not see a body frame');
    assert.equal(broken.accepted, false);
    assert.equal(replyLine(broken, '(content)'), '451 4.7.1 Service unavailable - try again later');
    // The message content goes to smtpd milters from Postfix's cleanup server, which logs the broken connection.
    await postfix.waitForMaillog(new RegExp(String.raw`postfix/cleanup\[\d+\]: warning: milter inet:127\.0\.0\.1:${TAP_PORT}: can't read SMFIC_BODY reply packet header`), 5_000);
    await postfix.waitForMaillog(/: milter-reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: 4\.7\.1 Service unavailable - try again later;/, 5_000);
    const warning = stamp.logLines().find((line) => line.message === 'protocol error, closing connection');
    assert.equal(warning?.code, 'unknown-command');
    assert.equal(stamp.process.exitStatus(), undefined, 'the stamp milter process exited');

    const original = message('after the break', Buffer.from('x\r\n'));
    const result = await sendMail({ port: SMTPD_TAPPED_PORT, from: 'alice@sender.test', to: ['bob@example.test'], data: original.data });
    const queueId = queueIdOf(result);
    const delivered = await nextDelivery(sink, count);
    assert.deepEqual(
      splitReceived(delivered.data).rest,
      Buffer.concat([original.headers, Buffer.from(`X-Stamp: stamped queue-id=${queueId}\r\n\r\n`), original.body, STAMP_FOOTER]),
    );
  });

  test('every example milter is still running and exits with status 0 on SIGTERM', async () => {
    running();
    for (const milter of [stamp, reject, noop]) {
      assert.ok(milter !== undefined);
      assert.equal(milter.process.exitStatus(), undefined, `${milter.address} exited early`);
      assert.deepEqual(await milter.stop(), { code: 0, signal: null }, milter.address);
    }
  });
});
