/**
 * The DNS transport against a dns2 authoritative server on loopback (ephemeral ports): EDNS0/DO in the query,
 * long TXT, truncation then TCP, slow, stalled and refusing servers, SERVFAIL, NXDOMAIN/NODATA, garbage, spoofed
 * and oversized answers, IPv6, and the time bounds of every path.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { Packet } from 'dns2';
import { DnsError, DnsTransport, judgeDnssec, parseServerAddress, RR_TYPE } from '../../src/dns/index.ts';
import type { DnsResponse, TransportOptions } from '../../src/dns/index.ts';
import {
  rawReply,
  reply,
  startFakeDns,
  zoneHandler,
  type FakeDnsServer,
  type FakeHandler,
} from '../support/dns-servers.ts';

const NAME = '_muse.example.test';
const servers: FakeDnsServer[] = [];

async function serve(handler: FakeHandler, host?: string): Promise<FakeDnsServer> {
  const server = await startFakeDns(handler, host);
  servers.push(server);
  return server;
}

function transport(addresses: readonly string[], options: Partial<TransportOptions> = {}): DnsTransport {
  return new DnsTransport({
    servers: addresses.map((a) => parseServerAddress(a)),
    udpTimeoutMs: 300,
    tcpTimeoutMs: 300,
    tries: 2,
    deadlineMs: 5000,
    ...options,
  });
}

async function rejection(promise: Promise<unknown>): Promise<DnsError> {
  const error = await promise.then(
    () => assert.fail('expected a DnsError'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof DnsError, `expected DnsError, got ${String(error)}`);
  return error;
}

function txtStrings(response: DnsResponse): string[][] {
  return response.records.map((r) => (r.kind === 'txt' ? [...r.strings] : []));
}

after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('DnsTransport query', () => {
  it('asks one question with RD, AD, EDNS0 payload 1232 and the DO bit', async () => {
    const server = await serve(zoneHandler([{ name: NAME, type: RR_TYPE.TXT, data: ['v=MUSE1'] }]));
    const response = await transport([server.address]).query(NAME, RR_TYPE.TXT);
    assert.equal(response.outcome, 'answer');
    const query = server.queries[0]?.packet;
    assert.ok(query);
    assert.equal(server.queries[0]?.via, 'udp');
    assert.equal(query.header.rd, 1);
    assert.equal((query.header as { ad?: number }).ad, 1);
    assert.deepEqual(
      query.questions.map((q) => [q.name, q.type, q.class]),
      [[NAME, 16, 1]],
    );
    const opt = query.additionals.find((r) => r.type === Packet.TYPE.EDNS);
    assert.ok(opt, 'OPT record present');
    assert.equal(opt.class, 1232);
    assert.equal(opt.doFlag, true);
  });

  it('returns a 610-byte TXT record as its three character-strings', async () => {
    const strings = ['a'.repeat(255), 'b'.repeat(255), 'c'.repeat(100)];
    const server = await serve(zoneHandler([{ name: NAME, type: RR_TYPE.TXT, ttl: 120, data: strings }]));
    const response = await transport([server.address]).query(NAME, RR_TYPE.TXT);
    assert.deepEqual(txtStrings(response), [strings]);
    assert.equal(response.ttl, 120);
    assert.equal(response.transport, 'udp');
    assert.equal(response.server, server.address);
  });

  it('retries over TCP when the UDP answer is truncated (2.5 KB TXT)', async () => {
    const strings = Array.from({ length: 10 }, (_, i) => String(i).repeat(255));
    const server = await serve(zoneHandler([{ name: NAME, type: RR_TYPE.TXT, data: strings }]));
    const response = await transport([server.address]).query(NAME, RR_TYPE.TXT);
    assert.equal(response.transport, 'tcp');
    assert.deepEqual(txtStrings(response), [strings]);
    assert.deepEqual(
      server.queries.map((q) => q.via),
      ['udp', 'tcp'],
    );
  });

  it('reads an answer near the 64 KiB TCP message limit completely', async () => {
    const strings = Array.from({ length: 250 }, () => 'x'.repeat(255));
    const server = await serve(zoneHandler([{ name: NAME, type: RR_TYPE.TXT, data: strings }]));
    const response = await transport([server.address]).query(NAME, RR_TYPE.TXT);
    assert.equal(response.transport, 'tcp');
    assert.equal(txtStrings(response)[0]?.join('').length, 250 * 255);
  });

  it('returns KEY and OPENPGPKEY RDATA as the exact octets', async () => {
    const keyRdata = Buffer.from([0x02, 0x00, 0x02, 0xfd, 1, 2, 3]);
    const pgpRdata = Buffer.from('99 00 0d'.replace(/ /g, ''), 'hex');
    const server = await serve(
      zoneHandler([
        { name: NAME, type: RR_TYPE.KEY, data: keyRdata },
        { name: NAME, type: RR_TYPE.OPENPGPKEY, data: pgpRdata },
      ]),
    );
    const t = transport([server.address]);
    const key = await t.query(NAME, RR_TYPE.KEY);
    const pgp = await t.query(NAME, RR_TYPE.OPENPGPKEY);
    assert.deepEqual(key.records, [{ kind: 'raw', type: 25, ttl: 300, rdata: keyRdata }]);
    assert.deepEqual(pgp.records, [{ kind: 'raw', type: 61, ttl: 300, rdata: pgpRdata }]);
  });

  it('reports NXDOMAIN and NODATA as answers with the RFC 2308 negative TTL', async () => {
    const server = await serve(zoneHandler([{ name: NAME, type: RR_TYPE.TXT, data: ['x'] }], { negativeTtl: 42 }));
    const t = transport([server.address]);
    const nx = await t.query('_muse.absent.test', RR_TYPE.TXT);
    assert.equal(nx.outcome, 'nxdomain');
    assert.equal(nx.ttl, 42);
    assert.deepEqual(nx.records, []);
    const nodata = await t.query(NAME, RR_TYPE.OPENPGPKEY);
    assert.equal(nodata.outcome, 'nodata');
    assert.equal(nodata.ttl, 42);
  });

  it('follows a CNAME inside the answer and ignores records at other names', async () => {
    const server = await serve((query) => {
      const response = reply(query, {
        answers: [
          { name: '_muse.provider.test', type: RR_TYPE.TXT, ttl: 30, data: ['target'] },
          { name: '_muse.elsewhere.test', type: RR_TYPE.TXT, data: ['stray'] },
        ],
      });
      // dns2 encodes a CNAME from its `domain` field, which the fake records do not carry.
      response.answers.unshift({ name: NAME, type: Packet.TYPE.CNAME, class: 1, ttl: 60, domain: '_muse.provider.test' } as never);
      return response;
    });
    const response = await transport([server.address]).query(NAME, RR_TYPE.TXT);
    assert.deepEqual(txtStrings(response), [['target']]);
    assert.equal(response.ttl, 30);
  });

  it('turns SERVFAIL into a temporary DNS_SERVFAIL and does not ask that server again', async () => {
    const server = await serve((query) => reply(query, { rcode: Packet.RCODE.SERVFAIL }));
    const error = await rejection(transport([server.address], { tries: 3 }).query(NAME, RR_TYPE.TXT));
    assert.equal(error.code, 'DNS_SERVFAIL');
    assert.equal(error.temporary, true);
    assert.equal(server.queries.length, 1);
    assert.deepEqual(
      error.attempts.map((a) => [a.server, a.transport, a.outcome]),
      [[server.address, 'udp', 'servfail']],
    );
  });

  it('turns REFUSED into DNS_REFUSED after asking the next server', async () => {
    const refusing = await serve((query) => reply(query, { rcode: Packet.RCODE.REFUSED }));
    const failing = await serve((query) => reply(query, { rcode: Packet.RCODE.NOTIMP }));
    const error = await rejection(transport([refusing.address, failing.address]).query(NAME, RR_TYPE.TXT));
    assert.equal(error.code, 'DNS_REFUSED');
    assert.deepEqual(
      error.attempts.map((a) => a.detail),
      ['REFUSED', 'NOTIMP'],
    );
  });

  it('asks servers in order and stops at the first answer', async () => {
    const first = await serve(zoneHandler([{ name: NAME, type: RR_TYPE.TXT, data: ['first'] }]));
    const second = await serve(zoneHandler([{ name: NAME, type: RR_TYPE.TXT, data: ['second'] }]));
    const response = await transport([first.address, second.address]).query(NAME, RR_TYPE.TXT);
    assert.deepEqual(txtStrings(response), [['first']]);
    assert.equal(second.queries.length, 0);
  });

  it('moves on from a slow server (answer after the per-try timeout) to the next one', async () => {
    // The slow server answers only once the client has moved on to the next server, so its answer comes after
    // the per-try timeout whatever the machine's speed.
    let movedOn: () => void = () => {};
    const asked = new Promise<void>((resolve) => (movedOn = resolve));
    const slow = await serve(async (query) => {
      await asked;
      return reply(query, { answers: [{ name: NAME, type: RR_TYPE.TXT, data: ['slow'] }] });
    });
    const answerFast = zoneHandler([{ name: NAME, type: RR_TYPE.TXT, data: ['fast'] }]);
    const fast = await serve((query, via) => {
      movedOn();
      return answerFast(query, via);
    });
    const response = await transport([slow.address, fast.address], { udpTimeoutMs: 150 }).query(NAME, RR_TYPE.TXT);
    assert.deepEqual(txtStrings(response), [['fast']]);
    assert.equal(response.server, fast.address);
  });

  it('gives up on a stalled server after the configured tries with DNS_TIMEOUT', async () => {
    const stalled = await serve(() => undefined);
    const error = await rejection(transport([stalled.address], { udpTimeoutMs: 100, tries: 3 }).query(NAME, RR_TYPE.TXT));
    assert.equal(error.code, 'DNS_TIMEOUT');
    assert.equal(error.temporary, true);
    assert.equal(stalled.queries.length, 3);
    assert.deepEqual(
      error.attempts.map((a) => a.outcome),
      ['timeout', 'timeout', 'timeout'],
    );
  });

  it('bounds the TCP leg by its own timeout when the server accepts and then says nothing', async () => {
    // Truncation forced: over UDP an empty answer with TC set; over TCP, silence.
    const truncating = await serve((query, via) => {
      if (via === 'tcp') return undefined;
      const response = reply(query);
      response.header.tc = 1;
      return response;
    });
    const error = await rejection(
      transport([truncating.address], { udpTimeoutMs: 1000, tcpTimeoutMs: 150, tries: 1 }).query(NAME, RR_TYPE.TXT),
    );
    assert.equal(error.code, 'DNS_TIMEOUT');
    assert.deepEqual(
      error.attempts.map((a) => [a.transport, a.outcome]),
      [['tcp', 'timeout']],
    );
  });

  it('stops at the overall deadline even when per-try timeouts would allow more', async () => {
    const a = await serve(() => undefined);
    const b = await serve(() => undefined);
    const error = await rejection(
      transport([a.address, b.address], { udpTimeoutMs: 2000, tries: 5, deadlineMs: 200 }).query(NAME, RR_TYPE.TXT),
    );
    assert.equal(error.code, 'DNS_DEADLINE');
    assert.equal(error.temporary, true);
    assert.equal(b.queries.length, 0, 'the deadline ran out during the first try');
  });

  it('skips a server that refuses the connection (closed port) and asks the next', async () => {
    const gone = await startFakeDns(() => undefined);
    await gone.close();
    const alive = await serve(zoneHandler([{ name: NAME, type: RR_TYPE.TXT, data: ['alive'] }]));
    const response = await transport([gone.address, alive.address], { udpTimeoutMs: 2000 }).query(NAME, RR_TYPE.TXT);
    assert.deepEqual(txtStrings(response), [['alive']]);
  });

  it('ignores datagrams with a wrong ID, a wrong question or no DNS at all, and takes the real answer', async () => {
    const server = await serve((query) => [
      rawReply(query, { id: (query.header.id + 1) & 0xffff, answers: [{ name: NAME, type: 16, rdata: Buffer.from('\x05wrong') }] }),
      rawReply(query, { questionName: '_muse.other.test', answers: [{ name: '_muse.other.test', type: 16, rdata: Buffer.from('\x05other') }] }),
      Buffer.from('not dns'),
      reply(query, { answers: [{ name: NAME, type: RR_TYPE.TXT, data: ['right'] }] }),
    ]);
    const response = await transport([server.address]).query(NAME, RR_TYPE.TXT);
    assert.deepEqual(txtStrings(response), [['right']]);
  });

  it('times out when only spoofed datagrams arrive', async () => {
    const server = await serve((query) =>
      rawReply(query, { id: (query.header.id + 1) & 0xffff, answers: [{ name: NAME, type: 16, rdata: Buffer.from('\x05wrong') }] }),
    );
    const error = await rejection(transport([server.address], { udpTimeoutMs: 100, tries: 1 }).query(NAME, RR_TYPE.TXT));
    assert.equal(error.code, 'DNS_TIMEOUT');
    assert.match(error.message, /1 unrelated datagram/);
  });

  it('rejects a TCP answer with the wrong ID as a bad response', async () => {
    const server = await serve((query, via) => {
      if (via === 'udp') {
        const response = reply(query);
        response.header.tc = 1;
        return response;
      }
      return rawReply(query, { id: (query.header.id + 7) & 0xffff });
    });
    const error = await rejection(transport([server.address], { tries: 2 }).query(NAME, RR_TYPE.TXT));
    assert.equal(error.code, 'DNS_BAD_RESPONSE');
    assert.equal(server.queries.length, 2, 'one UDP and one TCP query; a broken server is not asked again');
  });

  it('reports TXT RDATA that overruns itself as malformed and keeps the good records', async () => {
    const server = await serve((query) =>
      rawReply(query, {
        answers: [
          { name: NAME, type: 16, rdata: Buffer.from([200, 0x41, 0x42]) },
          { name: NAME, type: 16, rdata: Buffer.from('\x04good') },
        ],
      }),
    );
    const response = await transport([server.address]).query(NAME, RR_TYPE.TXT);
    assert.equal(response.outcome, 'answer');
    assert.deepEqual(txtStrings(response), [['good']]);
    assert.equal(response.malformed.length, 1);
    assert.match(response.malformed[0] ?? '', /overruns/);
  });

  it('reports an answer whose only record is garbage as an answer with no records and one malformed entry', async () => {
    const server = await serve((query) => rawReply(query, { answers: [{ name: NAME, type: 16, rdata: Buffer.from([9]) }] }));
    const response = await transport([server.address]).query(NAME, RR_TYPE.TXT);
    assert.equal(response.outcome, 'answer');
    assert.deepEqual(response.records, []);
    assert.equal(response.malformed.length, 1);
  });

  it('does not blame the asked type for a broken record of another type (an RRSIG) in the answer', async () => {
    const server = await serve((query) =>
      rawReply(query, {
        answers: [
          { name: NAME, type: 16, rdata: Buffer.from('\x04good') },
          { name: NAME, type: 46, rdata: Buffer.from([0, 16, 15, 3, 0]) },
        ],
      }),
    );
    const response = await transport([server.address]).query(NAME, RR_TYPE.TXT);
    assert.deepEqual(txtStrings(response), [['good']]);
    assert.deepEqual(response.malformed, []);
  });

  it('treats a message whose answer section cannot be read as a bad response', async () => {
    const server = await serve((query) => {
      const bytes = rawReply(query, { answers: [{ name: NAME, type: 16, rdata: Buffer.from('\x02ok') }] });
      // Cut the message inside the answer's owner name: the rest of the message is unreadable.
      return bytes.subarray(0, bytes.length - 14);
    });
    const error = await rejection(transport([server.address], { tries: 1 }).query(NAME, RR_TYPE.TXT));
    assert.equal(error.code, 'DNS_BAD_RESPONSE');
  });

  it('works with a resolver on IPv6 loopback, UDP and TCP', async () => {
    const strings = Array.from({ length: 8 }, () => 'y'.repeat(255));
    const server = await serve(
      zoneHandler([
        { name: NAME, type: RR_TYPE.TXT, data: strings },
        { name: '_muse.short.test', type: RR_TYPE.TXT, data: ['short'] },
      ]),
      '::1',
    );
    assert.match(server.address, /^\[::1\]:\d+$/);
    const t = transport([server.address]);
    const short = await t.query('_muse.short.test', RR_TYPE.TXT);
    assert.equal(short.transport, 'udp');
    const long = await t.query(NAME, RR_TYPE.TXT);
    assert.equal(long.transport, 'tcp');
    assert.deepEqual(txtStrings(long), [strings]);
  });

  it('reports the AD flag, trusted from a loopback resolver', async () => {
    const server = await serve(zoneHandler([{ name: NAME, type: RR_TYPE.TXT, data: ['x'] }], { ad: true }));
    const response = await transport([server.address]).query(NAME, RR_TYPE.TXT);
    assert.equal(response.authenticData, true);
    assert.equal(response.dnssec.authenticated, true);
    const plain = await serve(zoneHandler([{ name: NAME, type: RR_TYPE.TXT, data: ['x'] }]));
    const unsigned = await transport([plain.address]).query(NAME, RR_TYPE.TXT);
    assert.equal(unsigned.authenticData, false);
    assert.equal(unsigned.dnssec.authenticated, false);
  });

  it('rejects names that cannot be asked with a permanent DNS_BAD_NAME', async () => {
    const t = transport(['127.0.0.1:9']);
    for (const name of ['', 'a..b', `${'x'.repeat(64)}.test`, 'sp ace.test', `${'abcdefghi.'.repeat(26)}test`]) {
      const error = await rejection(t.query(name, RR_TYPE.TXT));
      assert.equal(error.code, 'DNS_BAD_NAME', name);
      assert.equal(error.temporary, false);
    }
  });
});

describe('judgeDnssec', () => {
  it('believes AD only from a loopback resolver and says why otherwise', () => {
    assert.deepEqual(judgeDnssec(true, parseServerAddress('127.0.0.1:5300')), {
      authenticated: true,
      reason: 'AD set by the loopback resolver 127.0.0.1:5300',
    });
    assert.deepEqual(judgeDnssec(true, parseServerAddress('[::1]:53')), {
      authenticated: true,
      reason: 'AD set by the loopback resolver [::1]:53',
    });
    assert.deepEqual(judgeDnssec(true, parseServerAddress('192.0.2.53')), {
      authenticated: false,
      reason: 'AD set by 192.0.2.53:53 but ignored: only a validating resolver on loopback is trusted',
    });
    assert.deepEqual(judgeDnssec(false, parseServerAddress('127.0.0.53')), {
      authenticated: false,
      reason: 'resolver 127.0.0.53:53 did not set AD: the answer is not DNSSEC-validated',
    });
  });
});
