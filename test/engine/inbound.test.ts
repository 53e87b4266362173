import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMessage, encrypt } from 'openpgp';
import type { BodyInput } from '../../src/engine/body-input.ts';
import { applyHeaderEdits } from '../../src/engine/header-edits.ts';
import { openInbound, type InboundOptions, type InboundResult, type SenderKeyLookup } from '../../src/engine/inbound.ts';
import { protectOutbound, type OutboundOptions } from '../../src/engine/outbound.ts';
import type { HeaderField } from '../../src/mime/header-fields.ts';
import { armorBytes, dearmor } from '../../src/pgp/armor.ts';
import { countingBoundary, FIXED_NOW, testKeys, type RawMessage } from './fixtures.ts';

const HEADERS: HeaderField[] = [
  { name: 'Received', value: ' from mx.sender.test by mx.receiver.test' },
  { name: 'From', value: ' Alice <alice@sender.test>' },
  { name: 'To', value: ' bob@receiver.test' },
  { name: 'Subject', value: ' Plans' },
  { name: 'Message-ID', value: ' <in1@sender.test>' },
  { name: 'MIME-Version', value: ' 1.0' },
  { name: 'Content-Type', value: ' text/plain; charset=utf-8' },
  { name: 'Content-Transfer-Encoding', value: ' 8bit' },
];
const BODY = Buffer.from('Geheim: ñ\r\n');

/** What the receiving MTA sees after the sending site protected the message. */
async function sent(overrides: Partial<OutboundOptions> = {}): Promise<RawMessage> {
  const keys = await testKeys();
  const headers = overrides.headers ?? HEADERS;
  const result = await protectOutbound({
    headers,
    body: BODY,
    siteKey: keys.senderSite.secret,
    recipientKeys: [keys.receiverSite.public],
    now: () => FIXED_NOW,
    boundary: countingBoundary(),
    ...overrides,
  });
  assert.equal(result.kind, 'protected');
  if (result.kind !== 'protected') throw new Error('not protected');
  return { headers: applyHeaderEdits(headers, result.headerEdits), body: await result.body.toBuffer() };
}

async function dnsWithSenderKey(dnssec = true): Promise<SenderKeyLookup> {
  const keys = await testKeys();
  return async (domain) => (domain === 'sender.test' ? { keys: [keys.senderSite.public], dnssec } : null);
}

async function open(message: { headers: HeaderField[]; body: BodyInput }, overrides: Partial<InboundOptions> = {}): Promise<InboundResult> {
  const keys = await testKeys();
  return openInbound({
    headers: message.headers,
    body: message.body,
    siteKeys: [keys.receiverSite.secret],
    senderKeys: await dnsWithSenderKey(),
    authservId: 'mx.receiver.test',
    localDomains: ['receiver.test'],
    now: () => FIXED_NOW,
    ...overrides,
  });
}

async function restored(message: RawMessage, result: InboundResult): Promise<RawMessage> {
  assert.equal(result.kind, 'opened');
  if (result.kind !== 'opened') throw new Error('not opened');
  return { headers: applyHeaderEdits(message.headers, result.headerEdits), body: await result.body.toBuffer() };
}

test('pass: decrypted, verified against the DNS key, original entity and protected fields restored', async () => {
  const keys = await testKeys();
  const message = await sent();
  const result = await open(message);
  assert.ok(result.kind === 'opened');
  assert.deepEqual(result.verdict, {
    result: 'pass',
    reason: 'signature-verified',
    domain: 'sender.test',
    fingerprint: keys.senderSite.public.getFingerprint().toUpperCase(),
    dnssec: true,
    encrypted: true,
  });
  assert.equal(result.headerProtection, 'cipher');
  const back = await restored(message, result);
  assert.deepEqual(back.body, BODY);
  assert.deepEqual(back.headers.slice(1), [
    ...HEADERS.slice(0, 6),
    { name: 'Content-Type', value: ' text/plain; charset=utf-8' },
    { name: 'Content-Transfer-Encoding', value: ' 8bit' },
  ]);
  assert.equal(back.headers[0]?.name, 'Authentication-Results');
  assert.match(back.headers[0]?.value ?? '', /^ mx\.receiver\.test;\r\n\tx-muse=pass reason="signature-verified"\r\n\theader\.from=sender\.test\r\n/);
});

