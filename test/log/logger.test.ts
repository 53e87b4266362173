/** The daemon's logger: exact line formats, severities, the per-message line, and redaction on every line. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/index.ts';
import type { LogFields } from '../../milter/src/index.ts';
import { jsonLine } from '../../src/log/line-format.ts';
import { createLogger, messageLine, type LoggerOptions, type MuseLogger } from '../../src/log/index.ts';

const NOW = new Date('2026-11-23T10:00:00.000Z');

/** A stream that keeps what is written to it. */
function collector(): Writable & { text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  return Object.assign(stream, { text: () => chunks.join('') });
}

/** A logger for the given `logging` section (YAML flow mapping), writing to a collector with a fixed clock. */
function testLogger(logging: string, options: LoggerOptions = {}): { log: MuseLogger; output: () => string } {
  const config = parseConfig(`site: { domain: example.org }\nlogging: ${logging}\n`, 'muse.yaml');
  const stream = collector();
  return { log: createLogger(config.logging, { stream, now: () => NOW, ...options }), output: () => stream.text() };
}

describe('JSON lines', () => {
  it('writes time, level, message, then the fields in order', async () => {
    const { log, output } = testLogger('{ format: json }');
    log.info('listening', { listen: 'inet:127.0.0.1:8899', connections: 0, tls: false, domains: ['a.test', 'b.test'], missing: undefined });
    await log.close();
    assert.equal(
      output(),
      '{"time":"2026-11-23T10:00:00.000Z","level":"info","message":"listening","listen":"inet:127.0.0.1:8899","connections":0,"tls":false,"domains":["a.test","b.test"]}\n',
    );
  });

  it('uses syslog severities and honours the level, also after setLevel', async () => {
    const { log, output } = testLogger('{ level: notice }');
    log.debug('d');
    log.info('i');
    log.notice('n');
    log.warn('w');
    log.error('e');
    log.setLevel('debug');
    log.debug('d2');
    await log.close();
    assert.equal(
      output(),
      [
        '{"time":"2026-11-23T10:00:00.000Z","level":"notice","message":"n"}',
        '{"time":"2026-11-23T10:00:00.000Z","level":"warning","message":"w"}',
        '{"time":"2026-11-23T10:00:00.000Z","level":"error","message":"e"}',
        '{"time":"2026-11-23T10:00:00.000Z","level":"debug","message":"d2"}',
        '',
      ].join('\n'),
    );
  });

  it('says whether debug lines are written, following setLevel', async () => {
    const { log } = testLogger('{ level: info }');
    assert.equal(log.isDebugEnabled?.(), false);
    log.setLevel('debug');
    assert.equal(log.isDebugEnabled?.(), true);
    await log.close();
  });

  it('renames fields that would replace the line’s own keys', async () => {
    const { log, output } = testLogger('{}');
    log.info('x', { level: 'fake', message: 'fake', time: 'fake', ok: 1 });
    await log.close();
    assert.equal(output(), '{"time":"2026-11-23T10:00:00.000Z","level":"info","message":"x","field_level":"fake","field_message":"fake","field_time":"fake","ok":1}\n');
  });
});

describe('JSON line text', () => {
  it('is exactly what JSON.stringify makes of the whole line, for every kind of field value', () => {
    const cases: LogFields[] = [
      {},
      { only: undefined },
      { a: 1, skipped: undefined, b: 'two' },
      { quote: 'say "hi"\n\u0001', unicode: 'Grüße 東京 \u{1F600}', lone: '\ud800' },
      { nested: { deep: [1, { x: null }], when: '2026-11-23' }, list: [undefined, 2], n: -0, big: 1e21, nan: Number.NaN },
    ];
    for (const fields of cases) {
      const expected = JSON.stringify({ time: NOW.toISOString(), level: 'info', message: 'm "q"', ...fields });
      assert.equal(jsonLine({ time: NOW, level: 'info', message: 'm "q"', fields }), expected, JSON.stringify(fields));
    }
    assert.equal(jsonLine({ message: 'no time', fields: { a: 1 } }), '{"message":"no time","a":1}');
    // The line's own keys stay first even before names that look like numbers (an object would reorder them).
    assert.equal(jsonLine({ level: 'info', message: 'm', fields: { z: 1, 10: 'ten', 2: 'two' } }), '{"level":"info","message":"m","2":"two","10":"ten","z":1}');
  });
});

