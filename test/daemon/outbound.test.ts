/**
 * Outbound mail through the real daemon and the milter protocol: every branch of the recipient policy (keys found,
 * no key, policy never, local domains, required, published enforce, pin downgrade and suspicious change, DNSSEC
 * required, testing mode), with exact verdicts, reply texts, header edits and bytes, and the summary log line.
 * The receiving site's view is checked by opening the result with the PGP/MIME engine and the receiver's key.
 * Ports: ephemeral only (milter and DNS on 127.0.0.1:0).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Response } from '../../milter/src/index.ts';
import { signOnlyKey } from '../keys/test-keys.ts';
import { waitFor } from '../support/processes.ts';
import { MuseZone } from './support/muse-zone.ts';
import {
  crlfBody,
  LOCAL_CLIENT,
  makeSite,
  openSession,
  replyCode,
  sendOne,
  startMuse,
  summaryFields,
  transact,
  type RunningMuse,
  type Settings,
  type TestMessage,
  type TestSite,
} from './support/harness.ts';
import { boundaryOf, openDelivered } from './support/open-delivered.ts';
import { PGP_MIME_TYPE, pgpMimeBody, pgpSamples } from '../support/encrypted-mail.ts';

const HEADERS = [
  { name: 'From', value: ' Alice <alice@site.test>' },
  { name: 'To', value: ' Bob <bob@b.test>' },
  { name: 'Subject', value: ' Quarterly numbers' },
  { name: 'Date', value: ' Mon, 02 Jun 2025 12:00:00 +0000' },
  { name: 'Message-ID', value: ' <m1@site.test>' },
  { name: 'MIME-Version', value: ' 1.0' },
  { name: 'Content-Type', value: ' text/plain; charset=utf-8' },
  { name: 'Content-Transfer-Encoding', value: ' 8bit' },
];
/** 8-bit text: encryption carries it byte for byte. */
const BODY_8BIT = crlfBody('Hello Bob,', '', 'revenue: 1 000 000 \u20ac', '-- ', 'Alice');
/** 7-bit text, so signing leaves it as it is. */
const ASCII_HEADERS = HEADERS.map((h) =>
  h.name === 'Content-Type' ? { name: h.name, value: ' text/plain; charset=us-ascii' } : h.name === 'Content-Transfer-Encoding' ? { name: h.name, value: ' 7bit' } : h,
);
const BODY_ASCII = crlfBody('Hello Carol,', '', 'the numbers are attached.', '', 'Alice');

function message(recipients: string[], queueId: string, overrides: Partial<TestMessage> = {}): TestMessage {
  return { sender: '<alice@site.test>', recipients, headers: HEADERS, body: BODY_8BIT, macros: { i: queueId }, ...overrides };
}

const CONTINUE: Response = { kind: 'continue' };

let zone: MuseZone;
let ours: TestSite;
let bob: TestSite;
let other: TestSite;
const daemons: RunningMuse[] = [];

/** Starts a daemon for site.test with the test zone and `settings`; stopped after the file. */
async function muse(settings: Settings = {}): Promise<RunningMuse> {
  const running = await startMuse({ site: ours, dnsServer: zone.address, settings });
  daemons.push(running);
  return running;
}

before(async () => {
  zone = await MuseZone.start();
  [ours, bob, other] = await Promise.all([makeSite('site.test'), makeSite('b.test'), makeSite('b.test')]);
  zone.publish('b.test', [bob.bytes]);
  zone.publish('n.test', [bob.bytes]);
  zone.publish('site.test', [ours.bytes]);
  zone.publish('lists.site.test', [bob.bytes]);
  zone.publish('v.test', [bob.bytes], { ad: true });
  zone.publish('e.test', [(await signOnlyKey()).bytes], { policy: 'enforce', maxAge: 3600, types: ['TXT'] });
  zone.publish('o.test', [(await signOnlyKey()).bytes], { policy: 'enforce', maxAge: 3600, types: ['TXT'] });
  zone.publish('m.test', [(await signOnlyKey()).bytes], { policy: 'opportunistic', types: ['TXT'] });
});
after(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  await zone?.close();
});

