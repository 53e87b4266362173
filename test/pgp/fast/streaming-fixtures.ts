/**
 * Shared pieces of the streamed sign+encrypt tests: plaintext of any size, producers that reuse
 * their chunk buffer (as a real body reader may), the sizes around the part boundaries, and an
 * independent check of the streamed message's packets and partial lengths.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { enums, type PublicKey } from 'openpgp';
import { fastStreamSignEncrypt, STREAMED_PART_EXPONENT } from '../../../src/pgp/fast/streaming-sign-encrypt.ts';
import { FIXED_NOW } from '../../engine/fixtures.ts';
import { fastTestKeys } from './fixtures.ts';
import { decryptSeipd, packetBody, walkPackets, type PacketSpan } from './packet-walk.ts';

/** Octets in every part but the last of a streamed literal data or SEIPD packet. */
export const PART = 2 ** STREAMED_PART_EXPONENT;
/** A literal packet's body holds 6 octets (format, name length, date) before the data. */
export const LITERAL_FIXED = 6;
/** A fixed AES-256 session key, so tests can decrypt the SEIPD packet themselves. */
export const SESSION_KEY = { data: new Uint8Array(32).fill(0x33), algorithm: 'aes256' as const };

/** `length` octets of reproducible noise with CR, LF and NUL in it (xorshift32, seeded by the length). */
export function plaintext(length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = (length * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x % 7 === 0 ? [0x0d, 0x0a, 0x00][x % 3] as number : x & 0xff;
  }
  return out;
}

/**
 * Yields `data` in chunks of `sizes` (cycled) from one buffer that is overwritten as soon as the
 * consumer asks for the next chunk: a consumer keeping a reference instead of a copy sees garbage.
 * `progress.yielded` counts the octets handed out so far.
 */
export async function* reusingChunks(data: Uint8Array, sizes: readonly number[], progress = { yielded: 0 }): AsyncGenerator<Uint8Array> {
  const buffer = Buffer.alloc(Math.max(...sizes));
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = Math.min(sizes[i % sizes.length] as number, data.length - at);
    buffer.set(data.subarray(at, at + size));
    progress.yielded += size;
    yield buffer.subarray(0, size);
    buffer.fill(0xa5, 0, size);
    at += size;
  }
}

/** Collects a stream, keeping the chunks themselves (not copies), so reuse of a yielded chunk would show. */
export async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Options of {@link streamed}. */
export interface StreamedOptions {
  readonly recipients?: readonly PublicKey[];
  /** Chunk sizes of the input, cycled; default 65 537. */
  readonly chunks?: readonly number[];
  readonly deterministicSignatures?: boolean;
  /** Use {@link SESSION_KEY} (default) or a random one. */
  readonly fixedSessionKey?: boolean;
}

/** The native streamed message for `data`; fails the test if the native path declines. */
export async function streamed(data: Uint8Array, options: StreamedOptions = {}): Promise<Buffer> {
  const keys = await fastTestKeys();
  const stream = await fastStreamSignEncrypt({
    data: reusingChunks(data, options.chunks ?? [65_537]),
    signingKey: keys.sender.secret,
    encryptionKeys: options.recipients ?? [keys.receiver.public],
    date: FIXED_NOW,
    deterministicSignatures: options.deterministicSignatures ?? false,
    ...(options.fixedSessionKey === false ? {} : { sessionKey: SESSION_KEY }),
  });
  return collect(stream ?? assert.fail('the native path declined supported keys'));
}

/**
 * The part lengths RFC 4880 §4.2.2.4 framing with {@link PART}-octet parts gives a body of
 * `total` octets here: full parts while more follows, then a definite, non-empty last part.
 */
export function expectedParts(total: number): { length: number; partial: boolean }[] {
  const full = total === 0 ? 0 : Math.ceil(total / PART) - 1;
  return [...Array.from({ length: full }, () => ({ length: PART, partial: true })), { length: total - full * PART, partial: false }];
}

