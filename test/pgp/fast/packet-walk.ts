/**
 * An independent reader of the packet sequences the native paths write (new-format headers;
 * partial body lengths only where asked for), so tests can check the framing without trusting
 * either implementation.
 */
import { createDecipheriv } from 'node:crypto';

/** One run of body octets of a packet. */
export interface BodyPart {
  /** Offset of the part's first body octet. */
  readonly offset: number;
  readonly length: number;
  /** The part was announced by a partial body length (RFC 4880 §4.2.2.4). */
  readonly partial: boolean;
}

/** One packet in a sequence. */
export interface PacketSpan {
  readonly tag: number;
  /** Offset of the header's first octet. */
  readonly offset: number;
  /** Octets of the first header (tag and first length). */
  readonly headerLength: number;
  /** Total body octets over all parts. */
  readonly bodyLength: number;
  /** The body's parts in order: one, with a definite length, unless partial lengths were used. */
  readonly parts: readonly BodyPart[];
  /** Offset just past the packet. */
  readonly end: number;
}

/** Offset just past the packet. */
export function packetEnd(span: PacketSpan): number {
  return span.end;
}

/** Reading options. */
export interface WalkOptions {
  /** Accept partial body lengths (else they are an error, as the whole-buffer path never writes them). */
  readonly partialLengths?: boolean;
}

/** A length field at `at`: its size in octets, the length, and whether it is a partial length. */
function lengthAt(bytes: Uint8Array, at: number): { size: number; length: number; partial: boolean } {
  const first = bytes[at];
  if (first === undefined) throw new Error(`length field past the end at ${at}`);
  if (first < 192) return { size: 1, length: first, partial: false };
  if (first < 224) return { size: 2, length: ((first - 192) << 8) + (bytes[at + 1] as number) + 192, partial: false };
  if (first === 255) return { size: 5, length: Buffer.from(bytes.subarray(at + 1, at + 5)).readUInt32BE(), partial: false };
  return { size: 1, length: 2 ** (first & 0x1f), partial: true };
}

/** The packets of `bytes`, which must be exactly a sequence of new-format packets. */
export function walkPackets(bytes: Uint8Array, options: WalkOptions = {}): PacketSpan[] {
  const spans: PacketSpan[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const tagOctet = bytes[offset] as number;
    if ((tagOctet & 0xc0) !== 0xc0) throw new Error(`not a new-format header at ${offset}`);
    const parts: BodyPart[] = [];
    let at = offset + 1;
    let headerLength = 0;
    for (;;) {
      const field = lengthAt(bytes, at);
      if (field.partial && options.partialLengths !== true) throw new Error(`partial length at ${offset}`);
      if (parts.length === 0) headerLength = 1 + field.size;
      parts.push({ offset: at + field.size, length: field.length, partial: field.partial });
      at += field.size + field.length;
      if (!field.partial) break;
    }
    const bodyLength = parts.reduce((sum, p) => sum + p.length, 0);
    spans.push({ tag: tagOctet & 0x3f, offset, headerLength, bodyLength, parts, end: at });
    offset = at;
  }
  if (offset !== bytes.length) throw new Error('last packet overruns the data');
  return spans;
}

/** The body of `span` in `bytes`, its parts joined. */
export function packetBody(bytes: Uint8Array, span: PacketSpan): Buffer {
  return Buffer.concat(span.parts.map((p) => bytes.subarray(p.offset, p.offset + p.length)));
}

/** The decrypted body of a SEIPD v1 packet (prefix, packets, MDC packet) under an AES-256 key. */
export function decryptSeipd(body: Uint8Array, sessionKey: Uint8Array): Buffer {
  if (body[0] !== 1) throw new Error('not SEIPD v1');
  const decipher = createDecipheriv('aes-256-cfb', sessionKey, Buffer.alloc(16));
  return Buffer.concat([decipher.update(body.subarray(1)), decipher.final()]);
}
