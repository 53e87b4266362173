/**
 * Pins with `milter.workers: 2`: `muse-milter run --config` as a real process tree (a primary and two workers on
 * one unix socket), the recipient sites' keys served by the test `_muse` zone (dns2 on loopback). Each milter
 * session is pinned to the worker that accepted it, found by a probe message whose summary line names the worker.
 *
 * Covered: two workers learning pins for different domains at the same moment (both in pins.json as soon as both
 * messages are answered, both enforced by both workers), a downgrade and an unannounced key change refused by the
 * worker that did not learn the pin, a failed write of pins.json (logged as in a single process, the mail goes on,
 * the pin still enforced and saved by the next write), SIGHUP (pins kept, relay still working), a worker replaced
 * after a crash (it starts with every pin), and a clean stop.
 *
 * Ports: none fixed (unix socket in a temporary directory, DNS on an ephemeral loopback port).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { MilterClient, Response } from '../../milter/src/index.ts';
import { waitFor } from '../support/processes.ts';
import { ChildMuse, STARTUP_TIMEOUT_MS } from './support/child-muse.ts';
import {
  baseSettings,
  crlfBody,
  makeSite,
  mergeSettings,
  openSession,
  replyCode,
  transact,
  writeSiteKey,
  type LogLine,
  type Outcome,
  type Settings,
  type TestMessage,
  type TestSite,
} from './support/harness.ts';
import { MuseZone } from './support/muse-zone.ts';

const DAY = 86_400;
const HEADERS = [
  { name: 'From', value: ' Alice <alice@site.test>' },
  { name: 'To', value: ' Someone <someone@elsewhere.test>' },
  { name: 'Subject', value: ' Pins' },
  { name: 'Content-Type', value: ' text/plain; charset=us-ascii' },
];
const BODY = crlfBody('Pinned or not.');
/** Connections opened at most to find a session on a given worker (the primary deals them out in turn). */
const MAX_PROBES = 12;

let zone: MuseZone;
let ours: TestSite;
let bob: TestSite;
let other: TestSite;
let dataDir: string;
let configPath: string;
let pinDir: string;
let child: ChildMuse;
let address: string;
let queueNumber = 0;
const sessions: MilterClient[] = [];

/** A session served by one worker: which one, and its process. */
interface WorkerSession {
  readonly mta: MilterClient;
  readonly worker: number;
  readonly pid: number;
}
let one: WorkerSession;
let two: WorkerSession;

function settings(extra: Settings = {}): string {
  const base = baseSettings(dataDir, ours, zone.address, 1);
  return stringify(mergeSettings(mergeSettings(base, { milter: { listen: `unix:${join(dataDir, 'muse.sock')}`, workers: 2 }, pins: { directory: pinDir } }), extra));
}