const POLICIES: Settings = {
  site: { localDomains: ['site.test', 'lists.site.test'] },
  policy: { domains: { 'n.test': 'never', 'r.test': 'required', 'o.test': 'opportunistic' } },
};

describe('outbound: keys found', () => {
  let daemon: RunningMuse;
  before(async () => {
    daemon = await muse(POLICIES);
  });

  it('encrypts to the recipient site: exact header edits, PGP/MIME body the recipient key opens to the original bytes, signed by our key', async () => {
    const outcome = await sendOne(daemon.address, message(['<bob@b.test>'], 'Q-ENC'));
    assert.deepEqual(outcome.rcpt, [CONTINUE]);
    assert.deepEqual(outcome.eom?.verdict, CONTINUE);
    const delivered = outcome.delivered;
    assert.ok(delivered);
    const contentType = delivered.headers.find((h) => h.name === 'Content-Type')?.value;
    const boundary = boundaryOf(contentType);
    // Folded with a bare LF: the milter protocol carries line breaks inside a value that way.
    const expectedContentType = ` multipart/encrypted; protocol="application/pgp-encrypted";\n boundary="${boundary}"`;
    assert.deepEqual(
      outcome.eom?.modifications.filter((m) => m.kind !== 'replaceBody'),
      [
        { kind: 'changeHeader', index: 1, name: 'Content-Type', value: expectedContentType },
        { kind: 'changeHeader', index: 1, name: 'Content-Transfer-Encoding', value: '' },
        { kind: 'changeHeader', index: 1, name: 'Subject', value: ' ...' },
        { kind: 'addHeader', name: 'Muse-Protection', value: ` signed+encrypted; signer=${ours.fingerprint}` },
      ],
    );
    assert.deepEqual(delivered.recipients, ['<bob@b.test>']);
    assert.deepEqual(delivered.headers, [
      { name: 'From', value: ' Alice <alice@site.test>' },
      { name: 'To', value: ' Bob <bob@b.test>' },
      { name: 'Subject', value: ' ...' },
      { name: 'Date', value: ' Mon, 02 Jun 2025 12:00:00 +0000' },
      { name: 'Message-ID', value: ' <m1@site.test>' },
      { name: 'MIME-Version', value: ' 1.0' },
      { name: 'Content-Type', value: expectedContentType },
      { name: 'Muse-Protection', value: ` signed+encrypted; signer=${ours.fingerprint}` },
    ]);
    const text = delivered.body.toString('latin1');
    assert.ok(
      text.startsWith(
        `This is an encrypted message in PGP/MIME format (RFC 3156).\r\n--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n` +
          'Content-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n' +
          `--${boundary}\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\nContent-Description: OpenPGP encrypted message\r\n` +
          'Content-Disposition: inline; filename="encrypted.asc"\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n',
      ),
      text.slice(0, 600),
    );
    assert.ok(text.endsWith(`-----END PGP MESSAGE-----\r\n--${boundary}--\r\n`));
    assert.doesNotMatch(text, /Quarterly|revenue/);

    const opened = await openDelivered(delivered, bob, ours);
    assert.equal(opened.result.kind, 'opened');
    if (opened.result.kind !== 'opened') return;
    assert.deepEqual(opened.result.verdict, { result: 'pass', reason: 'signature-verified', domain: 'site.test', fingerprint: ours.fingerprint, dnssec: false, encrypted: true });
    assert.ok(opened.body?.equals(BODY_8BIT), 'the body the recipient reads is the original, byte for byte');
    // The receiving site removes the Muse-Protection field: its own Authentication-Results speaks instead.
    assert.deepEqual(opened.headers?.slice(1), [...HEADERS.slice(0, 7), { name: 'Content-Transfer-Encoding', value: ' 8bit' }]);
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-ENC')), {
      queueId: 'Q-ENC',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: ['b.test'],
      action: 'encrypted',
      reason: 'encrypted:b.test',
      keys: [bob.fingerprint],
      dnssec: false,
    });
  });

  it('signs clear text to a domain without a key: multipart/signed over the original entity, verified with our key', async () => {
    const outcome = await sendOne(daemon.address, message(['<carol@c.test>'], 'Q-SIGN', { headers: ASCII_HEADERS, body: BODY_ASCII }));
    assert.deepEqual(outcome.eom?.verdict, CONTINUE);
    const delivered = outcome.delivered;
    assert.ok(delivered);
    const contentType = delivered.headers.find((h) => h.name === 'Content-Type')?.value;
    const boundary = boundaryOf(contentType);
    assert.deepEqual(delivered.headers, [
      ...ASCII_HEADERS.slice(0, 6),
      { name: 'Content-Type', value: ` multipart/signed; micalg=pgp-sha512;\n protocol="application/pgp-signature";\n boundary="${boundary}"` },
      { name: 'Muse-Protection', value: ` signed; signer=${ours.fingerprint}` },
    ]);
    const innerHeader =
      'From: Alice <alice@site.test>\r\nTo: Bob <bob@b.test>\r\nSubject: Quarterly numbers\r\nDate: Mon, 02 Jun 2025 12:00:00 +0000\r\n' +
      'Message-ID: <m1@site.test>\r\nContent-Type: text/plain; charset=us-ascii;\r\n hp="clear"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n';
    const text = delivered.body.toString('latin1');
    const head = `This is a signed message in PGP/MIME format (RFC 3156).\r\n--${boundary}\r\n${innerHeader}${BODY_ASCII.toString('latin1')}\r\n--${boundary}\r\n`;
    assert.ok(text.startsWith(head), text.slice(0, 800));
    assert.match(
      text.slice(head.length),
      new RegExp(
        '^Content-Type: application/pgp-signature; name="signature.asc"\\r\\nContent-Description: OpenPGP digital signature\\r\\n' +
          'Content-Disposition: attachment; filename="signature.asc"\\r\\n\\r\\n-----BEGIN PGP SIGNATURE-----\\r\\n[^]*' +
          `-----END PGP SIGNATURE-----\\r\\n--${boundary}--\\r\\n$`,
      ),
    );
    const opened = await openDelivered(delivered, bob, ours);
    assert.equal(opened.result.kind, 'opened');
    if (opened.result.kind !== 'opened') return;
    assert.deepEqual(opened.result.verdict, { result: 'pass', reason: 'signature-verified', domain: 'site.test', fingerprint: ours.fingerprint, dnssec: false, encrypted: false });
    assert.ok(opened.body?.equals(BODY_ASCII));
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-SIGN')), {
      queueId: 'Q-SIGN',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: ['c.test'],
      action: 'signed',
      reason: 'clear+signed:c.test',
      keys: [],
      dnssec: undefined,
    });
  });

  it('sends clear text signed, without asking DNS, to a domain the administrator set to never', async () => {
    const before = zone.queriesFor('n.test');
    const outcome = await sendOne(daemon.address, message(['<nina@n.test>'], 'Q-NEVER', { headers: ASCII_HEADERS, body: BODY_ASCII }));
    assert.deepEqual(outcome.eom?.verdict, CONTINUE);
    assert.match(outcome.delivered?.headers.find((h) => h.name === 'Content-Type')?.value ?? '', /^ multipart\/signed;/);
    assert.equal(zone.queriesFor('n.test'), before, 'no lookup for a domain set to never');
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-NEVER')), {
      queueId: 'Q-NEVER',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: ['n.test'],
      action: 'signed',
      reason: 'clear+signed:n.test',
      keys: [],
      dnssec: undefined,
    });
  });

  it('never encrypts to local domains, even when they publish a key, and changes nothing', async () => {
    const before = zone.queriesFor('site.test') + zone.queriesFor('lists.site.test');
    const outcome = await sendOne(daemon.address, message(['<dave@site.test>', '<list@lists.site.test>', '<postmaster>'], 'Q-LOCAL'));
    assert.deepEqual(outcome.rcpt, [CONTINUE, CONTINUE, CONTINUE]);
    assert.deepEqual(outcome.eom, { modifications: [], verdict: CONTINUE, progress: 0 });
    assert.equal(zone.queriesFor('site.test') + zone.queriesFor('lists.site.test'), before);
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-LOCAL')), {
      queueId: 'Q-LOCAL',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: ['site.test', 'lists.site.test'],
      action: 'clear',
      reason: 'clear:site.test,lists.site.test',
      keys: [],
      dnssec: undefined,
    });
  });

  it('leaves mail the author already encrypted alone', async () => {
    // Really encrypted: a mere multipart/encrypted label would be protected like any other mail.
    const headers = [...HEADERS.slice(0, 6), { name: 'Content-Type', value: PGP_MIME_TYPE }];
    const body = pgpMimeBody((await pgpSamples()).encrypted);
    const outcome = await sendOne(daemon.address, message(['<bob@b.test>'], 'Q-PRE', { headers, body }));
    assert.deepEqual(outcome.eom, { modifications: [], verdict: CONTINUE, progress: 0 });
    assert.equal(daemon.summaries().find((l) => l.queueId === 'Q-PRE')?.reason, 'already encrypted (pgp-mime)');
  });
});

