/**
 * A large multipart/encrypted message is opened as it streams (docs/pgp-mime.md, "Memory"); the result must be
 * exactly the one the whole read gives: same kind, verdict, header edits and delivered bytes. Messages come from
 * this project, OpenPGP.js, GnuPG (with and without compression, partial body lengths) and Sequoia `sq`; broken
 * ones (altered ciphertext, a wrong MDC, truncation, legacy data without MDC, a decompression bomb) get their exact
 * verdict either way. Fails, never skips, when gpg or sq cannot run.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createMessage, encrypt, enums } from 'openpgp';
import { applyHeaderEdits } from '../../src/engine/header-edits.ts';
import { openInbound, type InboundResult, type InboundRoute } from '../../src/engine/inbound.ts';
import { protectOutbound } from '../../src/engine/outbound.ts';
import { toCrlf } from '../../src/mime/crlf.ts';
import type { HeaderField } from '../../src/mime/header-fields.ts';
import { armorBytes, dearmor } from '../../src/pgp/armor.ts';
import { createGpgHome, type GpgHome } from '../support/gpg.ts';
import { createToolDir, runTool, type ToolDir } from '../support/openpgp-tools.ts';
import { FIXED_NOW, testKeys } from './fixtures.ts';

const TIMEOUT = { timeout: 300_000 };
const CHUNK = 65535;

let gpg: GpgHome;
let tools: ToolDir;
let spoolDir: string;

before(async () => {
  const keys = await testKeys();
  gpg = await createGpgHome();
  await gpg.importKeys(keys.receiverSite.secretArmored);
  await gpg.importKeys(keys.gpgSite.secretArmored);
  tools = await createToolDir();
  spoolDir = await mkdtemp(join(tmpdir(), 'muse-inbound-stream-'));
});

after(async () => {
  await gpg?.dispose();
  await tools?.dispose();
  await rm(spoolDir, { recursive: true, force: true });
});

const OUTER: HeaderField[] = [
  { name: 'From', value: ' Gina <gina@gpg-sender.test>' },
  { name: 'To', value: ' bob@receiver.test' },
  { name: 'Subject', value: ' ...' },
  { name: 'MIME-Version', value: ' 1.0' },
  { name: 'Content-Type', value: ' multipart/encrypted; protocol="application/pgp-encrypted"; boundary="x"' },
];

/**
 * A 1.5 MiB signed entity: a site's protected header, then lines with 8-bit octets and digests (so compression
 * leaves it large).
 */
function bigEntity(to = 'bob@receiver.test'): Buffer {
  const lines: string[] = [];
  for (let i = 0; lines.length < 24_000; i++) lines.push(`Zeile ${i}: Grüße — ${createHash('sha256').update(String(i)).digest('base64')}`);
  return Buffer.concat([
    Buffer.from(`From: Gina <gina@gpg-sender.test>\r\nTo: ${to}\r\nSubject: Gross\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n`),
    Buffer.from(lines.join('\r\n') + '\r\n', 'utf8'),
  ]);
}

function envelope(armored: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from('--x\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--x\r\nContent-Type: application/octet-stream\r\n\r\n'),
    toCrlf(armored),
    Buffer.from('\r\n--x--\r\n'),
  ]);
}

/** Everything a result says, with the delivered body read out (and the result disposed of). */
async function snapshot(result: InboundResult): Promise<unknown> {
  if (result.kind !== 'opened') return result;
  const body = await result.body.toBuffer();
  await result.body.dispose();
  return { ...result, body: body.toString('latin1') };
}

interface Routes {
  readonly whole: unknown;
  readonly streamed: unknown;
  readonly route: InboundRoute | undefined;
}