/** The JSON log lines written so far (complete lines only). */
function logLines(): LogLine[] {
  return child.stdout
    .split('\n')
    .slice(0, -1)
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

function waitForLine(what: string, match: (line: LogLine) => boolean, after = 0): Promise<LogLine> {
  return waitFor(
    () => {
      if (child.exitStatus !== undefined) throw new Error(`muse-milter exited:\n${child.stdout}\n${child.stderr}`);
      return logLines().slice(after).find(match);
    },
    { timeoutMs: 15_000, what },
  );
}

function message(domain: string): TestMessage {
  queueNumber += 1;
  return { sender: '<alice@site.test>', recipients: [`<someone@${domain}>`], headers: HEADERS, body: BODY, macros: { i: `QP${queueNumber}` } };
}

/** Sends one message on a session; returns the outcome and the summary line the worker logged for it. */
async function send(session: WorkerSession, domain: string): Promise<{ outcome: Outcome; summary: LogLine }> {
  const mail = message(domain);
  const outcome = await transact(session.mta, mail);
  const summary = await waitForLine(`summary of ${String(mail.macros?.i)}`, (l) => l.message === 'message processed' && l.queueId === mail.macros?.i);
  assert.equal(summary.worker, session.worker, 'the session stays with its worker');
  return { outcome, summary };
}

/** Opens sessions until one is served by worker `worker` (and, after a restart, not by the process `notPid`). */
async function sessionOn(worker: number, notPid?: number): Promise<WorkerSession> {
  for (let probe = 0; probe < MAX_PROBES; probe++) {
    const mta = await openSession(address);
    const mail = message('b.test');
    const outcome = await transact(mta, mail);
    assert.deepEqual(outcome.eom?.verdict, CONTINUE, 'probe message');
    const summary = await waitForLine(`probe ${String(mail.macros?.i)}`, (l) => l.message === 'message processed' && l.queueId === mail.macros?.i);
    if (summary.worker === worker && summary.pid !== notPid) {
      sessions.push(mta);
      return { mta, worker, pid: summary.pid as number };
    }
    await mta.close();
  }
  throw new Error(`no session on worker ${worker} after ${MAX_PROBES} connections`);
}

async function pinsFile(): Promise<Record<string, string[]>> {
  const json = JSON.parse(await readFile(join(pinDir, 'pins.json'), 'utf8')) as { pins: Record<string, { fingerprints: string[] }> };
  return Object.fromEntries(Object.entries(json.pins).map(([domain, pin]) => [domain, pin.fingerprints]));
}

const CONTINUE: Response = { kind: 'continue' };

function refused(domain: string): Response {
  return replyCode(451, '4.7.1', `Encryption to ${domain} is required but not possible now`);
}

/** Checks that `session`'s worker refuses mail to `domain` as a downgrade of its pin. */
async function assertDowngradeRefused(session: WorkerSession, domain: string): Promise<void> {
  const { outcome, summary } = await send(session, domain);
  assert.deepEqual(outcome.eom?.verdict, refused(domain), `${domain} via worker ${session.worker}`);
  assert.match(String(summary.reason), new RegExp(`^${domain.replace('.', '\\.')}: downgrade: no usable key published, yet 1 key\\(s\\) pinned until \\d{4}-`));
}

/** Checks that `session`'s worker encrypts mail to `domain`. */
async function assertEncrypted(session: WorkerSession, domain: string): Promise<void> {
  const { outcome, summary } = await send(session, domain);
  assert.deepEqual(outcome.eom?.verdict, CONTINUE, `${domain} via worker ${session.worker}`);
  assert.equal(summary.action, 'encrypted');
}

before(async () => {
  zone = await MuseZone.start();
  [ours, bob, other] = await Promise.all([makeSite('site.test'), makeSite('b.test'), makeSite('b.test')]);
  // The probes' domain: keys without pinning (ma=0).
  zone.publish('b.test', [bob.bytes]);
  dataDir = await mkdtemp(join(tmpdir(), 'muse-workers-pins-'));
  pinDir = join(dataDir, 'pins');
  configPath = join(dataDir, 'muse.yaml');
  await writeSiteKey(dataDir, ours);
  await writeFile(configPath, settings());
  child = await ChildMuse.start(['run', '--config', configPath]);
  address = (await child.waitForStderr(/run: milter listening on (\S+) \(2 worker processes\)/, STARTUP_TIMEOUT_MS))[1] as string;
  one = await sessionOn(1);
  two = await sessionOn(2);
});

after(async () => {
  for (const mta of sessions) await mta.close().catch(() => undefined);
  await child?.kill();
  await zone?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

describe('pins with milter.workers: 2', () => {
  it('two workers learning pins at the same moment: both in pins.json once answered, both enforced by both workers', async () => {
    zone.publish('p1.test', [bob.bytes], { maxAge: DAY });
    zone.publish('p2.test', [bob.bytes], { maxAge: DAY });
    const [first, second] = await Promise.all([transact(one.mta, message('p1.test')), transact(two.mta, message('p2.test'))]);
    assert.deepEqual([first.eom?.verdict, second.eom?.verdict], [CONTINUE, CONTINUE]);
    // Each message was answered only once its pin was durable: the file holds both now.
    assert.deepEqual(await pinsFile(), { 'p1.test': [bob.fingerprint], 'p2.test': [bob.fingerprint] });

    zone.withdraw('p1.test');
    zone.withdraw('p2.test');
    await assertDowngradeRefused(two, 'p1.test');
    await assertDowngradeRefused(one, 'p2.test');
    await assertDowngradeRefused(one, 'p1.test');
    await assertDowngradeRefused(two, 'p2.test');
  });

  it('a key changed without DNSSEC after worker 1 pinned it is refused by worker 2', async () => {
    zone.publish('s.test', [bob.bytes], { maxAge: DAY });
    await assertEncrypted(one, 's.test');
    zone.publish('s.test', [other.bytes], { maxAge: DAY });
    const { outcome, summary } = await send(two, 's.test');
    assert.deepEqual(outcome.eom?.verdict, refused('s.test'));
    assert.match(String(summary.reason), new RegExp(`^s\\.test: suspicious-change: published key\\(s\\) ${other.fingerprint} differ from the key\\(s\\) pinned until `));
  });

  it('a failed write of pins.json is logged as in a single process; the mail goes on and the pin holds', async () => {
    // The pin directory becomes a file: the primary cannot write the store.
    await rename(pinDir, `${pinDir}.away`);
    await writeFile(pinDir, 'not a directory\n');
    const seen = logLines().length;
    zone.publish('f.test', [bob.bytes], { maxAge: DAY });
    await assertEncrypted(one, 'f.test');
    const failed = await waitForLine('pin store write failed', (l) => l.message === 'pin store write failed', seen);
    assert.deepEqual(
      { level: failed.level, domain: failed.domain, worker: failed.worker, error: failed.error },
      { level: 'error', domain: 'f.test', worker: 1, error: `cannot write ${join(pinDir, 'pins.json')}: EEXIST` },
    );
    zone.withdraw('f.test');
    await assertDowngradeRefused(two, 'f.test');

    // Once the directory is back, the next write carries the pin the failed one lost.
    await rm(pinDir);
    await rename(`${pinDir}.away`, pinDir);
    zone.publish('g.test', [bob.bytes], { maxAge: DAY });
    await assertEncrypted(two, 'g.test');
    const file = await pinsFile();
    assert.deepEqual([file['f.test'], file['g.test']], [[bob.fingerprint], [bob.fingerprint]]);
  });

  it('SIGHUP: both workers reload with a new DNS setup, keep every pin, and still share what they learn', async () => {
    await writeFile(configPath, settings({ dns: { timeout: '4s' } }));
    const seen = logLines().length;
    child.signal('SIGHUP');
    await waitFor(() => (logLines().slice(seen).filter((l) => l.message === 'configuration reloaded').length === 2 ? true : undefined), {
      timeoutMs: 15_000,
      what: 'both workers reloaded',
    });
    await assertDowngradeRefused(one, 'p1.test');
    await assertDowngradeRefused(two, 'p2.test');
    zone.publish('h.test', [bob.bytes], { maxAge: DAY });
    await assertEncrypted(two, 'h.test');
    zone.withdraw('h.test');
    await assertDowngradeRefused(one, 'h.test');
    assert.deepEqual((await pinsFile())['h.test'], [bob.fingerprint]);
  });

  it('a worker started after a crash starts with every pin', async () => {
    const seen = logLines().length;
    process.kill(two.pid, 'SIGKILL');
    await waitForLine('the replacement', (l) => l.message === 'worker died; starting a replacement' && l.worker === 2, seen);
    await waitForLine('the replacement started', (l) => l.message === 'muse-milter started' && l.worker === 2 && l.pid !== two.pid, seen);
    const replacement = await sessionOn(2, two.pid);
    for (const domain of ['p1.test', 'p2.test', 'f.test', 'h.test']) await assertDowngradeRefused(replacement, domain);
    const { outcome } = await send(replacement, 's.test');
    assert.deepEqual(outcome.eom?.verdict, refused('s.test'));
  });

  it('stops cleanly on SIGTERM, every pin in the file', async () => {
    child.signal('SIGTERM');
    assert.deepEqual(await child.exit(30_000), { code: 0, signal: null });
    assert.deepEqual(Object.keys(await pinsFile()).sort(), ['f.test', 'g.test', 'h.test', 'p1.test', 'p2.test', 's.test']);
  });
});