describe('outbound: refusals', () => {
  let daemon: RunningMuse;
  before(async () => {
    daemon = await muse({ ...POLICIES, actions: { noKeyRequired: 'tempfail' } });
  });

  it('refuses a required domain without a key at end of message when DNS had to be asked, then at RCPT from the cache', async () => {
    zone.withdraw('r.test', 300);
    const refusal = replyCode(451, '4.7.1', 'Encryption to r.test is required and no key was found');
    const first = await sendOne(daemon.address, message(['<rita@r.test>'], 'Q-REQ1'));
    assert.deepEqual(first.rcpt, [CONTINUE], 'the lookup was not finished at RCPT');
    assert.deepEqual(first.eom, { modifications: [], verdict: refusal, progress: 0 });
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-REQ1')), {
      queueId: 'Q-REQ1',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: ['r.test'],
      action: 'tempfail',
      reason: 'r.test: no usable site key published',
      keys: [],
      dnssec: undefined,
    });

    // The negative answer is cached now: the recipient is refused alone, at RCPT, and the others go on.
    const second = await sendOne(daemon.address, message(['<rita@r.test>', '<bob@b.test>'], 'Q-REQ2'));
    assert.deepEqual(second.rcpt, [refusal, CONTINUE]);
    assert.deepEqual(second.eom?.verdict, CONTINUE);
    assert.deepEqual(second.delivered?.recipients, ['<bob@b.test>']);
    assert.equal(daemon.summaries().find((l) => l.queueId === 'Q-REQ2')?.action, 'encrypted');

    // Every recipient refused at RCPT: the MTA aborts, and the message still gets its one summary line.
    const mta = await openSession(daemon.address, LOCAL_CLIENT, { i: 'Q-REQ3' });
    try {
      assert.equal((await mta.mailFrom('<alice@site.test>', [], { i: 'Q-REQ3' })).reply.kind, 'continue');
      assert.deepEqual((await mta.rcptTo('<rita@r.test>', [], { i: 'Q-REQ3' })).reply, refusal);
      mta.abort();
      // ABORT has no reply: wait (bounded) for the line it produces.
      const line = await waitFor(() => daemon.summaries().find((l) => l.queueId === 'Q-REQ3'), { timeoutMs: 5000, what: 'the summary line of Q-REQ3' });
      assert.deepEqual(summaryFields(line), {
        queueId: 'Q-REQ3',
        direction: 'outbound',
        senderDomain: 'site.test',
        recipientDomains: ['r.test'],
        action: 'tempfail',
        reason: 'refused at RCPT: r.test: no usable site key published',
        keys: [],
        dnssec: undefined,
      });
    } finally {
      await mta.close();
    }
  });

  it('refuses a domain that publishes p=enforce without a usable key, unless the administrator lowered it to opportunistic', async () => {
    const enforced = await sendOne(daemon.address, message(['<eve@e.test>'], 'Q-ENF'));
    assert.deepEqual(enforced.eom?.verdict, replyCode(451, '4.7.1', 'Encryption to e.test is required but not possible now'));
    assert.equal(daemon.summaries().find((l) => l.queueId === 'Q-ENF')?.reason, 'e.test: the site requires encryption (p=enforce) but publishes no usable key');

    const lowered = await sendOne(daemon.address, message(['<otto@o.test>'], 'Q-LOW', { headers: ASCII_HEADERS, body: BODY_ASCII }));
    assert.deepEqual(lowered.eom?.verdict, CONTINUE);
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-LOW')), {
      queueId: 'Q-LOW',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: ['o.test'],
      action: 'signed',
      reason: 'clear+signed:o.test',
      keys: [],
      dnssec: undefined,
    });
  });

  it('refuses mail to a pinned domain whose records were removed (downgrade)', async () => {
    zone.publish('p.test', [bob.bytes], { policy: 'opportunistic', maxAge: 86_400 });
    const pinned = await sendOne(daemon.address, message(['<pia@p.test>'], 'Q-PIN1'));
    assert.deepEqual(pinned.eom?.verdict, CONTINUE);
    assert.equal(daemon.summaries().find((l) => l.queueId === 'Q-PIN1')?.action, 'encrypted');
    const store = JSON.parse(await readFile(join(daemon.dataDir, 'pins.json'), 'utf8')) as { pins: Record<string, { fingerprints: string[] }> };
    assert.deepEqual(store.pins['p.test']?.fingerprints, [bob.fingerprint]);

    zone.withdraw('p.test');
    const downgraded = await sendOne(daemon.address, message(['<pia@p.test>'], 'Q-PIN2'));
    assert.deepEqual(downgraded.eom?.verdict, replyCode(451, '4.7.1', 'Encryption to p.test is required but not possible now'));
    assert.match(String(daemon.summaries().find((l) => l.queueId === 'Q-PIN2')?.reason), /^p\.test: downgrade: no usable key published, yet 1 key\(s\) pinned until \d{4}-/);
  });

  it('refuses mail to a pinned domain whose key changed without being announced (suspicious change)', async () => {
    zone.publish('s.test', [bob.bytes], { policy: 'opportunistic', maxAge: 86_400 });
    assert.deepEqual((await sendOne(daemon.address, message(['<sam@s.test>'], 'Q-SUS1'))).eom?.verdict, CONTINUE);
    zone.publish('s.test', [other.bytes], { policy: 'opportunistic', maxAge: 86_400 });
    const changed = await sendOne(daemon.address, message(['<sam@s.test>'], 'Q-SUS2'));
    assert.deepEqual(changed.eom?.verdict, replyCode(451, '4.7.1', 'Encryption to s.test is required but not possible now'));
    assert.match(
      String(daemon.summaries().find((l) => l.queueId === 'Q-SUS2')?.reason),
      new RegExp(`^s\\.test: suspicious-change: published key\\(s\\) ${other.fingerprint} differ from the key\\(s\\) pinned until `),
    );
  });

  it('rejects (5xx) a required domain without a key when noKeyRequired is reject', async () => {
    const rejecting = await muse({ ...POLICIES, actions: { noKeyRequired: 'reject' } });
    zone.withdraw('r.test');
    const outcome = await sendOne(rejecting.address, message(['<rita@r.test>'], 'Q-REJ'));
    assert.deepEqual(outcome.eom?.verdict, replyCode(550, '5.7.1', 'Encryption to r.test is required and no key was found'));
    assert.equal(rejecting.summaries().find((l) => l.queueId === 'Q-REJ')?.action, 'reject');
  });
});

