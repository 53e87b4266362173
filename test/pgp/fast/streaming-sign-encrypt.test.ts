/**
 * The native streamed sign+encrypt against openpgp.js, the reference, and against an independent
 * reading of its packets: every size around the part boundaries and odd chunkings decrypt byte
 * for byte with a good site signature; the packets are those of the whole-buffer path, framed with
 * partial lengths; the output is produced as the input arrives; a failing input stream fails the
 * output; and key shapes it does not write are declined before any input is read.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { enums, generateKey, readMessage } from 'openpgp';
import { fastSignEncrypt } from '../../../src/pgp/fast/sign-encrypt.ts';
import { fastStreamSignEncrypt, type FastStreamSignEncryptInput } from '../../../src/pgp/fast/streaming-sign-encrypt.ts';
import { FIXED_NOW, type TestKey } from '../../engine/fixtures.ts';
import { fastTestKeys, openSigned, publicKeys, recipientSets } from './fixtures.ts';
import { decryptSeipd, packetBody, walkPackets } from './packet-walk.ts';
import {
  checkStreamedMessage,
  LITERAL_EDGE_SIZES,
  PART,
  plaintext,
  reusingChunks,
  SESSION_KEY,
  sizeForSeipdBody,
  streamed,
} from './streaming-fixtures.ts';

const TIMEOUT = { timeout: 300_000 };

/** Decrypts with openpgp.js and `key` (default: the receiver's), requiring a good signature by the sender site key. */
async function openWith(binary: Uint8Array, key?: TestKey): Promise<Buffer> {
  const keys = await fastTestKeys();
  return (await openSigned(binary, (key ?? keys.receiver).secret, keys.sender.public)).data;
}

test('sizes around 512 octets and the part boundaries: byte-exact in openpgp.js, good signature, RFC 4880 partial framing', TIMEOUT, async () => {
  // [input size, SEIPD body length it must give (for the SEIPD edges)]
  const cases: [number, number | undefined][] = [0, 1, 511, 512, 513, ...LITERAL_EDGE_SIZES].map((size) => [size, undefined]);
  for (const body of [PART - 1, PART, PART + 1]) cases.push([await sizeForSeipdBody(body), body]);
  for (const [size, seipdBody] of cases) {
    const data = plaintext(size);
    const binary = await streamed(data, { deterministicSignatures: true, chunks: [65_537, 7, 4096] });
    const { outer } = checkStreamedMessage(binary, data, 1, `${size} octets`);
    if (seipdBody !== undefined) assert.equal(outer.at(-1)?.bodyLength, seipdBody, `${size} octets`);
    assert.deepEqual(await openWith(binary), data, `${size} octets`);
  }
});

test('a small message has definite lengths only, as the whole-buffer path writes it', async () => {
  const binary = await streamed(plaintext(100));
  const { outer, inner } = checkStreamedMessage(binary, plaintext(100), 1, '100 octets');
  assert.ok([...outer, ...inner].every((p) => p.parts.length === 1));
  assert.ok(walkPackets(binary).length === 2, 'the strict reader (no partial lengths) accepts it');
});

test('a few MiB in odd chunk sizes (1, 7, 65 537, more than a part) from a producer that reuses its buffer', TIMEOUT, async () => {
  const data = plaintext(3 * 1024 * 1024 + 12_345);
  const binary = await streamed(data, { chunks: [1, 7, 65_537, 3, PART + 5, 1, 4096, 2 * PART + 1, 100_003] });
  checkStreamedMessage(binary, data, 1, '3 MiB');
  assert.deepEqual(await openWith(binary), data);
});

test('one-octet chunks across the first literal and SEIPD part boundaries', TIMEOUT, async () => {
  const data = plaintext(PART + 300);
  const binary = await streamed(data, { chunks: [1] });
  checkStreamedMessage(binary, data, 1, 'one-octet chunks');
  assert.deepEqual(await openWith(binary), data);
});

test('each recipient of 1, 2 and 5 recipients (RSA among them), and an RSA recipient alone, decrypts', TIMEOUT, async () => {
  const keys = await fastTestKeys();
  const data = plaintext(PART + 1000);
  for (const set of recipientSets(keys)) {
    const binary = await streamed(data, { recipients: publicKeys(set.recipients), fixedSessionKey: false });
    for (const recipient of set.recipients) {
      assert.deepEqual(await openWith(binary, recipient), data, `${set.name}, ${recipient.public.getUserIDs()[0]}`);
    }
    assert.equal(walkPackets(binary, { partialLengths: true }).length, set.recipients.length + 1, set.name);
  }
});

test('with deterministic signatures and a fixed session key, the packets inside equal the whole-buffer path’s', TIMEOUT, async () => {
  const keys = await fastTestKeys();
  for (const size of [0, 1, 600, PART + 17, 3 * PART]) {
    const data = plaintext(size);
    const stream = checkStreamedMessage(await streamed(data, { deterministicSignatures: true }), data, 1, `${size} octets`);
    const input = { data, signingKey: keys.sender.secret, encryptionKeys: [keys.receiver.public], date: FIXED_NOW, sessionKey: SESSION_KEY };
    const whole = Buffer.from((await fastSignEncrypt({ ...input, deterministicSignatures: true })) ?? assert.fail('declined'));
    const seipd = walkPackets(whole).at(-1) ?? assert.fail();
    const wholePlain = decryptSeipd(packetBody(whole, seipd), SESSION_KEY.data).subarray(18);
    const wholeInner = walkPackets(wholePlain);
    const bodies = (plain: Buffer, spans: typeof wholeInner) => spans.slice(0, 3).map((span) => packetBody(plain, span));
    assert.deepEqual(bodies(stream.plain, stream.inner), bodies(wholePlain, wholeInner), `${size} octets`);
  }
});