test('DNSSEC status is reported as given by the key lookup', async () => {
  const result = await open(await sent(), { senderKeys: await dnsWithSenderKey(false) });
  assert.equal(result.kind === 'opened' && result.verdict.dnssec, false);
});

test('encrypted to a key we do not hold: unchanged, no edits', async () => {
  const keys = await testKeys();
  assert.deepEqual(await open(await sent({ recipientKeys: [keys.stranger.public] })), {
    kind: 'unchanged',
    reason: 'not-for-us',
    // The sending site's own field: only this site's verdict may speak of protection here.
    headerEdits: [{ op: 'change', name: 'Muse-Protection', index: 1, value: '' }],
  });
});

test('signed with a key the sender domain does not publish: fail, body kept encrypted', async () => {
  const keys = await testKeys();
  const result = await open(await sent({ siteKey: keys.stranger.secret }));
  assert.ok(result.kind === 'annotated');
  assert.equal(result.verdict.result, 'fail');
  assert.equal(result.verdict.reason, 'signer-not-published');
  assert.deepEqual(result.headerEdits.map((e) => e.op), ['change', 'insert']);
});

test('no key published: none, opened; key lookup failure: temperror, not opened', async () => {
  const none = await open(await sent(), { senderKeys: async () => null });
  assert.ok(none.kind === 'opened');
  assert.deepEqual([none.verdict.result, none.verdict.reason, none.verdict.dnssec], ['none', 'no-published-key', null]);
  const temp = await open(await sent(), {
    senderKeys: async () => {
      throw new Error('SERVFAIL');
    },
  });
  assert.ok(temp.kind === 'annotated');
  assert.deepEqual([temp.verdict.result, temp.verdict.reason], ['temperror', 'key-lookup-failed']);
});

test('unsigned encrypted payload: none/unsigned, opened', async () => {
  const keys = await testKeys();
  const entity = Buffer.from('Content-Type: text/plain\r\n\r\nno signature\r\n');
  const binary = await encrypt({ message: await createMessage({ binary: entity }), encryptionKeys: keys.receiverSite.public, format: 'binary' });
  const message = envelope(armorBytes('MESSAGE', binary));
  const result = await open(message);
  assert.ok(result.kind === 'opened');
  assert.deepEqual([result.verdict.result, result.verdict.reason], ['none', 'unsigned']);
  assert.equal((await result.body.toBuffer()).toString('latin1'), 'no signature\r\n');
});

/** Wraps an armored message in a multipart/encrypted as another implementation would. */
function envelope(armored: Buffer, headers: HeaderField[] = HEADERS.slice(0, 6)): RawMessage {
  return {
    headers: [...headers, { name: 'Content-Type', value: ' multipart/encrypted; boundary="x"; protocol="application/pgp-encrypted"' }],
    body: Buffer.concat([
      Buffer.from('--x\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--x\r\nContent-Type: application/octet-stream\r\n\r\n'),
      armored,
      Buffer.from('\r\n--x--\r\n'),
    ]),
  };
}

test('one changed ciphertext byte: fail verdict, body untouched', async () => {
  const message = await sent();
  const text = message.body.toString('latin1');
  const begin = text.indexOf('-----BEGIN PGP MESSAGE-----');
  const end = text.indexOf('-----END PGP MESSAGE-----') + '-----END PGP MESSAGE-----'.length;
  const binary = dearmor('MESSAGE', message.body.subarray(begin, end));
  binary[binary.length - 5] = (binary[binary.length - 5] as number) ^ 0x80;
  const tampered = envelope(armorBytes('MESSAGE', binary));
  const result = await open(tampered);
  assert.ok(result.kind === 'annotated');
  assert.deepEqual([result.verdict.result, result.verdict.reason], ['fail', 'decryption-failed']);
});

