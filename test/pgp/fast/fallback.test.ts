/**
 * Where the native path stops: every key, date and option shape it does not write gives null, and
 * the engine's output is then made by openpgp.js (shown by what only openpgp.js can write: a
 * P-256 ECDH session key, an RSA signature). Also: cached key answers never outlive an expiry.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encryptKey, enums, generateKey, readMessage, revokeKey, type PrivateKey, type PublicKey } from 'openpgp';
import { applyHeaderEdits } from '../../../src/engine/header-edits.ts';
import { protectOutbound } from '../../../src/engine/outbound.ts';
import { parseContentType } from '../../../src/mime/content-fields.ts';
import { readPgpMime } from '../../../src/mime/pgp-mime-read.ts';
import { dearmor } from '../../../src/pgp/armor.ts';
import { PgpError } from '../../../src/pgp/errors.ts';
import { fastSignEncrypt, type FastSignEncryptInput } from '../../../src/pgp/fast/sign-encrypt.ts';
import { signAndEncrypt } from '../../../src/pgp/sign-encrypt.ts';
import { countingBoundary, FIXED_NOW, readCorpusMessage } from '../../engine/fixtures.ts';
import { fastTestKeys, openSigned } from './fixtures.ts';

const TIMEOUT = { timeout: 300_000 };
const CREATED = new Date('2025-01-01T00:00:00Z');
const DATA = Buffer.from('fallback\r\n');

/** Shapes of generated keys: curve, RFC 9580 algorithms, v6, AEAD feature, expiry in seconds. */
interface KeyShape {
  readonly curve?: 'nistP256';
  readonly type?: 'curve25519';
  readonly v6?: boolean;
  readonly aead?: boolean;
  readonly expiresIn?: number;
}

async function eccKey(options: KeyShape = {}): Promise<PrivateKey> {
  const curve = options.curve ?? enums.curve.curve25519Legacy;
  const { privateKey } = await generateKey({
    ...(options.type === 'curve25519' ? { type: 'curve25519' } : { type: 'ecc', curve }),
    userIDs: [{ email: 'postmaster@other.test' }],
    date: CREATED,
    keyExpirationTime: options.expiresIn ?? 0,
    format: 'object',
    config: { v6Keys: options.v6 ?? false, aeadProtect: options.aead ?? false },
  });
  return privateKey;
}

async function native(overrides: Partial<FastSignEncryptInput>): Promise<Uint8Array | null> {
  const keys = await fastTestKeys();
  const defaults = { data: DATA, signingKey: keys.sender.secret, encryptionKeys: [keys.receiver.public], date: FIXED_NOW };
  return fastSignEncrypt({ ...defaults, ...overrides });
}

test('the native path declines key and option shapes it does not write', TIMEOUT, async () => {
  const keys = await fastTestKeys();
  assert.ok((await native({})) !== null, 'the supported shape is accepted');
  const locked = await encryptKey({ privateKey: await eccKey(), passphrase: 'secret' });
  const p256 = (await eccKey({ curve: 'nistP256' })).toPublic();
  const revoked = (await revokeKey({ key: await eccKey(), date: new Date(CREATED.getTime() + 1000), format: 'object' })).publicKey;
  const cases: [string, Partial<FastSignEncryptInput>][] = [
    ['ECDH on NIST P-256', { encryptionKeys: [p256] }],
    ['RFC 9580 X25519 in a v4 key', { encryptionKeys: [(await eccKey({ type: 'curve25519' })).toPublic()] }],
    ['a v6 key', { encryptionKeys: [(await eccKey({ type: 'curve25519', v6: true })).toPublic()] }],
    ['a recipient announcing SEIPD v2 (openpgp.js would use AEAD)', { encryptionKeys: [(await eccKey({ aead: true })).toPublic()] }],
    ['a revoked recipient key', { encryptionKeys: [revoked] }],
    ['one unsupported among supported recipients', { encryptionKeys: [keys.receiver.public, p256] }],
    ['no recipients', { encryptionKeys: [] }],
    ['an RSA signer', { signingKey: keys.rsa.secret }],
    ['an Ed25519 (RFC 9580) signer', { signingKey: await eccKey({ type: 'curve25519' }) }],
    ['a locked signing key', { signingKey: locked }],
    ['a date before the keys exist', { date: new Date('2024-12-31T00:00:00Z') }],
    ['a date OpenPGP cannot express', { date: new Date('1969-12-31T23:59:59Z') }],
    ['an AEAD session key', { sessionKey: { data: new Uint8Array(32), algorithm: 'aes256', aeadAlgorithm: 'ocb' } }],
    ['a session key of the wrong length', { sessionKey: { data: new Uint8Array(16), algorithm: 'aes256' } }],
    ['a non-AES session key', { sessionKey: { data: new Uint8Array(16), algorithm: 'cast5' } }],
  ];
  for (const [name, overrides] of cases) assert.equal(await native(overrides), null, name);
});

/** Protects a corpus message for `recipients` with `siteKey` and returns the binary OpenPGP message. */
async function engineMessage(siteKey: PrivateKey, recipients: PublicKey[]): Promise<Uint8Array> {
  const message = await readCorpusMessage('02-utf8-8bit.eml', 'latin1');
  const result = await protectOutbound({
    headers: message.headers,
    body: message.body,
    siteKey,
    recipientKeys: recipients,
    headerEncoding: 'latin1',
    now: () => FIXED_NOW,
    boundary: countingBoundary(),
  });
  if (result.kind !== 'protected') assert.fail(result.kind);
  const contentType = applyHeaderEdits(message.headers, result.headerEdits).find((h) => h.name === 'Content-Type')?.value ?? '';
  const container = readPgpMime(parseContentType(contentType), await result.body.toBuffer());
  if (container?.kind !== 'encrypted') assert.fail('not multipart/encrypted');
  return dearmor('MESSAGE', container.armoredMessage);
}

