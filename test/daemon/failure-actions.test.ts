/**
 * The failure actions through the real daemon and the milter protocol: DNS failures (SERVFAIL, a server that never
 * answers) under dnsError tempfail/reject/accept, accept downgraded to tempfail where a recipient must never get
 * clear text (required, pinned), crypto failures (the engine cannot write its spool file) and oversize messages
 * under each action, with the exact replies and summary lines. Names that cannot be mail domains (localhost, address
 * literals) are mail without keys, not failures.
 * Ports: ephemeral only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Response } from '../../milter/src/index.ts';
import { MuseZone } from './support/muse-zone.ts';
import { crlfBody, makeSite, REMOTE_CLIENT, replyCode, sendOne, startMuse, summaryFields, type RunningMuse, type Settings, type TestMessage, type TestSite } from './support/harness.ts';

const CONTINUE: Response = { kind: 'continue' };
const HEADERS = [
  { name: 'From', value: ' Alice <alice@site.test>' },
  { name: 'To', value: ' someone' },
  { name: 'Subject', value: ' Report' },
  { name: 'Content-Type', value: ' text/plain; charset=us-ascii' },
];
const BODY = crlfBody('Hello,', '', 'the report follows.');

function message(recipients: string[], queueId: string, overrides: Partial<TestMessage> = {}): TestMessage {
  return { sender: '<alice@site.test>', recipients, headers: HEADERS, body: BODY, macros: { i: queueId }, ...overrides };
}

let zone: MuseZone;
let ours: TestSite;
let bob: TestSite;
const daemons: RunningMuse[] = [];

async function muse(settings: Settings): Promise<RunningMuse> {
  const running = await startMuse({ site: ours, dnsServer: zone.address, settings });
  daemons.push(running);
  return running;
}

before(async () => {
  zone = await MuseZone.start();
  [ours, bob] = await Promise.all([makeSite('site.test'), makeSite('b.test')]);
  zone.publish('b.test', [bob.bytes]);
  zone.publish('breq.test', [bob.bytes]);
  zone.misbehave('f.test', 'servfail');
  zone.misbehave('freq.test', 'servfail');
  zone.misbehave('d.test', 'drop');
});
after(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  await zone?.close();
});

describe('dnsError', () => {
  it('tempfail: 451 4.4.3 at end of message, for SERVFAIL and for a server that never answers', async () => {
    const daemon = await muse({ actions: { dnsError: 'tempfail' }, dns: { timeout: '1s', overallTimeout: '2s' } });
    for (const [domain, queueId] of [
      ['f.test', 'Q-SF'],
      ['d.test', 'Q-DROP'],
    ] as const) {
      const outcome = await sendOne(daemon.address, message([`<x@${domain}>`], queueId));
      assert.deepEqual(outcome.rcpt, [CONTINUE], 'failures are not cached, so RCPT never knows');
      assert.deepEqual(outcome.eom, { modifications: [], verdict: replyCode(451, '4.4.3', `Key lookup for ${domain} failed`), progress: 0 });
      const summary = summaryFields(daemon.summaries().find((l) => l.queueId === queueId));
      assert.match(String(summary.reason), new RegExp(`^${domain.replace('.', '\\.')}: DNS lookup failed: `));
      assert.deepEqual({ ...summary, reason: undefined }, {
        queueId,
        direction: 'outbound',
        senderDomain: 'site.test',
        recipientDomains: [domain],
        action: 'tempfail',
        reason: undefined,
        keys: [],
        dnssec: undefined,
      });
    }
  });

  it('reject: 550 5.4.3', async () => {
    const daemon = await muse({ actions: { dnsError: 'reject' } });
    const outcome = await sendOne(daemon.address, message(['<x@f.test>'], 'Q-SF-REJ'));
    assert.deepEqual(outcome.eom?.verdict, replyCode(550, '5.4.3', 'Key lookup for f.test failed'));
    assert.equal(daemon.summaries().find((l) => l.queueId === 'Q-SF-REJ')?.action, 'reject');
  });

  it('accept: signed clear text; but tempfail for a required domain and for a pinned one', async () => {
    const daemon = await muse({ actions: { dnsError: 'accept' }, policy: { domains: { 'freq.test': 'required' } } });
    const accepted = await sendOne(daemon.address, message(['<x@f.test>'], 'Q-SF-ACC'));
    assert.deepEqual(accepted.eom?.verdict, CONTINUE);
    assert.match(accepted.delivered?.headers.find((h) => h.name === 'Content-Type')?.value ?? '', /^ multipart\/signed;/);
    assert.equal(daemon.summaries().find((l) => l.queueId === 'Q-SF-ACC')?.action, 'signed');

    const required = await sendOne(daemon.address, message(['<x@f.test>', '<y@freq.test>'], 'Q-SF-REQ'));
    assert.deepEqual(required.eom?.verdict, replyCode(451, '4.4.3', 'Key lookup for freq.test failed'));

    zone.publish('fpin.test', [bob.bytes], { maxAge: 86_400 });
    assert.equal((await sendOne(daemon.address, message(['<x@fpin.test>'], 'Q-PIN'))).eom?.verdict.kind, 'continue');
    zone.misbehave('fpin.test', 'servfail');
    const pinned = await sendOne(daemon.address, message(['<x@fpin.test>'], 'Q-PIN-SF'));
    assert.deepEqual(pinned.eom?.verdict, replyCode(451, '4.4.3', 'Key lookup for fpin.test failed'));
  });
});

/** A body over the engine's 4 MiB spool threshold: its output must go to a file in the spool directory. */
const LARGE_BODY = Buffer.from(`${'a'.repeat(98)}\r\n`.repeat(46_000));