/** Opens `body` read whole, then as it streams (in milter-sized chunks, over the default threshold). */
async function bothRoutes(body: Buffer, headers: readonly HeaderField[] = OUTER, now: Date = new Date()): Promise<Routes> {
  const keys = await testKeys();
  const common = {
    headers,
    siteKeys: [keys.receiverSite.secret],
    senderKeys: async (domain: string) =>
      domain === 'gpg-sender.test' ? { keys: [keys.gpgSite.public], dnssec: false } : domain === 'sender.test' ? { keys: [keys.senderSite.public], dnssec: true } : null,
    authservId: 'mx.receiver.test',
    localDomains: ['receiver.test'],
    now: () => now,
    spool: { dir: spoolDir },
  };
  assert.ok(body.length > 1024 * 1024, 'above the streaming threshold');
  const whole = await snapshot(await openInbound({ ...common, body }));
  let route: InboundRoute | undefined;
  const chunks = async function* (): AsyncGenerator<Buffer> {
    for (let at = 0; at < body.length; at += CHUNK) yield body.subarray(at, at + CHUNK);
  };
  const streamed = await snapshot(await openInbound({ ...common, body: chunks, onRoute: (r) => (route = r) }));
  // Nothing decrypted stays behind, whatever the outcome.
  assert.deepEqual(await readdir(spoolDir), []);
  return { whole, streamed, route };
}

async function gpgArmor(args: string[], input: Buffer): Promise<Buffer> {
  const result = await gpg.run(['--armor', ...args], input);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout;
}

function verdictOf(result: unknown): unknown {
  const r = result as { kind: string; verdict?: { result: string; reason: string }; limit?: string };
  return r.verdict !== undefined ? [r.kind, r.verdict.result, r.verdict.reason] : r.limit !== undefined ? [r.kind, r.limit] : [r.kind];
}

test('gpg sign+encrypt (compressed, uncompressed, partial lengths): streamed exactly as read whole', TIMEOUT, async () => {
  for (const compression of [[], ['-z', '0'], ['--compress-algo', 'zlib']]) {
    const armored = await gpgArmor(['--sign', '--encrypt', '-u', 'postmaster@gpg-sender.test', '-r', 'postmaster@receiver.test', ...compression], bigEntity());
    const { whole, streamed, route } = await bothRoutes(envelope(armored));
    assert.equal(route, 'streamed', compression.join(' '));
    assert.deepEqual(verdictOf(streamed), ['opened', 'pass', 'signature-verified']);
    assert.deepEqual(streamed, whole);
  }
});

test('gpg encrypt only: streamed and delivered unsigned, as read whole', TIMEOUT, async () => {
  const armored = await gpgArmor(['--encrypt', '-r', 'postmaster@receiver.test'], bigEntity());
  const { whole, streamed, route } = await bothRoutes(envelope(armored));
  assert.equal(route, 'streamed');
  assert.deepEqual(verdictOf(streamed), ['opened', 'none', 'unsigned']);
  assert.deepEqual(streamed, whole);
});

test('gpg text-mode signature and a message for someone else: same results (the first read whole)', TIMEOUT, async () => {
  const textMode = await gpgArmor(['--textmode', '--sign', '--encrypt', '-u', 'postmaster@gpg-sender.test', '-r', 'postmaster@receiver.test'], bigEntity());
  const text = await bothRoutes(envelope(textMode));
  assert.equal(text.route, 'streamed-then-whole');
  assert.deepEqual(verdictOf(text.streamed), ['opened', 'pass', 'signature-verified']);
  assert.deepEqual(text.streamed, text.whole);
  const elsewhere = await gpgArmor(['--sign', '--encrypt', '-u', 'postmaster@gpg-sender.test', '-r', 'postmaster@gpg-sender.test'], bigEntity());
  const other = await bothRoutes(envelope(elsewhere));
  assert.equal(other.route, 'streamed');
  assert.deepEqual(verdictOf(other.streamed), ['unchanged']);
  assert.deepEqual(other.streamed, other.whole);
});