describe('outbound: requireDnssec', () => {
  let daemon: RunningMuse;
  before(async () => {
    daemon = await muse({ dns: { requireDnssec: true }, policy: { domains: { 'b.test': 'required' } } });
  });

  it('sends signed clear text when the only key is not DNSSEC-validated (no AD from the loopback server)', async () => {
    zone.publish('u.test', [bob.bytes]);
    const outcome = await sendOne(daemon.address, message(['<uma@u.test>'], 'Q-NOAD', { headers: ASCII_HEADERS, body: BODY_ASCII }));
    assert.deepEqual(outcome.eom?.verdict, CONTINUE);
    assert.match(outcome.delivered?.headers.find((h) => h.name === 'Content-Type')?.value ?? '', /^ multipart\/signed;/);
    assert.equal(daemon.summaries().find((l) => l.queueId === 'Q-NOAD')?.reason, 'clear+signed:u.test');
  });

  it('encrypts when the answer carries AD from the loopback resolver, and says so in the log', async () => {
    const outcome = await sendOne(daemon.address, message(['<vic@v.test>'], 'Q-AD'));
    assert.deepEqual(outcome.eom?.verdict, CONTINUE);
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-AD')), {
      queueId: 'Q-AD',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: ['v.test'],
      action: 'encrypted',
      reason: 'encrypted:v.test',
      keys: [bob.fingerprint],
      dnssec: true,
    });
  });

  it('refuses a required domain whose key is not DNSSEC-validated', async () => {
    const outcome = await sendOne(daemon.address, message(['<bob@b.test>'], 'Q-NOADREQ'));
    assert.deepEqual(outcome.eom?.verdict, replyCode(451, '4.7.1', 'No DNSSEC-validated key for b.test'));
    assert.equal(daemon.summaries().find((l) => l.queueId === 'Q-NOADREQ')?.reason, 'b.test: keys not validated by DNSSEC');
  });
});