test('any single changed byte of the armored block: never pass, never a crash', async () => {
  const message = await sent();
  const text = message.body.toString('latin1');
  const begin = text.indexOf('-----BEGIN PGP MESSAGE-----');
  const end = text.indexOf('-----END PGP MESSAGE-----') + '-----END PGP MESSAGE-----'.length;
  const outcomes = new Map<string, number>();
  // Every byte of the armor, each replaced by one of a few characters in turn.
  const replacements = ['A', '/', '-', '0', '\n'];
  for (let at = begin; at < end; at++) {
    const candidates = replacements.filter((r) => r !== text[at]);
    const replacement = candidates[at % candidates.length] as string;
    const body = Buffer.from(message.body);
    body[at] = replacement.charCodeAt(0);
    const result = await open({ headers: message.headers, body });
    const key = result.kind === 'annotated' || result.kind === 'opened' ? `${result.kind}:${result.verdict.result}` : `${result.kind}:${'reason' in result ? result.reason : ''}`;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    // A change inside a recipient key ID makes the message one for somebody else: left alone.
    assert.ok(key === 'annotated:fail' || key === 'unchanged:not-for-us', `byte ${at - begin} -> ${key}`);
  }
  assert.ok((outcomes.get('annotated:fail') ?? 0) > 0);
});

test('multipart/signed by the site: reported by default, unwrapped on request; altered data fails', async () => {
  const message = await sent({ recipientKeys: [] });
  const reported = await open(message);
  assert.ok(reported.kind === 'annotated');
  assert.deepEqual([reported.layer, reported.verdict.result, reported.verdict.encrypted], ['signed', 'pass', false]);
  const unwrapped = await open(message, { unwrapSigned: true });
  assert.ok(unwrapped.kind === 'opened');
  const back = await restored(message, unwrapped);
  assert.equal(back.body.toString('utf8'), 'Geheim: =C3=B1\r\n');
  assert.equal(back.headers.find((h) => h.name === 'Content-Transfer-Encoding')?.value, ' quoted-printable');
  const at = message.body.indexOf('Geheim');
  const altered = Buffer.from(message.body);
  altered[at] = 0x67;
  const failed = await open({ headers: message.headers, body: altered }, { unwrapSigned: true });
  assert.ok(failed.kind === 'annotated');
  assert.deepEqual([failed.verdict.result, failed.verdict.reason], ['fail', 'bad-signature']);
});

test('any single changed byte of the signed part: fail, never pass', async () => {
  const message = await sent({ recipientKeys: [] });
  const text = message.body.toString('latin1');
  const start = text.indexOf('\r\n', text.indexOf('--=_test_1')) + 2;
  const stop = text.indexOf('\r\n--=_test_1', start);
  for (let at = start; at < stop; at++) {
    const body = Buffer.from(message.body);
    body[at] = text[at] === 'x' ? 0x79 : 0x78;
    const result = await open({ headers: message.headers, body }, { unwrapSigned: true });
    // A change in the signed From may name another domain, whose key did not sign: then it is not a site
    // signature at all and is left alone. Either way nothing passes and nothing is unwrapped.
    const outcome = result.kind === 'annotated' ? `annotated:${result.verdict.result}` : result.kind === 'unchanged' ? `unchanged:${result.reason}` : result.kind;
    assert.ok(outcome === 'annotated:fail' || outcome === 'unchanged:no-sender-key' || outcome === 'unchanged:not-site-signed', `byte ${at - start} -> ${outcome}`);
  }
});

test('multipart/signed not by the sender site, or from a domain without keys: unchanged', async () => {
  const keys = await testKeys();
  const dropProtection = [{ op: 'change', name: 'Muse-Protection', index: 1, value: '' }];
  assert.deepEqual(await open(await sent({ recipientKeys: [], siteKey: keys.stranger.secret })), { kind: 'unchanged', reason: 'not-site-signed', headerEdits: dropProtection });
  assert.deepEqual(await open(await sent({ recipientKeys: [] }), { senderKeys: async () => null }), { kind: 'unchanged', reason: 'no-sender-key', headerEdits: dropProtection });
});

