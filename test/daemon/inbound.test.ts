/**
 * Inbound mail through the real daemon and the milter protocol: a message site A encrypted to our key (made with
 * the engine and A's key, A's key published in DNS) is decrypted to the original bytes with its protected header
 * restored and an Authentication-Results field; tampered ciphertext never passes and is never dropped; mail for a
 * key we do not hold passes untouched. The direction rules (daemon name, SASL login, internal network, local
 * submission) are checked through the macros and client the MTA sends.
 * Ports: ephemeral only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyHeaderEdits, protectOutbound } from '../../src/engine/index.ts';
import type { Response } from '../../milter/src/index.ts';
import { MuseZone } from './support/muse-zone.ts';
import {
  crlfBody,
  LOCAL_CLIENT,
  makeSite,
  REMOTE_CLIENT,
  replyCode,
  sendOne,
  startMuse,
  summaryFields,
  type ClientInfo,
  type RunningMuse,
  type TestMessage,
  type TestSite,
} from './support/harness.ts';

const CONTINUE: Response = { kind: 'continue' };
/** The sending site's own field, removed from every inbound message: only this site's verdict speaks here. */
const DROP_PROTECTION = { kind: 'changeHeader', name: 'Muse-Protection', index: 1, value: '' } as const;
const ORIGINAL = [
  { name: 'From', value: ' Alice <alice@a.test>' },
  { name: 'To', value: ' Bob <bob@site.test>' },
  { name: 'Subject', value: ' Contract draft' },
  { name: 'Date', value: ' Mon, 02 Jun 2025 12:00:00 +0000' },
  { name: 'Message-ID', value: ' <c1@a.test>' },
  { name: 'MIME-Version', value: ' 1.0' },
  { name: 'Content-Type', value: ' text/plain; charset=utf-8' },
  { name: 'Content-Transfer-Encoding', value: ' 8bit' },
];
const BODY = crlfBody('Bob,', '', 'the draft: \u00a7 1 applies.', '', 'Alice');

let zone: MuseZone;
let ours: TestSite;
let siteA: TestSite;
let stranger: TestSite;
let daemon: RunningMuse;

/** The message as site A's milter sends it: signed with A's key and encrypted to `recipient` (signed only without). */
async function fromSiteA(recipient: TestSite | undefined): Promise<{ headers: Array<{ name: string; value: string }>; body: Buffer }> {
  const result = await protectOutbound({
    headers: ORIGINAL,
    body: BODY,
    siteKey: siteA.privateKey,
    recipientKeys: recipient === undefined ? [] : [recipient.publicKey],
    subjectPlaceholder: '...',
    headerEncoding: 'latin1',
  });
  assert.equal(result.kind, 'protected');
  if (result.kind !== 'protected') throw new Error('not protected');
  return { headers: applyHeaderEdits(ORIGINAL, result.headerEdits), body: await result.body.toBuffer() };
}

function inbound(headers: Array<{ name: string; value: string }>, body: Buffer, queueId: string, macros: Record<string, string> = {}): TestMessage {
  return { sender: '<alice@a.test>', recipients: ['<bob@site.test>'], headers, body, macros: { i: queueId, ...macros } };
}

/** Authentication-Results as this site writes it, folded with bare LF as the milter protocol carries line breaks. */
function authResults(fields: string[]): { name: string; value: string } {
  return { name: 'Authentication-Results', value: ` site.test;\n\t${fields.join('\n\t')}` };
}

before(async () => {
  zone = await MuseZone.start();
  [ours, siteA, stranger] = await Promise.all([makeSite('site.test'), makeSite('a.test'), makeSite('x.test')]);
  zone.publish('a.test', [siteA.bytes]);
  zone.publish('b.test', [stranger.bytes]);
  daemon = await startMuse({ site: ours, dnsServer: zone.address, settings: { direction: { inboundDaemonNames: ['MX'] } } });
});
after(async () => {
  await daemon?.stop();
  await zone?.close();
});

