import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { decryptSessionKeys, generateKey } from 'openpgp';
import { protectOutbound, type OutboundOptions, type OutboundResult } from '../../src/engine/outbound.ts';
import { EngineError } from '../../src/engine/errors.ts';
import { applyHeaderEdits } from '../../src/engine/header-edits.ts';
import { parseContentType } from '../../src/mime/content-fields.ts';
import type { HeaderField } from '../../src/mime/header-fields.ts';
import { readPgpMime } from '../../src/mime/pgp-mime-read.ts';
import { decryptMessage, readEncrypted } from '../../src/pgp/decrypt.ts';
import { readDetachedSignature, verifyDetached } from '../../src/pgp/detached.ts';
import { cmsSamples, PGP_MIME_TYPE, pgpMimeBody, pgpSamples, PLAIN_TEXT, smimeBody } from '../support/encrypted-mail.ts';
import { countingBoundary, FIXED_NOW, testKeys } from './fixtures.ts';

const HEADERS: HeaderField[] = [
  { name: 'Received', value: ' from a by b' },
  { name: 'From', value: ' Alice <alice@sender.test>' },
  { name: 'To', value: ' bob@receiver.test' },
  { name: 'Subject', value: ' Quarterly numbers' },
  { name: 'Date', value: ' Mon, 02 Jun 2025 10:00:00 +0000' },
  { name: 'Message-ID', value: ' <m1@sender.test>' },
  { name: 'MIME-Version', value: ' 1.0' },
  { name: 'Content-Type', value: ' text/plain; charset=utf-8' },
  { name: 'Content-Transfer-Encoding', value: ' 8bit' },
  { name: 'Content-Disposition', value: ' inline' },
];
const BODY = Buffer.from('Umsatz: 1 000 000 €\r\n');

async function protect(overrides: Partial<OutboundOptions> = {}): Promise<OutboundResult> {
  const keys = await testKeys();
  return protectOutbound({
    headers: HEADERS,
    body: BODY,
    siteKey: keys.senderSite.secret,
    recipientKeys: [keys.receiverSite.public],
    now: () => FIXED_NOW,
    boundary: countingBoundary(),
    ...overrides,
  });
}

async function innerPlaintext(result: OutboundResult): Promise<string> {
  assert.equal(result.kind, 'protected');
  if (result.kind !== 'protected') return '';
  const keys = await testKeys();
  const contentType = result.headerEdits.find((e) => e.name === 'Content-Type' && e.op !== 'insert');
  const container = readPgpMime(parseContentType(contentType?.value ?? ''), await result.body.toBuffer());
  assert.equal(container?.kind, 'encrypted');
  if (container?.kind !== 'encrypted') return '';
  const decrypted = await decryptMessage(await readEncrypted(container.armoredMessage), [keys.receiverSite.secret], FIXED_NOW, 1 << 24);
  return Buffer.from(decrypted.plaintext).toString('utf8');
}

test('encrypted: header edits replace Content-*, hide Subject and name what was done', async () => {
  const keys = await testKeys();
  const result = await protect();
  assert.equal(result.kind, 'protected');
  if (result.kind !== 'protected') return;
  assert.equal(result.protection, 'signed+encrypted');
  assert.deepEqual(result.headerEdits, [
    { op: 'change', name: 'Content-Type', index: 1, value: ' multipart/encrypted; protocol="application/pgp-encrypted";\r\n boundary="=_test_1"' },
    { op: 'change', name: 'Content-Transfer-Encoding', index: 1, value: '' },
    { op: 'change', name: 'Content-Disposition', index: 1, value: '' },
    { op: 'change', name: 'Subject', index: 1, value: ' [...]' },
    { op: 'add', name: 'Muse-Protection', value: ` signed+encrypted; signer=${keys.senderSite.public.getFingerprint().toUpperCase()}` },
  ]);
});

test('encrypted: the inner entity is the protected header plus the original body, byte for byte', async () => {
  assert.equal(
    await innerPlaintext(await protect()),
    'From: Alice <alice@sender.test>\r\nTo: bob@receiver.test\r\nSubject: Quarterly numbers\r\nDate: Mon, 02 Jun 2025 10:00:00 +0000\r\n' +
      'Message-ID: <m1@sender.test>\r\nContent-Type: text/plain; charset=utf-8;\r\n hp="cipher"\r\nContent-Transfer-Encoding: 8bit\r\n' +
      'Content-Disposition: inline\r\nHP-Outer: From: Alice <alice@sender.test>\r\nHP-Outer: To: bob@receiver.test\r\n' +
      'HP-Outer: Subject: [...]\r\nHP-Outer: Date: Mon, 02 Jun 2025 10:00:00 +0000\r\nHP-Outer: Message-ID: <m1@sender.test>\r\n\r\n' +
      'Umsatz: 1 000 000 €\r\n',
  );
});

