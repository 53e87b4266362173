/**
 * An independent reader of the packet sequence the native path writes (new-format headers with
 * definite lengths only), so tests can check the framing without trusting either implementation.
 */
import { createDecipheriv } from 'node:crypto';

/** One packet in a sequence. */
export interface PacketSpan {
  readonly tag: number;
  /** Offset of the header's first octet. */
  readonly offset: number;
  readonly headerLength: number;
  readonly bodyLength: number;
}

/** Offset just past the packet. */
export function packetEnd(span: PacketSpan): number {
  return span.offset + span.headerLength + span.bodyLength;
}

/** The packets of `bytes`, which must be exactly a sequence of new-format definite-length packets. */
export function walkPackets(bytes: Uint8Array): PacketSpan[] {
  const spans: PacketSpan[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const tagOctet = bytes[offset] as number;
    if ((tagOctet & 0xc0) !== 0xc0) throw new Error(`not a new-format header at ${offset}`);
    const first = bytes[offset + 1] as number;
    let headerLength: number;
    let bodyLength: number;
    if (first < 192) [headerLength, bodyLength] = [2, first];
    else if (first < 224) [headerLength, bodyLength] = [3, ((first - 192) << 8) + (bytes[offset + 2] as number) + 192];
    else if (first === 255) [headerLength, bodyLength] = [6, Buffer.from(bytes.subarray(offset + 2, offset + 6)).readUInt32BE()];
    else throw new Error(`partial length at ${offset}`);
    spans.push({ tag: tagOctet & 0x3f, offset, headerLength, bodyLength });
    offset += headerLength + bodyLength;
  }
  if (offset !== bytes.length) throw new Error('last packet overruns the data');
  return spans;
}

/** The decrypted body of a SEIPD v1 packet (prefix, packets, MDC packet) under an AES-256 key. */
export function decryptSeipd(body: Uint8Array, sessionKey: Uint8Array): Buffer {
  if (body[0] !== 1) throw new Error('not SEIPD v1');
  const decipher = createDecipheriv('aes-256-cfb', sessionKey, Buffer.alloc(16));
  return Buffer.concat([decipher.update(body.subarray(1)), decipher.final()]);
}
