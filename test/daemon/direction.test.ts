import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NetworkList, parseNetwork, senderNetwork } from '../../src/net/cidr.ts';
import { DirectionClassifier } from '../../src/daemon/direction.ts';

describe('network lists', () => {
  const list = new NetworkList(['127.0.0.0/8', '10.1.0.0/16', '192.0.2.7', '2001:db8:a::/48', '::1/128', '198.51.100.128/25']);
  const cases: Array<[string, boolean]> = [
    ['127.0.0.1', true],
    ['127.255.255.254', true],
    ['128.0.0.1', false],
    ['10.1.200.3', true],
    ['10.2.0.1', false],
    ['192.0.2.7', true],
    ['192.0.2.8', false],
    ['198.51.100.128', true],
    ['198.51.100.127', false],
    ['2001:db8:a:ffff::1', true],
    ['2001:db8:b::1', false],
    ['::1', true],
    ['::2', false],
    ['::ffff:127.0.0.1', true],
    ['::ffff:7f00:1', true],
    ['::ffff:8.8.8.8', false],
    ['not-an-ip', false],
  ];
  for (const [address, expected] of cases) {
    test(`${address} → ${expected}`, () => assert.equal(list.contains(address), expected));
  }
  test('invalid networks are refused with the text', () => {
    assert.throws(() => parseNetwork('10.0.0.0/33'), /'10.0.0.0\/33' has an invalid prefix length/);
    assert.throws(() => parseNetwork('example.org/8'), /'example.org\/8' is not an IP network/);
    assert.throws(() => parseNetwork('::1/129'), /invalid prefix length/);
    assert.throws(() => parseNetwork('10.0.0.0/08'), /'10.0.0.0\/08' has an invalid prefix length/);
    assert.throws(() => parseNetwork('10.0.0.0/+8'), /invalid prefix length/);
    assert.throws(() => parseNetwork('10.0.0.0/8/8'), /'10.0.0.0\/8\/8' is not an IP network/);
    // Legacy IPv4 spellings that lenient parsers take as 127.0.0.1 are not addresses here.
    assert.throws(() => parseNetwork('127.1/8'), /is not an IP network/);
    assert.throws(() => parseNetwork('0x7f.0.0.1'), /is not an IP network/);
  });

  test('an address with a zone index is the address; a NAT64 address is IPv6, not the IPv4 inside it; legacy spellings match nothing', () => {
    const local = new NetworkList(['fe80::/10', '192.0.2.0/24']);
    assert.equal(local.contains('fe80::1%eth0'), true);
    assert.equal(local.contains('64:ff9b::192.0.2.1'), false);
    assert.equal(local.contains('::ffff:c000:201'), true);
    assert.equal(list.contains('127.1'), false);
    assert.equal(list.contains('0177.0.0.1'), false);
  });
});

describe('direction', () => {
  const classifier = new DirectionClassifier({
    internalNetworks: ['127.0.0.0/8', '::1', '10.0.0.0/8'],
    authenticatedIsOutbound: true,
    outboundDaemonNames: ['ORIGINATING'],
    inboundDaemonNames: ['MX'],
    default: 'inbound',
  });
  const cases: Array<{ facts: Parameters<DirectionClassifier['classify']>[0]; expected: ReturnType<DirectionClassifier['classify']> }> = [
    { facts: { clientAddress: '10.0.0.5', daemonName: 'MX', authenticatedAs: 'alice' }, expected: { direction: 'inbound', reason: 'daemon MX' } },
    { facts: { clientAddress: '203.0.113.9', daemonName: 'ORIGINATING', authenticatedAs: undefined }, expected: { direction: 'outbound', reason: 'daemon ORIGINATING' } },
    { facts: { clientAddress: '203.0.113.9', daemonName: 'smtpd', authenticatedAs: 'alice' }, expected: { direction: 'outbound', reason: 'authenticated client' } },
    { facts: { clientAddress: '203.0.113.9', daemonName: undefined, authenticatedAs: '' }, expected: { direction: 'inbound', reason: 'default' } },
    { facts: { clientAddress: '10.9.8.7', daemonName: undefined, authenticatedAs: undefined }, expected: { direction: 'outbound', reason: 'internal network 10.9.8.7' } },
    { facts: { clientAddress: undefined, daemonName: undefined, authenticatedAs: undefined }, expected: { direction: 'outbound', reason: 'local submission' } },
  ];
  for (const { facts, expected } of cases) {
    test(`${JSON.stringify(facts)} → ${expected.direction} (${expected.reason})`, () => assert.deepEqual(classifier.classify(facts), expected));
  }
  test('authenticated clients stay inbound when authenticatedIsOutbound is off', () => {
    const strict = new DirectionClassifier({ internalNetworks: [], authenticatedIsOutbound: false, outboundDaemonNames: [], inboundDaemonNames: [], default: 'inbound' });
    assert.deepEqual(strict.classify({ clientAddress: '203.0.113.9', daemonName: undefined, authenticatedAs: 'alice' }), { direction: 'inbound', reason: 'default' });
  });
});

describe('sender networks (the key of a sender\'s CPU account)', () => {
  test('keeps an IPv4 address whole, takes an IPv4-mapped IPv6 address as IPv4, and an IPv6 address by its /64', () => {
    assert.equal(senderNetwork('192.0.2.25'), '192.0.2.25');
    assert.equal(senderNetwork('::ffff:192.0.2.25'), '192.0.2.25');
    assert.equal(senderNetwork('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(senderNetwork('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(senderNetwork('2001:db8:1:3::1'), '2001:db8:1:3::/64');
    assert.equal(senderNetwork('::1'), '0:0:0:0::/64');
    assert.equal(senderNetwork('::ffff:c000:219'), '192.0.2.25', 'the mapped address in hex is the same sender');
    assert.equal(senderNetwork('2001:db8:1:2::1%eth0'), '2001:db8:1:2::/64');
  });

  test('gives nothing for what is not an IP address', () => {
    assert.equal(senderNetwork('localhost'), undefined);
    assert.equal(senderNetwork(''), undefined);
    assert.equal(senderNetwork('127.1'), undefined);
  });
});
