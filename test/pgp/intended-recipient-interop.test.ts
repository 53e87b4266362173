/**
 * Intended Recipient Fingerprint subpackets against other implementations, offline: GnuPG 2.2,
 * Sequoia sq 0.27 and rnp 0.16 decrypt and verify what every sign+encrypt path writes, for one
 * and for three recipient keys (ECC and RSA), each recipient with only its own secret key. Also
 * recorded: how each treats the critical form and a signature naming another recipient, and what
 * GnuPG and sq write themselves. Fails, never skips, when a tool cannot run.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { createMessage, encrypt } from 'openpgp';
import { pgpConfig } from '../../src/pgp/config.ts';
import { signatureWithHashedSubpackets } from '../../src/pgp/fallback-signature.ts';
import { intendedRecipientBody, intendedRecipientSubpackets } from '../../src/pgp/intended-recipient.ts';
import { FIXED_NOW, type TestKey } from '../engine/fixtures.ts';
import { createGpgHome, type GpgHome, type GpgResult } from '../support/gpg.ts';
import { createRnpHome, createToolDir, runTool, sqDecrypt, type RnpHome, type ToolDir, type ToolResult } from '../support/openpgp-tools.ts';
import { fastTestKeys, publicKeys, type FastTestKeys } from './fast/fixtures.ts';
import { assertDecryptedAndVerified, createRecipientHomes, statusOf, type RecipientHomes } from './fast/gpg-check.ts';
import { fingerprintsOf, PATHS, readerCheck, recipientSetsFor } from './intended-recipient-fixtures.ts';

const TIMEOUT = { timeout: 900_000 };
/** gpg's clock for the message it makes: FIXED_NOW, so our reader's date fits. */
const GPG_FAKED_TIME = '20250602T120000!';

let keys: FastTestKeys;
let gpgHomes: RecipientHomes | undefined;
let dir: ToolDir | undefined;
const secretFiles = new Map<TestKey, string>();
const rnpHomes = new Map<TestKey, RnpHome>();
let senderCert = '';
let messageCount = 0;

before(async () => {
  keys = await fastTestKeys();
  const recipients = [keys.receiver, keys.rsa, keys.gpgSite];
  gpgHomes = await createRecipientHomes(recipients, keys.sender);
  dir = await createToolDir();
  senderCert = await dir.file('sender.pub.asc', keys.sender.publicArmored);
  for (const [i, recipient] of recipients.entries()) {
    const secret = await dir.file(`recipient-${i}.sec.asc`, recipient.secretArmored);
    secretFiles.set(recipient, secret);
    rnpHomes.set(recipient, await createRnpHome(dir, `rnp-${i}`, [secret, senderCert]));
  }
});

after(async () => {
  await gpgHomes?.dispose();
  await dir?.dispose();
});

function tools(): ToolDir {
  return dir ?? assert.fail('no tool directory');
}

async function messageFile(binary: Uint8Array): Promise<string> {
  return tools().file(`message-${messageCount++}.pgp`, binary);
}

function secretOf(recipient: TestKey): string {
  return secretFiles.get(recipient) ?? assert.fail('no key file');
}

function rnpOf(recipient: TestKey): RnpHome {
  return rnpHomes.get(recipient) ?? assert.fail('no rnp home');
}

function gpgOf(recipient: TestKey): GpgHome {
  return (gpgHomes ?? assert.fail('no gpg homes')).of(recipient);
}

/** The fingerprints sq's packet dump lists as intended recipients, with " (critical)" kept. */
function sqIntendedRecipients(result: ToolResult): string[] {
  return result.stderr.split('\n').flatMap((line) => {
    const at = line.indexOf('Intended Recipient: ');
    return at < 0 ? [] : [line.slice(at + 'Intended Recipient: '.length).trim()];
  });
}

/** The hashed subpacket lines gpg --list-packets prints for the (one) signature packet. */
function gpgSubpacketLines(result: GpgResult): string[] {
  return result.stdout.toString('latin1').split('\n').filter((l) => l.includes('subpkt')).map((l) => l.trim());
}

/** rnp's report without its parser's debug lines (it prints one per subpacket type it does not know). */
function rnpReport(result: ToolResult): string {
  return result.stderr.split('\n').filter((l) => !l.startsWith('[')).join('\n');
}