test('sq sign+encrypt: streamed exactly as read whole', TIMEOUT, async () => {
  const keys = await testKeys();
  const input = await tools.file('entity.txt', bigEntity('carol@elsewhere.test'));
  const signer = await tools.file('gina.sec.asc', keys.gpgSite.secretArmored);
  const recipient = await tools.file('receiver.pub.asc', keys.receiverSite.publicArmored);
  const output = join(tools.dir, 'sq.asc');
  const made = await runTool('sq', ['encrypt', '--signer-key', signer, '--recipient-cert', recipient, '-o', output, input], tools.dir);
  assert.equal(made.code, 0, made.stderr);
  const { whole, streamed, route } = await bothRoutes(envelope(await readFile(output)));
  assert.equal(route, 'streamed');
  assert.deepEqual(verdictOf(streamed), ['opened', 'pass', 'signature-verified']);
  assert.deepEqual(streamed, whole);
});

test('OpenPGP.js and this project: streamed exactly as read whole', TIMEOUT, async () => {
  const keys = await testKeys();
  for (const to of ['bob@receiver.test', 'carol@elsewhere.test']) {
    const binary = await encrypt({ message: await createMessage({ binary: bigEntity(to) }), encryptionKeys: keys.receiverSite.public, signingKeys: keys.gpgSite.secret, format: 'binary' });
    const { whole, streamed, route } = await bothRoutes(envelope(armorBytes('MESSAGE', binary)));
    assert.equal(route, 'streamed');
    assert.deepEqual(verdictOf(streamed), ['opened', to.endsWith('receiver.test') ? 'pass' : 'policy', to.endsWith('receiver.test') ? 'signature-verified' : 'recipient-not-bound']);
    assert.deepEqual(streamed, whole);
  }
  const original: HeaderField[] = [
    { name: 'From', value: ' alice@sender.test' },
    { name: 'To', value: ' bob@receiver.test' },
    { name: 'Subject', value: ' big' },
    { name: 'Content-Type', value: ' text/plain; charset=utf-8' },
  ];
  for (const compression of ['none', 'zlib'] as const) {
    const out = await protectOutbound({ headers: original, body: bigEntity().subarray(120), siteKey: keys.senderSite.secret, recipientKeys: [keys.receiverSite.public], now: () => FIXED_NOW, compression });
    if (out.kind !== 'protected') assert.fail(out.kind);
    const { whole, streamed, route } = await bothRoutes(await out.body.toBuffer(), applyHeaderEdits(original, out.headerEdits), FIXED_NOW);
    await out.body.dispose();
    assert.equal(route, 'streamed', compression);
    assert.deepEqual(verdictOf(streamed), ['opened', 'pass', 'signature-verified']);
    assert.deepEqual(streamed, whole);
  }
});

/** A gpg-made message's binary packets, changed by `change`, armored again into the envelope. */
async function altered(change: (binary: Buffer) => Buffer, args: string[] = ['-z', '0']): Promise<Buffer> {
  const armored = await gpgArmor(['--sign', '--encrypt', '-u', 'postmaster@gpg-sender.test', '-r', 'postmaster@receiver.test', ...args], bigEntity());
  return envelope(armorBytes('MESSAGE', change(Buffer.from(dearmor('MESSAGE', armored)))));
}

function flip(binary: Buffer, fromEnd: number): Buffer {
  const copy = Buffer.from(binary);
  copy[copy.length - fromEnd] = (copy[copy.length - fromEnd] as number) ^ 0x01;
  return copy;
}

test('altered ciphertext and a wrong MDC: decryption-failed, streamed, as read whole', TIMEOUT, async () => {
  for (const fromEnd of [500_000, 5]) {
    const { whole, streamed, route } = await bothRoutes(await altered((b) => flip(b, fromEnd)));
    assert.equal(route, 'streamed', String(fromEnd));
    assert.deepEqual(verdictOf(streamed), ['annotated', 'fail', 'decryption-failed']);
    assert.deepEqual(streamed, whole);
  }
});