function assertFraming(span: PacketSpan, where: string): void {
  assert.deepEqual(span.parts.map((p) => ({ length: p.length, partial: p.partial })), expectedParts(span.bodyLength), where);
}

/** The inner packets of a streamed message, decrypted and checked. */
export interface StreamedMessage {
  readonly outer: PacketSpan[];
  readonly inner: PacketSpan[];
  /** The decrypted SEIPD body after the 18-octet prefix: the inner packets, joined. */
  readonly plain: Buffer;
}

/**
 * Checks the message structure independently of both implementations: `recipients` PKESKs with
 * definite lengths, then one SEIPD v1 whose body, decrypted with {@link SESSION_KEY}, holds the
 * prefix with its check octets, a one-pass signature, the literal packet holding exactly `data`,
 * the signature and a correct MDC; the SEIPD and literal packets framed by {@link expectedParts}.
 */
export function checkStreamedMessage(binary: Buffer, data: Buffer, recipients: number, where: string): StreamedMessage {
  const outer = walkPackets(binary, { partialLengths: true });
  const { publicKeyEncryptedSessionKey, symEncryptedIntegrityProtectedData, onePassSignature, literalData, signature, modificationDetectionCode } = enums.packet;
  assert.deepEqual(outer.map((p) => p.tag), [...Array<number>(recipients).fill(publicKeyEncryptedSessionKey), symEncryptedIntegrityProtectedData], where);
  for (const pkesk of outer.slice(0, -1)) assert.equal(pkesk.parts.length, 1, where);
  const seipd = outer.at(-1) ?? assert.fail();
  assertFraming(seipd, `${where}: SEIPD`);
  const decrypted = decryptSeipd(packetBody(binary, seipd), SESSION_KEY.data);
  assert.deepEqual(decrypted.subarray(14, 16), decrypted.subarray(16, 18), `${where}: prefix check octets`);
  const plain = decrypted.subarray(18);
  const inner = walkPackets(plain, { partialLengths: true });
  assert.deepEqual(inner.map((p) => p.tag), [onePassSignature, literalData, signature, modificationDetectionCode], where);
  for (const definite of [inner[0], inner[2], inner[3]]) assert.equal(definite?.parts.length, 1, where);
  const literal = inner[1] ?? assert.fail();
  assertFraming(literal, `${where}: literal data`);
  const body = packetBody(plain, literal);
  assert.deepEqual(body.subarray(0, LITERAL_FIXED), Buffer.from([0x62, 0, ...Buffer.from((FIXED_NOW.getTime() / 1000).toString(16), 'hex')]), where);
  assert.ok(body.subarray(LITERAL_FIXED).equals(data), `${where}: literal data differs`);
  const mdc = inner[3] ?? assert.fail();
  const mdcStart = 18 + mdc.offset;
  assert.deepEqual(decrypted.subarray(mdcStart + 2), createHash('sha1').update(decrypted.subarray(0, mdcStart + 2)).digest(), `${where}: MDC`);
  return { outer, inner, plain };
}

/** Input sizes that make the literal packet's body one octet short of, exactly, or one over a part (and two parts). */
export const LITERAL_EDGE_SIZES = [PART - 1, PART, PART + 1, 2 * PART, 2 * PART + 1].map((body) => body - LITERAL_FIXED);

/**
 * The input size for which the SEIPD body of a deterministic streamed message is `target` octets,
 * found by measuring: that body is the data plus framing and a signature whose MPIs may be a
 * little shorter for some data, so a guess is corrected until it fits.
 */
export async function sizeForSeipdBody(target: number): Promise<number> {
  let size = target - 300;
  for (let attempt = 0; attempt < 8; attempt++) {
    const binary = await streamed(plaintext(size), { deterministicSignatures: true });
    const body = (walkPackets(binary, { partialLengths: true }).at(-1) ?? assert.fail()).bodyLength;
    if (body === target) return size;
    size += target - body;
  }
  return assert.fail(`no input size gives a SEIPD body of ${target} octets`);
}
