/**
 * Proves the real-MTA harness against the real programs: the SMTP sink and client (pipelining, RSET,
 * dot-stuffing, scripted refusals, persistence), a Postfix instance relaying byte-exact mail to the sink
 * over SMTP and by local submission, Sendmail relaying to the sink with a milter entry that is skipped,
 * and miltertest. Every test fails if a program cannot start; every instance is stopped in `after` hooks.
 *
 * Ports (127.0.0.1): picked free by the kernel when the file loads (PORT below), one per role.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { HarnessError } from './errors.ts';
import { freePort, isAddressInUse } from './free-port.ts';
import { runMiltertest } from './miltertest.ts';
import { PostfixInstance } from './postfix.ts';
import { DEFAULT_SENDMAIL_MC, SendmailInstance, renderSendmailMc } from './sendmail.ts';
import { SmtpClientSession, sendMail } from './smtp-client.ts';
import { encodeDataSection } from './smtp-lines.ts';
import { SmtpSink } from './smtp-sink.ts';

/** Every port this file uses, by role; `absentMilter` and `postfixFailure` are never bound. */
const PORT = {
  postfixSink: await freePort(),
  postfixSmtpd: await freePort(),
  postfixSecond: await freePort(),
  sendmailSink: await freePort(),
  sendmail: await freePort(),
  absentMilter: await freePort(),
  sinkOnly: await freePort(),
  sinkStore: await freePort(),
  taken: await freePort(),
  postfixFailure: await freePort(),
};

/** Generous bound for one message to cross an MTA into the sink (typically well under a second). */
const DELIVERY_TIMEOUT_MS = 15_000;

/** A message with full headers (so no MTA needs to add any but Received), 8-bit bytes and a 998-octet line. */
function eightBitMessage(): Buffer {
  return Buffer.concat([
    Buffer.from(
      'From: Alice <alice@sender.test>\r\nTo: Bob <bob@example.test>\r\nSubject: 8-bit\r\n' +
        'Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <harness-1@sender.test>\r\n\r\n',
    ),
    Buffer.from('caf\u00e9 \u00fcber \u2603\r\n', 'utf8'),
    Buffer.from([0x80, 0xfe, 0xff, 0x0d, 0x0a]), // bytes that are not UTF-8 at all
    // The longest line RFC 5322 allows; Postfix's smtp client would fold a longer one (smtp_line_length_limit).
    Buffer.from(`${'x'.repeat(998)}\r\n`),
    Buffer.from('.leading dot\r\n..two dots\r\nlast line\r\n'),
  ]);
}

/** Splits sink data into what the MTA put before the original message, checking the rest is identical. */
function addedPrefix(received: Buffer, original: Buffer): string {
  assert.ok(received.length > original.length, 'the MTA added nothing');
  assert.deepEqual(received.subarray(received.length - original.length), original, 'original bytes changed');
  return received.subarray(0, received.length - original.length).toString('latin1');
}