/** Replaces the daemon's spool directory by a plain file, so the engine cannot spool its output. */
async function breakSpool(daemon: RunningMuse): Promise<void> {
  const spool = join(daemon.dataDir, 'spool');
  await rm(spool, { recursive: true, force: true });
  await writeFile(spool, 'not a directory\n');
}

describe('cryptoError (the engine cannot create its spool file)', () => {
  // The milter library keeps the body in memory, so only the engine's output touches the spool directory.
  const settings = (action: string): Settings => ({ milter: { maxBufferedBody: '16MiB' }, actions: { cryptoError: action }, policy: { domains: { 'breq.test': 'required' } } });

  it('tempfail: 451 4.7.0', async () => {
    const daemon = await muse(settings('tempfail'));
    await breakSpool(daemon);
    const outcome = await sendOne(daemon.address, message(['<x@c.test>'], 'Q-CR-TF', { body: LARGE_BODY }));
    assert.deepEqual(outcome.eom, { modifications: [], verdict: replyCode(451, '4.7.0', 'Message could not be protected'), progress: 0 });
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-CR-TF')), {
      queueId: 'Q-CR-TF',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: ['c.test'],
      action: 'tempfail',
      reason: 'cryptoError: cannot create the spool file',
      keys: [],
      dnssec: undefined,
    });
  });

  it('reject: 554 5.7.0', async () => {
    const daemon = await muse(settings('reject'));
    await breakSpool(daemon);
    const outcome = await sendOne(daemon.address, message(['<x@c.test>'], 'Q-CR-REJ', { body: LARGE_BODY }));
    assert.deepEqual(outcome.eom?.verdict, replyCode(554, '5.7.0', 'Message could not be protected'));
  });

  it('accept: delivered as received; but tempfail when a recipient domain is required', async () => {
    const daemon = await muse(settings('accept'));
    await breakSpool(daemon);
    const clear = await sendOne(daemon.address, message(['<x@c.test>'], 'Q-CR-ACC', { body: LARGE_BODY }));
    assert.deepEqual(clear.eom, { modifications: [], verdict: CONTINUE, progress: 0 });
    assert.deepEqual(
      [daemon.summaries().find((l) => l.queueId === 'Q-CR-ACC')?.action, daemon.summaries().find((l) => l.queueId === 'Q-CR-ACC')?.reason],
      ['clear', 'cryptoError: cannot create the spool file'],
    );
    const required = await sendOne(daemon.address, message(['<x@breq.test>'], 'Q-CR-REQ', { body: LARGE_BODY }));
    assert.deepEqual(required.eom?.verdict, replyCode(451, '4.7.0', 'Message could not be protected'));
    assert.equal(daemon.summaries().find((l) => l.queueId === 'Q-CR-REQ')?.action, 'tempfail');
  });
});