describe('inbound', () => {
  it('decrypts a message site A encrypted to our key: original body byte for byte, protected header restored, x-muse=pass', async () => {
    const sent = await fromSiteA(ours);
    // A forged result under our authserv-id must not survive.
    const headers = [{ name: 'Authentication-Results', value: ' site.test; x-muse=pass' }, ...sent.headers];
    const outcome = await sendOne(daemon.address, inbound(headers, sent.body, 'Q-IN'), REMOTE_CLIENT);
    assert.deepEqual(outcome.rcpt, [CONTINUE]);
    assert.deepEqual(outcome.eom?.verdict, CONTINUE);
    const passed = authResults([
      'x-muse=pass reason="signature-verified"',
      'header.from=a.test',
      `policy.key-fingerprint=${siteA.fingerprint}`,
      'policy.dnssec=no',
      'policy.encrypted=yes',
    ]);
    assert.deepEqual(outcome.delivered?.headers, [
      passed,
      ...ORIGINAL.slice(0, 7),
      { name: 'Content-Transfer-Encoding', value: ' 8bit' },
    ]);
    assert.ok(outcome.delivered?.body.equals(BODY), 'the original body, byte for byte');
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-IN')), {
      queueId: 'Q-IN',
      direction: 'inbound',
      senderDomain: 'a.test',
      recipientDomains: ['site.test'],
      action: 'decrypted',
      reason: 'pass (signature-verified) from a.test',
      keys: [siteA.fingerprint],
      dnssec: false,
    });
  });

  it('renames the sending site\'s DKIM signatures once the decrypted message is delivered; keeps them on a failed one', async () => {
    const sent = await fromSiteA(ours);
    const dkim = [
      { name: 'DKIM-Signature', value: ' v=1; a=rsa-sha256; d=a.test; s=one; bh=AAAA; b=BBBB' },
      { name: 'DKIM-Signature', value: ' v=1; a=ed25519-sha256; d=a.test; s=two; bh=CCCC; b=DDDD' },
    ];
    const outcome = await sendOne(daemon.address, inbound([...dkim, ...sent.headers], sent.body, 'Q-DKIM'), REMOTE_CLIENT);
    assert.deepEqual(outcome.eom?.verdict, CONTINUE);
    const delivered = outcome.delivered?.headers ?? [];
    assert.deepEqual(delivered.filter((h) => /dkim-signature$/i.test(h.name)), [
      { name: 'Muse-Original-DKIM-Signature', value: dkim[0]?.value },
      { name: 'Muse-Original-DKIM-Signature', value: dkim[1]?.value },
    ]);
    assert.ok(outcome.delivered?.body.equals(BODY), 'decrypted');

    // Tampered: delivered as received, so the signature still covers what it signed.
    const text = sent.body.toString('latin1');
    const at = text.indexOf('-----BEGIN PGP MESSAGE-----') + 200;
    const garbled = Buffer.from(text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1), 'latin1');
    const failed = await sendOne(daemon.address, inbound([...dkim, ...sent.headers], garbled, 'Q-DKIM-FAIL'), REMOTE_CLIENT);
    assert.deepEqual((failed.delivered?.headers ?? []).filter((h) => /dkim-signature$/i.test(h.name)), dkim);
  });

  it('never passes tampered ciphertext, and never drops it: the body stays, x-muse=fail is added', async () => {
    const sent = await fromSiteA(ours);
    const text = sent.body.toString('latin1');
    const armor = /-----BEGIN PGP MESSAGE-----\r\n\r\n([^]*?)\r\n(=[A-Za-z0-9+/]{4}\r\n)?-----END PGP MESSAGE-----/.exec(text);
    assert.ok(armor?.[1] !== undefined, 'armored message found');
    const packets = Buffer.from(armor[1].replace(/\r\n/g, ''), 'base64');
    // One bit of the encrypted data changed (the integrity check fails), re-armored without a checksum line.
    packets[packets.length - 30] = (packets[packets.length - 30] as number) ^ 0x01;
    const rearmored = (packets.toString('base64').match(/.{1,64}/g) ?? []).join('\r\n');
    const flipped = text.replace(armor[0], `-----BEGIN PGP MESSAGE-----\r\n\r\n${rearmored}\r\n-----END PGP MESSAGE-----`);
    // One armor character changed: the checksum no longer matches.
    const at = text.indexOf('-----BEGIN PGP MESSAGE-----') + 200;
    const garbled = text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1);

    for (const [body, queueId, reason] of [
      [flipped, 'Q-FLIP', 'decryption-failed'],
      [garbled, 'Q-GARBLE', 'malformed'],
    ] as const) {
      const bytes = Buffer.from(body, 'latin1');
      const outcome = await sendOne(daemon.address, inbound(sent.headers, bytes, queueId), REMOTE_CLIENT);
      const failed = authResults([`x-muse=fail reason="${reason}"`, 'policy.encrypted=yes']);
      assert.deepEqual(outcome.eom, { modifications: [DROP_PROTECTION, { kind: 'insertHeader', index: 0, ...failed }], verdict: CONTINUE, progress: 0 }, queueId);
      assert.ok(outcome.delivered?.body.equals(bytes), 'body kept as received');
      assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === queueId)), {
        queueId,
        direction: 'inbound',
        senderDomain: 'a.test',
        recipientDomains: ['site.test'],
        action: 'annotated',
        reason: `fail (${reason})`,
        keys: [],
        dnssec: undefined,
      });
    }
  });

  it('leaves mail encrypted to a key we do not hold as it is, but for the sending site\'s Muse-Protection field', async () => {
    const sent = await fromSiteA(stranger);
    const outcome = await sendOne(daemon.address, inbound(sent.headers, sent.body, 'Q-OTHER'), REMOTE_CLIENT);
    assert.deepEqual(outcome.eom, { modifications: [DROP_PROTECTION], verdict: CONTINUE, progress: 0 });
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-OTHER')), {
      queueId: 'Q-OTHER',
      direction: 'inbound',
      senderDomain: 'a.test',
      recipientDomains: ['site.test'],
      action: 'unchanged',
      reason: 'not-for-us',
      keys: [],
      dnssec: undefined,
    });
  });

  it('reports a verified site signature on signed clear text without changing the body (unwrapSigned false)', async () => {
    const sent = await fromSiteA(undefined);
    const outcome = await sendOne(daemon.address, inbound(sent.headers, sent.body, 'Q-SIGNED'), REMOTE_CLIENT);
    const passed = authResults([
      'x-muse=pass reason="signature-verified"',
      'header.from=a.test',
      `policy.key-fingerprint=${siteA.fingerprint}`,
      'policy.dnssec=no',
      'policy.encrypted=no',
    ]);
    assert.deepEqual(outcome.eom, { modifications: [DROP_PROTECTION, { kind: 'insertHeader', index: 0, ...passed }], verdict: CONTINUE, progress: 0 });
    assert.equal(daemon.summaries().find((l) => l.queueId === 'Q-SIGNED')?.action, 'annotated');
  });

  it('defers when the sending site\'s key cannot be looked up (dnsError tempfail); accept delivers it as received with x-muse=temperror', async () => {
    const sent = await fromSiteA(ours);
    zone.misbehave('a.test', 'servfail');
    try {
      const deferred = await sendOne(daemon.address, inbound(sent.headers, sent.body, 'Q-IN-DNS'), REMOTE_CLIENT);
      assert.deepEqual(deferred.eom, { modifications: [], verdict: replyCode(451, '4.4.3', 'Key lookup failed'), progress: 0 });
      assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-IN-DNS')), {
        queueId: 'Q-IN-DNS',
        direction: 'inbound',
        senderDomain: 'a.test',
        recipientDomains: ['site.test'],
        action: 'tempfail',
        reason: 'temperror (key-lookup-failed) from a.test',
        keys: [],
        dnssec: undefined,
      });
      const accepting = await startMuse({ site: ours, dnsServer: zone.address, settings: { actions: { dnsError: 'accept' } } });
      try {
        const accepted = await sendOne(accepting.address, inbound(sent.headers, sent.body, 'Q-IN-DNS-ACC'), REMOTE_CLIENT);
        const temperror = authResults(['x-muse=temperror reason="key-lookup-failed"', 'header.from=a.test', 'policy.encrypted=yes']);
        assert.deepEqual(accepted.eom, { modifications: [DROP_PROTECTION, { kind: 'insertHeader', index: 0, ...temperror }], verdict: CONTINUE, progress: 0 });
        assert.ok(accepted.delivered?.body.equals(sent.body), 'still encrypted, as received');
      } finally {
        await accepting.stop();
      }
    } finally {
      zone.misbehave('a.test', undefined);
    }
  });

  it('passes plain mail untouched', async () => {
    const outcome = await sendOne(daemon.address, inbound(ORIGINAL, BODY, 'Q-PLAIN'), REMOTE_CLIENT);
    assert.deepEqual(outcome.eom, { modifications: [], verdict: CONTINUE, progress: 0 });
    assert.equal(daemon.summaries().find((l) => l.queueId === 'Q-PLAIN')?.reason, 'not-pgp-mime');
  });
});

