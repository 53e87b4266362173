/**
 * The daemon's secret files: site private keys (through src/keys' permission check) and the marker secret,
 * created on first run. Files group or others may read or write are refused with the exact message.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSiteKeys, readOrCreateSecret } from '../../src/daemon/key-files.ts';
import { fingerprintOf, generateSiteKey, KeyError } from '../../src/keys/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'muse-key-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `text` to a new file in the test directory with exactly `mode`. */
function writeWithMode(name: string, text: string, mode: number): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

function assertKeyError(code: KeyError['code'], message: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof KeyError, `expected a KeyError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.equal(error.message, message);
    return true;
  };
}

describe('loadSiteKeys', () => {
  let current = '';
  let previous = '';
  let currentFingerprint = '';
  let previousFingerprint = '';
  before(async () => {
    const [a, b] = await Promise.all([generateSiteKey('example.org'), generateSiteKey('example.org')]);
    current = a.armor();
    previous = b.armor();
    currentFingerprint = fingerprintOf(a);
    previousFingerprint = fingerprintOf(b);
  });

  it('loads a 0600 key file and the previous keys', async () => {
    const keys = await loadSiteKeys({ keyFile: writeWithMode('current.asc', current, 0o600), previousKeyFiles: [writeWithMode('previous.asc', previous, 0o400)] });
    assert.equal(keys.current.fingerprint, currentFingerprint);
    assert.deepEqual(
      keys.previous.map((key) => key.fingerprint),
      [previousFingerprint],
    );
  });

  for (const [mode, verb] of [
    [0o640, 'read'],
    [0o604, 'read'],
    [0o620, 'write'],
  ] as const) {
    it(`refuses a key file with mode 0${mode.toString(8)}`, async () => {
      const path = writeWithMode(`loose-${mode.toString(8)}.asc`, current, mode);
      await assert.rejects(
        loadSiteKeys({ keyFile: path, previousKeyFiles: [] }),
        assertKeyError('KEY_FILE_INSECURE', `private key file ${path} has mode 0${mode.toString(8)}: group or others may ${verb} it; it should be 0600 (chmod 600 ${path})`),
      );
    });
  }

  it('refuses a loose previous key file as well', async () => {
    const path = writeWithMode('previous-loose.asc', previous, 0o644);
    await assert.rejects(
      loadSiteKeys({ keyFile: writeWithMode('current-ok.asc', current, 0o600), previousKeyFiles: [path] }),
      assertKeyError('KEY_FILE_INSECURE', `private key file ${path} has mode 0644: group or others may read it; it should be 0600 (chmod 600 ${path})`),
    );
  });

  it('refuses a missing file and a directory', async () => {
    const missing = join(dir, 'missing.asc');
    await assert.rejects(loadSiteKeys({ keyFile: missing, previousKeyFiles: [] }), assertKeyError('KEY_FILE_UNREADABLE', `cannot read ${missing}: ENOENT`));
    await assert.rejects(loadSiteKeys({ keyFile: dir, previousKeyFiles: [] }), assertKeyError('KEY_FILE_UNREADABLE', `${dir} is not a regular file`));
  });
});

describe('readOrCreateSecret', () => {
  it('creates a 0600 secret of 64 hex digits in a new 0700 directory, and reads the same one afterwards', async () => {
    const path = join(dir, 'state', 'marker-secret');
    const secret = await readOrCreateSecret(path);
    const text = readFileSync(path, 'utf8');
    assert.match(text, /^[0-9a-f]{64}\n$/);
    assert.equal(secret.toString('utf8'), text.trim());
    assert.equal(statSync(path).mode & 0o7777, 0o600);
    assert.equal(statSync(join(dir, 'state')).mode & 0o7777, 0o700);
    assert.deepEqual(await readOrCreateSecret(path), secret);
  });

  it('reads a secret an administrator wrote, without surrounding white space', async () => {
    const path = writeWithMode('shared-secret', '  the same secret on both relay hosts, 42\n', 0o600);
    assert.equal((await readOrCreateSecret(path)).toString('utf8'), 'the same secret on both relay hosts, 42');
  });

  for (const [mode, verb] of [
    [0o640, 'read'],
    [0o604, 'read'],
    [0o602, 'write'],
  ] as const) {
    it(`refuses a secret file with mode 0${mode.toString(8)}`, async () => {
      const path = writeWithMode(`secret-${mode.toString(8)}`, 'a'.repeat(64), mode);
      await assert.rejects(
        readOrCreateSecret(path),
        assertKeyError('KEY_FILE_INSECURE', `secret file ${path} has mode 0${mode.toString(8)}: group or others may ${verb} it; it should be 0600 (chmod 600 ${path})`),
      );
    });
  }

  it('refuses a secret that is too short, too large, or not a regular file', async () => {
    const short = writeWithMode('short-secret', 'short\n', 0o600);
    await assert.rejects(readOrCreateSecret(short), assertKeyError('KEY_FILE_UNREADABLE', `${short} holds fewer than 32 characters`));
    const large = writeWithMode('large-secret', 'x'.repeat(4097), 0o600);
    await assert.rejects(readOrCreateSecret(large), assertKeyError('KEY_FILE_UNREADABLE', `${large} is larger than 4096 bytes`));
    const directory = join(dir, 'secret-directory');
    mkdirSync(directory, { mode: 0o700 });
    await assert.rejects(readOrCreateSecret(directory), assertKeyError('KEY_FILE_UNREADABLE', `${directory} is not a regular file`));
  });
});
