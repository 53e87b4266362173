/**
 * The pin relay between a primary and its workers, in one process: the primary's `PinRelayPrimary` and a
 * `PinRelayWorker` per worker, joined by in-memory channels that deliver each message later and as a JSON copy,
 * in order, as the cluster IPC channel does. The store's writes go through a writer the test holds, so what is
 * durable when is decided by the test, not by timing.
 *
 * Covered: the snapshot a worker starts from (in parts), reports from two workers at once (one store, both copies,
 * fewer writes than reports), a pin enforced by the other worker before it is even on disk, conflicting reports
 * (first to arrive wins, the loser's copy is corrected), answers only once durable, a failed write, malformed
 * messages on both sides (logged and ignored), a refused directory, a closed channel, a store that cannot be read.
 *
 * Ports: none.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogFields, MilterLogger } from '../../milter/src/index.ts';
import { PinRelayError, SNAPSHOT_CHUNK, type PrimaryPinMessage, type WorkerPinMessage } from '../../src/daemon/pin-relay-messages.ts';
import { PinRelayPrimary, type PinRelayPeer } from '../../src/daemon/pin-relay-primary.ts';
import { PinRelayWorker, type PrimaryChannel } from '../../src/daemon/pin-relay-worker.ts';
import {
  evaluatePin,
  PIN_FILE_NAME,
  PinStore,
  PinStoreError,
  writePinFileAtomically,
  type PinFileWriter,
  type PinInput,
  type PinKeeper,
} from '../../src/pins/index.ts';

const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const KEY_A = 'A'.repeat(40);
const KEY_B = 'B'.repeat(40);
/** Evaluations happen now: the store drops pins that have expired by the time it writes. */
const AT = new Date();
const DAY = 86_400;

/** A log line as the test's logger keeps it. */
type Line = { level: string; message: string } & LogFields;

