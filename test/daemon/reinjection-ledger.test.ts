import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeParts } from '../../src/daemon/copy-identity.ts';
import { ledgerKey, ReinjectionLedger } from '../../src/daemon/reinjection-ledger.ts';
import { MARKER_LIFETIME_SECONDS } from '../../src/daemon/reinjection-marker.ts';

const identity = {
  sender: 'alice@site.test',
  recipients: ['carol@c.test', 'dave@d.test'],
  messageIds: ['<m1@site.test>'],
  bodyDigest: createHash('sha256').update('body').digest(),
};
const NOW = new Date('2027-03-01T12:00:00.000Z');

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'muse-ledger-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('ledgerKey', () => {
  it('is SHA-256 over the identity, the same for any recipient order, different for any other field', () => {
    const key = ledgerKey(identity);
    const parts = ['muse-reinjection-ledger', '1', 'alice@site.test', '2', 'carol@c.test', 'dave@d.test', '1', '<m1@site.test>', identity.bodyDigest.toString('hex')];
    assert.equal(key, createHash('sha256').update(encodeParts(parts)).digest('hex'));
    assert.equal(ledgerKey({ ...identity, recipients: ['dave@d.test', 'carol@c.test'] }), key);
    const others = [
      { ...identity, sender: 'bob@site.test' },
      { ...identity, recipients: ['carol@c.test'] },
      { ...identity, messageIds: ['<m2@site.test>'] },
      { ...identity, bodyDigest: createHash('sha256').update('other').digest() },
    ].map(ledgerKey);
    assert.equal(new Set([key, ...others]).size, 5);
  });
});

describe('ReinjectionLedger', () => {
  it('creates its directory 0700, writes each entry 0600 atomically, and finds it until it expires', async () => {
    const dir = join(root, 'basic', 'reinjected');
    const ledger = await ReinjectionLedger.open(dir);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    const key = ledgerKey(identity);
    assert.equal(await ledger.find(key, NOW), undefined);
    await ledger.record(key, { original: 'Q1', reply: '250 2.0.0 Ok: queued as 4F2A1' }, NOW);
    assert.deepEqual(await readdir(dir), [`${key}.json`], 'no temporary file left');
    assert.equal((await stat(join(dir, `${key}.json`))).mode & 0o777, 0o600);
    const expiresAt = new Date(NOW.getTime() + MARKER_LIFETIME_SECONDS * 1000).toISOString();
    assert.equal(
      await readFile(join(dir, `${key}.json`), 'utf8'),
      `{"version":1,"original":"Q1","reply":"250 2.0.0 Ok: queued as 4F2A1","recordedAt":"2027-03-01T12:00:00.000Z","expiresAt":"${expiresAt}"}\n`,
    );
    const entry = { original: 'Q1', reply: '250 2.0.0 Ok: queued as 4F2A1', recordedAt: NOW.toISOString(), expiresAt };
    assert.deepEqual(await ledger.find(key, NOW), entry);
    // A second process (another worker) sees the entry too.
    assert.deepEqual(await (await ReinjectionLedger.open(dir)).find(key, new Date(Date.parse(expiresAt) - 1)), entry);
    assert.equal(await ledger.find(key, new Date(expiresAt)), undefined, 'expired');
    assert.equal(await ledger.find(ledgerKey({ ...identity, sender: 'bob@site.test' }), NOW), undefined);
  });

  it('throws on an entry it cannot read, and on a write it cannot make', async () => {
    const dir = join(root, 'faults');
    const ledger = await ReinjectionLedger.open(dir);
    const key = ledgerKey(identity);
    await writeFile(join(dir, `${key}.json`), '{"version":1,"original":"Q1"');
    await assert.rejects(ledger.find(key, NOW), SyntaxError);
    await writeFile(join(dir, `${key}.json`), '{"version":2}');
    await assert.rejects(ledger.find(key, NOW), { message: `ledger entry ${key} is not an entry` });
    await assert.rejects(ledger.find('../pins', NOW), { message: 'a ledger key is 64 hex digits' });
    // The directory gone and a file in its place: nothing can be written there (even as root).
    await rm(dir, { recursive: true });
    await writeFile(dir, 'not a directory');
    await assert.rejects(ledger.record(key, { original: 'Q1', reply: '250 ok' }, NOW), { code: 'ENOTDIR' });
  });

  it('sweeps expired entries, stale temporary files, and the oldest entries beyond its bound', async () => {
    const dir = join(root, 'sweep');
    const ledger = await ReinjectionLedger.open(dir, { maxEntries: 3, lifetimeSeconds: 3600 });
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'].map((sender) => ledgerKey({ ...identity, sender }));
    // Recorded 60, 50, ... 10 s before NOW (within a minute of the first write: no sweep in between) with a lifetime
    // of an hour: the first two have expired 45 s before the hour is up, and the oldest left is beyond the bound.
    const ages = [60, 50, 40, 30, 20, 10];
    for (const [i, key] of keys.entries()) await ledger.record(key, { original: 'Q', reply: '250 ok' }, new Date(NOW.getTime() - (ages[i] as number) * 1000));
    assert.equal((await readdir(dir)).length, 6, 'a sweep during the writes removed nothing');
    const later = new Date(NOW.getTime() + 3_600_000 - 45_000);
    assert.equal((await stat(join(dir, `${keys[1]}.json`))).mtimeMs, NOW.getTime() - 50_000 + 3_600_000, 'the modification time is the expiry');
    const staleTemporary = `${keys[0]}.json.1234.0123456789ab.tmp`;
    const freshTemporary = `${keys[1]}.json.1234.ba9876543210.tmp`;
    await writeFile(join(dir, staleTemporary), 'x');
    await writeFile(join(dir, freshTemporary), 'x');
    const old = new Date(later.getTime() - 61_000);
    const recent = new Date(later.getTime() - 59_000);
    await utimes(join(dir, staleTemporary), old, old);
    await utimes(join(dir, freshTemporary), recent, recent);
    await writeFile(join(dir, 'unrelated.txt'), 'kept');
    await ledger.sweep(later);
    assert.deepEqual((await readdir(dir)).sort(), [...keys.slice(3).map((k) => `${k}.json`), freshTemporary, 'unrelated.txt'].sort());
  });
});