test('engine with a P-256 recipient next to a supported one: openpgp.js writes the message, both recipients open it', TIMEOUT, async () => {
  const keys = await fastTestKeys();
  const p256 = await eccKey({ curve: 'nistP256' });
  const binary = await engineMessage(keys.sender.secret, [keys.receiver.public, p256.toPublic()]);
  const message = await readMessage({ binaryMessage: binary });
  // A P-256 ephemeral point (0x04, x, y: 65 octets) is something only openpgp.js writes here.
  const points = [...message.packets].slice(0, 2).map((p) => (p as unknown as { encrypted: { V: Uint8Array } }).encrypted.V.length);
  assert.deepEqual(points, [33, 65]);
  for (const key of [keys.receiver.secret, p256]) {
    assert.match((await openSigned(binary, key, keys.sender.public)).data.toString('latin1'), /^From: /);
  }
});

test('engine with an RSA site key: openpgp.js writes the message, signed with RSA', TIMEOUT, async () => {
  const keys = await fastTestKeys();
  const binary = await engineMessage(keys.rsa.secret, [keys.receiver.public]);
  const { signature } = await openSigned(binary, keys.receiver.secret, keys.rsa.public);
  assert.equal(signature.packets[0]?.publicKeyAlgorithm, enums.publicKey.rsaEncryptSign);
});

/** The whole output of signAndEncrypt. */
async function signAndEncryptAll(input: Parameters<typeof signAndEncrypt>[0]): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of await signAndEncrypt(input)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Whether the SEIPD packet after the first PKESK (new format, one-octet length) starts with a partial length. */
function seipdStartsPartial(binary: Buffer): boolean {
  const seipdAt = 2 + (binary[1] as number);
  assert.equal(binary[seipdAt], 0xc0 | enums.packet.symEncryptedIntegrityProtectedData);
  const length = binary[seipdAt + 1] as number;
  return length >= 0xe0 && length < 0xff;
}

test('streamed plaintext with the native path off, or compressed plaintext, goes to openpgp.js, and still opens', async () => {
  const keys = await fastTestKeys();
  // openpgp.js switches to partial lengths once 512 octets are pending; the native streamed path
  // only past a whole part, so 4 KiB tells the two apart.
  const data = Buffer.alloc(4096, DATA);
  const base = { signingKey: keys.sender.secret, encryptionKeys: [keys.receiver.public], date: FIXED_NOW };
  const stream = () => (async function* () { yield data; })();
  const native = await signAndEncryptAll({ ...base, plaintext: stream() });
  assert.equal(seipdStartsPartial(native), false);
  const library = await signAndEncryptAll({ ...base, plaintext: stream(), fastPath: false });
  assert.equal(seipdStartsPartial(library), true);
  const compressed = await signAndEncryptAll({ ...base, plaintext: stream(), compression: 'zlib' });
  const opened = await (await readMessage({ binaryMessage: compressed })).decrypt([keys.receiver.secret], undefined, undefined, FIXED_NOW);
  const inner = opened.packets;
  assert.equal((inner[0]?.constructor as unknown as { tag: number }).tag, enums.packet.compressedData);
  for (const binary of [native, library, compressed]) {
    assert.deepEqual((await openSigned(binary, keys.receiver.secret, keys.sender.public)).data, data);
  }
});

test('a streamed message to a recipient the native path declines is streamed by openpgp.js, whole, and opens for both', TIMEOUT, async () => {
  const keys = await fastTestKeys();
  const p256 = await eccKey({ curve: 'nistP256' });
  const data = Buffer.alloc(3 * 65_536 + 5, DATA);
  const binary = await signAndEncryptAll({
    plaintext: (async function* () { for (let at = 0; at < data.length; at += 65_536) yield data.subarray(at, at + 65_536); })(),
    signingKey: keys.sender.secret,
    encryptionKeys: [keys.receiver.public, p256.toPublic()],
    date: FIXED_NOW,
  });
  const message = await readMessage({ binaryMessage: binary });
  // A P-256 ephemeral point (0x04, x, y: 65 octets) is something only openpgp.js writes here.
  const points = [...message.packets].slice(0, 2).map((p) => (p as unknown as { encrypted: { V: Uint8Array } }).encrypted.V.length);
  assert.deepEqual(points, [33, 65]);
  for (const key of [keys.receiver.secret, p256]) assert.deepEqual((await openSigned(binary, key, keys.sender.public)).data, data);
});

test('a remembered key answer does not outlive the key’s expiry, in either order of use', TIMEOUT, async () => {
  const keys = await fastTestKeys();
  const hour = 3600;
  const valid = new Date(CREATED.getTime() + 60_000);
  const expired = new Date(CREATED.getTime() + 2 * hour * 1000);
  for (const order of [[valid, expired], [expired, valid]]) {
    const recipient = (await eccKey({ expiresIn: hour })).toPublic();
    for (const date of order) {
      const out = await native({ encryptionKeys: [recipient], date });
      assert.equal(out === null, date === expired, date.toISOString());
    }
    // The fallback, openpgp.js, refuses the expired key too: the engine reports a failure.
    await assert.rejects(
      signAndEncrypt({ plaintext: DATA, signingKey: keys.sender.secret, encryptionKeys: [recipient], date: expired }),
      (e: unknown) => e instanceof PgpError && e.code === 'ENCRYPT_FAILED',
    );
  }
});
