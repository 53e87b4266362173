/**
 * Decryption of a large incoming OpenPGP message as it streams (docs/pgp-mime.md, "Limits"): the session key
 * packets are gathered and opened by openpgp.js exactly as for a message read whole ({@link openSessionKey}, same
 * bounds), the SEIPD v1 packet is decrypted natively into a spool file, and only once its MDC and the whole
 * armor have been checked is that file read again: decompressed under the same cap, its literal data written to a
 * second spool file, its signatures kept for a verification that hashes the literal data as it reads it.
 *
 * What this reader does not handle (SEIPD v2 or AEAD packets, legacy unprotected data, ciphers other than AES,
 * password packets, bzip2, text-mode signatures, any packet sequence but the usual ones) raises
 * {@link Unstreamable}: the caller reads the message whole, where openpgp.js answers for every shape. Failures
 * this reader reports itself are those the whole read reports alike: `DECRYPT_FAILED` (no session key, a wrong
 * MDC) and `LIMIT_EXCEEDED` (attempts, decompression).
 */
import {
  createMessage,
  enums,
  Message,
  OnePassSignaturePacket,
  PacketList,
  PublicKeyEncryptedSessionKeyPacket,
  readSignature,
  verify,
  type AnyPacket,
  type KeyID,
  type PrivateKey,
  type PublicKey,
  type Signature,
} from 'openpgp';
import { Unstreamable } from '../../stream/unstreamable.ts';
import { pgpConfig } from '../config.ts';
import { isAddressedTo, limitError, openSessionKey, type EncryptedMessage, type SessionKeyBounds } from '../decrypt.ts';
import { symmetricByName } from '../fast/algorithms.ts';
import { checkSignatures, type SignatureCheck } from '../signature-check.ts';
import { iterableToWebStream } from '../web-stream.ts';
import { ChunkReader } from './chunk-reader.ts';
import { IntegrityProtectedReader } from './integrity-protected-reader.ts';
import { framePacket, packetBody, readPacketHeader, smallPacketBody, type PacketHeader } from './packet-reader.ts';

/** Bytes written to a spool, read back as often as needed until disposed. */
export interface SpooledBytes {
  readonly size: number;
  chunks(): AsyncIterable<Buffer>;
  dispose(): Promise<void>;
}

/** Where decrypted bytes go: a private spool file (engine/output-body.ts BodySink). */
export interface SpoolWriter<S extends SpooledBytes = SpooledBytes> {
  write(chunk: Buffer): Promise<void>;
  finish(): Promise<S>;
  abort(): Promise<void>;
}

/** Options of {@link openStream}. */
export interface OpenStreamOptions<S extends SpooledBytes> {
  /** The binary (dearmored) message; its iteration throws if the armor turns out broken. */
  readonly binary: AsyncIterable<Buffer>;
  /** Octets of the binary message, asked once it has been read to the end. */
  readonly binaryLength: () => number;
  readonly keys: readonly PrivateKey[];
  readonly date: Date;
  readonly bounds: SessionKeyBounds;
  /** The most octets compressed data may expand to, for a binary message of the given length. */
  readonly decompressionCap: (binaryLength: number) => number;
  readonly spool: () => SpoolWriter<S>;
}

/** A decrypted message: its literal data in a spool, and how to check its signatures. */
export interface StreamDecrypted<S extends SpooledBytes = SpooledBytes> {
  readonly kind: 'decrypted';
  /** The literal data; the caller disposes of it. */
  readonly literal: S;
  /** The signers' key IDs, as openpgp.js's `getSigningKeyIDs` gives them (one-pass signature order). */
  readonly signerIds: readonly KeyID[];
  /** Checks the signatures against `keys`, reading the literal data once more. Never throws. */
  verify(keys: readonly PublicKey[], date: Date): Promise<SignatureCheck>;
}

/** What {@link openStream} found. */
export type StreamOpened<S extends SpooledBytes> = StreamDecrypted<S> | { readonly kind: 'not-for-us' };

const PKESK = enums.packet.publicKeyEncryptedSessionKey;
const SEIPD = enums.packet.symEncryptedIntegrityProtectedData;
const COMPRESSED = enums.packet.compressedData;
const ONE_PASS = enums.packet.onePassSignature;
const LITERAL = enums.packet.literalData;
const SIGNATURE = enums.packet.signature;

