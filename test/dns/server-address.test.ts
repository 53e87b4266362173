/** Resolver address parsing (`host:port`, IPv6 in brackets) and the loopback test that gates trust in AD. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DnsError, isLoopbackAddress, parseServerAddress } from '../../src/dns/index.ts';

describe('parseServerAddress', () => {
  const cases: [string, string, number, 4 | 6, boolean, string][] = [
    ['127.0.0.1', '127.0.0.1', 53, 4, true, '127.0.0.1:53'],
    ['127.0.0.1:5300', '127.0.0.1', 5300, 4, true, '127.0.0.1:5300'],
    ['192.0.2.1:53', '192.0.2.1', 53, 4, false, '192.0.2.1:53'],
    ['::1', '::1', 53, 6, true, '[::1]:53'],
    ['[::1]', '::1', 53, 6, true, '[::1]:53'],
    ['[::1]:5300', '::1', 5300, 6, true, '[::1]:5300'],
    ['[2001:db8::53]:853', '2001:db8::53', 853, 6, false, '[2001:db8::53]:853'],
    ['2001:db8::53', '2001:db8::53', 53, 6, false, '[2001:db8::53]:53'],
  ];
  for (const [input, host, port, family, loopback, text] of cases) {
    it(`parses ${input}`, () => {
      assert.deepEqual(parseServerAddress(input), { host, port, family, loopback, text });
    });
  }

  for (const bad of ['', 'localhost', 'localhost:53', '127.0.0.1:', '127.0.0.1:0', '127.0.0.1:65536', '[::1]:x', '1.2.3:53', '[127.0.0.1', 'ns.example.test:53']) {
    it(`refuses "${bad}" with DNS_BAD_SERVER`, () => {
      assert.throws(
        () => parseServerAddress(bad),
        (error: unknown) => error instanceof DnsError && error.code === 'DNS_BAD_SERVER' && !error.temporary,
      );
    });
  }
});

describe('isLoopbackAddress', () => {
  it('accepts 127.0.0.0/8, ::1 in any spelling, and IPv4-mapped loopback', () => {
    for (const address of ['127.0.0.1', '127.0.0.53', '127.255.255.254', '::1', '0:0:0:0:0:0:0:1', '0000::0001', '::ffff:127.0.0.1', '0:0:0:0:0:ffff:127.1.2.3']) {
      assert.equal(isLoopbackAddress(address), true, address);
    }
  });
  it('refuses everything else', () => {
    for (const address of ['128.0.0.1', '10.0.0.1', '::', '::2', '1::1', 'fe80::1', '::ffff:10.0.0.1', 'localhost', '']) {
      assert.equal(isLoopbackAddress(address), false, address);
    }
  });
});
