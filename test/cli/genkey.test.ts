/**
 * `genkey` and `dns-record`: the key files, the printed zone lines, and that GnuPG 2.2 reads the key (import,
 * fingerprint, encrypt to it, decrypt with the imported secret key) in a temporary offline GNUPGHOME.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMessage, decrypt, encrypt, readMessage } from 'openpgp';
import { loadSitePrivateKey, parseSiteTxt } from '../../src/keys/index.ts';
import { createGpgHome, type GpgHome } from '../support/gpg.ts';
import { expiredKey } from '../keys/test-keys.ts';
import { cli } from './run-cli.ts';

let dir = '';
let gpg: GpgHome | undefined;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muse-genkey-'));
});
after(async () => {
  await gpg?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('genkey', () => {
  let zone = '';
  let fingerprint = '';

  it('writes the key files, the private one mode 0600, and prints the zone file it wrote', async () => {
    const result = await cli('genkey', '--domain', 'Example.Test', '--dir', dir, '--policy', 'enforce', '--max-age', '86400', '--ttl', '600');
    assert.equal(result.code, 0, result.stderr);
    const base = join(dir, 'example.test');
    assert.equal(
      result.stderr,
      `genkey: wrote ${base}.private.asc (mode 0600), ${base}.public.asc, ${base}.zone\n`,
    );
    assert.equal((await stat(`${base}.private.asc`)).mode & 0o777, 0o600);
    zone = await readFile(`${base}.zone`, 'utf8');
    assert.equal(result.stdout, zone);
    const local = await loadSitePrivateKey(`${base}.private.asc`, 'refuse');
    fingerprint = local.fingerprint;
    assert.match(zone, new RegExp(`^; MUSE site key for example\\.test: ${fingerprint}, created \\S+, policy enforce, max-age 86400\\n`));
    assert.match(zone, /\n_muse\.example\.test\. 600 IN TXT \( "v=MUSE1; p=enforce; ma=86400; k=/);
    assert.match(zone, /\n_muse\.example\.test\. 600 IN KEY \( 512 2 253\n/);
    assert.match(zone, /\n_muse\.example\.test\. 600 IN OPENPGPKEY \(\n/);
    const strings = [...zone.matchAll(/"([^"]*)"/g)].map((m) => m[1] ?? '');
    assert.ok(strings.every((s) => s.length <= 255) && strings.length > 1);
    const parsed = parseSiteTxt(strings);
    assert.equal(parsed.kind, 'ok');
    assert.deepEqual(parsed.kind === 'ok' ? parsed.record.key : undefined, local.publicKey.write());
  });

  it('is read by GnuPG 2.2: same fingerprint, Ed25519 + Curve25519, encrypts to it, decrypts with it', async () => {
    gpg = await createGpgHome();
    const base = join(dir, 'example.test');
    await gpg.importKeys(await readFile(`${base}.public.asc`));
    const listed = await gpg.run(['--with-colons', '--list-keys']);
    assert.equal(listed.code, 0, listed.stderr);
    const colons = listed.stdout.toString('utf8').split('\n');
    assert.deepEqual(
      colons.filter((l) => l.startsWith('fpr:')).map((l) => l.split(':')[9])[0],
      fingerprint,
    );
    assert.ok(colons.some((l) => /^pub:[^:]*:255:22:/.test(l)), 'Ed25519 primary (algorithm 22)');
    assert.ok(colons.some((l) => /^sub:[^:]*:255:18:/.test(l)), 'Curve25519 ECDH subkey (algorithm 18)');
    const encrypted = await gpg.run(['--armor', '--encrypt', '--recipient', fingerprint], 'to the site\n');
    assert.equal(encrypted.code, 0, encrypted.stderr);
    const local = await loadSitePrivateKey(`${base}.private.asc`, 'refuse');
    const { data } = await decrypt({ message: await readMessage({ armoredMessage: encrypted.stdout.toString('utf8') }), decryptionKeys: local.privateKey });
    assert.equal(data, 'to the site\n');
    await gpg.importKeys(await readFile(`${base}.private.asc`));
    const secret = await gpg.run(['--with-colons', '--list-secret-keys']);
    assert.match(secret.stdout.toString('utf8'), new RegExp(`fpr:+${fingerprint}:`));
    const roundTrip = await gpg.run(['--decrypt'], encrypted.stdout);
    assert.equal(roundTrip.code, 0, roundTrip.stderr);
    assert.equal(roundTrip.stdout.toString('utf8'), 'to the site\n');
    const fromJs = await createMessage({ text: 'from openpgp.js\n' });
    const armored = await encrypt({ message: fromJs, encryptionKeys: local.publicKey });
    const jsToGpg = await gpg.run(['--decrypt'], armored);
    assert.equal(jsToGpg.code, 0, jsToGpg.stderr);
    assert.ok(jsToGpg.status.some((s) => s.startsWith('DECRYPTION_OKAY')));
  });

  it('refuses to overwrite existing key files unless --force', async () => {
    const refused = await cli('genkey', '--domain', 'example.test', '--key-dir', dir);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^muse-milter genkey: KEY_FILE_EXISTS: .*example\.test\.private\.asc exists; refusing to overwrite it\n$/);
    assert.equal(await readFile(join(dir, 'example.test.zone'), 'utf8'), zone, 'nothing was written');
    const forced = await cli('genkey', '--domain', 'example.test', '--key-dir', join(dir), '--force');
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(forced.stdout, zone);
    assert.match(forced.stdout, /p=testing; ma=604800; k=/, 'defaults: testing, one week');
    assert.match(forced.stdout, / 3600 IN TXT /);
    zone = forced.stdout;
  });
});

describe('dns-record', () => {
  it('prints the same zone lines as genkey, from the public or the private key file', async () => {
    const fromDefault = await cli('dns-record', '--domain', 'example.test', '--key-dir', dir);
    assert.equal(fromDefault.code, 0, fromDefault.stderr);
    const genkeyZone = await readFile(join(dir, 'example.test.zone'), 'utf8');
    assert.equal(fromDefault.stdout, genkeyZone);
    const fromPrivate = await cli('dns-record', '--domain', 'example.test', '--key', join(dir, 'example.test.private.asc'));
    assert.equal(fromPrivate.stdout, genkeyZone);
  });

  it('writes records for another owner and other settings', async () => {
    const result = await cli('dns-record', '--domain', 'other.test', '--key', join(dir, 'example.test.public.asc'), '--policy', 'opportunistic', '--max-age', '0', '--ttl', '60');
    assert.equal(result.code, 0);
    assert.match(result.stdout, /\n_muse\.other\.test\. 60 IN TXT \( "v=MUSE1; p=opportunistic; ma=0; k=/);
  });

  it('refuses a key that is not usable as a site key', async () => {
    const key = await expiredKey();
    const path = join(dir, 'expired.asc');
    await writeFile(path, key.publicKey.armor());
    const result = await cli('dns-record', '--domain', 'example.test', '--key', path);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, new RegExp(`^dns-record: key ${key.fingerprint} in .* is not usable as a site key: expired \\(the key expired on `));
  });
});