describe('oversize (limits.maxMessageSize)', () => {
  const LIMIT = 1024;
  const BIG = Buffer.from('x'.repeat(70) + '\r\n').subarray(0, 72);
  const body = Buffer.concat(Array.from({ length: 20 }, () => BIG));
  const size = body.length + HEADERS.reduce((sum, h) => sum + h.name.length + h.value.length + 3, 0);
  const settings = (action: string): Settings => ({ limits: { maxMessageSize: LIMIT }, actions: { oversize: action }, policy: { domains: { 'breq.test': 'required' } } });

  it('tempfail: 451 4.3.4, before any lookup result matters', async () => {
    const daemon = await muse(settings('tempfail'));
    const outcome = await sendOne(daemon.address, message(['<x@b.test>'], 'Q-BIG-TF', { body }));
    assert.deepEqual(outcome.eom, { modifications: [], verdict: replyCode(451, '4.3.4', 'Message too large to protect'), progress: 0 });
    assert.deepEqual(summaryFields(daemon.summaries().find((l) => l.queueId === 'Q-BIG-TF')), {
      queueId: 'Q-BIG-TF',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: ['b.test'],
      action: 'tempfail',
      reason: `message of ${size} bytes exceeds limits.maxMessageSize`,
      keys: [],
      dnssec: undefined,
    });
  });

  it('reject: 554 5.3.4', async () => {
    const daemon = await muse(settings('reject'));
    const outcome = await sendOne(daemon.address, message(['<x@c.test>'], 'Q-BIG-REJ', { body }));
    assert.deepEqual(outcome.eom?.verdict, replyCode(554, '5.3.4', 'Message too large to protect'));
  });

  it('accept: delivered unchanged, to a domain with or without a key (opportunistic), inbound as well; tempfail for a required domain', async () => {
    const daemon = await muse(settings('accept'));
    for (const [recipient, queueId] of [
      ['<x@c.test>', 'Q-BIG-ACC1'],
      ['<x@b.test>', 'Q-BIG-ACC2'],
    ] as const) {
      const outcome = await sendOne(daemon.address, message([recipient], queueId, { body }));
      assert.deepEqual(outcome.eom, { modifications: [], verdict: CONTINUE, progress: 0 }, queueId);
      assert.equal(daemon.summaries().find((l) => l.queueId === queueId)?.action, 'unchanged');
    }
    const inbound = await sendOne(daemon.address, message(['<alice@site.test>'], 'Q-BIG-IN', { sender: '<x@a.test>', body }), REMOTE_CLIENT);
    assert.deepEqual(inbound.eom, { modifications: [], verdict: CONTINUE, progress: 0 });
    assert.equal(daemon.summaries().find((l) => l.queueId === 'Q-BIG-IN')?.direction, 'inbound');
    const required = await sendOne(daemon.address, message(['<x@c.test>', '<y@breq.test>'], 'Q-BIG-REQ', { body }));
    assert.deepEqual(required.eom?.verdict, replyCode(451, '4.3.4', 'Message too large to protect'));
  });
});

describe('names that cannot publish a key', () => {
  it('treats localhost and address literals as domains without a key, under both strategies', async () => {
    for (const strategy of ['split', 'defer']) {
      const daemon = await muse({ mixedRecipients: { strategy } });
      for (const recipient of ['<root@localhost>', '<user@[192.0.2.1]>']) {
        const queueId = `Q-${strategy}-${recipient}`;
        const outcome = await sendOne(daemon.address, message([recipient], queueId));
        assert.deepEqual(outcome.rcpt, [CONTINUE], queueId);
        assert.deepEqual(outcome.eom?.verdict, CONTINUE, queueId);
        assert.match(outcome.delivered?.headers.find((h) => h.name === 'Content-Type')?.value ?? '', /^ multipart\/signed;/);
        assert.equal(daemon.summaries().find((l) => l.queueId === queueId)?.action, 'signed');
      }
      assert.deepEqual(
        daemon.lines.filter((l) => l.level === 'error'),
        [],
      );
    }
  });
});
