/**
 * Attack: an internationalised envelope domain spelled so that it escapes its policy. The MTA hands the milter the
 * envelope as bytes (SMTPUTF8 mail carries UTF-8); the configuration names domains in Unicode or A-labels. If the
 * bytes were read or normalised differently from the configuration, a message to a domain that requires
 * encryption would leave in clear, a remote domain could pass for a local one, or the key lookup could ask about a
 * domain other than the one the policy was decided for. Every spelling must meet the one policy of the one
 * A-label domain; a domain IDNA cannot convert (or bytes that are not UTF-8) is never sent in clear and never
 * taken for another domain.
 *
 * Through the daemon and the milter protocol; no key is published anywhere.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Response } from '../../milter/src/index.ts';
import { MuseZone } from '../daemon/support/muse-zone.ts';
import { waitFor } from '../support/processes.ts';
import { crlfBody, makeSite, replyCode, sendOne, startMuse, summaryFields, type RunningMuse, type Settings, type TestSite } from '../daemon/support/harness.ts';

const HEADERS = [
  { name: 'From', value: ' Alice <alice@site.test>' },
  { name: 'To', value: ' Bob <bob@example.test>' },
  { name: 'Subject', value: ' Bestellung' },
  { name: 'Date', value: ' Mon, 02 Jun 2025 12:00:00 +0000' },
  { name: 'Message-ID', value: ' <idn@site.test>' },
  { name: 'MIME-Version', value: ' 1.0' },
  { name: 'Content-Type', value: ' text/plain; charset=us-ascii' },
];
const BODY = crlfBody('Hello Bob,', '', 'the order list.', '', 'Alice');
const CONTINUE: Response = { kind: 'continue' };
const A_LABEL = 'xn--bcher-kva.test';

/** An envelope address as the MTA hands it to the milter: its UTF-8 bytes, one character per byte. */
function utf8Envelope(address: string): string {
  return Buffer.from(address, 'utf8').toString('latin1');
}

/** `<bob@b\xfccher.test>`: the Latin-1 byte of ü, which is not UTF-8. */
const LATIN1_BYTES = '<bob@b\xfccher.test>';
/** U+0378 is unassigned: no IDNA conversion. Its low byte is 'x', so a lossy re-reading would make it axb.test. */
const UNASSIGNED = utf8Envelope('<bob@a\u0378b.test>');
/** C1 controls: no IDNA conversion. Read again as UTF-8 bytes, the domain's characters would become x\u4001.test. */
const C1_CONTROLS = utf8Envelope('<bob@x\u00e4\u0080\u0081.test>');

let zone: MuseZone;
let ours: TestSite;
const daemons: RunningMuse[] = [];

async function muse(settings: Settings): Promise<RunningMuse> {
  const running = await startMuse({ site: ours, dnsServer: zone.address, settings });
  daemons.push(running);
  return running;
}

before(async () => {
  zone = await MuseZone.start();
  ours = await makeSite('site.test');
});
after(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  await zone?.close();
});

function send(daemon: RunningMuse, recipient: string, queueId: string) {
  return sendOne(daemon.address, { sender: '<alice@site.test>', recipients: [recipient], headers: HEADERS, body: BODY, macros: { i: queueId } });
}

/** The summary line of a message; one refused at RCPT gets it at ABORT, which has no reply: wait (bounded). */
async function summaryOf(daemon: RunningMuse, queueId: string) {
  const line = await waitFor(() => daemon.summaries().find((l) => l.queueId === queueId), { timeoutMs: 5_000, what: `the summary line of ${queueId}` });
  return summaryFields(line);
}

/** Queries for the `_muse` records of `domain` so far. */
function asked(domain: string): number {
  return zone.queriesFor(domain);
}

