/**
 * Site key generation, key files (private key mode 0600, no overwrite), loading the private key with its
 * permission check, and the zone-file records built from a key.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KeyError,
  formatZoneRecords,
  generateSiteKey,
  loadSitePrivateKey,
  parseKeyRdata,
  parseSiteTxt,
  readKeyFile,
  readPublicKeyBytes,
  siteKeyPaths,
  siteKeyZoneRecords,
  validateSiteKey,
  writeSiteKeyFiles,
} from '../../src/keys/index.ts';
import { eccKey, protectedPrivateKeyArmored } from './test-keys.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'muse-keyfiles-'));
  dirs.push(dir);
  return dir;
}
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const keyError = (code: string, pattern?: RegExp) => (error: unknown) =>
  error instanceof KeyError && error.code === code && (pattern === undefined || pattern.test(error.message));

describe('generateSiteKey', () => {
  it('makes a v4 Ed25519 key with a Curve25519 encryption subkey, no expiry, usable by the checks', async () => {
    const key = await generateSiteKey('Example.TEST');
    assert.equal(key.keyPacket.version, 4);
    assert.deepEqual(key.getAlgorithmInfo(), { algorithm: 'eddsaLegacy', curve: 'ed25519Legacy' });
    assert.equal(key.subkeys.length, 1);
    assert.deepEqual(key.subkeys[0]?.getAlgorithmInfo(), { algorithm: 'ecdh', curve: 'curve25519Legacy' });
    assert.deepEqual(key.getUserIDs(), ['MUSE site key example.test <postmaster@example.test>']);
    assert.equal(key.isDecrypted(), true);
    const publicKey = key.toPublic();
    const verdict = await validateSiteKey(publicKey, publicKey.write(), new Date());
    assert.ok(verdict.ok);
    assert.equal(verdict.key.expires, null);
    // No AEAD feature flag: senders must use SEIPDv1, which GnuPG 2.2 decrypts (features = MDC only).
    const features = (await key.getPrimaryUser()).selfCertification.features;
    assert.deepEqual(features, [1]);
  });
});

describe('siteKeyZoneRecords', () => {
  it('builds TXT, KEY and OPENPGPKEY entries for _muse.<domain> that parse back to the key', async () => {
    const key = await eccKey();
    const records = siteKeyZoneRecords(key.publicKey, { domain: 'example.test', policy: 'testing', maxAge: 604800, ttl: 3600 });
    assert.match(records.comment, new RegExp(`^; MUSE site key for example\\.test: ${key.fingerprint}, created .*, policy testing, max-age 604800$`));
    for (const entry of [records.TXT, records.KEY, records.OPENPGPKEY]) {
      assert.match(entry, /^_muse\.example\.test\. 3600 IN (TXT|KEY|OPENPGPKEY) \(/);
      assert.match(entry, / \)$/);
    }
    const strings = [...records.TXT.matchAll(/"([^"]*)"/g)].map((m) => m[1] ?? '');
    assert.ok(strings.length >= 3, 'a real key needs several character-strings');
    assert.ok(strings.every((s) => s.length <= 255));
    const parsed = parseSiteTxt(strings);
    assert.equal(parsed.kind, 'ok');
    assert.deepEqual(parsed.kind === 'ok' ? [parsed.record.policy, parsed.record.maxAge, parsed.record.key] : [], ['testing', 604800, key.bytes]);
    const keyFields = /KEY \( (\d+) (\d+) (\d+)\n([\s\S]*) \)$/.exec(records.KEY);
    assert.deepEqual(keyFields?.slice(1, 4), ['512', '2', '253']);
    const rdata = Buffer.concat([Buffer.from([2, 0, 2, 253]), Buffer.from((keyFields?.[4] ?? '').replace(/\s/g, ''), 'base64')]);
    assert.deepEqual(parseKeyRdata(rdata), { kind: 'ok', key: key.bytes });
    const pgp = /OPENPGPKEY \(\n([\s\S]*) \)$/.exec(records.OPENPGPKEY)?.[1] ?? '';
    assert.deepEqual(new Uint8Array(Buffer.from(pgp.replace(/\s/g, ''), 'base64')), key.bytes);
    assert.equal(formatZoneRecords(records), `${records.comment}\n${records.TXT}\n${records.KEY}\n${records.OPENPGPKEY}\n`);
  });
});

describe('key files', () => {
  it('writes <domain>.private.asc with mode 0600 even under a permissive umask, and refuses to overwrite', async () => {
    const dir = join(await tempDir(), 'keys');
    const contents = { privateArmored: 'PRIVATE\n', publicArmored: 'PUBLIC\n', zone: 'ZONE\n' };
    const previous = process.umask(0);
    let paths;
    try {
      paths = await writeSiteKeyFiles(dir, 'example.test', contents, false);
    } finally {
      process.umask(previous);
    }
    assert.deepEqual(paths, siteKeyPaths(dir, 'example.test'));
    assert.equal(paths.privateKey, join(dir, 'example.test.private.asc'));
    assert.equal((await stat(paths.privateKey)).mode & 0o777, 0o600);
    assert.equal((await stat(paths.publicKey)).mode & 0o777, 0o644);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal(await readFile(paths.zone, 'utf8'), 'ZONE\n');
    await assert.rejects(writeSiteKeyFiles(dir, 'example.test', contents, false), keyError('KEY_FILE_EXISTS'));
    await chmod(paths.privateKey, 0o644);
    await writeSiteKeyFiles(dir, 'example.test', { ...contents, privateArmored: 'NEW\n' }, true);
    assert.equal((await stat(paths.privateKey)).mode & 0o777, 0o600, 'overwriting tightens the mode');
    assert.equal(await readFile(paths.privateKey, 'utf8'), 'NEW\n');
  });

  it('reads armored and binary key files', async () => {
    const dir = await tempDir();
    const key = await eccKey();
    await writeFile(join(dir, 'a.asc'), key.publicKey.armor());
    await writeFile(join(dir, 'b.gpg'), key.bytes);
    assert.equal((await readKeyFile(join(dir, 'a.asc'))).key.getFingerprint().toUpperCase(), key.fingerprint);
    assert.equal((await readKeyFile(join(dir, 'b.gpg'))).key.getFingerprint().toUpperCase(), key.fingerprint);
    await writeFile(join(dir, 'junk'), 'not a key');
    await assert.rejects(readKeyFile(join(dir, 'junk')), keyError('KEY_MALFORMED'));
    await assert.rejects(readKeyFile(join(dir, 'missing')), keyError('KEY_FILE_UNREADABLE', /ENOENT/));
    await assert.rejects(readKeyFile(dir), keyError('KEY_FILE_UNREADABLE', /not a regular file/));
  });
});

describe('loadSitePrivateKey', () => {
  it('loads an unprotected private key from a 0600 file', async () => {
    const dir = await tempDir();
    const key = await eccKey();
    const path = join(dir, 'site.private.asc');
    await writeFile(path, key.privateKey.armor(), { mode: 0o600 });
    const local = await loadSitePrivateKey(path, 'refuse');
    assert.equal(local.fingerprint, key.fingerprint);
    assert.deepEqual(local.warnings, []);
    assert.deepEqual(local.publicKey.write(), key.bytes);
    assert.deepEqual((await readPublicKeyBytes(local.publicKey.write())).getFingerprint().toUpperCase(), key.fingerprint);
  });

  it('warns about or refuses a file group or others may read', async () => {
    const dir = await tempDir();
    const key = await eccKey();
    const path = join(dir, 'loose.private.asc');
    await writeFile(path, key.privateKey.armor());
    await chmod(path, 0o640);
    const local = await loadSitePrivateKey(path, 'warn');
    assert.deepEqual(local.warnings, [`private key file ${path} has mode 0640: group or others may read it; it should be 0600 (chmod 600 ${path})`]);
    await assert.rejects(loadSitePrivateKey(path, 'refuse'), keyError('KEY_FILE_INSECURE', /mode 0640/));
    await chmod(path, 0o622);
    await assert.rejects(loadSitePrivateKey(path, 'refuse'), keyError('KEY_FILE_INSECURE', /may write it/));
  });

  it('refuses a public key and a passphrase-protected key', async () => {
    const dir = await tempDir();
    const key = await eccKey();
    await writeFile(join(dir, 'public.asc'), key.publicKey.armor(), { mode: 0o600 });
    await assert.rejects(loadSitePrivateKey(join(dir, 'public.asc'), 'refuse'), keyError('KEY_NOT_PRIVATE'));
    await writeFile(join(dir, 'protected.asc'), await protectedPrivateKeyArmored(), { mode: 0o600 });
    await assert.rejects(loadSitePrivateKey(join(dir, 'protected.asc'), 'refuse'), keyError('KEY_ENCRYPTED'));
  });
});