describe('SMTP sink and client', { timeout: 60_000 }, () => {
  test('dot-stuffs after every line end and adds CRLF only when missing', () => {
    const wire = (text: string): string => encodeDataSection(Buffer.from(text)).toString('latin1');
    assert.equal(wire('.a\r\nb\r\n..c\r\n'), '..a\r\nb\r\n...c\r\n.\r\n');
    assert.equal(wire('a\n.b\n'), 'a\n..b\n.\r\n');
    assert.equal(wire('no final line end'), 'no final line end\r\n.\r\n');
    assert.equal(wire(''), '.\r\n');
  });

  test('keeps exact bytes and envelopes over pipelined transactions, RSET and QUIT', async (t) => {
    const sink = await SmtpSink.start({ port: PORT.sinkOnly });
    t.after(() => sink.close());
    const session = await SmtpClientSession.connect({ port: PORT.sinkOnly, timeoutMs: 5_000 });
    t.after(() => session.close());
    assert.equal(session.greeting.code, 220);
    const ehlo = await session.command('EHLO pipeliner.test');
    assert.deepEqual(ehlo.lines, ['sink.test', 'PIPELINING', '8BITMIME', 'SMTPUTF8']);

    const first = Buffer.from('Subject: one\r\n\r\n.dot\r\n\u00e9\r\n', 'utf8');
    const batch1 = await session.exchange(
      'MAIL FROM:<a@x.test> BODY=8BITMIME\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<C@Y.test>\r\nDATA\r\n',
      4,
    );
    assert.deepEqual(batch1.map((reply) => reply.code), [250, 250, 250, 354]);
    assert.equal((await session.content(first)).code, 250);

    const second = Buffer.from('Subject: two\r\n\r\nbody\r\n');
    const batch2 = await session.exchange(
      'MAIL FROM:<dropped@x.test>\r\nRSET\r\nMAIL FROM:<>\r\nRCPT TO:<d@y.test>\r\nDATA\r\n',
      5,
    );
    assert.deepEqual(batch2.map((reply) => reply.code), [250, 250, 250, 250, 354]);
    // Content and QUIT in one write: the sink must still answer both, in order.
    const [stored, bye] = await session.exchange(Buffer.concat([encodeDataSection(second), Buffer.from('QUIT\r\n')]), 2);
    assert.equal(stored?.code, 250);
    assert.equal(bye?.code, 221);

    const messages = await sink.waitForCount(2, 5_000);
    assert.deepEqual(messages, [
      {
        index: 1,
        ehlo: 'pipeliner.test',
        mailFrom: 'a@x.test',
        mailParams: 'BODY=8BITMIME',
        rcptTo: ['b@y.test', 'C@Y.test'],
        rcptParams: ['', ''],
        data: first,
      },
      { index: 2, ehlo: 'pipeliner.test', mailFrom: '', mailParams: '', rcptTo: ['d@y.test'], rcptParams: [''], data: second },
    ]);
  });

  test('answers scripted RCPT and DATA refusals, then accepts', async (t) => {
    const sink = await SmtpSink.start({ port: PORT.sinkOnly });
    t.after(() => sink.close());
    sink.failRcpt('Bad@Example.test', '550 5.1.1 No such user');
    sink.failData('451 4.3.0 Try again later', 1);
    assert.throws(
      () => sink.failData('250 fine'),
      (error: unknown) => error instanceof HarnessError && error.code === 'INVALID_ARGUMENT',
    );
    const data = 'Subject: faults\r\n\r\nbody\r\n';
    const options = { port: PORT.sinkOnly, from: 'a@x.test', to: ['bad@example.test', 'good@example.test'], data };

    const refused = await sendMail(options);
    assert.deepEqual(refused.steps.map((step) => [step.command, step.reply.code]), [
      ['EHLO client.test', 250],
      ['MAIL FROM:<a@x.test>', 250],
      ['RCPT TO:<bad@example.test>', 550],
      ['RCPT TO:<good@example.test>', 250],
      ['DATA', 354],
      ['(content)', 451],
    ]);
    assert.equal(refused.accepted, false);
    assert.equal(refused.final.text, '4.3.0 Try again later');
    assert.equal(sink.rejected.length, 1);
    assert.deepEqual(sink.rejected[0]?.data, Buffer.from(data));

    const accepted = await sendMail(options);
    assert.equal(accepted.accepted, true);
    const [message] = await sink.waitForCount(1, 5_000);
    assert.deepEqual(message?.rcptTo, ['good@example.test']);

    sink.clearFaults();
    const all = await sendMail({ ...options, to: ['bad@example.test'] });
    assert.equal(all.accepted, true);
  });

  test('persists N.eml and N.json, numbering on after a restart', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'harness-sink-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const data = Buffer.from('Subject: stored\r\n\r\n\u00e9\r\n', 'utf8');
    for (const expected of [1, 2]) {
      const sink = await SmtpSink.start({ port: PORT.sinkStore, storeDir: dir });
      try {
        const result = await sendMail({ port: PORT.sinkStore, ehlo: 'store.test', from: 'a@x.test', to: ['b@y.test'], data });
        assert.equal(result.final.text, `2.0.0 Ok: queued as ${expected}`);
      } finally {
        await sink.close();
      }
    }
    assert.deepEqual(readdirSync(dir).sort(), ['1.eml', '1.json', '2.eml', '2.json']);
    assert.deepEqual(readFileSync(join(dir, '2.eml')), data);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, '2.json'), 'utf8')), {
      index: 2,
      ehlo: 'store.test',
      mailFrom: 'a@x.test',
      mailParams: '',
      rcptTo: ['b@y.test'],
      rcptParams: [''],
    });
  });
});