describe('idn envelope downgrade: a Unicode policy entry', () => {
  let daemon: RunningMuse;
  before(async () => {
    daemon = await muse({ policy: { domains: { 'bücher.test': 'required' } } });
  });

  for (const [label, recipient, queueId] of [
    ['UTF-8', utf8Envelope('<bob@bücher.test>'), 'Q-IDN-UTF8'],
    ['UTF-8 in upper case', utf8Envelope('<bob@BÜCHER.TEST>'), 'Q-IDN-UPPER'],
    ['A-labels', `<bob@${A_LABEL}>`, 'Q-IDN-ALABEL'],
  ] as const) {
    it(`defers mail to the required domain written in ${label}, looked up and logged as ${A_LABEL}`, async () => {
      const before = asked(A_LABEL);
      const outcome = await send(daemon, recipient, queueId);
      assert.deepEqual(outcome.rcpt, [CONTINUE], 'the lookup was not finished at RCPT');
      assert.deepEqual(outcome.eom, { modifications: [], verdict: replyCode(451, '4.7.1', `Encryption to ${A_LABEL} is required and no key was found`), progress: 0 });
      assert.equal(outcome.delivered, undefined);
      assert.ok(asked(A_LABEL) > before, 'the A-label domain was looked up');
      assert.deepEqual(await summaryOf(daemon, queueId), {
        queueId,
        direction: 'outbound',
        senderDomain: 'site.test',
        recipientDomains: [A_LABEL],
        action: 'tempfail',
        reason: `${A_LABEL}: no usable site key published`,
        keys: [],
        dnssec: undefined,
      });
    });
  }
});

describe('idn envelope downgrade: a Unicode local domain', () => {
  let daemon: RunningMuse;
  before(async () => {
    daemon = await muse({ site: { localDomains: ['site.test', 'bücher.test'] }, policy: { default: 'required' } });
  });

  it('takes mail to the local domain in UTF-8 as local: passed unchanged, no lookup', async () => {
    const before = asked(A_LABEL);
    const outcome = await send(daemon, utf8Envelope('<bob@Bücher.test>'), 'Q-IDN-LOCAL');
    assert.deepEqual(outcome.rcpt, [CONTINUE]);
    assert.deepEqual(outcome.eom, { modifications: [], verdict: CONTINUE, progress: 0 });
    assert.equal(asked(A_LABEL), before, 'a local domain is not looked up');
    assert.deepEqual(await summaryOf(daemon, 'Q-IDN-LOCAL'), {
      queueId: 'Q-IDN-LOCAL',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: [A_LABEL],
      action: 'clear',
      reason: `clear:${A_LABEL}`,
      keys: [],
      dnssec: undefined,
    });
  });

  it('does not take the Latin-1 bytes of the same name (not UTF-8) for the local domain: deferred, never in clear', async () => {
    const outcome = await send(daemon, LATIN1_BYTES, 'Q-IDN-LATIN1');
    assert.deepEqual(outcome.rcpt, [replyCode(451, '4.4.3', 'Key lookup for the recipient domain failed')]);
    assert.equal(outcome.eom, undefined);
    assert.deepEqual(await summaryOf(daemon, 'Q-IDN-LATIN1'), {
      queueId: 'Q-IDN-LATIN1',
      direction: 'outbound',
      senderDomain: 'site.test',
      recipientDomains: ['b\ufffdcher.test'],
      action: 'tempfail',
      reason: 'refused at RCPT: b\ufffdcher.test: DNS lookup failed: not a usable mail domain: "b\ufffdcher.test"',
      keys: [],
      dnssec: undefined,
    });
  });
});

describe('idn envelope downgrade: a domain IDNA cannot convert', () => {
  for (const [policy, settings] of [
    ['the required default policy', { policy: { default: 'required' } }],
    ['the default policy (dns)', {}],
  ] as const) {
    it(`defers it under ${policy}, without looking up any other domain`, async () => {
      const daemon = await muse(settings);
      for (const [recipient, raw, misread, queueId] of [
        [UNASSIGNED, 'a\u0378b.test', 'axb.test', 'Q-IDN-UNASSIGNED'],
        [C1_CONTROLS, 'x\u00e4\u0080\u0081.test', 'xn--x-9s0a.test', 'Q-IDN-C1'],
        [LATIN1_BYTES, 'b\ufffdcher.test', A_LABEL, 'Q-IDN-NOT-UTF8'],
      ] as const) {
        const before = asked(misread);
        const outcome = await send(daemon, recipient, queueId);
        assert.deepEqual(outcome.rcpt, [replyCode(451, '4.4.3', 'Key lookup for the recipient domain failed')], queueId);
        assert.equal(outcome.eom, undefined);
        assert.equal(asked(misread), before, `${queueId}: ${misread} was not looked up`);
        assert.deepEqual(await summaryOf(daemon, queueId), {
          queueId,
          direction: 'outbound',
          senderDomain: 'site.test',
          recipientDomains: [raw],
          action: 'tempfail',
          reason: `refused at RCPT: ${raw}: DNS lookup failed: not a usable mail domain: "${raw}"`,
          keys: [],
          dnssec: undefined,
        });
      }
    });
  }
});
