/**
 * The OpenPGP payloads of hostile mail, for anyone who holds the receiving site's public key and nothing else:
 * an encryption to that key (optionally compressed, so a run of one byte becomes a decompression bomb), an inner
 * header of thousands of distinct field names, and a message carrying any number of public-key session key
 * packets relabelled to name a key of our choosing. The security tests and the benchmark's hostile-load phase
 * build their messages from these, each framing them as it needs.
 */
import { createMessage, encrypt, enums, PacketList, PublicKeyEncryptedSessionKeyPacket, readMessage, type AnyPacket, type Config, type PartialConfig, type PublicKey } from 'openpgp';
import type { HeaderField } from '../../src/mime/header-fields.ts';

/** Compression of an OpenPGP message as openpgp.js names it (zlib: RFC 1950, zip: raw deflate). */
export type HostileCompression = 'none' | 'zlib' | 'zip';

/** `inner` (a whole MIME entity) encrypted, unsigned, to `key`: the binary OpenPGP message. */
export async function encryptedTo(key: PublicKey, inner: Uint8Array, compression: HostileCompression = 'none', date = new Date()): Promise<Uint8Array> {
  const config: PartialConfig = { preferredCompressionAlgorithm: enums.compression[compression === 'none' ? 'uncompressed' : compression] } as Partial<Config>;
  return encrypt({ message: await createMessage({ binary: inner }), encryptionKeys: key, format: 'binary', date, config });
}

/** `count` fields, each with its own Content-* name, so that every one is a separate name to work on. */
export function distinctContentFields(count: number): HeaderField[] {
  return Array.from({ length: count }, (_, i) => ({ name: `Content-X${i}`, value: ` v${i}` }));
}

/** A MIME entity of the given header fields and a one-line body. */
export function entityOf(fields: readonly HeaderField[]): Buffer {
  return Buffer.from(fields.map((f) => `${f.name}:${f.value}\r\n`).join('') + '\r\nhi\r\n', 'latin1');
}

/** The inner entity of the header flood: a From field and `count` distinct Content-* fields. */
export function headerFloodEntity(count: number): Buffer {
  return entityOf([{ name: 'From', value: ' a@attacker.test' }, ...distinctContentFields(count)]);
}

/** The inner entity of a decompression bomb: a text/plain header and `bytes` bytes of one letter. */
export function bombEntity(bytes: number): Buffer {
  return Buffer.concat([Buffer.from('Content-Type: text/plain\r\n\r\n'), Buffer.alloc(bytes, 0x41)]);
}

/** A v3 PKESK body with its recipient key ID (octets 1-8) replaced. */
export function relabelledSessionKeyPacket(body: Uint8Array, keyId: Uint8Array): Uint8Array {
  const copy = Uint8Array.from(body);
  if (copy[0] !== 3) throw new Error(`not a v3 PKESK (version ${copy[0]})`);
  copy.set(keyId, 1);
  return copy;
}

/** A binary OpenPGP message: the PKESK packets of the given bodies, then `data` (already framed packets). */
export function withSessionKeyPackets(bodies: readonly Uint8Array[], data: Uint8Array): Uint8Array {
  const list = new PacketList<AnyPacket>();
  for (const body of bodies) {
    const packet = new PublicKeyEncryptedSessionKeyPacket();
    packet.read(body);
    list.push(packet);
  }
  return Buffer.concat([list.write(), data]);
}

/** A message's packets split after its first (the PKESK of a one-recipient message): that packet's body, and the rest. */
export function splitFirstPacket(binary: Uint8Array, first: AnyPacket): { body: Uint8Array; rest: Uint8Array } {
  const framed = new PacketList<AnyPacket>();
  framed.push(first);
  return { body: first.write(), rest: binary.subarray(framed.write().length) };
}

/**
 * A PKESK flood: `count` session key packets that all name `ours` (by its encryption subkey's ID) and none of
 * which opens (each was made for `stranger`), then the data those packets were meant to unlock.
 */
export async function sessionKeyPacketFlood(ours: PublicKey, stranger: PublicKey, count: number): Promise<Uint8Array> {
  const toStranger = await encrypt({ message: await createMessage({ binary: Buffer.from('Content-Type: text/plain\r\n\r\nhello\r\n') }), encryptionKeys: stranger, format: 'binary' });
  const packets = (await readMessage({ binaryMessage: toStranger })).packets;
  const { body, rest } = splitFirstPacket(toStranger, packets[0] as AnyPacket);
  const subkey = await ours.getEncryptionKey();
  const keyId = Uint8Array.from(Buffer.from(subkey.getKeyID().toHex(), 'hex'));
  const relabelled = relabelledSessionKeyPacket(body, keyId);
  return withSessionKeyPackets(Array.from({ length: count }, () => relabelled), rest);
}