describe('Postfix instance', { timeout: 120_000 }, () => {
  let sink: SmtpSink | undefined;
  let postfix: PostfixInstance | undefined;

  before(async () => {
    sink = await SmtpSink.start({ port: PORT.postfixSink });
    postfix = await PostfixInstance.start({
      smtpPort: PORT.postfixSmtpd,
      settings: { transport_maps: `inline:{ example.test=smtp:[127.0.0.1]:${PORT.postfixSink} }` },
      masterLines: [`127.0.0.1:${PORT.postfixSecond} inet n - n - - smtpd`, '  -o syslog_name=postfix/second'],
    });
  });
  after(async () => {
    await postfix?.stop();
    await sink?.close();
  });

  /** The running instance and sink (before() failing makes every test fail here). */
  function running(): { postfix: PostfixInstance; sink: SmtpSink } {
    assert.ok(postfix !== undefined && sink !== undefined, 'Postfix instance did not start');
    return { postfix, sink };
  }

  test('relays 8-bit mail with a 998-octet line byte for byte, adding only Received', async () => {
    const { postfix, sink } = running();
    const original = eightBitMessage();
    const before = sink.messages.length;
    const result = await sendMail({
      port: PORT.postfixSmtpd,
      from: 'alice@sender.test',
      to: ['bob@example.test'],
      data: original,
      mailParams: 'BODY=8BITMIME',
    });
    assert.equal(result.accepted, true, JSON.stringify(result.final));
    const queueId = /^2\.0\.0 Ok: queued as ([0-9A-F]+)$/.exec(result.final.text)?.[1];
    assert.ok(queueId !== undefined, result.final.text);

    const message = (await sink.waitForCount(before + 1, DELIVERY_TIMEOUT_MS))[before];
    assert.ok(message !== undefined);
    assert.equal(message.ehlo, 'postfix.mta.test');
    assert.equal(message.mailFrom, 'alice@sender.test');
    assert.equal(message.mailParams, 'BODY=8BITMIME');
    assert.deepEqual(message.rcptTo, ['bob@example.test']);
    const added = addedPrefix(message.data, original);
    const received = new RegExp(
      String.raw`^Received: from client\.test \([^\s()]+ \[127\.0\.0\.1\]\)\r\n` +
        String.raw`\tby postfix\.mta\.test \(Postfix\) with ESMTP id ${queueId}\r\n` +
        String.raw`\tfor <bob@example\.test>; [^\r\n]+\r\n$`,
    );
    assert.match(added, received);
    await postfix.waitForMaillog(new RegExp(`${queueId}: to=<bob@example\\.test>, relay=127\\.0\\.0\\.1.*status=sent`), 5_000);
  });

  test('local submission through its sendmail command reaches the sink', async () => {
    const { postfix, sink } = running();
    const original =
      'From: Carol <carol@sender.test>\nTo: dave@example.test\nSubject: local\n' +
      'Date: Mon, 01 Jan 2024 00:00:00 +0000\nMessage-ID: <harness-2@sender.test>\n\nhello\n.dot\n';
    const before = sink.messages.length;
    const submitted = await postfix.sendmailCommand(['-f', 'carol@sender.test', 'dave@example.test'], original);
    assert.deepEqual(submitted, { code: 0, signal: null, stdout: '', stderr: '' });

    const message = (await sink.waitForCount(before + 1, DELIVERY_TIMEOUT_MS))[before];
    assert.ok(message !== undefined);
    assert.equal(message.mailFrom, 'carol@sender.test');
    assert.deepEqual(message.rcptTo, ['dave@example.test']);
    // Postfix stores lines, so LF comes out as CRLF; nothing else changes but a Received header on top.
    const added = addedPrefix(message.data, Buffer.from(original.replaceAll('\n', '\r\n')));
    assert.match(
      added,
      /^Received: by postfix\.mta\.test \(Postfix, from userid 0\)\r\n\tid [0-9A-F]+; [^\r\n]+\r\n$/,
    );
  });

  test('a delivery the sink refuses with 4xx is deferred, and flush delivers it', async () => {
    const { postfix, sink } = running();
    sink.failData('451 4.3.0 Not now', 1);
    const before = sink.messages.length;
    const data = 'Subject: later\r\n\r\nx\r\n';
    const result = await sendMail({ port: PORT.postfixSmtpd, from: 'a@sender.test', to: ['b@example.test'], data });
    const queueId = /queued as ([0-9A-F]+)$/.exec(result.final.text)?.[1];
    assert.ok(queueId !== undefined, result.final.text);
    const deferred = new RegExp(
      `${queueId}: to=<b@example\\.test>.*status=deferred ` + String.raw`\(host [^ ]+ said: 451 4\.3\.0 Not now`,
    );
    await postfix.waitForMaillog(deferred, DELIVERY_TIMEOUT_MS);
    await postfix.flush();
    const message = (await sink.waitForCount(before + 1, DELIVERY_TIMEOUT_MS))[before];
    assert.deepEqual(message?.data, sink.rejected.at(-1)?.data);
  });

  test('serves the extra master.cf listener', async () => {
    running();
    const session = await SmtpClientSession.connect({ port: PORT.postfixSecond, timeoutMs: 5_000 });
    try {
      assert.equal(session.greeting.text, 'postfix.mta.test ESMTP Postfix');
    } finally {
      await session.quit();
    }
  });

  test('stop ends every process and removes the directory', async () => {
    const { postfix: instance } = running();
    assert.notEqual(instance.processes().length, 0);
    await instance.stop();
    assert.deepEqual(instance.processes(), []);
    assert.equal(existsSync(instance.dir), false);
  });

  test('start fails with Postfix\'s reason and leaves nothing behind', async () => {
    const failure = await PostfixInstance.start({ smtpPort: PORT.postfixFailure, settings: { maillog_file: '/tmp/outside-var.log' } }).then(
      () => assert.fail('Postfix started with a maillog outside /var'),
      (error: unknown) => error,
    );
    assert.ok(failure instanceof HarnessError);
    assert.equal(failure.code, 'START_FAILED');
    assert.match(failure.message, /maillog_file value '\/tmp\/outside-var\.log' does not match any prefix/);
    const dir = /\/var\/lib\/muse-test\/postfix-\w+/.exec(failure.message)?.[0];
    assert.ok(dir !== undefined);
    assert.equal(existsSync(dir), false);
  });

  test('start fails as "address already in use" when another program holds its port, so a caller retries', async (t) => {
    const port = await freePort();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen({ host: '127.0.0.1', port }, resolve));
    t.after(() => new Promise<void>((resolve) => holder.close(() => resolve())));
    const failure = await PostfixInstance.start({ smtpPort: port }).then(
      () => assert.fail('Postfix started on a port another program holds'),
      (error: unknown) => error,
    );
    assert.ok(failure instanceof HarnessError);
    assert.equal(failure.code, 'START_FAILED');
    assert.match(failure.message, new RegExp(`\\(address already in use: port ${port} held by another program\\)`));
    assert.equal(isAddressInUse(failure), true);
  });
});