describe('outbound: testing mode', () => {
  let daemon: RunningMuse;
  before(async () => {
    daemon = await muse({ ...POLICIES, policy: { ...(POLICIES.policy as Settings), testing: true } });
  });

  it('changes nothing and logs that it would encrypt', async () => {
    const outcome = await sendOne(daemon.address, message(['<bob@b.test>', '<carol@c.test>'], 'Q-TEST1'));
    assert.deepEqual(outcome.rcpt, [CONTINUE, CONTINUE]);
    assert.deepEqual(outcome.eom, { modifications: [], verdict: CONTINUE, progress: 0 });
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-TEST1')), {
      queueId: 'Q-TEST1',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: ['b.test', 'c.test'],
      action: 'testing',
      reason: 'would split: encrypted:b.test clear+signed:c.test',
      keys: [bob.fingerprint],
      dnssec: false,
    });
  });

  it('refuses nothing, at RCPT (even from the cache) or at end of message, and logs what it would refuse', async () => {
    zone.withdraw('r.test', 300);
    for (const queueId of ['Q-TEST2', 'Q-TEST3']) {
      const mta = await openSession(daemon.address);
      try {
        const outcome = await transact(mta, message(['<rita@r.test>'], queueId));
        assert.deepEqual(outcome.rcpt, [CONTINUE]);
        assert.deepEqual(outcome.eom, { modifications: [], verdict: CONTINUE, progress: 0 });
      } finally {
        await mta.close();
      }
      assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === queueId)), {
        queueId,
        direction: 'outbound',
        senderDomain: 'site.test',
        recipientDomains: ['r.test'],
        action: 'testing',
        reason: 'would tempfail: r.test: no usable site key published',
        keys: [],
        dnssec: undefined,
      });
    }
  });
});

