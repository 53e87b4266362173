/**
 * Attack: an outside client whose address, written another way, reads as one of the internal networks, so that its
 * mail is taken as outbound and signed (and encrypted) with the site's key as the site's own. The client address
 * comes from the MTA as the peer's address, in any of the spellings IPv6 allows. The default internal networks
 * are 127.0.0.0/8 and ::1: only the loopback addresses and their IPv4-mapped spelling (::ffff:127.0.0.1, also in
 * hex) are inside; the NAT64 (64:ff9b::/96) and IPv4-compatible (::a.b.c.d) spellings of 127.0.0.1 are other
 * hosts, and a zone index names an interface, not another address.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MuseZone } from '../daemon/support/muse-zone.ts';
import { makeSite, sendOne, startMuse, type RunningMuse, type TestMessage, type TestSite } from '../daemon/support/harness.ts';

const HEADERS = [
  { name: 'From', value: ' Mallory <ceo@site.test>' },
  { name: 'To', value: ' Bob <bob@b.test>' },
  { name: 'Subject', value: ' Wire the money' },
  { name: 'Message-ID', value: ' <spelling@a.test>' },
];

let zone: MuseZone;
let ours: TestSite;
let bob: TestSite;
let muse: RunningMuse;

before(async () => {
  zone = await MuseZone.start();
  [ours, bob] = await Promise.all([makeSite('site.test'), makeSite('b.test')]);
  zone.publish('b.test', [bob.bytes]);
  muse = await startMuse({ site: ours, dnsServer: zone.address, settings: { site: { localDomains: ['site.test'] } } });
});
after(async () => {
  await muse?.stop();
  await zone?.close();
});

/** Sends the message from `address` (an IPv6 peer) and returns its outcome and summary line. */
async function sendFrom(address: string, queueId: string) {
  const message: TestMessage = { sender: '<ceo@site.test>', recipients: ['<bob@b.test>'], headers: HEADERS, body: Buffer.from('Pay now.\r\n'), macros: { i: queueId } };
  const outcome = await sendOne(muse.address, message, { hostname: 'mx.attacker.test', family: 'inet6', port: 40100, address });
  const summary = muse.summaries().find((line) => line.queueId === queueId);
  return { outcome, summary };
}

describe('client address spellings and the internal networks', () => {
  for (const [address, queueId] of [['64:ff9b::7f00:1', 'Q-NAT64'], ['64:ff9b::127.0.0.1', 'Q-NAT64-DOTTED'], ['::7f00:1', 'Q-COMPAT']] as const) {
    it(`${address} (127.0.0.1 inside another prefix) is an outside client: its mail is inbound and left as it came, neither signed nor encrypted`, async () => {
      const { outcome, summary } = await sendFrom(address, queueId);
      assert.deepEqual(outcome.eom, { modifications: [], verdict: { kind: 'continue' }, progress: 0 });
      assert.deepEqual(outcome.delivered?.headers, HEADERS);
      assert.deepEqual([summary?.direction, summary?.action, summary?.reason], ['inbound', 'unchanged', 'not-pgp-mime']);
    });
  }
  for (const [address, queueId] of [['::ffff:7f00:1', 'Q-MAPPED-HEX'], ['::ffff:127.0.0.1', 'Q-MAPPED'], ['::1', 'Q-LOOPBACK'], ['::1%lo', 'Q-ZONE']] as const) {
    it(`${address} is the loopback client: its mail is outbound, encrypted to b.test`, async () => {
      const { outcome, summary } = await sendFrom(address, queueId);
      assert.deepEqual(outcome.eom?.verdict, { kind: 'continue' });
      assert.deepEqual(outcome.delivered?.headers.map((h) => h.name), ['From', 'To', 'Subject', 'Message-ID', 'Content-Type', 'MIME-Version', 'Muse-Protection']);
      assert.deepEqual([summary?.direction, summary?.action, summary?.keys], ['outbound', 'encrypted', [bob.fingerprint]]);
    });
  }
});
