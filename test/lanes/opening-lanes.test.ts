/**
 * The opening lanes on their own, with real threads and a runtime of just what they read: a message opened in the
 * foreground, the sending domain's keys asked for over the port, and a thread that stops under a message: the
 * message fails (the daemon tempfails it), its sender is charged, what the thread spooled is removed, and the next
 * message starts a new thread.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/index.ts';
import type { Runtime } from '../../src/daemon/runtime.ts';
import type { SenderKeys } from '../../src/engine/index.ts';
import { OpeningLanes, type OpeningRequest } from '../../src/lanes/opening-lanes.ts';
import { baseSettings, makeSite, mergeSettings, type TestSite } from '../daemon/support/harness.ts';
import { waitFor } from '../support/processes.ts';
import { entity, innerFields, pgpMime, signedAndEncrypted, transportFields } from '../security/support/inbound-attack.ts';

let dir: string;
let ours: TestSite;
let victim: TestSite;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muse-lanes-'));
  await mkdir(join(dir, 'spool'), { mode: 0o700 });
  [ours, victim] = await Promise.all([makeSite('site.test'), makeSite('victim.test')]);
});
after(() => rm(dir, { recursive: true, force: true }));

/** A runtime with what the lanes read; `senderKeys` answers the thread's lookups. */
function runtime(senderKeys: (domain: string) => Promise<SenderKeys | null>): Runtime {
  const text = stringify(mergeSettings(baseSettings(dir, ours, '127.0.0.1:53', 1), { milter: { spoolDirectory: join(dir, 'spool') } }));
  return { config: parseConfig(text, join(dir, 'muse.yaml')), decryptionKeys: [ours.privateKey], keys: { senderKeys }, now: () => new Date() } as unknown as Runtime;
}

/** The request to open `sent` from `sender`, whose domain's keys `senderKeys` gives. */
function requestFor(sent: { headers: Array<{ name: string; value: string }>; body: Buffer }, sender: string, senderKeys: (domain: string) => Promise<SenderKeys | null>): OpeningRequest {
  return {
    runtime: runtime(senderKeys),
    headers: sent.headers,
    body: async function* () {
      yield sent.body;
    },
    sender,
    bodyBytes: sent.body.length,
  };
}

async function victimMessage(): Promise<{ headers: Array<{ name: string; value: string }>; body: Buffer }> {
  return pgpMime(transportFields('CEO <ceo@victim.test>'), await signedAndEncrypted(entity(innerFields('CEO <ceo@victim.test>')), victim.privateKey, [ours.publicKey]));
}

describe('opening lanes', () => {
  it('opens a message on the foreground thread, asking the event loop for the sending domain\'s keys', async (t) => {
    const lanes = new OpeningLanes(0.1, 1024 * 1024);
    t.after(() => lanes.close());
    const asked: string[] = [];
    const sent = await victimMessage();
    const opening = await lanes.open(
      requestFor(sent, 'client 198.51.100.7', async (domain) => {
        asked.push(domain);
        return { keys: [victim.publicKey], dnssec: false };
      }),
    );
    assert.equal(opening.lane, 'foreground');
    assert.equal(opening.result.kind, 'opened');
    assert.equal(opening.result.kind === 'opened' && opening.result.verdict.result, 'pass');
    assert.deepEqual(asked, ['victim.test']);
    if (opening.result.kind === 'opened') {
      assert.match((await opening.result.body.toBuffer()).toString('utf8'), /Please wire 50000 EUR/);
      await opening.result.body.dispose();
    }
    assert.ok(opening.costMs > 0, String(opening.costMs));
  });

  it('fails a message whose thread stops under it, charges its sender, and starts a new thread for the next', async (t) => {
    const lanes = new OpeningLanes(0.1, 1024 * 1024);
    t.after(() => lanes.close());
    const sent = await victimMessage();
    let lookedUp!: () => void;
    const lookup = new Promise<void>((resolve) => (lookedUp = resolve));
    // The lookup never answers: the job waits in the thread until it is stopped.
    const pending = lanes.open(requestFor(sent, 'client 192.0.2.66', () => (lookedUp(), new Promise(() => {}))));
    await lookup;
    await lanes.close();
    await assert.rejects(pending, /opening thread stopped/);
    // Twice the share of 0.1 (two seconds' worth), less the little that decayed since.
    const share = lanes.costs.shareOf('client 192.0.2.66');
    assert.ok(share > 0.19 && share <= 0.2, String(share));
    assert.equal(lanes.costs.laneFor('client 192.0.2.66', 100), 'background');
    const next = await lanes.open(requestFor(sent, 'client 198.51.100.9', async () => ({ keys: [victim.publicKey], dnssec: false })));
    assert.equal(next.lane, 'foreground');
    assert.equal(next.result.kind === 'opened' && next.result.verdict.result, 'pass');
    if (next.result.kind === 'opened') await next.result.body.dispose();
  });

  it('removes what a thread spooled when it stops: a large opened body the MTA had not read yet', async (t) => {
    const lanes = new OpeningLanes(0.1, 1024 * 1024);
    t.after(() => lanes.close());
    const text = `${'x'.repeat(75)}\r\n`.repeat(30_000);
    const inner = innerFields('CEO <ceo@victim.test>');
    const sent = pgpMime(transportFields('CEO <ceo@victim.test>'), await signedAndEncrypted(entity(inner, text), victim.privateKey, [ours.publicKey]));
    const opening = await lanes.open(requestFor(sent, 'client 198.51.100.8', async () => ({ keys: [victim.publicKey], dnssec: false })));
    assert.equal(opening.lane, 'background');
    assert.ok(opening.result.kind === 'opened' && opening.result.body.spooled, 'the opened body is in a spool file of the thread');
    const spool = join(dir, 'spool');
    const held = await readdir(spool);
    assert.equal(held.length, 1);
    assert.match(held[0] as string, new RegExp(`^milter-body-${process.pid}-lane-background-\\d+-`));
    await lanes.close();
    await waitFor(async () => ((await readdir(spool)).length === 0 ? true : undefined), { timeoutMs: 10_000, what: 'the stopped thread\'s spill directory removed' });
  });
});