/** Session key packets are a few hundred octets (RSA 4096: 515); a larger one is not what this reader expects. */
const MAX_KEY_PACKET = 16 * 1024;
/** Signature packets carry subpackets; 64 KiB is far above any real one. */
const MAX_SIGNATURE_PACKET = 64 * 1024;
const MAX_SIGNATURES = 16;
/** Octets read from the spool per step: as the spool's own reads (milter/src/body-spool.ts), so each is soon spent. */
const READ_BYTES = 256 * 1024;

/** The fields of a one-pass signature packet compared with its signature (openpgp.js types omit them). */
interface OnePassFields {
  readonly version: number;
  readonly signatureType: number;
  readonly hashAlgorithm: number;
  readonly publicKeyAlgorithm: number;
  readonly issuerKeyID: KeyID;
}

/**
 * The packet classes `PacketList.fromBinary` may build, in the form it reads at run time (an object by tag; its
 * type declaration says Map).
 */
function allowed(packetClass: { tag: number }): Map<enums.packet, object> {
  return { [packetClass.tag]: packetClass } as unknown as Map<enums.packet, object>;
}

/** Opens a streamed encrypted message. Throws `DECRYPT_FAILED`, `LIMIT_EXCEEDED`, {@link Unstreamable}. */
export async function openStream<S extends SpooledBytes>(options: OpenStreamOptions<S>): Promise<StreamOpened<S>> {
  const reader = new ChunkReader(options.binary);
  const keyPackets: Buffer[] = [];
  let header: PacketHeader | null;
  for (header = await readPacketHeader(reader); header?.tag === PKESK; header = await readPacketHeader(reader)) {
    keyPackets.push(framePacket(PKESK, await smallPacketBody(reader, header, MAX_KEY_PACKET)));
    if (keyPackets.length > options.bounds.maxSessionKeyPackets) throw new Unstreamable('too many session key packets');
  }
  if (header === null || header.tag !== SEIPD || keyPackets.length === 0) throw new Unstreamable('not PKESK packets then SEIPD');
  const data = new ChunkReader(packetBody(reader, header));
  if ((await data.byte()) !== 1) throw new Unstreamable('SEIPD version other than 1');
  const encrypted = await keyPacketMessage(keyPackets);
  if (!isAddressedTo(encrypted, options.keys)) {
    await drain(data, reader);
    return { kind: 'not-for-us' };
  }
  let sessionKey: { data: Uint8Array; algorithm: string | null };
  try {
    [sessionKey] = (await openSessionKey(encrypted, options.keys, options.date, options.bounds)) as [{ data: Uint8Array; algorithm: string | null }];
  } catch (error) {
    // Reported only once the rest is known to be sound: a broken armor further on is what the whole read reports.
    await drain(data, reader);
    throw error;
  }
  const cipher = sessionKey.algorithm === null ? null : symmetricByName(sessionKey.algorithm);
  if (cipher === null) throw new Unstreamable(`cipher ${String(sessionKey.algorithm)}`);
  const packets = await decryptToSpool(data, reader, new IntegrityProtectedReader(cipher, sessionKey.data), options.spool());
  try {
    return await readInner(packets, options.decompressionCap(options.binaryLength()), options.spool);
  } finally {
    await packets.dispose();
  }
}