describe('direction', () => {
  // The same encrypted message to bob@site.test: inbound it is opened. Outbound it goes to a local domain; being
  // encrypted to our own key, it is opened there too (never passed on as the encrypted blob), and the summary says
  // it was classified outbound (test/daemon/misdirected-inbound.test.ts).
  const cases: Array<[string, ClientInfo, Record<string, string>, 'inbound' | 'outbound']> = [
    ['a remote client', REMOTE_CLIENT, {}, 'inbound'],
    ['a remote client that authenticated ({auth_authen})', REMOTE_CLIENT, { '{auth_authen}': 'alice', '{auth_type}': 'PLAIN' }, 'outbound'],
    ['a remote client on the ORIGINATING service ({daemon_name})', REMOTE_CLIENT, { '{daemon_name}': 'ORIGINATING' }, 'outbound'],
    ['a client on the internal network', LOCAL_CLIENT, {}, 'outbound'],
    ['local submission (no client address)', { hostname: 'localhost', family: 'unknown', port: 0, address: '' }, {}, 'outbound'],
    ['an authenticated internal client on an inbound service ({daemon_name} MX)', LOCAL_CLIENT, { '{daemon_name}': 'MX', '{auth_authen}': 'alice' }, 'inbound'],
  ];
  for (const [what, client, macros, direction] of cases) {
    it(`takes mail from ${what} as ${direction}`, async () => {
      const sent = await fromSiteA(ours);
      const queueId = `Q-DIR-${cases.findIndex((c) => c[0] === what)}`;
      const outcome = await sendOne(daemon.address, inbound(sent.headers, sent.body, queueId, macros), client);
      assert.deepEqual(outcome.eom?.verdict, CONTINUE);
      const summary = summaryFields(daemon.summaries().find((l) => l.queueId === queueId));
      assert.deepEqual([summary.direction, summary.action], [direction, 'decrypted']);
      assert.equal(String(summary.reason).startsWith('classified outbound ('), direction === 'outbound');
      assert.ok(outcome.delivered?.body.equals(BODY));
    });
  }
});
