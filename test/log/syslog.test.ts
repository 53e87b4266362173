/**
 * Logging to syslog: the exact RFC 3164 datagrams on a unix datagram socket (as /dev/log) and over UDP, and a
 * missing socket reported once without bringing the process down. The receiving sockets are bound by the test:
 * a unix socket in a temporary directory, UDP on 127.0.0.1 port 0.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger, messageLine } from '../../src/log/index.ts';

/** The part of unix-dgram (winston-syslog's optional dependency for unix sockets) the test uses to listen. */
interface UnixDatagramSocket {
  bind(path: string): void;
  close(): void;
}
const unixDgram = createRequire(import.meta.url)('unix-dgram') as {
  createSocket(type: 'unix_dgram', onMessage: (message: Buffer) => void): UnixDatagramSocket;
};

/** Bound on waiting for datagrams; they arrive within milliseconds. */
const RECEIVE_TIMEOUT_MS = 5000;

/** An RFC 3164 timestamp: `Nov 23 10:00:00`, the day padded with a space. */
const BSD_TIME = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123]\\d \\d\\d:\\d\\d:\\d\\d';

/** Collects datagrams and lets a test wait for a number of them. */
function inbox(): { push(message: Buffer): void; wait(count: number): Promise<string[]> } {
  const messages: string[] = [];
  let wake = (): void => undefined;
  return {
    push(message) {
      messages.push(message.toString('utf8'));
      wake();
    },
    async wait(count) {
      const deadline = Date.now() + RECEIVE_TIMEOUT_MS;
      while (messages.length < count) {
        assert.ok(Date.now() < deadline, `received ${messages.length} of ${count} datagrams: ${JSON.stringify(messages)}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
      }
      return messages;
    },
  };
}

function loggingConfig(syslog: string, format = 'json') {
  return parseConfig(`site: { domain: example.org }\nlogging: { target: syslog, format: ${format}, syslog: ${syslog} }\n`, 'muse.yaml').logging;
}

describe('syslog over a unix datagram socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'muse-syslog-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('sends one RFC 3164 datagram per line, facility mail, without host name or time in the text', async (t) => {
    const path = join(dir, 'log');
    const received = inbox();
    const server = unixDgram.createSocket('unix_dgram', (message) => received.push(message));
    server.bind(path);
    t.after(() => server.close());

    const log = createLogger(loggingConfig(`{ path: ${path}, appName: muse-test }`));
    log.info('hello', { queueId: 'Q1' });
    log.warn('slow resolver');
    log.error('cannot decrypt', { body: 'secret text' });
    messageLine(log, {
      queueId: 'Q1',
      direction: 'inbound',
      senderDomain: 'partner.test',
      recipientDomains: ['example.org'],
      action: 'decrypted',
      reason: 'site key',
      keys: ['AB12'],
      dnssec: true,
      durationMs: 5,
    });
    await log.close();

    const lead = (priority: number): string => `^<${priority}>${BSD_TIME} muse-test\\[${process.pid}\\]: `;
    const [info, warning, error, summary] = await received.wait(4);
    // Priority = facility × 8 + severity: mail (2) × 8 + info (6) = 22, warning (4) = 20, error (3) = 19.
    assert.match(info ?? '', new RegExp(`${lead(22)}\\{"level":"info","message":"hello","queueId":"Q1"\\}$`));
    assert.match(warning ?? '', new RegExp(`${lead(20)}\\{"level":"warning","message":"slow resolver"\\}$`));
    assert.match(error ?? '', new RegExp(`${lead(19)}\\{"level":"error","message":"cannot decrypt","body":"\\[redacted\\]"\\}$`));
    assert.match(
      summary ?? '',
      new RegExp(
        `${lead(22)}\\{"level":"info","message":"message processed","queueId":"Q1","direction":"inbound","senderDomain":"partner.test",` +
          `"recipientDomains":\\["example.org"\\],"action":"decrypted","reason":"site key","keys":\\["AB12"\\],"dnssec":true,"durationMs":5\\}$`,
      ),
    );
  });

  it('writes text lines without time and level, under the configured facility', async (t) => {
    const path = join(dir, 'log-text');
    const received = inbox();
    const server = unixDgram.createSocket('unix_dgram', (message) => received.push(message));
    server.bind(path);
    t.after(() => server.close());

    const log = createLogger(loggingConfig(`{ path: ${path}, facility: local3 }`, 'text'));
    log.notice('configuration reloaded', { file: '/etc/muse-milter/muse.yaml' });
    await log.close();
    const [line] = await received.wait(1);
    // local3 (19) × 8 + notice (5) = 157.
    assert.match(line ?? '', new RegExp(`^<157>${BSD_TIME} muse-milter\\[${process.pid}\\]: configuration reloaded file=/etc/muse-milter/muse.yaml$`));
  });

  it('reports a missing socket once on the error stream and goes on', async () => {
    const errors: string[] = [];
    const errorStream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        errors.push(chunk.toString('utf8'));
        callback();
      },
    });
    const log = createLogger(loggingConfig(`{ path: ${join(dir, 'nobody-listens')} }`), { errors: errorStream });
    log.info('one');
    log.info('two');
    log.info('three');
    await log.close();
    assert.deepEqual(errors, ['muse-milter: cannot write the log (ENOENT); lines are being lost\n']);
  });
});

describe('syslog over UDP', () => {
  it('sends RFC 3164 datagrams with this host name to the configured server', async (t) => {
    const received = inbox();
    const server = createSocket('udp4', (message) => received.push(message));
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
    t.after(() => server.close());

    const log = createLogger(loggingConfig(`{ host: 127.0.0.1, port: ${server.address().port}, appName: muse-udp }`));
    log.info('over udp', { n: 1 });
    const [line] = await received.wait(1);
    await log.close();
    const escapedHost = hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(line ?? '', new RegExp(`^<22>${BSD_TIME} ${escapedHost} muse-udp\\[${process.pid}\\]: \\{"level":"info","message":"over udp","n":1\\}$`));
  });
});