describe('outbound: signCleartext false (the old boolean form, read as never)', () => {
  it('passes mail to a domain without a key unchanged', async () => {
    const daemon = await muse({ policy: { signCleartext: false } });
    const outcome = await sendOne(daemon.address, message(['<carol@c.test>'], 'Q-PLAIN'));
    assert.deepEqual(outcome.eom, { modifications: [], verdict: CONTINUE, progress: 0 });
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-PLAIN')), {
      queueId: 'Q-PLAIN',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: ['c.test'],
      action: 'clear',
      reason: 'clear:c.test',
      keys: [],
      dnssec: undefined,
    });
  });
});

describe('outbound: signCleartext muse-sites (the default)', () => {
  it('passes mail to a domain that publishes no MUSE record unchanged, and still signs for one that does', async () => {
    const daemon = await muse({ policy: { signCleartext: 'muse-sites' } });
    const outcome = await sendOne(daemon.address, message(['<carol@c.test>'], 'Q-MUSESITES'));
    assert.deepEqual(outcome.eom, { modifications: [], verdict: CONTINUE, progress: 0 });
    assert.equal(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-MUSESITES'))?.['action'], 'clear');
    // m.test publishes a record whose key cannot encrypt: a MUSE site, so its clear text is signed.
    const signed = await sendOne(daemon.address, message(['<dave@m.test>'], 'Q-MUSESITES2'));
    assert.deepEqual(signed.eom?.verdict, CONTINUE);
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-MUSESITES2'))?.['reason'], 'clear+signed:m.test');
    const contentType = (signed.eom?.modifications ?? []).find((m) => m.kind === 'changeHeader' && m.name === 'Content-Type');
    assert.match(contentType?.kind === 'changeHeader' ? contentType.value : '', /^ multipart\/signed;/);
  });
});

describe('outbound: a message this site decrypted leaving again (a forward)', () => {
  it('warns when it leaves in clear, with the domains; not when it leaves encrypted, nor for mail without our result', async () => {
    const daemon = await muse({ policy: { signCleartext: 'muse-sites' } });
    const ours = { name: 'Authentication-Results', value: ' site.test;\r\n\tx-muse=pass reason="signature-verified" header.from=a.test' };
    const theirs = { name: 'Authentication-Results', value: ' other.test; x-muse=pass' };
    await sendOne(daemon.address, message(['<carol@c.test>'], 'Q-FWD-CLEAR', { headers: [ours, ...HEADERS] }));
    await sendOne(daemon.address, message(['<bob@b.test>'], 'Q-FWD-ENC', { headers: [ours, ...HEADERS] }));
    await sendOne(daemon.address, message(['<carol@c.test>'], 'Q-FWD-OTHER', { headers: [theirs, ...HEADERS] }));
    const warnings = daemon.lines.filter((l) => l.message === 'a message this site decrypted leaves again in clear (a forward)');
    assert.deepEqual(warnings.map((l) => [l.level, l.queueId, l.domains]), [['warning', 'Q-FWD-CLEAR', ['c.test']]]);
    assert.equal(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-FWD-ENC'))?.['action'], 'encrypted');
  });
});

describe('summary lines', () => {
  it('wrote exactly one summary line per message of this file, with the documented fields in order', () => {
    const lines = daemons.flatMap((d) => d.summaries());
    const sent = ['Q-ENC', 'Q-SIGN', 'Q-NEVER', 'Q-LOCAL', 'Q-PRE', 'Q-REQ1', 'Q-REQ2', 'Q-REQ3', 'Q-ENF', 'Q-LOW', 'Q-PIN1', 'Q-PIN2', 'Q-SUS1', 'Q-SUS2'];
    sent.push('Q-REJ', 'Q-NOAD', 'Q-AD', 'Q-NOADREQ', 'Q-TEST1', 'Q-TEST2', 'Q-TEST3', 'Q-PLAIN', 'Q-MUSESITES', 'Q-MUSESITES2', 'Q-FWD-CLEAR', 'Q-FWD-ENC', 'Q-FWD-OTHER');
    assert.deepEqual(lines.map((l) => l.queueId).sort(), sent.sort());
    for (const line of lines) {
      const keys = Object.keys(line).filter((k) => k !== 'dnssec');
      assert.deepEqual(keys, ['time', 'level', 'message', 'milter', 'conn', 'queueId', 'direction', 'senderDomain', 'recipientDomains', 'action', 'reason', 'keys', 'durationMs']);
    }
  });
});