test('truncated data and legacy encrypted data without MDC: the whole read answers, same verdict', TIMEOUT, async () => {
  const truncated = await bothRoutes(await altered((b) => b.subarray(0, b.length - 1000)));
  assert.equal(truncated.route, 'streamed-then-whole');
  assert.deepEqual(truncated.streamed, truncated.whole);
  assert.deepEqual(verdictOf(truncated.streamed), ['annotated', 'fail', 'malformed']);
  // The SEIPD packet turned into a legacy SED packet (tag 9, no version octet): never decrypted.
  const legacy = await bothRoutes(await altered((b) => withLegacyData(b)));
  assert.equal(legacy.route, 'streamed-then-whole');
  assert.deepEqual(legacy.streamed, legacy.whole);
  assert.deepEqual(verdictOf(legacy.streamed), ['annotated', 'fail', 'decryption-failed']);
});

/** Rewrites the last packet (SEIPD, new format, gpg's partial lengths) as tag 9 without its version octet. */
function withLegacyData(binary: Buffer): Buffer {
  // The packets before it: gpg writes one PKESK with an old-format header here.
  let at = 0;
  for (;;) {
    const tag = binary[at] as number;
    const isNew = (tag & 0x40) !== 0;
    const t = isNew ? tag & 0x3f : (tag >> 2) & 0x0f;
    if (t === enums.packet.symEncryptedIntegrityProtectedData) break;
    assert.equal(isNew, false);
    const lengthOctets = 1 << (tag & 0x03);
    const length = binary.subarray(at + 1, at + 1 + lengthOctets).reduce((v, o) => v * 256 + o, 0);
    at += 1 + lengthOctets + length;
  }
  const body = Buffer.concat(collectBody(binary.subarray(at + 1)));
  const header = Buffer.alloc(6);
  header[0] = 0xc0 | enums.packet.symmetricallyEncryptedData;
  header[1] = 255;
  header.writeUInt32BE(body.length - 1, 2);
  return Buffer.concat([binary.subarray(0, at), header, body.subarray(1)]);
}

/** The body parts of a new-format packet from its length octets on. */
function collectBody(data: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const first = data[at] as number;
    if (first < 192) return [...parts, data.subarray(at + 1, at + 1 + first)];
    if (first < 224) {
      const length = ((first - 192) << 8) + (data[at + 1] as number) + 192;
      return [...parts, data.subarray(at + 2, at + 2 + length)];
    }
    if (first === 255) return [...parts, data.subarray(at + 5, at + 5 + data.readUInt32BE(at + 1))];
    const length = 2 ** (first & 0x1f);
    parts.push(data.subarray(at + 1, at + 1 + length));
    at += 1 + length;
  }
}

test('a decompression bomb: limit decompressed-bytes, streamed, as read whole', TIMEOUT, async () => {
  // 64 MiB of zeros compress to about 64 KiB: far past 20 times the message.
  const zeros = Buffer.alloc(64 * 1024 * 1024);
  const padding = Buffer.from(`${'P'.repeat(70)}\r\n`.repeat(32 * 1024));
  const armored = await gpgArmor(['--sign', '--encrypt', '-u', 'postmaster@gpg-sender.test', '-r', 'postmaster@receiver.test', '--compress-algo', 'zlib'], Buffer.concat([bigEntity(), zeros]));
  // The armor alone is small; a long preamble brings the message above the streaming threshold.
  const body = Buffer.concat([padding, envelope(armored)]);
  const { whole, streamed, route } = await bothRoutes(body);
  assert.equal(route, 'streamed');
  const cap = Math.floor(dearmor('MESSAGE', armored).length * 20);
  assert.deepEqual(streamed, { kind: 'limit-exceeded', limit: 'decompressed-bytes', max: cap });
  assert.deepEqual(streamed, whole);
});