/** The session key packets as openpgp.js reads them, for {@link openSessionKey}. */
async function keyPacketMessage(framed: readonly Buffer[]): Promise<EncryptedMessage> {
  let list: PacketList<AnyPacket>;
  try {
    list = await PacketList.fromBinary(Buffer.concat(framed), allowed(PublicKeyEncryptedSessionKeyPacket), pgpConfig());
  } catch (error) {
    throw new Unstreamable(`session key packets: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (list.length !== framed.length) throw new Unstreamable('session key packet skipped');
  for (const packet of list) if ((packet as unknown as { version: number }).version !== 3) throw new Unstreamable('PKESK version other than 3');
  const message = new Message(list);
  return { message: message as Message<Uint8Array>, recipientKeyIds: message.getEncryptionKeyIDs().map((id) => id.toHex().toUpperCase()), byteLength: 0 };
}

/** Reads the rest of the SEIPD packet and of the message, so the armor is checked to its end. */
async function drain(data: ChunkReader, reader: ChunkReader): Promise<void> {
  while ((await data.upTo(READ_BYTES)) !== null);
  if (!(await reader.atEnd())) throw new Unstreamable('packets after the encrypted data');
}

/** Decrypts the SEIPD body into a spool; the spool is returned only once the MDC and the whole message check out. */
async function decryptToSpool<S extends SpooledBytes>(data: ChunkReader, reader: ChunkReader, decryptor: IntegrityProtectedReader, spool: SpoolWriter<S>): Promise<S> {
  try {
    for (let piece = await data.upTo(READ_BYTES); piece !== null; piece = await data.upTo(READ_BYTES)) {
      for (const plain of decryptor.update(piece)) await spool.write(plain);
    }
    if (!(await reader.atEnd())) throw new Unstreamable('packets after the encrypted data');
    for (const plain of decryptor.finish()) await spool.write(plain);
    return await spool.finish();
  } catch (error) {
    await spool.abort();
    throw error;
  }
}

/** Reads the authenticated inner packets: literal data to a spool, signatures kept. */
async function readInner<S extends SpooledBytes>(packets: SpooledBytes, cap: number, spool: () => SpoolWriter<S>): Promise<StreamDecrypted<S>> {
  const outer = new ChunkReader(packets.chunks());
  const first = await readPacketHeader(outer);
  if (first === null) throw new Unstreamable('no packets inside');
  if (first.tag !== COMPRESSED) return readSigned(outer, first, spool);
  const body = new ChunkReader(packetBody(outer, first));
  const algorithm = await body.byte();
  const inflated = new ChunkReader(decompress(algorithm, body, cap));
  const inner = await readPacketHeader(inflated);
  if (inner === null) throw new Unstreamable('empty compressed data');
  const decrypted = await readSigned(inflated, inner, spool);
  if (!(await outer.atEnd())) {
    await decrypted.literal.dispose();
    throw new Unstreamable('packets after the compressed data');
  }
  return decrypted;
}

type DecompressionFormat = ConstructorParameters<typeof DecompressionStream>[0];

/** What openpgp.js decompresses with, by algorithm: ZIP is raw deflate, ZLIB deflate with its header. */
const DECOMPRESSION_FORMATS: ReadonlyMap<number, DecompressionFormat | null> = new Map([
  [enums.compression.uncompressed, null],
  [enums.compression.zip, 'deflate-raw' as DecompressionFormat],
  [enums.compression.zlib, 'deflate' as DecompressionFormat],
]);

/**
 * The decompressed octets, with openpgp.js's own decompressor (the platform's DecompressionStream) so that what
 * it accepts is accepted here alike, and its limit: more than `cap` octets throws `LIMIT_EXCEEDED`.
 */
async function* decompress(algorithm: number, body: ChunkReader, cap: number): AsyncGenerator<Buffer> {
  const format = DECOMPRESSION_FORMATS.get(algorithm);
  if (format === undefined) throw new Unstreamable(`compression algorithm ${algorithm}`);
  const compressed = (async function* () {
    for (let piece = await body.upTo(READ_BYTES); piece !== null; piece = await body.upTo(READ_BYTES)) yield piece;
  })();
  const source = format === null ? compressed : streamIterable(iterableToWebStream(compressed).pipeThrough(new DecompressionStream(format)));
  let size = 0;
  try {
    for await (const piece of source) {
      size += piece.length;
      if (size > cap) throw limitError('decompressed-bytes', cap, `decompressed data exceeds ${cap} bytes`);
      yield Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    }
  } catch (error) {
    if (error instanceof Unstreamable || (error instanceof Error && 'limit' in error)) throw error;
    throw new Unstreamable(`decompression: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function* streamIterable(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) return;
      yield next.value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** One-pass signatures, the literal data, the signatures (RFC 9580 §10.3), or the literal data alone. */
async function readSigned<S extends SpooledBytes>(reader: ChunkReader, firstHeader: PacketHeader, spool: () => SpoolWriter<S>): Promise<StreamDecrypted<S>> {
  const onePass: Buffer[] = [];
  let header: PacketHeader | null = firstHeader;
  for (; header?.tag === ONE_PASS; header = await readPacketHeader(reader)) {
    onePass.push(framePacket(ONE_PASS, await smallPacketBody(reader, header, 1024)));
    if (onePass.length > MAX_SIGNATURES) throw new Unstreamable('too many one-pass signatures');
  }
  if (header === null || header.tag !== LITERAL) throw new Unstreamable('no literal data where expected');
  const literal = await literalToSpool(reader, header, spool());
  try {
    const signatures: Buffer[] = [];
    for (header = await readPacketHeader(reader); header?.tag === SIGNATURE; header = await readPacketHeader(reader)) {
      signatures.push(framePacket(SIGNATURE, await smallPacketBody(reader, header, MAX_SIGNATURE_PACKET)));
      if (signatures.length > MAX_SIGNATURES) throw new Unstreamable('too many signatures');
    }
    if (header !== null) throw new Unstreamable(`packet ${header.tag} after the literal data`);
    if (signatures.length !== onePass.length) throw new Unstreamable('signatures do not match the one-pass signatures');
    if (onePass.length === 0) return unsigned(literal);
    return await signed(literal, onePass, signatures);
  } catch (error) {
    await literal.dispose();
    throw error;
  }
}

/** Writes a literal data packet's content (RFC 9580 §5.9) to a spool. */
async function literalToSpool<S extends SpooledBytes>(reader: ChunkReader, header: PacketHeader, writer: SpoolWriter<S>): Promise<S> {
  try {
    const body = new ChunkReader(packetBody(reader, header));
    await body.byte(); // format: the content is delivered as its octets whatever it says, as openpgp.js does
    await body.exact(await body.byte()); // file name
    await body.exact(4); // date
    for (let piece = await body.upTo(READ_BYTES); piece !== null; piece = await body.upTo(READ_BYTES)) await writer.write(piece);
    return await writer.finish();
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

function unsigned<S extends SpooledBytes>(literal: S): StreamDecrypted<S> {
  return { kind: 'decrypted', literal, signerIds: [], verify: async () => ({ status: 'unsigned' }) };
}

/**
 * A signed message: each one-pass signature must announce its signature (they nest, so the last one-pass packet
 * goes with the first signature) with the same type, hash and issuer, and only binary signatures are checked
 * here; openpgp.js applies rules of its own to anything else, so that goes to the whole read.
 */
async function signed<S extends SpooledBytes>(literal: S, onePassFramed: readonly Buffer[], signatureFramed: readonly Buffer[]): Promise<StreamDecrypted<S>> {
  let onePass: PacketList<AnyPacket>;
  let signature: Signature;
  try {
    onePass = await PacketList.fromBinary(Buffer.concat(onePassFramed), allowed(OnePassSignaturePacket), pgpConfig());
    signature = await readSignature({ binarySignature: Buffer.concat(signatureFramed), config: pgpConfig() });
  } catch (error) {
    throw new Unstreamable(`signature packets: ${error instanceof Error ? error.message : String(error)}`);
  }
  const announced = [...onePass].reverse() as unknown as OnePassFields[];
  const packets = signature.packets;
  if (announced.length !== packets.length) throw new Unstreamable('signature packet skipped');
  announced.forEach((ops, i) => {
    const sig = packets[i];
    const matches =
      sig !== undefined &&
      ops.version === 3 &&
      sig.version === 4 &&
      ops.signatureType === enums.signature.binary &&
      sig.signatureType === ops.signatureType &&
      sig.hashAlgorithm === ops.hashAlgorithm &&
      sig.publicKeyAlgorithm === ops.publicKeyAlgorithm &&
      sig.issuerKeyID.equals(ops.issuerKeyID);
    if (!matches) throw new Unstreamable('one-pass signature does not announce its signature, or not binary');
  });
  const signerIds = ([...onePass] as unknown as OnePassFields[]).map((p) => p.issuerKeyID);
  return {
    kind: 'decrypted',
    literal,
    signerIds,
    verify: (keys, date) =>
      checkSignatures(signerIds, keys, async (key) => {
        const message = await createMessage({ binary: iterableToWebStream(literal.chunks()), format: 'binary' });
        const result = await verify({ message, signature, verificationKeys: key, format: 'binary', date, config: pgpConfig() });
        // openpgp.js hashes the data as it is read: reading it to the end settles the verification.
        await drainWebStream(result.data as ReadableStream<Uint8Array>);
        return result.signatures;
      }),
  };
}

async function drainWebStream(stream: ReadableStream<Uint8Array>): Promise<void> {
  for await (const piece of streamIterable(stream)) void piece;
}