test('output is produced as the input arrives, in chunks no larger than a part and its header', TIMEOUT, async () => {
  const keys = await fastTestKeys();
  const data = plaintext(40 * PART);
  const progress = { yielded: 0 };
  const stream = await fastStreamSignEncrypt({
    data: reusingChunks(data, [10 * PART], progress),
    signingKey: keys.sender.secret,
    encryptionKeys: [keys.receiver.public],
    date: FIXED_NOW,
  });
  let received = 0;
  let largest = 0;
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream ?? assert.fail('declined')) {
    received += chunk.length;
    largest = Math.max(largest, chunk.length);
    chunks.push(chunk);
    // Behind by at most the input chunk being worked through (10 parts), the literal and SEIPD
    // parts held back for framing, and the part being handed out: never the whole 40 parts.
    assert.ok(progress.yielded - received <= 14 * PART, `${progress.yielded} read, ${received} written`);
  }
  assert.ok(largest <= PART + 2, `largest output chunk ${largest}`);
  assert.deepEqual(await openWith(Buffer.concat(chunks)), data);
});

/** A producer that yields `before` octets of data, then throws `error`. */
async function* failingAfter(before: number, error: Error): AsyncGenerator<Uint8Array> {
  yield* reusingChunks(plaintext(before), [65_536]);
  throw error;
}

test('an input stream that fails rejects the output iteration with its error; what came out is no message', TIMEOUT, async () => {
  const keys = await fastTestKeys();
  for (const before of [0, 1000, 3 * PART + 5]) {
    const error = new Error(`body read failed after ${before}`);
    const stream = await fastStreamSignEncrypt({ data: failingAfter(before, error), signingKey: keys.sender.secret, encryptionKeys: [keys.receiver.public], date: FIXED_NOW });
    const written: Uint8Array[] = [];
    await assert.rejects(
      (async () => {
        for await (const chunk of stream ?? assert.fail('declined')) written.push(chunk);
      })(),
      (e: unknown) => e === error,
    );
    // The last part (definite length, with the MDC and signature) never went out.
    const partial = Buffer.concat(written);
    await assert.rejects(openWith(partial), `${before} octets before the failure`);
  }
});

test('a consumer that stops early ends the input stream', async () => {
  const keys = await fastTestKeys();
  let finished = false;
  async function* input(): AsyncGenerator<Uint8Array> {
    try {
      for (;;) yield plaintext(PART);
    } finally {
      finished = true;
    }
  }
  const stream = await fastStreamSignEncrypt({ data: input(), signingKey: keys.sender.secret, encryptionKeys: [keys.receiver.public], date: FIXED_NOW });
  let chunks = 0;
  for await (const chunk of stream ?? assert.fail('declined')) {
    assert.ok(chunk.length > 0);
    if (++chunks === 5) break;
  }
  assert.equal(finished, true);
});

test('key and option shapes the native path does not write are declined before any input is read', TIMEOUT, async () => {
  const keys = await fastTestKeys();
  const { privateKey: p256 } = await generateKey({ type: 'ecc', curve: 'nistP256', userIDs: [{ email: 'p@p256.test' }], date: new Date('2025-01-01T00:00:00Z'), format: 'object' });
  const cases: [string, Partial<FastStreamSignEncryptInput>][] = [
    ['an RSA signer', { signingKey: keys.rsa.secret }],
    ['ECDH on NIST P-256', { encryptionKeys: [keys.receiver.public, p256.toPublic()] }],
    ['no recipients', { encryptionKeys: [] }],
    ['a date OpenPGP cannot express', { date: new Date(-1000) }],
    ['an AEAD session key', { sessionKey: { data: new Uint8Array(32), algorithm: 'aes256', aeadAlgorithm: 'ocb' } }],
  ];
  for (const [name, overrides] of cases) {
    let started = false;
    const data = (async function* () {
      started = true;
      yield Buffer.from('never read');
    })();
    const input = { data, signingKey: keys.sender.secret, encryptionKeys: [keys.receiver.public], date: FIXED_NOW, ...overrides };
    assert.equal(await fastStreamSignEncrypt(input), null, name);
    assert.equal(started, false, name);
  }
});

test('openpgp.js reads the streamed message as v3 PKESKs and one SEIPD v1, as GnuPG 2.2 needs', TIMEOUT, async () => {
  const keys = await fastTestKeys();
  const binary = await streamed(plaintext(2 * PART + 3), { recipients: [keys.receiver.public, keys.rsa.public] });
  const message = await readMessage({ binaryMessage: binary });
  const packets = [...message.packets].map((p) => [(p.constructor as unknown as { tag: number }).tag, (p as unknown as { version: number }).version]);
  const { publicKeyEncryptedSessionKey, symEncryptedIntegrityProtectedData } = enums.packet;
  assert.deepEqual(packets, [[publicKeyEncryptedSessionKey, 3], [publicKeyEncryptedSessionKey, 3], [symEncryptedIntegrityProtectedData, 1]]);
});