function assertRnpVerified(result: ToolResult, data: Buffer, where: string): void {
  assert.equal(result.code, 0, `${where}: ${result.stderr}`);
  assert.ok(result.stdout.equals(data), `${where}: rnp plaintext differs`);
  assert.match(rnpReport(result), /^Good signature made .*\nusing EdDSA key cbe3974c1a20f75e\n/, where);
  assert.match(rnpReport(result), /\nSignature\(s\) verified successfully\n/, where);
}

test('GnuPG 2.2, sq 0.27 and rnp 0.16 decrypt and verify every path, 1 and 3 recipients; gpg and sq list the subpackets', TIMEOUT, async () => {
  for (const path of PATHS) {
    for (const set of recipientSetsFor(keys)) {
      const binary = await path.make(keys, publicKeys(set.recipients));
      const file = await messageFile(binary);
      const expected = fingerprintsOf(set.recipients);
      for (const recipient of set.recipients) {
        const where = `${path.name}, ${set.name}, ${recipient.public.getUserIDs()[0]}`;
        // GnuPG: GOODSIG, VALIDSIG (EdDSA, SHA-512, binary, the sender's primary key), exact plaintext.
        assertDecryptedAndVerified(await gpgOf(recipient).run(['--decrypt'], binary), path.data, keys.sender, `gpg: ${where}`);
        // gpg 2.2 does not know type 35: it lists one "(?)" line per recipient after the issuer
        // fingerprint. Its listing stops at a literal data packet of indefinite (partial) length,
        // so only the whole-buffer messages show their signature packet there.
        if (!path.name.includes('streamed')) {
          const listed = gpgSubpacketLines(await gpgOf(recipient).run(['--list-packets'], binary));
          assert.deepEqual(listed.slice(-1 - expected.length), [
            `hashed subpkt 33 len 21 (issuer fpr v4 ${keys.sender.public.getFingerprint().toUpperCase()})`,
            ...expected.map(() => 'hashed subpkt 35 len 21 (?)'),
          ], `gpg --list-packets: ${where}`);
        }
        // sq: exact plaintext, one good signature, and it names the intended recipients (not critical).
        const sq = await sqDecrypt(tools(), file, secretOf(recipient), senderCert, true);
        assert.equal(sq.code, 0, `sq: ${where}: ${sq.stderr}`);
        assert.ok(sq.stdout.equals(path.data), `sq: ${where}: plaintext differs`);
        assert.match(sq.stderr, /\n1 good signature\.\n/, `sq: ${where}`);
        assert.deepEqual(sqIntendedRecipients(sq), expected, `sq: ${where}`);
        // rnp: exact plaintext, good signature.
        assertRnpVerified(await rnpOf(recipient).decrypt(file), path.data, `rnp: ${where}`);
      }
    }
  }
});

/** A message to `recipients` whose signature carries `extra` at the end of its hashed area. */
async function customMessage(recipients: readonly TestKey[], extra: Buffer, data: Buffer): Promise<Buffer> {
  const config = pgpConfig();
  const message = await createMessage({ binary: data, date: FIXED_NOW, format: 'binary' });
  const signature = await signatureWithHashedSubpackets({ message, signingKey: keys.sender.secret, encryptionKeys: publicKeys(recipients), date: FIXED_NOW, config }, extra);
  return Buffer.from(await encrypt({ message, encryptionKeys: publicKeys(recipients), signature, format: 'binary', date: FIXED_NOW, config }));
}

test('the critical form: GnuPG 2.2 reports BADSIG ("unknown critical bit") and rnp an unknown signature; only sq accepts it', TIMEOUT, async () => {
  const data = Buffer.from('critical\r\n');
  const critical = Buffer.concat([Buffer.from([22, 35 | 0x80]), intendedRecipientBody(keys.receiver.public)]);
  const binary = await customMessage([keys.receiver], critical, data);
  const file = await messageFile(binary);
  const gpg = await gpgOf(keys.receiver).run(['--decrypt'], binary);
  assert.equal(statusOf(gpg, 'BADSIG')?.[0], keys.sender.public.getKeyID().toHex().toUpperCase());
  assert.equal(statusOf(gpg, 'GOODSIG'), undefined);
  assert.equal(statusOf(gpg, 'VALIDSIG'), undefined);
  assert.match(gpg.stderr, /assuming bad signature from key CBE3974C1A20F75E due to an unknown critical bit/);
  // rnp exits 0 all the same, but does not count the signature as verified.
  const rnp = await rnpOf(keys.receiver).decrypt(file);
  assert.equal(rnp.code, 0);
  assert.equal(rnpReport(rnp), 'UNKNOWN signature\nSignature verification failure: 1 unknown signature\n');
  const sq = await sqDecrypt(tools(), file, secretOf(keys.receiver), senderCert, true);
  assert.equal(sq.code, 0, sq.stderr);
  assert.deepEqual(sqIntendedRecipients(sq), [`${keys.receiver.public.getFingerprint().toUpperCase()} (critical)`]);
});

