/**
 * `rotate` and `pins`: a site rotates its key with `muse-milter rotate` while a sender holds a pin of the old key,
 * and the sender follows it without DNSSEC; `pins` lists pins and forgets one, refusing while the milter runs.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readKey, type PrivateKey, type PublicKey } from 'openpgp';
import { certifiedByPin, claimPinDirectory, PIN_OWNER_FILE_NAME, PinStore } from '../../src/pins/index.ts';
import { fp, PARTNER, startSender, txt, type Sender } from '../security/support/pinned-site.ts';
import { cli } from './run-cli.ts';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muse-rotate-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function privateKeyFile(path: string): Promise<PrivateKey> {
  return (await readKey({ armoredKey: await readFile(path, 'utf8') })) as PrivateKey;
}

describe('rotate', () => {
  let sender: Sender;
  before(async () => {
    sender = await startSender();
  });
  after(() => sender.close());

  it('makes a certified successor that a sender holding a pin follows without DNSSEC', async () => {
    const keys = join(dir, 'keys');
    assert.equal((await cli('genkey', '--domain', PARTNER, '--dir', keys, '--policy', 'enforce', '--max-age', '86400')).code, 0);
    const old = await privateKeyFile(join(keys, `${PARTNER}.private.asc`));
    sender.serve([txt(old, 'enforce', 86_400)]);
    const pinned = await sender.send();
    assert.deepEqual(pinned.kind === 'encrypt' && pinned.fingerprints, [fp(old)]);

    const result = await cli('rotate', '--domain', PARTNER, '--key-dir', keys, '--policy', 'enforce', '--max-age', '86400', '--ttl', '600');
    assert.equal(result.code, 0, result.stderr);
    const next = await privateKeyFile((/wrote (\S+\.private\.asc)/.exec(result.stderr) ?? [])[1] ?? '');
    const tag = next.getKeyID().toHex().toUpperCase();
    const base = join(keys, `${PARTNER}.${tag}`);
    assert.equal(result.stderr, `rotate: wrote ${base}.private.asc (mode 0600), ${base}.public.asc, ${base}.zone\n`);
    assert.equal((await stat(`${base}.private.asc`)).mode & 0o777, 0o600);
    const lines = result.stdout.split('\n');
    assert.equal(lines[0], `; Rotation of the site key of ${PARTNER}: ${fp(old)} -> ${fp(next)}`);
    assert.ok(lines.includes(`;      site.keyFile: ${base}.private.asc`));
    assert.ok(lines.includes(`;      site.previousKeyFiles: add ${join(keys, `${PARTNER}.private.asc`)}`));
    assert.match(result.stdout, /; 3\. Keep both published for at least max-age \+ TTL = 87000 s \(until /);
    assert.equal(lines.filter((l) => / TXT \( "v=MUSE1; p=enforce; ma=86400; k=/.test(l)).length, 2, 'TXT records of both keys');
    assert.equal(await readFile(`${base}.zone`, 'utf8'), result.stdout.slice(result.stdout.indexOf(`; MUSE site key for ${PARTNER}: ${fp(next)}`)));
    const published = (await readKey({ armoredKey: await readFile(`${base}.public.asc`, 'utf8') })) as PublicKey;
    assert.equal(published.users[0]?.otherCertifications.length, 1, 'the published key carries the certification');

    // The overlap: both keys, no DNSSEC.
    sender.serve([txt(old, 'enforce', 86_400), txt(next, 'enforce', 86_400)]);
    const overlap = await sender.send();
    assert.deepEqual(overlap.kind === 'encrypt' && overlap.fingerprints, [fp(old), fp(next)].sort());
    // After it: the new key alone.
    sender.serve([txt(next, 'enforce', 86_400)]);
    const rotated = await sender.send();
    assert.deepEqual(rotated.kind === 'encrypt' && rotated.fingerprints, [fp(next)]);
    assert.deepEqual((await sender.store()).get(PARTNER)?.fingerprints, [fp(next)]);
  });

  it('is followed from the stored key alone when the sender never saw the overlap', async () => {
    const keys = join(dir, 'keys2');
    assert.equal((await cli('genkey', '--domain', PARTNER, '--dir', keys)).code, 0);
    const old = await privateKeyFile(join(keys, `${PARTNER}.private.asc`));
    const result = await cli('rotate', '--domain', PARTNER, '--key-dir', keys);
    assert.equal(result.code, 0, result.stderr);
    const next = await privateKeyFile((/wrote (\S+\.private\.asc)/.exec(result.stderr) ?? [])[1] ?? '');
    const pin = {
      domain: PARTNER,
      fingerprints: [fp(old)],
      policy: 'enforce' as const,
      maxAge: 86_400,
      firstSeen: new Date().toISOString(),
      lastSeen: new Date().toISOString(),
      expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
      dnssec: false,
      publicKeys: { [fp(old)]: Buffer.from(old.toPublic().write()).toString('base64') },
    };
    const found = { fingerprint: fp(next), key: next.toPublic(), bytes: next.toPublic().write() };
    assert.deepEqual(await certifiedByPin(pin, [found], new Date()), { [fp(next)]: fp(old) });
  });

  it('refuses to run without the current key, and never overwrites', async () => {
    const result = await cli('rotate', '--domain', 'nokey.test', '--key-dir', dir);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^muse-milter rotate: KEY_FILE_UNREADABLE: cannot read .*nokey\.test\.private\.asc: ENOENT\n$/);
    assert.equal((await cli('rotate', '--key-dir', dir)).code, 2);
  });
});

describe('pins', () => {
  const A = 'A'.repeat(40);
  const future = new Date(Date.now() + 86_400_000).toISOString();
  const pinDir = (): string => join(dir, 'pins');

  before(async () => {
    const store = await PinStore.open(pinDir());
    for (const domain of ['a.test', 'b.test']) {
      await store.apply(domain, {
        kind: 'set',
        pin: { domain, fingerprints: [A], policy: 'enforce', maxAge: 86_400, firstSeen: future, lastSeen: future, expiresAt: future, dnssec: domain === 'a.test', publicKeys: {} },
      });
    }
  });

  it('lists the pins in force', async () => {
    const result = await cli('pins', '--pin-dir', pinDir());
    assert.equal(result.code, 0);
    const entry = (domain: string, dnssec: string): string =>
      `domain:     ${domain}\nkey:        ${A}\npolicy:     enforce, max-age 86400 s\nexpires:    ${future}\ndnssec:     ${dnssec}\n\n`;
    assert.equal(result.stdout, entry('a.test', 'yes') + entry('b.test', 'no'));
    const json = JSON.parse((await cli('pins', '--pin-dir', pinDir(), '--json')).stdout);
    assert.deepEqual(Object.keys(json.pins), ['a.test', 'b.test']);
    assert.deepEqual(json.pins['a.test'].fingerprints, [A]);
  });

  it('refuses to forget while the milter that writes the store runs, and forgets once it has stopped', async () => {
    await claimPinDirectory(pinDir());
    const refused = await cli('pins', 'forget', 'A.TEST', '--pin-dir', pinDir());
    assert.equal(refused.code, 1);
    assert.equal(
      refused.stderr,
      `pins: muse-milter (pid ${process.pid}) is running and writes ${pinDir()}/pins.json; it would write the pin back. ` +
        'Stop it, run "muse-milter pins forget a.test" again, then start it.\n',
    );
    assert.deepEqual((await PinStore.open(pinDir())).get('a.test')?.fingerprints, [A]);

    // A pid file left by a process that has ended does not block.
    await writeFile(join(pinDir(), PIN_OWNER_FILE_NAME), '2147483646\n');
    const forgotten = await cli('pins', 'forget', 'a.test', '--pin-dir', pinDir());
    assert.deepEqual(forgotten, { code: 0, stdout: '', stderr: 'pins: forgot the pin of a.test\n' });
    assert.deepEqual((await PinStore.open(pinDir())).all().map((p) => p.domain), ['b.test']);
    const again = await cli('pins', 'forget', 'a.test', '--pin-dir', pinDir());
    assert.equal(again.code, 1);
    assert.equal(again.stderr, `pins: no pin for a.test in ${join(pinDir(), 'pins.json')}\n`);
  });

  it('treats a wrong command line as a usage error', async () => {
    assert.equal((await cli('pins', 'remove', 'a.test', '--pin-dir', pinDir())).code, 2);
    assert.equal((await cli('pins', 'forget', '--pin-dir', pinDir())).code, 2);
    assert.equal((await cli('pins', 'forget', 'not a domain!', '--pin-dir', pinDir())).code, 2);
  });
});
