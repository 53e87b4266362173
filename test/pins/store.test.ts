/** The pin store: round trip, mode 0600, atomic replacement, pruning, corrupt files, concurrent writers. */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PIN_FILE_NAME, PinStore, PinStoreError, type Pin } from '../../src/pins/index.ts';

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
    assert.equal(json.version, 1);
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
    for (const content of ['{', '[]', '{"version":2,"pins":{}}', JSON.stringify({ version: 1, pins: { 'x.test': { ...pin('x.test'), fingerprints: ['zz'] } } })]) {
      await writeFile(join(dir, PIN_FILE_NAME), content);
      await assert.rejects(PinStore.open(dir), (e: unknown) => e instanceof PinStoreError && e.code === 'PIN_STORE_CORRUPT');
    }
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
