/**
 * Sign+encrypt output of other OpenPGP implementations, sent to us as a MUSE site would send it (the signed header
 * inside the encryption), still earns pass: Sequoia `sq` 0.27 names us as intended recipient (pass whatever the
 * signed To says); OpenPGP.js 6 and GnuPG 2.2 write no Intended Recipient Fingerprint, so a signed To in a local
 * domain is what binds the message to us (else the result is `policy`). Fails, never skips, when sq cannot run.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { createMessage, encrypt } from 'openpgp';
import { openInbound, type InboundResult } from '../../src/engine/inbound.ts';
import { toCrlf } from '../../src/mime/crlf.ts';
import type { HeaderField } from '../../src/mime/header-fields.ts';
import { armorBytes } from '../../src/pgp/armor.ts';
import { createToolDir, runTool, type ToolDir } from '../support/openpgp-tools.ts';
import { testKeys } from './fixtures.ts';

const TIMEOUT = { timeout: 120_000 };
let tools: ToolDir;

before(async () => {
  tools = await createToolDir();
});
after(async () => {
  await tools?.dispose();
});

const OUTER: HeaderField[] = [
  { name: 'From', value: ' Gina <gina@gpg-sender.test>' },
  { name: 'To', value: ' bob@receiver.test' },
  { name: 'Subject', value: ' ...' },
  { name: 'MIME-Version', value: ' 1.0' },
  { name: 'Content-Type', value: ' multipart/encrypted; protocol="application/pgp-encrypted"; boundary="x"' },
];

/** The signed entity: a site's protected header, then the body. */
function entity(to: string): Buffer {
  return Buffer.from(`From: Gina <gina@gpg-sender.test>\r\nTo: ${to}\r\nSubject: Hello\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo.\r\n`);
}

function envelope(armored: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from('--x\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--x\r\nContent-Type: application/octet-stream\r\n\r\n'),
    toCrlf(armored),
    Buffer.from('\r\n--x--\r\n'),
  ]);
}

async function open(armored: Buffer, localDomains: readonly string[]): Promise<InboundResult> {
  const keys = await testKeys();
  return openInbound({
    headers: OUTER,
    body: envelope(armored),
    siteKeys: [keys.receiverSite.secret],
    senderKeys: async (domain) => (domain === 'gpg-sender.test' ? { keys: [keys.gpgSite.public], dnssec: false } : null),
    authservId: 'mx.receiver.test',
    localDomains,
    // The tools sign at the current time.
    now: () => new Date(),
  });
}

function verdictOf(result: InboundResult): [string, string] | string {
  return result.kind === 'opened' || result.kind === 'annotated' ? [result.verdict.result, result.verdict.reason] : result.kind;
}

test('sq 0.27 sign+encrypt to our key: pass, bound by its Intended Recipient Fingerprint even with the signed To elsewhere', TIMEOUT, async () => {
  const keys = await testKeys();
  const input = await tools.file('entity.txt', entity('carol@elsewhere.test'));
  const signer = await tools.file('gina.sec.asc', keys.gpgSite.secretArmored);
  const recipient = await tools.file('receiver.pub.asc', keys.receiverSite.publicArmored);
  const output = `${tools.dir}/sq.asc`;
  const made = await runTool('sq', ['encrypt', '--signer-key', signer, '--recipient-cert', recipient, '-o', output, input], tools.dir);
  assert.equal(made.code, 0, made.stderr);
  const result = await open(await readFile(output), []);
  assert.deepEqual(verdictOf(result), ['pass', 'signature-verified']);
  assert.ok(result.kind === 'opened');
  assert.equal((await result.body.toBuffer()).toString('utf8'), 'Hallo.\r\n');
});

test('OpenPGP.js 6 sign+encrypt (no Intended Recipient Fingerprint): pass with a signed To here, policy without', TIMEOUT, async () => {
  const keys = await testKeys();
  const made = async (to: string): Promise<Buffer> =>
    armorBytes('MESSAGE', await encrypt({ message: await createMessage({ binary: entity(to) }), encryptionKeys: keys.receiverSite.public, signingKeys: keys.gpgSite.secret, format: 'binary' }));
  assert.deepEqual(verdictOf(await open(await made('bob@receiver.test'), ['receiver.test'])), ['pass', 'signature-verified']);
  assert.deepEqual(verdictOf(await open(await made('carol@elsewhere.test'), ['receiver.test'])), ['policy', 'recipient-not-bound']);
});