test('Authentication-Results claiming our authserv-id are removed before ours is added', async () => {
  const message = await sent();
  const forged = { headers: [{ name: 'Authentication-Results', value: ' mx.receiver.test; x-muse=pass' }, ...message.headers], body: message.body };
  const result = await open(forged);
  assert.ok(result.kind === 'opened');
  const back = await restored(forged, result);
  const results = back.headers.filter((h) => h.name === 'Authentication-Results');
  assert.equal(results.length, 1);
  assert.match(results[0]?.value ?? '', /x-muse=pass reason=/);
});

test('not PGP/MIME, malformed PGP/MIME, header limit', async () => {
  assert.deepEqual(await open({ headers: HEADERS, body: BODY }), { kind: 'unchanged', reason: 'not-pgp-mime', headerEdits: [] });
  const malformed = await open({ headers: envelope(Buffer.alloc(0)).headers, body: Buffer.from('no parts here\r\n') });
  assert.ok(malformed.kind === 'annotated');
  assert.deepEqual([malformed.verdict.result, malformed.verdict.reason], ['fail', 'malformed']);
  const garbage = await open(envelope(Buffer.from('-----BEGIN PGP MESSAGE-----\r\n\r\nAAAA\r\n-----END PGP MESSAGE-----')));
  assert.ok(garbage.kind === 'annotated' && garbage.verdict.reason === 'malformed');
  assert.deepEqual(await open(await sent(), { limits: { maxHeaderBytes: 50 } }), { kind: 'limit-exceeded', limit: 'header-bytes', max: 50 });
  assert.deepEqual(await open(await sent(), { limits: { maxMessageBytes: 1000 } }), { kind: 'limit-exceeded', limit: 'message-bytes', max: 1000 });
});

test('the signed From decides the sender domain: an outer From changed in transit is not delivered', async () => {
  const spoofed = await sent();
  const outerFrom = spoofed.headers.map((h) => (h.name === 'From' ? { name: 'From', value: ' mallory@sender.test.evil' } : h));
  const result = await open({ headers: outerFrom, body: spoofed.body });
  assert.ok(result.kind === 'opened');
  assert.equal(result.verdict.domain, 'sender.test');
  assert.deepEqual(
    (await restored({ headers: outerFrom, body: spoofed.body }, result)).headers.filter((h) => h.name === 'From'),
    [{ name: 'From', value: ' Alice <alice@sender.test>' }],
  );
});

test('RFC 3156 §6.1: an unsigned encrypted payload holding a site-signed multipart/signed', async () => {
  const keys = await testKeys();
  const signed = await sent({ recipientKeys: [] });
  const contentType = signed.headers.find((h) => h.name === 'Content-Type')?.value ?? '';
  const entity = Buffer.concat([Buffer.from(`Content-Type:${contentType}\r\n\r\n`), signed.body]);
  const binary = await encrypt({ message: await createMessage({ binary: entity }), encryptionKeys: keys.receiverSite.public, format: 'binary' });
  const result = await open(envelope(armorBytes('MESSAGE', binary), HEADERS.slice(0, 6)));
  assert.ok(result.kind === 'opened');
  assert.deepEqual([result.layer, result.verdict.result, result.verdict.encrypted], ['encrypted', 'pass', true]);
  assert.equal((await result.body.toBuffer()).toString('latin1'), 'Geheim: =C3=B1\r\n');
});

test('a failing body stream is a failed result', async () => {
  const message = await sent();
  const body = (async function* () {
    yield message.body.subarray(0, 10);
    throw new Error('connection lost');
  })();
  const result = await open({ headers: message.headers, body });
  assert.equal(result.kind === 'failed' && result.error.code, 'BODY_READ_FAILED');
});