describe('text lines', () => {
  it('writes time, level, message and key=value pairs, quoting only where needed', async () => {
    const { log, output } = testLogger('{ format: text }');
    log.warn('cannot reach\nresolver', { server: '127.0.0.1:53', reason: 'timed out', domains: ['a.test', 'b.test'], nested: { a: 1 }, empty: '', quote: 'say "hi"', n: 3 });
    await log.close();
    assert.equal(
      output(),
      '2026-11-23T10:00:00.000Z warning cannot reach\\nresolver server=127.0.0.1:53 reason="timed out" domains=a.test,b.test nested={"a":1} empty="" quote="say \\"hi\\"" n=3\n',
    );
  });
});

describe('messageLine', () => {
  it('writes exactly one info line with the summary fields in a fixed order', async () => {
    const { log, output } = testLogger('{}');
    messageLine(log, {
      queueId: '4F2A1',
      direction: 'outbound',
      senderDomain: 'example.org',
      recipientDomains: ['partner.test', 'other.test'],
      action: 'encrypted',
      reason: 'policy required',
      keys: ['862933CBAF2F61E09CDAF7852A7F6FF72EE99B9A'],
      dnssec: true,
      durationMs: 12.6,
    });
    await log.close();
    assert.equal(
      output(),
      '{"time":"2026-11-23T10:00:00.000Z","level":"info","message":"message processed","queueId":"4F2A1","direction":"outbound","senderDomain":"example.org",' +
        '"recipientDomains":["partner.test","other.test"],"action":"encrypted","reason":"policy required","keys":["862933CBAF2F61E09CDAF7852A7F6FF72EE99B9A"],' +
        '"dnssec":true,"durationMs":13}\n',
    );
  });

  it('leaves out what is unknown, in text format too', async () => {
    const { log, output } = testLogger('{ format: text }');
    messageLine(log, {
      queueId: undefined,
      direction: 'inbound',
      senderDomain: undefined,
      recipientDomains: ['example.org'],
      action: 'clear',
      reason: 'not encrypted',
      keys: [],
      dnssec: undefined,
      durationMs: 3,
    });
    await log.close();
    assert.equal(output(), '2026-11-23T10:00:00.000Z info message processed direction=inbound recipientDomains=example.org action=clear reason="not encrypted" keys="" durationMs=3\n');
  });
});

describe('redaction on every line', () => {
  const ARMORED_KEY = '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxVgEZ0Example\n-----END PGP PRIVATE KEY BLOCK-----\n';

  it('never writes a body, a private key or a Subject, whatever the field is called', async () => {
    const { log, output } = testLogger('{}');
    log.error(`failed to load ${ARMORED_KEY}`, {
      body: 'Dear Bob, the launch codes are ...',
      bodyBytes: 34,
      privateKey: { armored: ARMORED_KEY },
      keyFile: '/etc/muse-milter/keys/example.org.private.asc',
      note: ARMORED_KEY,
      subject: 'Merger with ACME',
      chunk: Buffer.from('raw message bytes'),
      keys: ['862933CBAF2F61E09CDAF7852A7F6FF72EE99B9A'],
    });
    await log.close();
    assert.equal(
      output(),
      '{"time":"2026-11-23T10:00:00.000Z","level":"error","message":"[redacted]","body":"[redacted]","bodyBytes":34,"privateKey":"[redacted]",' +
        '"keyFile":"/etc/muse-milter/keys/example.org.private.asc","note":"[redacted]","subject":"[redacted]","chunk":"[redacted] 17 bytes",' +
        '"keys":["862933CBAF2F61E09CDAF7852A7F6FF72EE99B9A"]}\n',
    );
    assert.doesNotMatch(output(), /BEGIN PGP|launch codes|ACME|raw message/);
  });
});