test('recorded: a signature naming another recipient (forwarded) verifies in GnuPG 2.2 and rnp 0.16; sq 0.27 rejects it', TIMEOUT, async () => {
  const data = Buffer.from('forwarded\r\n');
  const binary = await customMessage([keys.rsa], intendedRecipientSubpackets([keys.receiver.public]), data);
  const file = await messageFile(binary);
  assertDecryptedAndVerified(await gpgOf(keys.rsa).run(['--decrypt'], binary), data, keys.sender, 'gpg');
  assertRnpVerified(await rnpOf(keys.rsa).decrypt(file), data, 'rnp');
  const sq = await sqDecrypt(tools(), file, secretOf(keys.rsa), senderCert);
  assert.equal(sq.code, 1);
  assert.equal(sq.stdout.length, 0, 'sq withholds the plaintext');
  assert.match(sq.stderr, /Bad signature: Not an intended recipient\n1 bad checksum\./);
});

test('recorded: GnuPG 2.2 signing and encrypting writes no intended recipient subpacket; our reader reports null', TIMEOUT, async () => {
  const home = await createGpgHome();
  try {
    await home.importKeys(keys.sender.secretArmored);
    await home.importKeys(keys.receiver.publicArmored);
    await home.importKeys(keys.rsa.publicArmored);
    const data = Buffer.from('made by gpg\r\n');
    const sender = keys.sender.public.getFingerprint().toUpperCase();
    const args = ['--faked-system-time', GPG_FAKED_TIME, '--sign', '--encrypt', '-u', sender];
    const recipients = fingerprintsOf([keys.receiver, keys.rsa]).flatMap((f) => ['-r', f]);
    const made = await home.run([...args, ...recipients], data);
    assert.equal(made.code, 0, made.stderr);
    const listed = gpgSubpacketLines(await gpgOf(keys.receiver).run(['--list-packets'], made.stdout));
    assert.deepEqual(listed.filter((l) => l.includes('subpkt 35')), []);
    assert.ok(listed.some((l) => l.startsWith('hashed subpkt 33 len 21 (issuer fpr v4 ')), listed.join('\n'));
    const read = await readerCheck(made.stdout, keys.receiver, keys.sender);
    assert.deepEqual(read.data, data);
    assert.equal(read.check.status === 'valid' && read.check.intendedRecipients, null);
  } finally {
    await home.dispose();
  }
});

test('recorded: sq 0.27 names every recipient primary key, not critical; our reader reports exactly those', TIMEOUT, async () => {
  const t = tools();
  const data = Buffer.from('made by sq\r\n');
  const input = await t.file('sq-input.txt', data);
  const output = `${t.dir}/sq-output.pgp`;
  const signer = await t.file('sender.sec.asc', keys.sender.secretArmored);
  const certs = await Promise.all([keys.receiver, keys.rsa].map((r, i) => t.file(`sq-recipient-${i}.pub.asc`, r.publicArmored)));
  const args = ['encrypt', '--binary', '--signer-key', signer, ...certs.flatMap((c) => ['--recipient-cert', c]), '-o', output, input];
  const made = await runTool('sq', args, t.dir);
  assert.equal(made.code, 0, made.stderr);
  const dumped = await sqDecrypt(t, output, secretOf(keys.rsa), senderCert, true);
  assert.deepEqual(sqIntendedRecipients(dumped), fingerprintsOf([keys.receiver, keys.rsa]));
  for (const recipient of [keys.receiver, keys.rsa]) {
    // sq signed at the current time, so the reader checks at the current time.
    const read = await readerCheck(await readFile(output), recipient, keys.sender, new Date());
    assert.deepEqual(read.data, data);
    assert.deepEqual(read.check.status === 'valid' && read.check.intendedRecipients, fingerprintsOf([keys.receiver, keys.rsa]));
  }
});
