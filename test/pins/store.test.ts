/**
 * The pin store: round trip, mode 0600, atomic replacement, pruning, corrupt files, concurrent writers, and coalesced
 * writes (observed through an injected writer: how many writes, what each carried, when each caller is answered).
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PIN_FILE_NAME, PinStore, PinStoreError, writePinFileAtomically, type Pin, type PinFileWriter } from '../../src/pins/index.ts';
import { settled } from '../support/settled.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'muse-pins-'));
  dirs.push(dir);
  return dir;
}
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const FUTURE = new Date(Date.now() + 86_400_000).toISOString();

function pin(domain: string, fingerprint = 'A'.repeat(40), expiresAt = FUTURE): Pin {
  return {
    domain,
    fingerprints: [fingerprint],
    policy: 'opportunistic',
    maxAge: 86400,
    firstSeen: '2026-01-01T00:00:00.000Z',
    lastSeen: '2026-01-02T00:00:00.000Z',
    expiresAt,
    dnssec: true,
    publicKeys: {},
  };
}

describe('PinStore', () => {
  it('starts empty without a file, and persists pins across opens in a 0600 file', async () => {
    const dir = join(await tempDir(), 'pins');
    const store = await PinStore.open(dir);
    assert.deepEqual(store.all(), []);
    assert.equal(await store.apply('example.test', { kind: 'set', pin: pin('example.test') }), true);
    assert.equal(await store.apply('example.test', { kind: 'keep' }), false);
    assert.equal((await stat(join(dir, PIN_FILE_NAME))).mode & 0o777, 0o600);
    const reopened = await PinStore.open(dir);
    assert.deepEqual(reopened.get('example.test'), pin('example.test'));
    const json = JSON.parse(await readFile(join(dir, PIN_FILE_NAME), 'utf8'));
    assert.equal(json.version, 2);
    assert.deepEqual(Object.keys(json.pins), ['example.test']);
    assert.equal(json.pins['example.test'].domain, undefined, 'the domain is the key, not repeated');
  });

  it('deletes pins and leaves no temporary files behind', async () => {
    const dir = await tempDir();
    const store = await PinStore.open(dir);
    await store.apply('a.test', { kind: 'set', pin: pin('a.test') });
    await store.apply('b.test', { kind: 'set', pin: pin('b.test') });
    assert.equal(await store.apply('a.test', { kind: 'delete' }), true);
    assert.equal(await store.apply('a.test', { kind: 'delete' }), false);
    assert.deepEqual(
      (await PinStore.open(dir)).all().map((p) => p.domain),
      ['b.test'],
    );
    assert.deepEqual(await readdir(dir), [PIN_FILE_NAME]);
  });

  it('drops expired pins when it writes', async () => {
    const dir = await tempDir();
    const store = await PinStore.open(dir);
    await store.apply('old.test', { kind: 'set', pin: pin('old.test', 'B'.repeat(40), '2020-01-01T00:00:00.000Z') });
    await store.apply('new.test', { kind: 'set', pin: pin('new.test') });
    assert.deepEqual(
      (await PinStore.open(dir)).all().map((p) => p.domain),
      ['new.test'],
    );
  });

  it('serialises concurrent writes: every change reaches the file', async () => {
    const dir = await tempDir();
    const store = await PinStore.open(dir);
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.apply(`d${i}.test`, { kind: 'set', pin: pin(`d${i}.test`) })));
    assert.equal((await PinStore.open(dir)).all().length, 20);
    assert.deepEqual(await readdir(dir), [PIN_FILE_NAME]);
  });

  it('refuses a corrupt or foreign file instead of forgetting the pins', async () => {
    const dir = await tempDir();
    for (const content of ['{', '[]', '{"version":3,"pins":{}}', JSON.stringify({ version: 2, pins: { 'x.test': { ...pin('x.test'), publicKeys: { ['B'.repeat(40)]: 'AAAA' } } } }), JSON.stringify({ version: 1, pins: { 'x.test': { ...pin('x.test'), fingerprints: ['zz'] } } })]) {
      await writeFile(join(dir, PIN_FILE_NAME), content);
      await assert.rejects(PinStore.open(dir), (e: unknown) => e instanceof PinStoreError && e.code === 'PIN_STORE_CORRUPT');
    }
  });

  it('reads a version 1 file (no key bytes) and writes it back as version 2 with the key bytes it learns', async () => {
    const dir = await tempDir();
    const { domain: _domain, publicKeys: _keys, ...v1 } = pin('v1.test');
    await writeFile(join(dir, PIN_FILE_NAME), JSON.stringify({ version: 1, pins: { 'v1.test': v1 } }));
    const store = await PinStore.open(dir);
    assert.deepEqual(store.get('v1.test'), pin('v1.test'));
    await store.apply('v1.test', { kind: 'set', pin: { ...pin('v1.test'), publicKeys: { ['A'.repeat(40)]: 'mDMEZg==' } } });
    const json = JSON.parse(await readFile(join(dir, PIN_FILE_NAME), 'utf8'));
    assert.equal(json.version, 2);
    assert.deepEqual(json.pins['v1.test'].publicKeys, { ['A'.repeat(40)]: 'mDMEZg==' });
    assert.deepEqual((await PinStore.open(dir)).get('v1.test')?.publicKeys, { ['A'.repeat(40)]: 'mDMEZg==' });
  });

  it('reports an unwritable location as PIN_STORE_IO', async () => {
    const dir = await tempDir();
    const store = await PinStore.open(join(dir, 'later'));
    await writeFile(join(dir, 'later'), 'a file where the directory should be');
    await assert.rejects(store.apply('x.test', { kind: 'set', pin: pin('x.test') }), (e: unknown) => e instanceof PinStoreError && e.code === 'PIN_STORE_IO');
    await assert.rejects(PinStore.open(join(dir, 'later')), (e: unknown) => e instanceof PinStoreError && e.code === 'PIN_STORE_IO');
    await mkdir(join(dir, 'd', PIN_FILE_NAME), { recursive: true });
    await assert.rejects(PinStore.open(join(dir, 'd')), (e: unknown) => e instanceof PinStoreError && e.code === 'PIN_STORE_IO');
  });
});

/** A writer that records every write and holds each one until the test lets it finish (or fail). */
class GatedWriter {
  /** The domains each write carried, in order. */
  readonly writes: string[][] = [];
  #gates: Array<{ finish: () => void; fail: (error: Error) => void }> = [];
  #arrived: Array<() => void> = [];