test('header protection off: Subject stays outside, the protected fields are still signed inside (hp="clear")', async () => {
  const result = await protect({ headerProtection: false });
  assert.ok(result.kind === 'protected');
  assert.equal(result.headerEdits.some((e) => e.name === 'Subject'), false);
  const inner = await innerPlaintext(result);
  assert.match(inner, /^From: Alice <alice@sender\.test>\r\n/);
  assert.match(inner, /Content-Type: text\/plain; charset=utf-8;\r\n hp="clear"\r\n/);
  assert.doesNotMatch(inner, /HP-Outer/);
});

test('the Subject is hidden only when it is among the protected fields', async () => {
  const result = await protect({ protectedFields: ['From', 'To'] });
  assert.ok(result.kind === 'protected');
  assert.equal(result.headerEdits.some((e) => e.name === 'Subject'), false);
  assert.doesNotMatch(await innerPlaintext(result), /Subject/);
});

test('an injected session key is the one used', async () => {
  const keys = await testKeys();
  const sessionKey = { data: new Uint8Array(32).fill(7), algorithm: 'aes256' as const };
  const result = await protect({ sessionKey });
  assert.ok(result.kind === 'protected');
  const container = readPgpMime(parseContentType(result.headerEdits[0]?.value ?? ''), await result.body.toBuffer());
  if (container?.kind !== 'encrypted') assert.fail('not encrypted');
  const [found] = await decryptSessionKeys({ message: (await readEncrypted(container.armoredMessage)).message, decryptionKeys: keys.receiverSite.secret });
  assert.deepEqual(found?.data, sessionKey.data);
});

test('a null placeholder keeps the Subject visible but still protected inside', async () => {
  const result = await protect({ subjectPlaceholder: null });
  assert.ok(result.kind === 'protected');
  assert.equal(result.headerEdits.some((e) => e.name === 'Subject'), false);
  assert.match(await innerPlaintext(result), /HP-Outer: Subject: Quarterly numbers\r\n/);
});

test('no MIME-Version and no Content-Type: both are added, the RFC 2045 default goes inside, bare LF becomes CRLF', async () => {
  const result = await protect({ headers: HEADERS.slice(0, 6), body: Buffer.from('a\nb\n') });
  assert.ok(result.kind === 'protected');
  assert.deepEqual(result.headerEdits.slice(0, 2), [
    { op: 'add', name: 'Content-Type', value: ' multipart/encrypted; protocol="application/pgp-encrypted";\r\n boundary="=_test_1"' },
    { op: 'add', name: 'MIME-Version', value: ' 1.0' },
  ]);
  const inner = await innerPlaintext(result);
  assert.ok(inner.startsWith('Content-Type: text/plain; charset=us-ascii;\r\n hp="cipher"\r\nFrom:'));
  assert.ok(inner.endsWith('\r\n\r\na\r\nb\r\n'));
});

test('streamed input in odd chunks gives the same inner entity as a whole buffer', async () => {
  const body = Buffer.concat([Buffer.from('x\r'), Buffer.from('\ny\n'), BODY]);
  const chunks = [body.subarray(0, 2), body.subarray(2, 3), body.subarray(3)];
  const streamed = await protect({ body: (async function* () { yield* chunks; })() });
  assert.equal(await innerPlaintext(streamed), await innerPlaintext(await protect({ body })));
});

test('already encrypted mail is recognised by its content and left alone', async () => {
  const pgp = await pgpSamples();
  const cms = await cmsSamples();
  const type = (value: string, encoding?: string): HeaderField[] => [
    ...HEADERS.slice(0, 7),
    { name: 'Content-Type', value: ' ' + value },
    ...(encoding === undefined ? [] : [{ name: 'Content-Transfer-Encoding', value: ' ' + encoding }]),
  ];
  const unchanged = (format: string) => ({ kind: 'unchanged', reason: 'already-encrypted', format });
  assert.deepEqual(await protect({ headers: type(PGP_MIME_TYPE.trim()), body: pgpMimeBody(pgp.encrypted) }), unchanged('pgp-mime'));
  assert.deepEqual(await protect({ headers: type('application/pkcs7-mime; smime-type=enveloped-data', 'base64'), body: smimeBody(cms.enveloped) }), unchanged('smime'));
  const inline = Buffer.concat([Buffer.from('\r\n'), pgp.encrypted]);
  assert.deepEqual(await protect({ headers: type('text/plain'), body: inline }), unchanged('pgp-inline'));
  // Streamed in small chunks the verdict is the same.
  const chunks = (async function* () {
    for (let at = 0; at < inline.length; at += 100) yield inline.subarray(at, at + 100);
  })();
  assert.deepEqual(await protect({ headers: type('text/plain'), body: chunks }), unchanged('pgp-inline'));
});