describe('Sendmail instance', { timeout: 120_000 }, () => {
  let sink: SmtpSink | undefined;
  let sendmail: SendmailInstance | undefined;

  before(async () => {
    sink = await SmtpSink.start({ port: PORT.sendmailSink });
    // A milter entry pointing at a port where nothing listens, with no F= flag: sendmail logs the failed
    // connection and goes on without it. This exercises the INPUT_MAIL_FILTER templating and the log capture.
    sendmail = await SendmailInstance.start({
      smtpPort: PORT.sendmail,
      relayPort: PORT.sendmailSink,
      milters: [{ name: 'absent', socket: `inet:${PORT.absentMilter}@127.0.0.1`, timeouts: 'C:2s;S:10s;R:10s;E:30s' }],
    });
  });
  after(async () => {
    await sendmail?.stop();
    await sink?.close();
  });

  function running(): { sendmail: SendmailInstance; sink: SmtpSink } {
    assert.ok(sendmail !== undefined && sink !== undefined, 'sendmail did not start');
    return { sendmail, sink };
  }

  test('the .cf holds the milter as given', () => {
    const { sendmail } = running();
    const cf = readFileSync(sendmail.cfPath, 'utf8');
    assert.match(cf, new RegExp(`^Xabsent, S=inet:${PORT.absentMilter}@127\\.0\\.0\\.1, T=C:2s;S:10s;R:10s;E:30s$`, 'm'));
    assert.match(cf, /^O InputMailFilters=absent$/m);
    assert.match(cf, new RegExp(`^O DaemonPortOptions=Port=${PORT.sendmail}, Addr=127\\.0\\.0\\.1, Name=MTA$`, 'm'));
  });

  test('relays mail byte for byte to the sink, adding only Received, skipping the absent milter', async () => {
    const { sendmail, sink } = running();
    const original = eightBitMessage();
    const before = sink.messages.length;
    const result = await sendMail({
      port: PORT.sendmail,
      from: 'alice@sender.test',
      to: ['bob@example.test'],
      data: original,
      mailParams: 'BODY=8BITMIME',
    });
    assert.equal(result.accepted, true, JSON.stringify(result.final));
    const queueId = /^2\.0\.0 (\w+) Message accepted for delivery$/.exec(result.final.text)?.[1];
    assert.ok(queueId !== undefined, result.final.text);

    const message = (await sink.waitForCount(before + 1, DELIVERY_TIMEOUT_MS))[before];
    assert.ok(message !== undefined);
    assert.equal(message.ehlo, 'sm.mta.test');
    assert.equal(message.mailFrom, 'alice@sender.test');
    assert.equal(message.mailParams, 'BODY=8BITMIME');
    assert.deepEqual(message.rcptTo, ['bob@example.test']);
    const added = addedPrefix(message.data, original);
    const received = new RegExp(
      String.raw`^Received: from client\.test \(sm\.mta\.test \[127\.0\.0\.1\]\)\r\n` +
        String.raw`\tby sm\.mta\.test \(8\.[0-9.]+/8\.[0-9.]+\) with ESMTP id ${queueId}\r\n` +
        String.raw`\tfor <bob@example\.test>; [^\r\n]+\r\n$`,
    );
    assert.match(added, received);
    await sendmail.waitForLog(new RegExp(`${queueId}: Milter \\(absent\\): error connecting to filter`), 5_000);
    await sendmail.waitForLog(new RegExp(`${queueId}: to=<bob@example\\.test>.*stat=Sent`), 5_000);
  });

  test('stop ends every process and removes the directory', async () => {
    const { sendmail: instance } = running();
    assert.notEqual(instance.processes().length, 0);
    await instance.stop();
    assert.deepEqual(instance.processes(), []);
    assert.equal(existsSync(instance.dir), false);
  });

  test('start fails with sendmail\'s reason when its port is taken', async (t) => {
    const squatter = await SmtpSink.start({ port: PORT.taken });
    t.after(() => squatter.close());
    const failure = await SendmailInstance.start({ smtpPort: PORT.taken, relayPort: PORT.taken, startTimeoutMs: 3_000 }).then(
      () => assert.fail('sendmail started on a taken port'),
      (error: unknown) => error,
    );
    assert.ok(failure instanceof HarnessError);
    assert.equal(failure.code, 'START_FAILED');
    assert.match(failure.message, /opendaemonsocket: daemon MTA: cannot bind: Address already in use/);
    const dir = /\/var\/lib\/muse-test\/sendmail-\w+/.exec(failure.message)?.[0];
    assert.ok(dir !== undefined);
    assert.equal(existsSync(dir), false);
  });

  test('.mc placeholders are filled, and an unknown one is refused', () => {
    assert.equal(renderSendmailMc("define(`X', `{{PORT}}')dnl {{PORT}}", { PORT: '25' }), "define(`X', `25')dnl 25");
    assert.throws(
      () => renderSendmailMc(`${DEFAULT_SENDMAIL_MC}{{TYPO}}`, { HOSTNAME: 'h', PORT: '1', RELAY_PORT: '2' }),
      (error: unknown) =>
        error instanceof HarnessError && error.code === 'INVALID_ARGUMENT' && error.message.includes('{{SERVICE_SWITCH}}'),
    );
  });
});

describe('miltertest', { timeout: 60_000 }, () => {
  test('runs a script that only echoes, with -D globals, and exits 0', async () => {
    const result = await runMiltertest({ source: 'mt.echo("hello " .. who)\n', defines: { who: 'harness' } });
    assert.deepEqual(result, { code: 0, signal: null, stdout: 'hello harness\n', stderr: '' });
  });

  test('exits 1 when an assertion fails', async () => {
    const result = await runMiltertest({ source: 'mt.echo("before")\nassert(1 == 2)\nmt.echo("after")\n' });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, 'before\n');
  });
});
