/**
 * OpenPGP packet framing (RFC 9580 §4.2) read from a stream: the header of each packet, then its body as chunks,
 * partial body lengths followed from part to part, so a packet of any size passes through in bounded memory.
 */
import { Unstreamable } from '../../stream/unstreamable.ts';
import { Truncated, type ChunkReader } from './chunk-reader.ts';

/** A packet's tag and how its body length is given. */
export interface PacketHeader {
  readonly tag: number;
  /** Octets of the first body part; Infinity for an old-format packet that runs to the end of the data. */
  readonly length: number;
  /** The first part is a partial body length, so another length follows it. */
  readonly partial: boolean;
}

/** The next packet header, or null at the end of the data. */
export async function readPacketHeader(reader: ChunkReader): Promise<PacketHeader | null> {
  if (await reader.atEnd()) return null;
  const octet = await reader.byte();
  if ((octet & 0x80) === 0) throw new Unstreamable('not a packet tag');
  if ((octet & 0x40) !== 0) return { tag: octet & 0x3f, ...(await newFormatLength(reader)) };
  const tag = (octet >> 2) & 0x0f;
  const lengthType = octet & 0x03;
  if (lengthType === 3) return { tag, length: Infinity, partial: false };
  const octets = await reader.exact(1 << lengthType);
  return { tag, length: octets.reduce((value, o) => value * 256 + o, 0), partial: false };
}

/** A new-format length (§4.2.1). */
async function newFormatLength(reader: ChunkReader): Promise<{ length: number; partial: boolean }> {
  const first = await reader.byte();
  if (first < 192) return { length: first, partial: false };
  if (first < 224) return { length: ((first - 192) << 8) + (await reader.byte()) + 192, partial: false };
  if (first < 255) return { length: 2 ** (first & 0x1f), partial: true };
  const octets = await reader.exact(4);
  return { length: octets.readUInt32BE(0), partial: false };
}

/** The body of the packet whose header was just read, as chunks (views into the reader's chunks). */
export async function* packetBody(reader: ChunkReader, header: PacketHeader): AsyncGenerator<Buffer> {
  let left = header.length;
  let partial = header.partial;
  for (;;) {
    while (left > 0) {
      const piece = await reader.upTo(left);
      if (piece === null) {
        if (left === Infinity) return;
        throw new Truncated();
      }
      left -= piece.length;
      yield piece;
    }
    if (!partial) return;
    ({ length: left, partial } = await newFormatLength(reader));
  }
}

/** The whole body of a small packet; {@link Unstreamable} past `max` octets. */
export async function smallPacketBody(reader: ChunkReader, header: PacketHeader, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const piece of packetBody(reader, header)) {
    size += piece.length;
    if (size > max) throw new Unstreamable(`packet ${header.tag} larger than ${max} octets`);
    parts.push(Buffer.from(piece));
  }
  return Buffer.concat(parts, size);
}

/** The packet written back in new format with a fixed length, for a parser that wants whole packets. */
export function framePacket(tag: number, body: Buffer): Buffer {
  const head = Buffer.alloc(6);
  head[0] = 0xc0 | tag;
  head[1] = 255;
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}