test('mail only labelled encrypted is protected, its body wrapped byte for byte', async () => {
  const pgp = await pgpSamples();
  const type = (value: string): HeaderField[] => [...HEADERS.slice(0, 7), { name: 'Content-Type', value: ' ' + value }];
  const cases: [HeaderField[], Buffer][] = [
    [type(PGP_MIME_TYPE.trim()), pgpMimeBody(PLAIN_TEXT)],
    [type(PGP_MIME_TYPE.trim()), pgpMimeBody(pgp.signedOnly)],
    [type('application/pkcs7-mime; smime-type=enveloped-data'), PLAIN_TEXT],
    [type('application/pgp-encrypted'), pgp.encrypted],
    [type('text/plain'), Buffer.concat([pgp.encrypted, Buffer.from('> and some more text\r\n')])],
    [type('text/plain'), pgp.compressedOnly],
  ];
  for (const [headers, body] of cases) {
    const wrapped = await protect({ headers, body });
    assert.equal(wrapped.kind, 'protected');
    assert.ok((await innerPlaintext(wrapped)).endsWith('\r\n\r\n' + body.toString('latin1')));
  }
  // Large and streamed: the body read whole for the check is the body encrypted.
  const big = pgpMimeBody(Buffer.concat([pgp.signedOnly, Buffer.alloc(3 * 1024 * 1024, 0x61)]));
  const streamed = (async function* () {
    for (let at = 0; at < big.length; at += 65536) yield big.subarray(at, at + 65536);
  })();
  const result = await protect({ headers: type(PGP_MIME_TYPE.trim()), body: streamed });
  assert.ok((await innerPlaintext(result)).endsWith('\r\n\r\n' + big.toString('latin1')));
  if (result.kind === 'protected') await result.body.dispose();
});

test('limits yield typed results', async () => {
  assert.deepEqual(await protect({ limits: { maxHeaderBytes: 100 } }), { kind: 'limit-exceeded', limit: 'header-bytes', max: 100 });
  assert.deepEqual(await protect({ limits: { maxMessageBytes: 300 } }), { kind: 'limit-exceeded', limit: 'message-bytes', max: 300 });
  const big = (async function* () {
    for (let i = 0; i < 10; i++) yield Buffer.alloc(1000, 0x61);
  })();
  assert.deepEqual(await protect({ body: big, limits: { maxMessageBytes: 5000 } }), { kind: 'limit-exceeded', limit: 'message-bytes', max: 5000 });
  let body = 'ü\r\n';
  let type = 'text/plain; charset=utf-8';
  for (let d = 4; d >= 1; d--) {
    body = `--l${d}\r\nContent-Type: ${type}\r\n\r\n${body}--l${d}--\r\n`;
    type = `multipart/mixed; boundary=l${d}`;
  }
  const deep = { headers: [...HEADERS.slice(0, 7), { name: 'Content-Type', value: ' ' + type }], body: Buffer.from(body), recipientKeys: [] };
  assert.deepEqual(await protect({ ...deep, limits: { maxMimeDepth: 3 } }), { kind: 'limit-exceeded', limit: 'mime-depth', max: 3 });
  assert.equal((await protect({ ...deep, limits: { maxMimeDepth: 4 } })).kind, 'protected');
});

test('programming errors throw BAD_OPTIONS', async () => {
  const keys = await testKeys();
  const bad = (e: unknown) => e instanceof EngineError && e.code === 'BAD_OPTIONS';
  await assert.rejects(protect({ colour: 'blue' } as Partial<OutboundOptions>), bad);
  await assert.rejects(protect({ siteKey: keys.senderSite.public as never }), bad);
  await assert.rejects(protect({ boundary: () => 'bad boundary ' }), bad);
});

test('message-dependent failures are results: unusable key, failing body stream, colliding boundaries', async () => {
  const before = await protect({ now: () => new Date('2024-01-01T00:00:00Z') });
  assert.equal(before.kind === 'failed' && before.error.code, 'ENCRYPT_FAILED');
  const broken = (async function* () {
    yield Buffer.from('start');
    throw new Error('connection lost');
  })();
  const failed = await protect({ body: broken });
  assert.equal(failed.kind === 'failed' && failed.error.code, 'BODY_READ_FAILED');
  const collide = await protect({ recipientKeys: [], body: Buffer.from('--same\r\n'), boundary: () => 'same' });
  assert.equal(collide.kind === 'failed' && collide.error.code, 'BOUNDARY_COLLISION');
});