function captureLog(): { log: MilterLogger; lines: Line[] } {
  const lines: Line[] = [];
  const keep = (level: string) => (message: string, fields?: LogFields) => lines.push({ level, message, ...fields });
  return { log: { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') }, lines };
}

/** The next turn of the event loop: every message sent before it has been delivered. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Waits (bounded) until `check` holds, turning the event loop in between. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (check()) return;
    await turn();
  }
  assert.fail(`never happened: ${what}`);
}

async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await turn();
  return done;
}

/** A writer that holds each write until the test finishes or fails it, and remembers what each carried. */
class GatedWriter {
  readonly writes: string[][] = [];
  #gates: Array<{ finish: () => void; fail: (error: Error) => void }> = [];

  readonly write: PinFileWriter = async (path, text) => {
    this.writes.push(Object.keys((JSON.parse(text) as { pins: Record<string, unknown> }).pins));
    await new Promise<void>((finish, fail) => this.#gates.push({ finish, fail }));
    await writePinFileAtomically(path, text);
  };

  get held(): number {
    return this.#gates.length;
  }

  finish(): void {
    this.#gates.shift()?.finish();
  }

  fail(message: string): void {
    this.#gates.shift()?.fail(new PinStoreError('PIN_STORE_IO', message));
  }
}

/** One worker joined to the primary by an in-memory channel. */
class Link {
  readonly toWorker: PrimaryPinMessage[] = [];
  readonly #listeners: Array<(raw: unknown) => void> = [];
  readonly #closeListeners: Array<() => void> = [];
  #open = true;
  readonly relay: PinRelayWorker;
  readonly peer: PinRelayPeer;

  constructor(
    readonly worker: number,
    primary: PinRelayPrimary,
    log: MilterLogger,
  ) {
    const channel: PrimaryChannel = {
      send: (message: WorkerPinMessage) => {
        if (!this.#open) return false;
        const copy: unknown = JSON.parse(JSON.stringify(message));
        setImmediate(() => primary.receive(this.peer, copy));
        return true;
      },
      onMessage: (listener) => this.#listeners.push(listener),
      onClose: (listener) => this.#closeListeners.push(listener),
    };
    this.peer = {
      worker,
      send: (message) => {
        if (!this.#open) return;
        this.toWorker.push(message);
        this.inject(JSON.parse(JSON.stringify(message)));
      },
    };
    this.relay = new PinRelayWorker(channel, log);
  }

  /** Delivers anything to the worker, as if the primary had sent it. */
  inject(raw: unknown): void {
    setImmediate(() => {
      for (const listener of this.#listeners) listener(raw);
    });
  }

  close(): void {
    this.#open = false;
    for (const listener of this.#closeListeners) listener();
  }
}

interface Setup {
  dir: string;
  primary: PinRelayPrimary;
  writer: GatedWriter | undefined;
  primaryLog: Line[];
  workerLog: Line[];
  link(worker: number): Link;
}

async function setup(options: { gated?: boolean } = {}): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'muse-pin-relay-'));
  dirs.push(dir);
  const writer = options.gated === false ? undefined : new GatedWriter();
  const links: Link[] = [];
  const primaryLog = captureLog();
  const workerLog = captureLog();
  const primary = new PinRelayPrimary({
    directory: dir,
    open: (directory) => PinStore.open(directory, writer === undefined ? {} : { writer: writer.write }),
    peers: () => links.map((l) => l.peer),
    log: primaryLog.log,
  });
  return {
    dir,
    primary,
    writer,
    primaryLog: primaryLog.lines,
    workerLog: workerLog.lines,
    link: (worker) => {
      const link = new Link(worker, primary, workerLog.log);
      links.push(link);
      return link;
    },
  };
}

function lookup(domain: string, keys: string[], maxAge = DAY): PinInput {
  return { domain, status: keys.length > 0 ? 'found' : 'none', keys: keys.map((fingerprint) => ({ fingerprint })), policy: 'opportunistic', maxAge, dnssec: false };
}

/** What a worker's key service does with a lookup: evaluate against its copy, and learn when the pin changes. */
function learn(pins: PinKeeper, input: PinInput, at = AT): Promise<void> {
  const { update } = evaluatePin(pins.get(input.domain), input, at);
  assert.notEqual(update.kind, 'keep', `${input.domain}: the lookup changes nothing`);
  return pins.learn(input, update, at);
}

async function fileDomains(dir: string): Promise<Record<string, string[]>> {
  const json = JSON.parse(await readFile(join(dir, PIN_FILE_NAME), 'utf8')) as { pins: Record<string, { fingerprints: string[] }> };
  return Object.fromEntries(Object.entries(json.pins).map(([domain, pin]) => [domain, pin.fingerprints]));
}

describe('pin relay: a worker starting', () => {
  it('gets every pin the primary holds, in parts of at most SNAPSHOT_CHUNK pins', async () => {
    const s = await setup({ gated: false });
    const expiresAt = new Date(Date.now() + DAY * 1000).toISOString();
    const stored = Object.fromEntries(
      Array.from({ length: SNAPSHOT_CHUNK + 5 }, (_, i) => [
        `d${i}.test`,
        { fingerprints: [KEY_A], policy: 'enforce', maxAge: DAY, firstSeen: AT.toISOString(), lastSeen: AT.toISOString(), expiresAt, dnssec: true },
      ]),
    );
    await writeFile(join(s.dir, PIN_FILE_NAME), JSON.stringify({ version: 1, pins: stored }));
    const link = s.link(1);
    const pins = await link.relay.open(s.dir);
    for (const domain of ['d0.test', `d${SNAPSHOT_CHUNK + 4}.test`]) assert.deepEqual(pins.get(domain)?.fingerprints, [KEY_A], domain);
    assert.equal(pins.get('other.test'), undefined);
    const snapshots = link.toWorker.filter((m) => m.op === 'snapshot');
    assert.deepEqual(
      snapshots.map((m) => (m.op === 'snapshot' ? m.pins.length : 0)),
      [SNAPSHOT_CHUNK, 5],
    );
    assert.equal(await link.relay.open(s.dir), pins, 'a reload reuses the same copy');
  });

  it('gets pins learnt by other workers that are not on disk yet', async () => {
    const s = await setup();
    const first = s.link(1);
    const learning = learn(await first.relay.open(s.dir), lookup('a.test', [KEY_A]));
    await until(() => s.writer?.held === 1, 'the write under way');
    const late = await s.link(2).relay.open(s.dir);
    assert.deepEqual(late.get('a.test')?.fingerprints, [KEY_A]);
    s.writer?.finish();
    await learning;
  });
});

describe('pin relay: learning', () => {
  it('two workers reporting different domains at once: one store, both copies, fewer writes than reports', async () => {
    const s = await setup();
    const [one, two] = [s.link(1), s.link(2)];
    const [pinsOne, pinsTwo] = await Promise.all([one.relay.open(s.dir), two.relay.open(s.dir)]);
    const domains = (prefix: string) => Array.from({ length: 10 }, (_, i) => `${prefix}${i}.test`);
    const learning = [...domains('one').map((d) => learn(pinsOne, lookup(d, [KEY_A]))), ...domains('two').map((d) => learn(pinsTwo, lookup(d, [KEY_B])))];
    const all = [...domains('one'), ...domains('two')];
    await until(() => all.every((d) => pinsOne.get(d) !== undefined && pinsTwo.get(d) !== undefined), 'every pin in both copies');
    assert.equal(await settled(Promise.all(learning)), false, 'nothing is answered before it is on disk');
    s.writer?.finish();
    await until(() => s.writer?.held === 1 && s.writer.writes.length === 2, 'the second write');
    assert.equal(await settled(Promise.all(learning)), false, 'the second write is held');
    s.writer?.finish();
    await Promise.all(learning);
    const file = await fileDomains(s.dir);
    assert.deepEqual(Object.keys(file).sort(), [...all].sort());
    for (const d of domains('one')) assert.deepEqual(file[d], [KEY_A]);
    for (const d of domains('two')) assert.deepEqual(file[d], [KEY_B]);
    // 20 reports: the first write carried the first pin, the second all the others.
    assert.equal(s.writer?.writes.length, 2);
  });

  it('a pin learnt by one worker is enforced by the other before it is on disk', async () => {
    const s = await setup();
    const [one, two] = [s.link(1), s.link(2)];
    const [pinsOne, pinsTwo] = await Promise.all([one.relay.open(s.dir), two.relay.open(s.dir)]);
    const learning = learn(pinsOne, lookup('p.test', [KEY_A]));
    assert.deepEqual(pinsOne.get('p.test')?.fingerprints, [KEY_A], 'the learning worker enforces it at once');
    await until(() => pinsTwo.get('p.test') !== undefined, 'the pin reaches worker 2');
    assert.equal(await settled(learning), false);
    assert.equal(evaluatePin(pinsTwo.get('p.test'), lookup('p.test', []), AT).state, 'downgrade');
    assert.equal(evaluatePin(pinsTwo.get('p.test'), lookup('p.test', [KEY_B]), AT).state, 'suspicious-change');
    s.writer?.finish();
    await learning;
  });

  it('conflicting reports: the first to arrive sets the pin, the second is judged against it, both copies end equal', async () => {
    const s = await setup();
    const [one, two, three] = [s.link(1), s.link(2), s.link(3)];
    const [pinsOne, pinsTwo, pinsThree] = await Promise.all([one.relay.open(s.dir), two.relay.open(s.dir), three.relay.open(s.dir)]);
    // Neither worker knew of a pin: each trusts what it found on first use, and enforces it at once.
    const first = learn(pinsOne, lookup('c.test', [KEY_A]));
    const second = learn(pinsTwo, lookup('c.test', [KEY_B]));
    assert.deepEqual(pinsTwo.get('c.test')?.fingerprints, [KEY_B]);
    await until(() => s.writer?.held === 1 && pinsTwo.get('c.test')?.fingerprints[0] === KEY_A, 'worker 2 corrected');
    s.writer?.finish();
    await Promise.all([first, second]);
    for (const pins of [pinsOne, pinsTwo, pinsThree]) assert.deepEqual(pins.get('c.test')?.fingerprints, [KEY_A]);
    assert.deepEqual(await fileDomains(s.dir), { 'c.test': [KEY_A] });
    assert.equal(s.writer?.writes.length, 1, 'the second report changed nothing');
    // Worker 3 heard of the change once; the verdict on the second report went to worker 2 alone.
    assert.deepEqual(
      three.toWorker.filter((m) => m.op === 'pin').map((m) => m.op === 'pin' && m.pin?.fingerprints),
      [[KEY_A]],
    );
    assert.deepEqual(
      two.toWorker.filter((m) => m.op === 'pin').map((m) => m.op === 'pin' && m.pin?.fingerprints),
      [[KEY_A], [KEY_A]],
    );
  });

  it('a report that changes nothing in the store is answered only once the pin it relies on is on disk', async () => {
    const s = await setup();
    const [one, two] = [s.link(1), s.link(2)];
    const [pinsOne, pinsTwo] = await Promise.all([one.relay.open(s.dir), two.relay.open(s.dir)]);
    const first = learn(pinsOne, lookup('same.test', [KEY_A]));
    const second = learn(pinsTwo, lookup('same.test', [KEY_A]));
    await until(() => s.writer?.held === 1 && two.toWorker.filter((m) => m.op === 'pin').length === 2, 'both reports judged');
    assert.equal(await settled(second), false);
    s.writer?.finish();
    await Promise.all([first, second]);
    assert.equal(s.writer?.writes.length, 1);
  });

  it('a failed write fails the report with the store error; the pin still holds in every copy', async () => {
    const s = await setup();
    const [one, two] = [s.link(1), s.link(2)];
    const [pinsOne, pinsTwo] = await Promise.all([one.relay.open(s.dir), two.relay.open(s.dir)]);
    const learning = learn(pinsOne, lookup('f.test', [KEY_A]));
    await until(() => s.writer?.held === 1, 'the write under way');
    s.writer?.fail(`cannot write ${join(s.dir, PIN_FILE_NAME)}: ENOSPC`);
    await assert.rejects(learning, (e: unknown) => e instanceof PinStoreError && e.code === 'PIN_STORE_IO' && e.message === `cannot write ${join(s.dir, PIN_FILE_NAME)}: ENOSPC`);
    assert.deepEqual(pinsOne.get('f.test')?.fingerprints, [KEY_A]);
    assert.deepEqual(pinsTwo.get('f.test')?.fingerprints, [KEY_A]);
    // The next report's write carries the pin the failed write lost.
    const next = learn(pinsTwo, lookup('g.test', [KEY_B]));
    await until(() => s.writer?.held === 1, 'the next write');
    s.writer?.finish();
    await next;
    assert.deepEqual(await fileDomains(s.dir), { 'f.test': [KEY_A], 'g.test': [KEY_B] });
  });
});

describe('pin relay: what goes wrong', () => {
  it('the primary logs and ignores malformed reports, and refuses those it can answer', async () => {
    const s = await setup({ gated: false });
    const link = s.link(4);
    await link.relay.open(s.dir);
    const wire = { domain: 'x.test', status: 'found', keys: [{ fingerprint: KEY_A }], policy: 'opportunistic', maxAge: DAY, dnssec: false };
    for (const raw of [
      { muse: 'pins', op: 'learn', id: 7, at: 'yesterday', lookup: wire },
      { muse: 'pins', op: 'learn', id: 8, at: AT.toISOString(), lookup: { ...wire, keys: [{ fingerprint: 'zz' }] } },
      { muse: 'pins', op: 'explode' },
      { muse: 'pins', op: 'open', id: -1, directory: s.dir },
    ]) {
      s.primary.receive(link.peer, raw);
    }
    // Other traffic on the channel is none of the relay's business: no log line.
    for (const raw of [{ muse: 'ready', address: 'unix:/x' }, { type: 'prom-client:getMetricsReq', requestId: 1 }, 'text', null, 42]) s.primary.receive(link.peer, raw);
    await turn();
    assert.deepEqual(
      s.primaryLog.map((l) => [l.level, l.message, l.worker, l.problem]),
      [
        ['warn', 'pin relay: malformed message ignored', 4, 'at: not a date'],
        ['warn', 'pin relay: malformed message ignored', 4, 'lookup.keys.0.fingerprint: Invalid string: must match pattern /^[0-9A-F]{40}$/'],
        ['warn', 'pin relay: malformed message ignored', 4, "op: Invalid discriminator value. Expected 'open' | 'learn'"],
        ['warn', 'pin relay: malformed message ignored', 4, 'id: Too small: expected number to be >=1'],
      ],
    );
    const refusals = link.toWorker.filter((m) => m.op === 'done' && m.error !== undefined);
    assert.deepEqual(
      refusals.map((m) => m.op === 'done' && [m.id, m.error?.code]),
      [
        [7, 'PIN_RELAY_MALFORMED'],
        [8, 'PIN_RELAY_MALFORMED'],
      ],
    );
    // The worker had no request 7 or 8: it says so, and nothing else happens.
    await turn();
    assert.deepEqual(
      s.workerLog.map((l) => l.problem),
      ['answer to no request (7)', 'answer to no request (8)'],
    );
    await assert.rejects(readFile(join(s.dir, PIN_FILE_NAME)), { code: 'ENOENT' });
  });

  it('a worker logs and ignores malformed messages, and fails the request a malformed answer ends', async () => {
    const s = await setup();
    const link = s.link(1);
    const pins = await link.relay.open(s.dir);
    link.inject({ muse: 'pins', op: 'pin', domain: 5, pin: null });
    link.inject({ muse: 'pins', op: 'pin', domain: 'm.test', pin: { domain: 'm.test', fingerprints: ['zz'] } });
    link.inject({ muse: 'reload' });
    await turn();
    assert.equal(pins.get('m.test'), undefined);
    assert.deepEqual(
      s.workerLog.map((l) => [l.level, l.message, l.problem]),
      [
        ['warn', 'pin relay: malformed message ignored', 'domain: Invalid input: expected string, received number'],
        ['warn', 'pin relay: malformed message ignored', 'pin.fingerprints.0: Invalid string: must match pattern /^[0-9A-F]{40}$/'],
      ],
    );
    // A report waiting for its answer: a malformed answer still ends it, so the message does not wait for ever.
    const learning = learn(pins, lookup('w.test', [KEY_A]));
    await until(() => s.writer?.held === 1, 'the write under way');
    link.inject({ muse: 'pins', op: 'done', id: 2, error: { code: 'NOT_A_CODE', message: 'x' } });
    await assert.rejects(learning, (e: unknown) => e instanceof PinRelayError && e.code === 'PIN_RELAY_MALFORMED');
    s.writer?.finish();
  });

  it('refuses a pin directory other than the one the primary started with', async () => {
    const s = await setup({ gated: false });
    const link = s.link(1);
    await assert.rejects(
      link.relay.open(join(s.dir, 'elsewhere')),
      (e: unknown) =>
        e instanceof PinRelayError &&
        e.code === 'PIN_RELAY_DIRECTORY' &&
        e.message === `pins.directory ${join(s.dir, 'elsewhere')} is not ${s.dir}, the one muse-milter started with: restart it to change pins.directory`,
    );
  });

  it('once the channel to the primary closes, waiting reports fail and later ones fail at once; pins still hold', async () => {
    const s = await setup();
    const link = s.link(1);
    const pins = await link.relay.open(s.dir);
    const learning = learn(pins, lookup('k.test', [KEY_A]));
    await until(() => s.writer?.held === 1, 'the write under way');
    link.close();
    await assert.rejects(learning, (e: unknown) => e instanceof PinRelayError && e.code === 'PIN_RELAY_CLOSED');
    await assert.rejects(learn(pins, lookup('l.test', [KEY_A])), (e: unknown) => e instanceof PinRelayError && e.code === 'PIN_RELAY_CLOSED');
    assert.deepEqual(pins.get('k.test')?.fingerprints, [KEY_A]);
    assert.deepEqual(pins.get('l.test')?.fingerprints, [KEY_A]);
    s.writer?.finish();
    await s.primary.settled();
  });

  it('a store that cannot be read fails the open with its error, and is read again on the next open', async () => {
    const s = await setup({ gated: false });
    await writeFile(join(s.dir, PIN_FILE_NAME), '{');
    const link = s.link(1);
    await assert.rejects(link.relay.open(s.dir), (e: unknown) => e instanceof PinStoreError && e.code === 'PIN_STORE_CORRUPT' && e.message === `${join(s.dir, PIN_FILE_NAME)} is not a valid pin store`);
    await writeFile(join(s.dir, PIN_FILE_NAME), JSON.stringify({ version: 1, pins: {} }));
    const pins = await link.relay.open(s.dir);
    assert.equal(pins.get('a.test'), undefined);
  });
});