  readonly write: PinFileWriter = async (path, text) => {
    this.writes.push(Object.keys((JSON.parse(text) as { pins: Record<string, unknown> }).pins));
    for (const wake of this.#arrived.splice(0)) wake();
    await new Promise<void>((finish, fail) => this.#gates.push({ finish, fail }));
    await writePinFileAtomically(path, text);
  };

  /** Resolves once `count` writes have started. */
  async started(count: number): Promise<void> {
    while (this.writes.length < count) await new Promise<void>((wake) => this.#arrived.push(wake));
  }

  /** Lets the oldest held write go on to the disk. */
  finish(): void {
    this.#gates.shift()?.finish();
  }

  /** Fails the oldest held write. */
  fail(): void {
    this.#gates.shift()?.fail(new PinStoreError('PIN_STORE_IO', 'cannot write: EIO'));
  }
}

describe('PinStore: coalesced writes', () => {
  it('merges the changes made while a write is under way into one following write', async () => {
    const dir = await tempDir();
    const writer = new GatedWriter();
    const store = await PinStore.open(dir, { writer: writer.write });
    const domains = Array.from({ length: 20 }, (_, i) => `d${String(i).padStart(2, '0')}.test`);
    const applied = domains.map((d) => store.apply(d, { kind: 'set', pin: pin(d) }));
    await writer.started(1);
    writer.finish();
    await writer.started(2);
    writer.finish();
    assert.deepEqual(await Promise.all(applied), domains.map(() => true));
    // 20 changes, 2 writes: the first carried the first change, the second all the others.
    assert.deepEqual(writer.writes, [[domains[0]], domains]);
    assert.deepEqual((await PinStore.open(dir)).all().map((p) => p.domain), domains);
    assert.deepEqual(await readdir(dir), [PIN_FILE_NAME]);
  });

  it('never answers a change before the write that carries it has completed', async () => {
    const dir = await tempDir();
    const writer = new GatedWriter();
    const store = await PinStore.open(dir, { writer: writer.write });
    const first = store.apply('a.test', { kind: 'set', pin: pin('a.test') });
    await writer.started(1);
    // Made while the first write is under way: not in it, so not answered by it.
    const second = store.apply('b.test', { kind: 'set', pin: pin('b.test') });
    const third = store.apply('c.test', { kind: 'set', pin: pin('c.test') });
    assert.deepEqual(store.get('b.test'), pin('b.test'), 'the change holds in memory at once');
    assert.equal(await settled(first), false);
    writer.finish();
    assert.equal(await first, true);
    assert.equal(await settled(second), false, 'the second change waits for its own write');
    assert.equal(await settled(third), false);
    await writer.started(2);
    assert.equal(await settled(second), false, 'not answered while its write is held');
    writer.finish();
    assert.deepEqual(await Promise.all([second, third]), [true, true]);
    assert.deepEqual(writer.writes, [['a.test'], ['a.test', 'b.test', 'c.test']]);
  });

  it('fails every change a failed write carried, keeps them in memory, and saves them with the next write', async () => {
    const dir = await tempDir();
    const writer = new GatedWriter();
    const store = await PinStore.open(dir, { writer: writer.write });
    const first = store.apply('a.test', { kind: 'set', pin: pin('a.test') });
    await writer.started(1);
    const queued = [store.apply('b.test', { kind: 'set', pin: pin('b.test') }), store.apply('c.test', { kind: 'set', pin: pin('c.test') })];
    writer.finish();
    await first;
    await writer.started(2);
    writer.fail();
    for (const change of queued) await assert.rejects(change, (e: unknown) => e instanceof PinStoreError && e.code === 'PIN_STORE_IO');
    assert.deepEqual(store.all().map((p) => p.domain), ['a.test', 'b.test', 'c.test']);
    assert.deepEqual((await PinStore.open(dir)).all().map((p) => p.domain), ['a.test']);
    // flushed() notices what the file lacks and writes it.
    const flushed = store.flushed();
    await writer.started(3);
    writer.finish();
    await flushed;
    assert.deepEqual((await PinStore.open(dir)).all().map((p) => p.domain), ['a.test', 'b.test', 'c.test']);
    assert.equal(writer.writes.length, 3);
  });

  it('flushed() waits for the writes under way and queued, and writes nothing when all is saved', async () => {
    const dir = await tempDir();
    const writer = new GatedWriter();
    const store = await PinStore.open(dir, { writer: writer.write });
    await store.flushed();
    assert.equal(writer.writes.length, 0);
    const first = store.apply('a.test', { kind: 'set', pin: pin('a.test') });
    await writer.started(1);
    const second = store.apply('b.test', { kind: 'set', pin: pin('b.test') });
    const flushed = store.flushed();
    writer.finish();
    await first;
    await writer.started(2);
    assert.equal(await settled(flushed), false, 'the queued write is still held');
    writer.finish();
    await Promise.all([second, flushed]);
    await store.flushed();
    assert.equal(writer.writes.length, 2);
  });
});