test('sign only: multipart/signed with micalg, a boundary that avoids the content, a verifiable signature', async () => {
  const keys = await testKeys();
  const result = await protect({ recipientKeys: [], body: Buffer.from('--=_test_1\r\nlooks like a delimiter\r\n'), headers: HEADERS.slice(0, 8) });
  assert.ok(result.kind === 'protected');
  assert.equal(result.protection, 'signed');
  assert.equal(result.reencoded, false);
  assert.deepEqual(result.headerEdits, [
    { op: 'change', name: 'Content-Type', index: 1, value: ' multipart/signed; micalg=pgp-sha512;\r\n protocol="application/pgp-signature";\r\n boundary="=_test_2"' },
    { op: 'add', name: 'Muse-Protection', value: ` signed; signer=${keys.senderSite.public.getFingerprint().toUpperCase()}` },
  ]);
  const container = readPgpMime(parseContentType(result.headerEdits[0]?.value ?? ''), await result.body.toBuffer());
  assert.ok(container?.kind === 'signed');
  assert.ok(container.signedPart.toString('latin1').startsWith('From: Alice <alice@sender.test>\r\n'));
  assert.ok(container.signedPart.toString('latin1').endsWith('hp="clear"\r\n\r\n--=_test_1\r\nlooks like a delimiter\r\n'));
  const check = await verifyDetached(container.signedPart, await readDetachedSignature(container.signature), [keys.senderSite.public], FIXED_NOW);
  assert.equal(check.status, 'valid');
});

test('large output is spooled to a private file that dispose removes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'muse-spool-test-'));
  try {
    const result = await protect({ body: Buffer.alloc(300_000, 0x41), spool: { thresholdBytes: 100_000, dir } });
    assert.ok(result.kind === 'protected');
    assert.equal(result.body.spooled, true);
    const whole = await result.body.toBuffer();
    assert.equal(whole.length, result.body.size);
    const streamed: Buffer[] = [];
    for await (const chunk of result.body.chunks()) streamed.push(chunk);
    assert.deepEqual(Buffer.concat(streamed), whole);
    const [spoolDir] = await readdir(dir);
    assert.ok(spoolDir);
    assert.equal((await stat(join(dir, spoolDir, 'body'))).mode & 0o777, 0o600);
    await result.body.dispose();
    assert.deepEqual(await readdir(dir), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('no spool file is left behind when a streamed body hits the limit or breaks mid-way', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'muse-spool-test-'));
  // 64 KiB chunks as a milter delivers them; the body is larger than the 1 MiB buffering
  // threshold, so encryption streams and the spool file already exists when the failure comes.
  const chunks = (count: number, fail: boolean) =>
    (async function* () {
      for (let i = 0; i < count; i++) yield Buffer.alloc(65536, 0x42);
      if (fail) throw new Error('connection lost');
    })();
  try {
    const spool = { thresholdBytes: 512 * 1024, dir };
    const limited = await protect({ body: chunks(80, false), spool, limits: { maxMessageBytes: 3 * 1024 * 1024 } });
    assert.deepEqual(limited, { kind: 'limit-exceeded', limit: 'message-bytes', max: 3 * 1024 * 1024 });
    assert.deepEqual(await readdir(dir), []);
    const broken = await protect({ body: chunks(40, true), spool });
    assert.equal(broken.kind === 'failed' && broken.error.code, 'BODY_READ_FAILED');
    assert.deepEqual(await readdir(dir), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a recipient key that cannot encrypt fails cleanly', async () => {
  const signOnly = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'x@y.test' }], subkeys: [{ sign: true }], date: new Date('2025-01-01T00:00:00Z'), format: 'object' });
  const result = await protect({ recipientKeys: [signOnly.publicKey] });
  assert.equal(result.kind === 'failed' && result.error.code, 'ENCRYPT_FAILED');
});

test('a Muse-Protection field already on the message is replaced by ours, never left to claim what nobody checked', async () => {
  const keys = await testKeys();
  const headers = [...HEADERS, { name: 'Muse-Protection', value: ' signed+encrypted; signer=0000' }, { name: 'muse-protection', value: ' signed' }];
  const result = await protect({ headers });
  assert.ok(result.kind === 'protected');
  const signer = keys.senderSite.public.getFingerprint().toUpperCase();
  assert.deepEqual(
    applyHeaderEdits(headers, result.headerEdits).filter((h) => h.name.toLowerCase() === 'muse-protection'),
    [{ name: 'Muse-Protection', value: ` signed+encrypted; signer=${signer}` }],
  );
});
